"""Bad inputs end in one sentence that says what to do (docs/reliability_inputs.md).

In-process: `datasets.prepare(Config(...))` raises DataError / HierarchyError with the
message checked here. Subprocess: the same inputs through the CLI (lg_tf.train.run) exit 2
with one `lg_tf: error:` line, no traceback, no decoder chatter, and an untouched model_dir.
Image trees are tiny (8x8 images, 2 coarse x 2 fine classes) and built per test.
"""

import dataclasses
import json
import logging
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from lg_tf import hierarchy as hier_lib
from lg_tf.config import Config
from lg_tf.data import datasets, pipeline, sources
from lg_tf.data.sources import DataError
from lg_tf.hierarchy import HierarchyError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLASSES = {"animal": ["cat", "dog"], "vehicle": ["bus", "car"]}


def _png(path, shape=(8, 8, 3), seed=0):
    rng = np.random.default_rng(seed)
    tf.io.write_file(str(path), tf.io.encode_png(rng.integers(0, 256, shape, dtype=np.uint8)))


def _jpeg_bytes(seed=0):
    rng = np.random.default_rng(seed)
    return tf.io.encode_jpeg(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).numpy()


def make_tree(root, per_class=3, splits=("train", "test")):
    """root/<split>/<coarse>/<fine>/img_<i>.png, 8x8 RGB."""
    for split in splits:
        for coarse, fines in CLASSES.items():
            for fine in fines:
                d = root / split / coarse / fine
                d.mkdir(parents=True)
                for i in range(per_class):
                    _png(d / f"img_{i}.png", seed=i)
    return root


def _corrupt_files(base):
    png = tf.io.encode_png(np.full((8, 8, 3), 9, np.uint8)).numpy()
    jpeg = _jpeg_bytes()
    return {"random.jpg": (base / "animal" / "cat" / "random.jpg",
                           np.random.default_rng(1).bytes(300)),
            "half.png": (base / "animal" / "dog" / "half.png", png[:len(png) // 2]),
            "half.jpg": (base / "vehicle" / "bus" / "half.jpg", jpeg[:len(jpeg) // 2])}


def add_corrupt(root, split="train", kinds=("random.jpg", "half.png", "half.jpg")):
    """A random-bytes .jpg, a PNG cut to half and a JPEG cut to half: 3 unreadable files."""
    files = _corrupt_files(root / split)
    for kind in kinds:
        path, data = files[kind]
        path.write_bytes(data)
    return sorted(str(files[k][0]) for k in kinds)


def prepare(root, **kw):
    return datasets.prepare(Config(dataset="folder", data_dir=str(root), **kw))


def _write(tmp_path, name, data):
    path = tmp_path / name
    (path.write_bytes if isinstance(data, bytes) else path.write_text)(data)
    return str(path)


# --------------------------------------------------------------------------- folder trees

def test_empty_class_folder(tmp_path):
    root = make_tree(tmp_path / "pets")
    empty = root / "test" / "vehicle" / "car"
    for f in empty.iterdir():
        f.unlink()
    with pytest.raises(DataError, match="holds no images .*; add images or remove the folder") as e:
        prepare(root)
    assert str(empty) in str(e.value)


def test_class_folder_with_only_other_files(tmp_path):
    root = make_tree(tmp_path / "pets")
    d = root / "train" / "animal" / "dog"
    for f in d.iterdir():
        f.unlink()
    (d / "scan.tif").write_bytes(b"II*\0")
    with pytest.raises(DataError, match=r"holds no images .*\(it holds 1 other file, e.g. "
                                        r".*scan.tif\)"):
        prepare(root)


def test_hidden_and_system_files_are_ignored_silently(tmp_path, caplog):
    root = make_tree(tmp_path / "pets")
    d = root / "train" / "animal" / "cat"
    (d / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (d / "._img_0.jpg").write_bytes(b"\0\5\26\7AppleDouble")  # macOS resource fork: garbage
    (d / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0")
    (d / "desktop.ini").write_text("[.ShellClassInfo]")
    (d / ".cache").mkdir()
    with caplog.at_level(logging.INFO, logger="lg_tf"):
        data = prepare(root)
    assert len(data.train) == 12 and data.stats["skipped_files"] == 0
    assert not [r for r in caplog.records
                if r.name.startswith("lg_tf") and r.levelno >= logging.WARNING]


def test_note_files_are_ignored_with_a_warning(tmp_path, caplog):
    root = make_tree(tmp_path / "pets")
    (root / "train" / "animal" / "cat" / "README.txt").write_text("source: my camera")
    with caplog.at_level(logging.INFO, logger="lg_tf"):
        data = prepare(root)
    assert len(data.train) == 12 and data.stats["skipped_files"] == 0
    assert any("ignored 1 note file" in r.getMessage() for r in caplog.records)


def test_one_non_image_file(tmp_path):
    root = make_tree(tmp_path / "pets")
    path = root / "train" / "vehicle" / "bus" / "photo.heic"
    path.write_bytes(b"\0\0\0\x18ftypheic")
    with pytest.raises(DataError) as e:
        prepare(root)
    assert str(e.value) == (f"'{path}' is not an image lg_tf can read (.jpg, .jpeg, .png, .bmp, "
                            ".gif, .webp); remove or convert it, or pass --skip_corrupt to skip it")


def test_several_non_image_files(tmp_path):
    root = make_tree(tmp_path / "pets")
    for name in ("a.tif", "b.pdf", "c"):
        (root / "train" / "animal" / "dog" / name).write_bytes(b"x")
    with pytest.raises(DataError, match=r"^3 files under '.*train' are not images lg_tf can read "
                                        r".*, first: .*dog/a.tif; remove or convert them, or "
                                        r"pass --skip_corrupt to skip them$"):
        prepare(root)


def test_non_image_files_skipped_with_skip_corrupt(tmp_path, caplog):
    root = make_tree(tmp_path / "pets")
    for name in ("a.tif", "b.pdf"):
        (root / "train" / "animal" / "dog" / name).write_bytes(b"x")
    with caplog.at_level(logging.INFO, logger="lg_tf"):
        data = prepare(root, skip_corrupt=True)
    assert len(data.train) == 12
    assert (data.stats["skipped_files"], data.stats["skipped_not_image"],
            data.stats["skipped_unreadable"]) == (2, 2, 0)
    assert any("skipped 0 unreadable images and 2 non-image files" in r.getMessage()
               for r in caplog.records)


@pytest.mark.parametrize("kind", ["random.jpg", "half.png", "half.jpg"])
def test_one_unreadable_image(tmp_path, kind):
    root = make_tree(tmp_path / "pets")
    [bad] = add_corrupt(root, kinds=(kind,))
    with pytest.raises(DataError, match=r"^unreadable image .*; fix or remove it, or pass "
                                        r"--skip_corrupt to skip it$") as e:
        prepare(root)
    assert bad in str(e.value)


def test_three_unreadable_images(tmp_path):
    root = make_tree(tmp_path / "pets")
    bad = add_corrupt(root)
    with pytest.raises(DataError) as e:
        prepare(root)
    message = str(e.value)
    assert message.startswith(f"3 unreadable images under '{root / 'train'}', first: ")
    assert message.endswith("; fix or remove them, or pass --skip_corrupt to skip them")
    assert any(p in message for p in bad)


def test_unreadable_images_skipped_with_skip_corrupt(tmp_path, caplog):
    root = make_tree(tmp_path / "pets")
    bad = add_corrupt(root)
    add_corrupt(root, "test")
    with caplog.at_level(logging.INFO, logger="lg_tf"):
        data = prepare(root, skip_corrupt=True)
    assert len(data.train) == 12 and len(data.test) == 12
    assert not set(bad) & set(data.train.images)
    assert (data.stats["skipped_files"], data.stats["skipped_unreadable"]) == (6, 6)
    assert any("3 unreadable images" in r.getMessage() for r in caplog.records)
    # What is left decodes: one pass over the training split.
    n = sum(len(y) for _, y in pipeline.make_dataset(data.train, data.spec, training=False,
                                                      batch_size=4, seed=0))
    assert n == 12


def test_unreadable_images_in_a_single_tree_are_counted_once(tmp_path):
    root = make_tree(tmp_path / "flat", per_class=5, splits=("",))
    add_corrupt(root, "")
    data = prepare(root, skip_corrupt=True)
    assert len(data.train) + len(data.test) == 20
    assert data.stats["skipped_unreadable"] == 3


def test_find_unreadable_what_tf_detects(tmp_path):
    """TF 2.21 refuses a JPEG or PNG cut anywhere (even just the end marker); it decodes a
    JPEG whose entropy-coded data is garbled, and ignores bytes after the image."""
    a = np.tile(np.linspace(0, 255, 32, dtype=np.uint8)[None, :, None], (32, 1, 3))
    jpeg, png = tf.io.encode_jpeg(a).numpy(), tf.io.encode_png(a).numpy()
    flipped = bytearray(jpeg)
    for k in range(len(jpeg) // 2, len(jpeg) // 2 + 8):
        flipped[k] ^= 0xFF
    files = {  # name: (bytes, readable)
        "ok.jpg": (jpeg, True), "ok.png": (png, True), "png_named.jpg": (png, True),
        "garbled_middle.jpg": (bytes(flipped), True), "trailing.png": (png + b"junk", True),
        "cut50.jpg": (jpeg[:len(jpeg) // 2], False), "cut99.jpg": (jpeg[:-20], False),
        "no_eoi.jpg": (jpeg[:-2], False), "cut50.png": (png[:len(png) // 2], False),
        "no_iend.png": (png[:-12], False), "empty.png": (b"", False),
        "text.png": (b"hello", False), "zeros_tail.jpg": (jpeg[:len(jpeg) // 2] +
                                                          bytes(len(jpeg) - len(jpeg) // 2), False),
    }
    paths = np.asarray([_write(tmp_path, n, d) for n, (d, _) in files.items()] +
                       [str(tmp_path / "missing.jpg")])
    bad = set(paths[sources.find_unreadable(paths)].tolist())
    expected = {str(tmp_path / n) for n, (_, ok) in files.items() if not ok}
    assert bad == expected | {str(tmp_path / "missing.jpg")}


def test_class_with_only_unreadable_images(tmp_path):
    root = make_tree(tmp_path / "pets")
    d = root / "train" / "vehicle" / "car"
    for f in d.iterdir():
        f.write_bytes(b"not a png")
    with pytest.raises(DataError, match="car' holds no readable images once the unreadable "
                                        "ones are skipped; fix them or add images"):
        prepare(root, skip_corrupt=True)


def test_fixed_file_is_rechecked(tmp_path):
    """The decode check is cached per (path, size, mtime): a repaired file is seen."""
    root = make_tree(tmp_path / "pets")
    bad = root / "train" / "animal" / "cat" / "late.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(DataError, match="unreadable image"):
        prepare(root)
    _png(bad, shape=(9, 9, 3))
    assert len(prepare(root).train) == 13


def test_mixed_sizes_and_modes_work(tmp_path):
    root = make_tree(tmp_path / "pets", per_class=1)
    rng = np.random.default_rng(0)
    d = root / "train" / "animal" / "cat"
    rgb = rng.integers(0, 256, (11, 6, 3), dtype=np.uint8)
    Image.fromarray(rgb[..., 0]).save(d / "gray.png")
    Image.fromarray(rgb).convert("RGBA").save(d / "rgba.png")
    Image.fromarray(rgb).convert("P").save(d / "palette.png")
    Image.fromarray(rgb).convert("LA").save(d / "gray_alpha.png")
    Image.fromarray(rgb[..., 0].astype(np.uint16) * 257).save(d / "gray16.png")
    Image.fromarray(rgb).save(d / "big.JPG")
    Image.fromarray(rgb).convert("CMYK").save(d / "cmyk.jpg")
    Image.fromarray(rgb[..., 0]).save(d / "gray.jpeg")
    Image.fromarray(rgb).save(d / "img.bmp")
    Image.fromarray(rgb).convert("P").save(d / "img.gif")
    Image.fromarray(rgb).save(d / "img.webp")
    data = prepare(root, image_size=8)
    assert data.stats["skipped_files"] == 0 and len(data.train) == 3 + 12
    x, y = next(iter(pipeline.make_dataset(data.train, data.spec, training=False,
                                           batch_size=15, seed=0)))
    assert x.shape == (15, 8, 8, 3) and x.dtype == tf.uint8


def test_imagenet_cache_folder_gets_skip_corrupt(tmp_path):
    """--dataset=imagenet2012 reads its extracted JPEG cache as a folder, checks included."""
    h = hier_lib.named("imagenet_dog_cat")
    for split in ("train", "test"):
        cache = tmp_path / "lg_tf_cache" / f"imagenet2012_{h.name}" / split
        for wnid in h.fine_names:
            (cache / wnid).mkdir(parents=True)
            (cache / wnid / "000000.JPEG").write_bytes(_jpeg_bytes())
        (cache / "_COMPLETE").touch()
    bad = tmp_path / "lg_tf_cache" / f"imagenet2012_{h.name}" / "train" / h.fine_names[0]
    (bad / "000001.JPEG").write_bytes(_jpeg_bytes()[:100])
    cfg = Config(dataset="imagenet2012", hierarchy=h.name, data_dir=str(tmp_path))
    with pytest.raises(DataError, match="unreadable image .*000001.JPEG"):
        datasets.prepare(cfg)
    data = datasets.prepare(dataclasses.replace(cfg, skip_corrupt=True))
    assert len(data.train) == 10 and data.stats["skipped_unreadable"] == 1


def test_missing_and_file_data_dir(tmp_path):
    with pytest.raises(HierarchyError, match="image folder '.*nope' does not exist"):
        prepare(tmp_path / "nope")
    path = _write(tmp_path, "a.zip", b"PK")
    with pytest.raises(HierarchyError, match="is a file, not an image folder"):
        prepare(path)


# --------------------------------------------------------------------------- hierarchy files

BAD_FILES = [
    ("cell.csv", "cat,animal\ndog,\n", "entry 2: both a fine and a coarse name are needed, but "
                                        "the coarse name is empty; fill it in or delete the entry"),
    ("cell.json", '{"cat": "animal", "dog": ""}', "entry 2: .* the coarse name is empty"),
    ("twice.csv", "cat,animal\ndog,animal\ncat,vehicle\n",
     "lists fine class 'cat' twice \\(entry 3\\); each fine class needs exactly one parent"),
    ("map.yaml", "cat: animal\ndog: animal\n", "is YAML, which lg_tf does not read; write JSON "
                                               ".* or CSV"),
    ("map.xlsx", b"PK\3\4\0\0", "is Excel, which lg_tf does not read"),
    ("garbage.csv", bytes(range(256)), "is not a UTF-8 text file; write JSON .* or CSV"),
    ("yaml_in.txt", "cat: animal\n", "line 1: expected 2 columns 'fine,coarse', found 1 .*; "
                                     "write one comma-separated fine,coarse pair per line"),
    ("semicolons.csv", "cat;animal\n", "found 1 .*comma-separated"),
    ("empty.csv", "", "is empty and lists no classes; write JSON"),
    ("empty.json", " \n", "is empty, which is not valid JSON; write JSON"),
    ("header.csv", "fine,coarse\n", "lists no classes; write JSON"),
]


@pytest.mark.parametrize("name,data,message", BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_bad_hierarchy_file(tmp_path, name, data, message):
    path = _write(tmp_path, name, data)
    with pytest.raises(HierarchyError, match=message) as e:
        prepare(make_tree(tmp_path / "pets", per_class=1), hierarchy_file=path)
    assert path in str(e.value)


def test_hierarchy_file_names_classes_the_folder_lacks(tmp_path):
    root = make_tree(tmp_path / "pets", per_class=1)
    path = _write(tmp_path, "h.csv", "cat,animal\nkitten,animal\nbus,vehicle\n")
    with pytest.raises(HierarchyError) as e:
        prepare(root, hierarchy_file=path)
    assert str(e.value) == (
        f"hierarchy 'h' names 1 class(es) that the image folder '{root}' does not have "
        "('kitten'); fix the names to match its classes: cat, dog, bus, car")


def test_names_differing_only_in_unicode_normalisation_are_shown_escaped(tmp_path):
    """Review D13: an NFD 'café' in the file against an NFC folder 'café'."""
    nfc, nfd = "caf\u00e9", "cafe\u0301"
    root = tmp_path / "food"
    for fine in (nfc, "tea"):
        (root / "drink" / fine).mkdir(parents=True)
        _png(root / "drink" / fine / "a.png")
    for fine in ("bread", "rice"):
        (root / "food" / fine).mkdir(parents=True)
        _png(root / "food" / fine / "a.png")
    path = _write(tmp_path, "nfd.csv", f"{nfd},drink\ntea,drink\nbread,food\nrice,food\n")
    with pytest.raises(HierarchyError) as e:
        prepare(root, hierarchy_file=path)
    assert str(e.value) == (
        f"hierarchy 'nfd' spells 1 class name(s) in another Unicode normalisation than the "
        f"image folder '{root}' does: 'cafe\\u0301' here, 'caf\\xe9' there (they look the "
        f"same, e.g. '{nfc}', but are different characters); write the names in NFC form, "
        f"as the image folder '{root}' does")


def test_hierarchy_or_labels_file_that_is_a_folder(tmp_path):
    """Review D14: a folder is named as a folder, not as missing."""
    from lg_tf.config import validate
    from lg_tf.errors import ConfigError
    folder = tmp_path / "hdir.csv"
    folder.mkdir()
    with pytest.raises(ConfigError, match=r"--hierarchy_file='.*hdir.csv' is a folder; pass a "
                                          r"file of fine,coarse pairs \(JSON or CSV\) instead"):
        validate(Config(dataset="folder", data_dir=str(tmp_path), hierarchy_file=str(folder)))
    with pytest.raises(ConfigError, match="--labels_file='.*hdir.csv' is a folder; pass the "
                                          "labels.csv file"):
        validate(Config(dataset="folder", data_dir=str(tmp_path), labels_file=str(folder)))


def test_hierarchy_file_names_classes_cifar10_lacks(tmp_path):
    """Checked before any data is loaded (no TFDS needed)."""
    path = _write(tmp_path, "h.json", '{"airplane": "sky", "kitten": "ground", "puppy": "ground"}')
    with pytest.raises(HierarchyError, match="names 2 class\\(es\\) that --dataset=cifar10 does "
                                             "not have \\('kitten', 'puppy'\\); fix the names "
                                             "to match its classes: airplane, automobile"):
        datasets.prepare(Config(dataset="cifar10", hierarchy_file=path))


def test_hierarchy_file_covering_some_classes_selects_them(tmp_path, caplog):
    root = make_tree(tmp_path / "pets", per_class=2)
    path = _write(tmp_path, "pets.csv", "\ufefffine,coarse\ncat,small\ncar,big\n")  # Excel BOM
    with caplog.at_level(logging.INFO, logger="lg_tf"):
        data = prepare(root, hierarchy_file=path)
    assert data.hierarchy.fine_names == ("cat", "car")
    assert data.hierarchy.coarse_names == ("small", "big")  # regrouped: found via */car/
    assert len(data.train) == 4 and data.stats["dataset_classes_unused"] == 2
    assert any("uses 2 of the 4 classes of the image folder" in r.getMessage()
               and "the other 2 are left out of train and test (dog, bus)" in r.getMessage()
               for r in caplog.records)


def test_json_content_in_a_csv_file_is_read_as_json(tmp_path):
    path = _write(tmp_path, "h.csv", '{"cat": "animal", "bus": "vehicle"}')
    data = prepare(make_tree(tmp_path / "pets", per_class=1), hierarchy_file=path)
    assert data.hierarchy.fine_names == ("cat", "bus")


# --------------------------------------------------------------------------- digit strings

@pytest.mark.parametrize("digits,message", [
    ("0119", "--coarse_zero='0119' repeats a digit; list each class once"),
    ("01a", "--coarse_zero='01a' must be CIFAR-10 class digits 0-9, e.g. 0189"),
    ("0,1", "must be CIFAR-10 class digits 0-9"),
    ("0123456789", "puts all 10 classes in coarse class 0; leave at least one class"),
    ("  ", "--coarse_zero='' must be CIFAR-10 class digits 0-9"),  # none: only blanks
], ids=["repeat", "non_digit", "commas", "all", "none"])
def test_bad_digit_string(digits, message):
    """Raised while resolving the hierarchy, before CIFAR-10 is loaded."""
    with pytest.raises(HierarchyError) as e:
        datasets.prepare(Config(dataset="cifar10", coarse_zero=digits))
    assert message in str(e.value)


def test_empty_digit_string():
    # --coarse_zero= (empty) means "not given" in a Config; the parser itself refuses it.
    with pytest.raises(HierarchyError, match="must be CIFAR-10 class digits"):
        hier_lib.from_digit_string("")


# --------------------------------------------------------------------------- the command line

# The CLI cases run in ONE Python process (one TensorFlow import instead of one per case):
# `lg_tf.train.run(argv)`, which is all `python -m lg_tf.train` runs (tests/test_cli.py runs
# that itself), once per case, with the flags it defines removed again in between. Each
# case's stderr (file descriptor 2: C++ decoder chatter included) is cut out between markers.
_DRIVER = """
import json, os, sys
from absl import flags
from absl import app, logging  # noqa: F401 - flags every lg_tf parser defines at first use
from lg_tf import train
base = set(flags.FLAGS)
for argv in json.loads(sys.argv[1]):
    os.write(2, b"<<<case>>>\\n")
    try:
        train.run(["lg_tf.train", *argv])
        code = 0
    except SystemExit as e:
        code = e.code
    sys.stdout.flush()
    sys.stderr.flush()
    os.write(2, f"<<<exit {code}>>>\\n".encode())
    for name in set(flags.FLAGS) - base:
        delattr(flags.FLAGS, name)
    flags.FLAGS.unparse_flags()
"""


def _cli_cases(cases):
    """[(exit code, stderr of the case)] of lg_tf.train run once per argv in `cases`, and
    the whole stderr."""
    proc = subprocess.run([sys.executable, "-c", _DRIVER, json.dumps(cases)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = []
    for part in proc.stderr.split("<<<case>>>\n")[1:]:
        text, _, code = part.rpartition("<<<exit ")
        out.append((int(code.split(">>>")[0]), text))
    assert len(out) == len(cases), proc.stderr[-3000:]
    return out, proc.stderr


def _snapshot(d):
    return {p: open(os.path.join(d, p), "rb").read() for p in sorted(os.listdir(d))}


def _bad_input_args(tmp_path, case):
    if case == "digits":  # no image folder needed
        return ["--dataset=cifar10", "--coarse_zero=0119"]
    root = make_tree(tmp_path / "pets", per_class=2)
    args = ["--dataset=folder", f"--data_dir={root}"]
    if case == "corrupt":
        add_corrupt(root)
    elif case == "not_image":
        (root / "train" / "animal" / "cat" / "clip.mp4").write_bytes(b"\0\0\0\x20ftyp")
    elif case == "empty_class":
        for f in (root / "test" / "animal" / "dog").iterdir():
            f.unlink()
    elif case == "yaml":
        args.append(f"--hierarchy_file={_write(tmp_path, 'map.yaml', 'cat: animal')}")
    return args


CLI_CASES = [
    ("corrupt", "3 unreadable images under"),
    ("not_image", "clip.mp4' is not an image lg_tf can read"),
    ("empty_class", "dog' holds no images"),
    ("yaml", "is YAML, which lg_tf does not read"),
    ("digits", "--coarse_zero='0119' repeats a digit"),
]


@pytest.fixture(scope="module")
def cli_bad_inputs(tmp_path_factory):
    """{case: (exit code, its stderr, model_dir, model_dir's files before)}, and the whole
    stderr under None: every case of CLI_CASES run through the CLI with a model_dir that
    holds an lg_tf run."""
    argvs, dirs = [], []
    for case, _ in CLI_CASES:
        tmp_path = tmp_path_factory.mktemp(case)
        model_dir = tmp_path / "run"
        model_dir.mkdir()
        (model_dir / "lg_tf_run.json").write_text('{"lg_tf_run": 1}')   # an lg_tf run folder
        (model_dir / "results.json").write_text('{"final": {"test/coarse_accuracy": 0.9}}')
        dirs.append((model_dir, _snapshot(model_dir)))
        argvs.append(_bad_input_args(tmp_path, case) + [f"--model_dir={model_dir}",
                                                        "--width=4", "--epochs=1"])
    results, stderr = _cli_cases(argvs)
    out = {case: (code, text, *d) for (case, _), (code, text), d in zip(CLI_CASES, results, dirs)}
    out[None] = stderr
    return out


@pytest.mark.parametrize("case,message", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_bad_input_is_one_sentence_exit_2(cli_bad_inputs, case, message):
    code, stderr, model_dir, before = cli_bad_inputs[case]
    assert code == 2, stderr[-3000:]
    lines = [l for l in stderr.splitlines() if l.startswith("lg_tf: error:")]
    assert len(lines) == 1 and message in lines[0], stderr[-3000:]
    for text in (stderr, cli_bad_inputs[None]):
        assert "Traceback" not in text
        assert "Premature end" not in text and "JPEG library" not in text
    assert _snapshot(model_dir) == before


# --------------------------------------------------------------------------- end to end

def test_skip_corrupt_training_run(tmp_path):
    from lg_tf import train_lib
    root = make_tree(tmp_path / "pets", per_class=2)
    add_corrupt(root)
    (root / "train" / "vehicle" / "car" / "notes.pdf").write_bytes(b"%PDF")
    cfg = Config(dataset="folder", data_dir=str(root), skip_corrupt=True, width=4, epochs=1,
                 steps_per_epoch=1, eval_steps=1, batch_size=4, eval_batch_size=4, image_size=8,
                 lr_milestones=(1,))
    results = train_lib.train_and_evaluate(cfg, str(tmp_path / "run"))
    saved = json.load(open(tmp_path / "run" / "results.json"))
    assert saved["data"]["skipped_files"] == 4
    assert (saved["data"]["skipped_unreadable"], saved["data"]["skipped_not_image"]) == (3, 1)
    assert saved["data"]["train_examples"] == 8
    assert 0.0 <= results["final"]["test/coarse_accuracy"] <= 1.0
