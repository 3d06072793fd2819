"""Data sources: each returns a `Split` (images + dense fine labels) for one hierarchy.

Small datasets (CIFAR, the embedded one) come back as uint8 pixel arrays held in memory;
image folders (and ImageNet subsets) come back as file paths decoded in the tf.data graph.
Labels are always the hierarchy's dense fine ids, so everything downstream (subsets,
noise, the fine->coarse table) works on one label space.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import socket
import sys
import tempfile
import time

import numpy as np

from lg_tf import hierarchy as hier_lib
from lg_tf.hierarchy import Hierarchy
from lg_tf.data.split import Split
from lg_tf.errors import DataError  # noqa: F401 - raised here, re-exported

log = logging.getLogger(__name__)


# Hosts TFDS downloads CIFAR from: checked first so an offline machine fails in a second
# instead of after minutes of retries.
_DOWNLOAD_HOSTS = {"cifar10": "www.cs.toronto.edu", "cifar100": "www.cs.toronto.edu"}
TFDS_SPLITS = {"train": "train", "test": "test"}


def _prepare_builder(name: str, data_dir: str | None):
    import tensorflow_datasets as tfds
    builder = tfds.builder(name, data_dir=data_dir)
    where = data_dir or "the TFDS default (~/tensorflow_datasets)"
    if builder.is_prepared():
        return builder
    host = _DOWNLOAD_HOSTS.get(name)
    manual = os.path.join(data_dir or os.path.expanduser("~/tensorflow_datasets"),
                          "downloads", "manual")
    has_manual = os.path.isdir(manual) and bool(os.listdir(manual))
    if host and not has_manual and not _resolves(host):
        raise DataError(
            f"TFDS dataset '{name}' is not prepared in --data_dir={where} and this machine "
            f"cannot reach {host} to download it; run `tfds build {name} --data_dir=DIR` on a "
            f"machine with network and copy DIR here, or put the archive in {manual}.")
    try:
        builder.download_and_prepare()
    except Exception as e:  # TFDS raises many types (ConnectionError, AssertionError, ...)
        raise DataError(
            f"could not prepare TFDS dataset '{name}' in --data_dir={where} "
            f"({type(e).__name__}: {str(e).splitlines()[0][:200]}); prepare it elsewhere with "
            f"`tfds build {name} --data_dir=DIR` and point --data_dir at DIR.") from None
    return builder


def _resolves(host: str) -> bool:
    try:
        socket.getaddrinfo(host, 443)
        return True
    except OSError:
        return False


def _tfds_arrays(name: str, split: str, data_dir: str | None) -> dict:
    import tensorflow_datasets as tfds
    builder = _prepare_builder(name, data_dir)
    return tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1))


def _relabel(images: np.ndarray, source_labels: np.ndarray, table: np.ndarray) -> Split:
    fine = table[source_labels]
    keep = fine >= 0
    return Split(images[keep], fine[keep].astype(np.int32), index=np.flatnonzero(keep))


def load_cifar(name: str, h: Hierarchy, split: str, data_dir: str | None) -> Split:
    names = hier_lib.CIFAR10_CLASSES if name == "cifar10" else hier_lib.CIFAR100_FINE
    arrays = _tfds_arrays(name, TFDS_SPLITS[split], data_dir)
    labels = arrays["label"].astype(np.int64)
    if name == "cifar100" and "coarse_label" in arrays:
        check_cifar100_coarse(labels, arrays["coarse_label"])
    return _relabel(arrays["image"], labels, h.source_to_fine(names))


def check_cifar100_coarse(fine: np.ndarray, coarse: np.ndarray) -> None:
    """TFDS ships CIFAR-100's coarse labels; they must agree with our superclass table."""
    table = hier_lib.named("cifar100").parent_array()
    bad = int(np.sum(table[fine] != coarse))
    if bad:
        raise DataError(f"TFDS cifar100 `coarse_label` disagrees with lg_tf's superclass table "
                        f"for {bad} of {len(fine)} examples; the prepared data or the table is "
                        "wrong: re-prepare the dataset with `tfds build cifar100`.")


def load_embedded(h: Hierarchy, split: str, data_dir: str | None) -> Split:
    from lg_tf.data import embedded
    arrays = _tfds_arrays(embedded.LgShapes.name, split, data_dir)
    return _relabel(arrays["image"], arrays["label"].astype(np.int64),
                    h.source_to_fine(embedded.FINE_NAMES))


# --------------------------------------------------------------------------- image folders

def folder_split_dirs(root: str) -> dict[str, str] | None:
    """root/train + root/test (or val) when the tree is split; None for a single tree."""
    train = os.path.join(root, "train")
    for test_name in ("test", "val", "validation"):
        test = os.path.join(root, test_name)
        if os.path.isdir(train) and os.path.isdir(test):
            return {"train": train, "test": test}
    return None


def folder_tree_root(root: str) -> str:
    """The folder whose subfolders are the classes (root/train for split trees)."""
    dirs = folder_split_dirs(root)
    return dirs["train"] if dirs else root


# Files that sit in image folders without being data: skipped without a word.
IGNORED_FILES = ("thumbs.db", "ehthumbs.db", "desktop.ini", "icon\r")
# Notes and annotations kept next to images: skipped with one warning.
NOTE_EXTENSIONS = (".txt", ".md", ".rst", ".json", ".csv", ".xml")


def _check_root(root: str) -> None:
    if not os.path.isdir(root):
        raise DataError(f"image folder '{root}' does not exist; pass --data_dir pointing at "
                        "root/<coarse>/<fine>/<images> (or root/train and root/test)")


def _listdir(d: str) -> list[str]:
    try:
        return sorted(os.listdir(d))
    except OSError as e:
        raise DataError(f"cannot read folder '{d}' ({e.strerror}); check its permissions") from None


def folder_class_names(root: str) -> list[str]:
    """The fine classes an image folder offers: root/<coarse>/<fine>/ or root/<fine>/ names."""
    return list(_class_folders(root))


def _class_folders(root: str) -> dict[str, str]:
    """{fine name: its first folder} for root/<coarse>/<fine>/ or root/<fine>/ layouts."""
    _check_root(root)
    found: dict[str, str] = {}
    for d in _listdir(root):
        path = os.path.join(root, d)
        if d.startswith(".") or not os.path.isdir(path):
            continue
        subs = [s for s in _listdir(path)
                if not s.startswith(".") and os.path.isdir(os.path.join(path, s))]
        for name in subs or [d]:
            found.setdefault(name, os.path.join(path, name) if subs else path)
    return found


def check_split_classes(root: str, used: set[str] | None = None) -> None:
    """Refuses a root/train + root/test tree whose two splits hold different classes.

    A class with a test folder but no train folder would be dropped silently (the
    hierarchy comes from the train tree), one with a train folder but no test folder could
    not be evaluated. `used` are the fine classes the hierarchy selects (None: all of the
    tree's classes, a hierarchy read from the tree); test-only classes outside it are left
    out with a warning, like the train classes a hierarchy file leaves out.
    """
    dirs = folder_split_dirs(root)
    if not dirs:
        return
    train, test = _class_folders(dirs["train"]), _class_folders(dirs["test"])
    only_test = [n for n in test if n not in train]
    if used is not None:
        unused = [n for n in only_test if n not in used]
        if unused:
            log.warning("%s only in %s and not in the hierarchy, left out: %s",
                        _count(len(unused), "class folder"), dirs["test"], ", ".join(unused))
        only_test = [n for n in only_test if n in used]
    if only_test:
        raise DataError(
            f"{_classes(only_test)} {_have(only_test)} a test folder ({test[only_test[0]]}) "
            f"but no training folder under '{dirs['train']}', so {_them(only_test)} would be "
            f"left out without a word; add training images in "
            f"{_mirror(test[only_test[0]], dirs['test'], dirs['train'])} or remove the test "
            f"folder{'' if len(only_test) == 1 else 's'}")
    only_train = [n for n in train if n not in test and (used is None or n in used)]
    if only_train:
        raise DataError(
            f"no folder for fine {_classes(only_train)} under '{dirs['test']}' although "
            f"{train[only_train[0]]} holds training images, so {_them(only_train)} could not be "
            f"evaluated; add test images in "
            f"{_mirror(train[only_train[0]], dirs['train'], dirs['test'])} or remove the "
            f"training folder{'' if len(only_train) == 1 else 's'}")


def _classes(names: list[str]) -> str:
    shown = ", ".join(f"'{n}'" for n in names[:5]) + (", ..." if len(names) > 5 else "")
    return f"class {shown}" if len(names) == 1 else f"classes {shown} ({len(names)})"


def _have(names: list[str]) -> str:
    return "has" if len(names) == 1 else "have"


def _them(names: list[str]) -> str:
    return "it" if len(names) == 1 else "they"


def _mirror(path: str, base: str, other: str) -> str:
    """`path` under `base`, moved to the same place under `other` (with a trailing /)."""
    return os.path.join(other, os.path.relpath(path, base), "")


def list_class_files(root: str, h: Hierarchy, skip_corrupt: bool = False) -> Split:
    """Readable image files of each fine class, from root/<coarse>/<fine>/ or root/<fine>/.

    Hidden files and Thumbs.db/desktop.ini are ignored, notes (.txt, .md, ...) ignored with
    a warning. Any other file without an image extension, and every image TensorFlow cannot
    decode (one parallel tf.data pass, `find_unreadable`), stops the run with a DataError
    naming the first one, or with `skip_corrupt` is left out and counted in `Split.skipped`.
    """
    _check_root(root)
    paths, labels, notes, not_image, subfolders = [], [], [], [], []
    class_dirs = []
    for fine, name in enumerate(h.fine_names):
        d = _class_dir(root, h.coarse_names[h.parent[fine]], name)
        class_dirs.append(d)
        images, class_notes, class_others, class_subfolders = _scan_class_dir(d)
        notes += class_notes
        not_image += class_others
        subfolders += class_subfolders
        if not images:
            others = [f for f in not_image if os.path.dirname(f) == d]
            hint = (f" (it holds {_count(len(others), 'other file')}, e.g. {others[0]})"
                    if others else "")
            raise DataError(f"class folder '{d}' holds no images "
                            f"({', '.join(hier_lib.IMAGE_EXTENSIONS)}){hint}; add images or "
                            "remove the folder")
        paths += images
        labels += [fine] * len(images)
    loose = coarse_only_images(root, h)
    if loose:
        _check_no_coarse_conflict(loose, paths, labels, h)
        paths += [p for p, _ in loose]
        labels += [label for _, label in loose]
    if notes:
        log.warning("ignored %s (%s) in the class folders under %s, e.g. %s",
                    _count(len(notes), "note file"), ", ".join(NOTE_EXTENSIONS), root, notes[0])
    if subfolders:
        log.warning("ignored %s inside class folders under %s (images must sit directly in "
                    "root/<coarse>/<fine>/), e.g. %s", _count(len(subfolders), "subfolder"),
                    root, subfolders[0])
    if not_image and not skip_corrupt:
        what = f"lg_tf can read ({', '.join(hier_lib.IMAGE_EXTENSIONS)})"
        if len(not_image) == 1:
            raise DataError(f"'{not_image[0]}' is not an image {what}; remove or convert it, "
                            "or pass --skip_corrupt to skip it")
        raise DataError(f"{_count(len(not_image), 'file')} under '{root}' are not images {what}, "
                        f"first: {not_image[0]}; remove or convert them, or pass "
                        "--skip_corrupt to skip them")
    paths = np.asarray(paths)
    labels = np.asarray(labels, dtype=np.int32)
    bad = find_unreadable(paths, root)
    if len(bad) and not skip_corrupt:
        first = paths[bad[0]]
        if len(bad) == 1:
            raise DataError(f"unreadable image {first} ({decode_error(first)}); fix or remove "
                            "it, or pass --skip_corrupt to skip it")
        raise DataError(f"{_count(len(bad), 'unreadable image')} under '{root}', first: {first} "
                        f"({decode_error(first)}); fix or remove them, or pass --skip_corrupt "
                        "to skip them")
    skipped = {}
    if not_image or len(bad):
        skipped = {"unreadable": paths[bad].tolist(), "not_image": not_image}
        log.warning("--skip_corrupt: skipped %s and %s under %s, e.g. %s",
                    _count(len(bad), "unreadable image"), _count(len(not_image), "non-image file"),
                    root, (skipped["unreadable"] + not_image)[0])
        keep = np.ones(len(paths), dtype=bool)
        keep[bad] = False
        paths, labels = paths[keep], labels[keep]
        counts = np.bincount(labels[labels < h.num_fine], minlength=h.num_fine)
        if not counts.all():
            d = class_dirs[int(np.argmin(counts))]
            raise DataError(f"class folder '{d}' holds no readable images once the unreadable "
                            "ones are skipped; fix them or add images")
    return Split(paths, labels, skipped)


def coarse_only_images(root: str, h: Hierarchy) -> list[tuple[str, int]]:
    """(path, label) of the images sitting directly in root/<coarse>/ beside its fine-class
    folders: known by their coarse class only (label num_fine + c, partial fine labels).
    A coarse folder that is itself a class folder (root/<class>/ trees) has none."""
    out = []
    for c, coarse in enumerate(h.coarse_names):
        d = os.path.join(root, coarse)
        if coarse in h.fine_names or not os.path.isdir(d):
            continue
        out += [(path, h.coarse_only_label(c)) for path in _scan_class_dir(d)[0]]
    return out


def _check_no_coarse_conflict(loose: list[tuple[str, int]], paths: list[str],
                              labels: list[int], h: Hierarchy) -> None:
    """Refuses an image that sits in root/<coarse>/ and, as the same file content, in a
    fine folder of another coarse class: one image cannot have two coarse classes. Only
    files of equal size are read (hashed)."""
    import hashlib

    def size(path):
        return os.stat(path).st_size

    def digest(path):
        with open(path, "rb") as f:
            return hashlib.sha1(f.read()).hexdigest()

    parent = h.extended_parent()
    by_size: dict[int, list[tuple[str, int]]] = {}
    for path, label in zip(paths, labels):
        by_size.setdefault(size(path), []).append((path, int(parent[label])))
    for path, label in loose:
        coarse = int(parent[label])
        others = [(p, c) for p, c in by_size.get(size(path), []) if c != coarse]
        if not others:
            continue
        mine = digest(path)
        twin = next(((p, c) for p, c in others if digest(p) == mine), None)
        if twin:
            raise DataError(f"'{path}' (coarse class '{h.coarse_names[coarse]}', no fine "
                            f"label) is the same image as '{twin[0]}' (coarse class "
                            f"'{h.coarse_names[twin[1]]}'): one image cannot have two coarse "
                            "classes; remove one of the two files")


def _scan_class_dir(d: str) -> tuple[list[str], list[str], list[str], list[str]]:
    """(images, notes, other files, subfolders) of one class folder, each sorted by name."""
    images, notes, not_image, subfolders = [], [], [], []
    for f in _listdir(d):
        path = os.path.join(d, f)
        if f.startswith(".") or f.lower() in IGNORED_FILES:
            continue
        if os.path.isdir(path):
            subfolders.append(path)
        elif f.lower().endswith(hier_lib.IMAGE_EXTENSIONS):
            images.append(path)
        elif f.lower().endswith(NOTE_EXTENSIONS):
            notes.append(path)
        else:
            not_image.append(path)
    return images, notes, not_image, subfolders


def folder_files(root: str, h: Hierarchy, base: str | None = None) -> list[tuple[str, int]]:
    """Sorted (path relative to `base`, size in bytes) of the images of `h`'s classes.

    Covers root/train and root/test of a split tree, else the single tree; lists folders
    and stats files, never reads them (about 1 s for 50,000 files). Paths use '/' and are
    relative to `base` (default `root`), so moving the folder keeps the list.
    """
    base = root if base is None else base
    dirs = folder_split_dirs(root)
    files = []
    for tree in (dirs.values() if dirs else [root]):
        _check_root(tree)
        class_files = [path for fine, name in enumerate(h.fine_names)
                       for path in _scan_class_dir(_class_dir(
                           tree, h.coarse_names[h.parent[fine]], name))[0]]
        for path in class_files + [p for p, _ in coarse_only_images(tree, h)]:
            try:
                size = os.stat(path).st_size
            except OSError:
                size = -1
            files.append((os.path.relpath(path, base).replace(os.sep, "/"), size))
    return sorted(files)


def tfds_identity(name: str, data_dir: str | None) -> dict:
    """What identifies a prepared TFDS dataset: its full name (with version) and split sizes.

    Read from the builder's metadata in `data_dir`; nothing is downloaded or decoded.
    """
    import tensorflow_datasets as tfds
    builder = tfds.builder(name, data_dir=data_dir)
    if not builder.is_prepared():
        raise DataError(f"TFDS dataset '{name}' is not prepared in --data_dir="
                        f"{data_dir or 'the TFDS default (~/tensorflow_datasets)'}, so it has "
                        "no fingerprint yet; prepare it first (datasets.prepare or `tfds build`)")
    return {"builder": builder.info.full_name, "version": str(builder.info.version),
            "splits": {k: int(v.num_examples) for k, v in sorted(builder.info.splits.items())}}


def _class_dir(root: str, coarse: str, fine: str) -> str:
    """root/<coarse>/<fine>, root/<fine>, or the one root/<any>/<fine> (a regrouping file)."""
    for d in (os.path.join(root, coarse, fine), os.path.join(root, fine)):
        if os.path.isdir(d):
            return d
    found = [os.path.join(root, c, fine) for c in _listdir(root)
             if not c.startswith(".") and os.path.isdir(os.path.join(root, c, fine))]
    if len(found) == 1:
        return found[0]
    if found:
        raise DataError(f"fine class '{fine}' has {len(found)} folders under '{root}' "
                        f"({', '.join(found[:3])}) and none under its coarse class '{coarse}'; "
                        "keep one of them")
    raise DataError(f"no folder for fine class '{fine}' under '{root}' (looked for "
                    f"{coarse}/{fine}/ and {fine}/)")


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


# --------------------------------------------------------------------------- decode check

_UNREADABLE_CACHE: dict[str, np.ndarray] = {}
# Native decoder chatter ("Premature end of JPEG data", "Improper call to JPEG library in
# state 203", ...) printed on stderr while unreadable files are looked for: the DataError
# says it in one sentence instead.
_DECODER_NOISE = re.compile(r"jpe?g|png|gif|bmp|input file read error|huffman|marker",
                            re.IGNORECASE)
_PROGRESS_EVERY_S = 20.0


def find_unreadable(paths: np.ndarray, where: str = "") -> np.ndarray:
    """Indices of the files in `paths` that TensorFlow cannot decode as an image.

    One parallel tf.data pass decodes every file exactly as training will
    (`pipeline.decode`); `ignore_errors` drops the ones that fail, and the indices that
    did not come out are the unreadable files. The answer is cached per list of (path,
    size, mtime) within the process.
    """
    if len(paths) == 0:
        return np.zeros(0, dtype=np.int64)
    key = _files_key(paths)
    if key in _UNREADABLE_CACHE:
        return _UNREADABLE_CACHE[key]
    import tensorflow as tf
    from lg_tf.data import pipeline
    n = len(paths)
    if n >= 1000:
        log.info("checking %s images under %s for unreadable files ...", f"{n:,}", where or "")
    ds = tf.data.Dataset.from_tensor_slices((np.arange(n, dtype=np.int64), paths))
    # The decoded shape is returned (not only the index) so the decode cannot be pruned.
    ds = ds.map(lambda i, p: (i, tf.shape(pipeline.decode(p))),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
    ds = ds.ignore_errors().batch(1024)
    ok = np.zeros(n, dtype=bool)
    start = last = time.perf_counter()
    with _quiet_decoder_stderr():
        for index, _ in ds.as_numpy_iterator():
            ok[index] = True
            now = time.perf_counter()
            if now - last > _PROGRESS_EVERY_S:
                log.info("  ... %s of %s images decoded", f"{int(ok.sum()):,}", f"{n:,}")
                last = now
    bad = np.flatnonzero(~ok)
    if n >= 1000 or len(bad):
        log.info("checked %s images under %s in %.1f s: %d unreadable", f"{n:,}", where,
                 time.perf_counter() - start, len(bad))
    _UNREADABLE_CACHE[key] = bad
    return bad


def decode_error(path: str) -> str:
    """TensorFlow's reason for not decoding one file, in a few words."""
    import tensorflow as tf
    from lg_tf.data import pipeline
    try:
        with _quiet_decoder_stderr():
            pipeline.decode(tf.constant(path))
    except Exception as e:  # InvalidArgumentError, NotFoundError, ...
        text = re.sub(r"\{\{.*?\}\}\s*|\s*\[Op:.*", "", str(e)).strip().splitlines()
        return (text[0] if text else type(e).__name__).rstrip(". ")[:120]
    return "decoded on a second try"


def _files_key(paths: np.ndarray) -> str:
    digest = hashlib.sha1()
    for p in paths.tolist():
        try:
            st = os.stat(p)
            digest.update(f"{p}\t{st.st_size}\t{st.st_mtime_ns}\n".encode("utf-8", "replace"))
        except OSError:
            digest.update(f"{p}\t-\n".encode("utf-8", "replace"))
    return digest.hexdigest()


@contextlib.contextmanager
def _quiet_decoder_stderr():
    """Holds back what native code prints on fd 2 and re-emits all but decoder messages."""
    try:
        saved = os.dup(2)
    except OSError:  # no usable stderr: nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as capture:
        sys.stderr.flush()
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [line for line in capture.read().decode("utf-8", "replace").splitlines(True)
                    if not _DECODER_NOISE.search(line)]
            if kept:
                os.write(2, "".join(kept).encode())


def holdout_split(split: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    """Per-class fixed-seed holdout for trees without train/test folders."""
    test = np.zeros(len(split), dtype=bool)
    for c in np.unique(split.labels):
        idx = np.flatnonzero(split.labels == c)
        rng = np.random.default_rng([seed, int(c), 7])
        n = max(1, int(round(len(idx) * fraction))) if len(idx) > 1 else 0
        test[rng.permutation(idx)[:n]] = True
    return split.take(~test), split.take(test)


def load_folder(root: str, h: Hierarchy, holdout: float, seed: int,
                skip_corrupt: bool = False) -> dict[str, Split]:
    dirs = folder_split_dirs(root)
    if dirs:
        return {s: list_class_files(d, h, skip_corrupt) for s, d in dirs.items()}
    tree = list_class_files(root, h, skip_corrupt)
    train, test = holdout_split(tree, holdout, seed)
    train.skipped = tree.skipped  # the whole tree's skipped files, counted once
    log.info("no train/ and test/ folders under %s: held out %d of %d images per class "
             "(fraction %.2f, seed %d) as the test split", root, len(test),
             len(train) + len(test), holdout, seed)
    return {"train": train, "test": test}


# --------------------------------------------------------------------------- ImageNet

def imagenet_cache_dir(h: Hierarchy, split: str, data_dir: str | None) -> str:
    """<data_dir>/lg_tf_cache/imagenet2012_<hierarchy>/<split>: the extracted JPEG folder."""
    base = data_dir or os.path.expanduser("~/tensorflow_datasets")
    return os.path.join(base, "lg_tf_cache", f"imagenet2012_{h.name}", split)


def imagenet_cache_complete(h: Hierarchy, split: str, data_dir: str | None) -> bool:
    return os.path.exists(os.path.join(imagenet_cache_dir(h, split, data_dir), "_COMPLETE"))


def load_imagenet_tfds(h: Hierarchy, split: str, data_dir: str | None,
                      skip_corrupt: bool = False) -> Split:
    """Extracts a hierarchy's wnids from TFDS imagenet2012 into a JPEG folder cache once.

    Reading 1.28M records for a few thousand images is slow, so it is done a single time
    and the result is an ordinary folder tree (<data_dir>/lg_tf_cache/...).
    """
    import tensorflow as tf
    import tensorflow_datasets as tfds
    tfds_split = {"train": "train", "test": "validation"}[split]
    cache = imagenet_cache_dir(h, split, data_dir)
    if not imagenet_cache_complete(h, split, data_dir):
        builder = _prepare_builder("imagenet2012", data_dir)
        table = h.source_to_fine(builder.info.features["label"].names)
        ds = builder.as_dataset(split=tfds_split,
                                decoders={"image": tfds.decode.SkipDecoding()})
        tf_table = tf.constant(table)
        ds = ds.filter(lambda ex: tf.gather(tf_table, ex["label"]) >= 0)
        counts = np.zeros(h.num_fine, dtype=int)
        for ex in tfds.as_numpy(ds.prefetch(64)):
            fine = int(table[ex["label"]])
            d = os.path.join(cache, h.fine_names[fine])
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, f"{counts[fine]:06d}.JPEG"), "wb") as f:
                f.write(ex["image"])
            counts[fine] += 1
        open(os.path.join(cache, "_COMPLETE"), "w").close()
        log.info("cached %d imagenet2012/%s images of %s in %s", counts.sum(), tfds_split,
                 h.name, cache)
    return list_class_files(cache, h, skip_corrupt)
