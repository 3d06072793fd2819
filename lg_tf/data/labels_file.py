"""--labels_file: a CSV giving every image its fine label (`path,coarse,fine` rows).

The file `lg_tf.discover` writes, and one a user can write by hand. Rows name images by a
stable key:

* image folders: the path relative to --data_dir, with '/' (`train/cat/0001.jpg`, or
  `cat/0001.jpg` in a tree without train/ and test/);
* in-memory datasets (embedded, cifar10, cifar100): `<split>/<index>`, the image's index in
  the source split (TFDS order), e.g. `train/17`.

The file's (fine, coarse) pairs form the run's hierarchy; the images' own labels still
decide their coarse class, and a row whose coarse disagrees is refused, so a labels file
can refine the coarse classes but never move an image to another one. Every image of
both splits needs a row (test rows give the fine labels that fine accuracy and ACR are
measured on). A row may leave `fine` empty: that image is known by its coarse class only
(partial fine labels; fine training learns from it through its summed fine softmax).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import os

import numpy as np

from lg_tf import hierarchy as hier_lib
from lg_tf.errors import DataError

COLUMNS = ("path", "coarse", "fine")


@dataclasses.dataclass(frozen=True)
class LabelsFile:
    path: str
    rows: dict            # key -> (coarse name, fine name)
    hierarchy: hier_lib.Hierarchy
    digest: str           # sha256 of the file's bytes (part of the data fingerprint)


def read(path: str) -> LabelsFile:
    """Parses and checks the file; DataError with the line to fix on any problem."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise DataError(f"cannot read --labels_file='{path}' ({e.strerror})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"--labels_file='{path}' is not UTF-8 text; write a CSV with the "
                        "columns path,coarse,fine") from None
    reader = csv.reader(io.StringIO(text))
    header = [c.strip().lower() for c in next(reader, [])]
    if tuple(header) != COLUMNS:
        raise DataError(f"--labels_file='{path}' must start with the header line "
                        f"'path,coarse,fine', not '{','.join(header)[:60]}'")
    rows, parent_of = {}, {}
    for line, row in enumerate(reader, 2):
        if not row or not any(c.strip() for c in row):
            continue
        if len(row) != 3 or not (row[0].strip() and row[1].strip()):
            raise DataError(f"--labels_file='{path}', line {line}: expected 3 columns "
                            f"path,coarse,fine (fine may be empty), found {','.join(row)[:80]!r}")
        key, coarse, fine = (c.strip() for c in row)
        if key in rows:
            raise DataError(f"--labels_file='{path}', line {line}: image '{key}' has a second "
                            "row; give each image one row")
        if not fine:
            rows[key] = (coarse, "")
            continue
        if parent_of.setdefault(fine, coarse) != coarse:
            raise DataError(f"--labels_file='{path}', line {line}: fine class '{fine}' is "
                            f"under coarse class '{coarse}' here and '{parent_of[fine]}' "
                            "before; a fine class needs one parent")
        rows[key] = (coarse, fine)
    if not rows:
        raise DataError(f"--labels_file='{path}' has no rows; it needs one path,coarse,fine "
                        "row per image")
    return LabelsFile(path, rows, _hierarchy(path, parent_of),
                      hashlib.sha256(raw).hexdigest())


def _hierarchy(path: str, parent_of: dict) -> hier_lib.Hierarchy:
    """Coarse classes in order of appearance; fine classes sorted within each."""
    coarse = list(dict.fromkeys(parent_of.values()))
    groups = [(c, sorted(f for f, p in parent_of.items() if p == c)) for c in coarse]
    name = os.path.splitext(os.path.basename(path))[0]
    return hier_lib.from_groups(name, groups)


def hierarchy_for(labels: LabelsFile, base: hier_lib.Hierarchy) -> hier_lib.Hierarchy:
    """The file's hierarchy with the coarse classes in `base`'s order; refuses coarse names
    the data does not have and coarse classes the file leaves without a fine class."""
    h = labels.hierarchy
    unknown = [c for c in h.coarse_names if c not in base.coarse_names]
    if unknown:
        raise DataError(f"--labels_file='{labels.path}' names coarse class '{unknown[0]}', "
                        f"which the data does not have (it has: {', '.join(base.coarse_names)})")
    absent = [c for c in base.coarse_names if c not in h.coarse_names]
    if absent:
        raise DataError(f"--labels_file='{labels.path}' gives no fine class to coarse class "
                        f"'{absent[0]}' (no row of it has a fine label); give some of its "
                        "images a fine label")
    groups = [(c, [h.fine_names[f] for f in h.children(h.coarse_names.index(c))])
              for c in base.coarse_names]
    return hier_lib.from_groups(h.name, groups)


def example_keys(split, split_name: str, root: str | None) -> list[str]:
    """The key of every image of `split` (see the module docstring)."""
    if split.index is not None:
        return [f"{split_name}/{i}" for i in split.index]
    return [os.path.relpath(p, root).replace(os.sep, "/") for p in split.images]


def apply(labels: LabelsFile, split, split_name: str, root: str | None,
          base: hier_lib.Hierarchy):
    """`split` with its labels replaced by the file's fine classes (ids of hierarchy_for).

    `base` is the hierarchy the split was loaded with: it gives each image's true coarse
    class, which the row's coarse name must equal.
    """
    keys = example_keys(split, split_name, root)
    h = hierarchy_for(labels, base)
    fine_id = {n: i for i, n in enumerate(h.fine_names)}
    missing = [k for k in keys if k not in labels.rows]
    if missing:
        raise DataError(f"--labels_file='{labels.path}' has no row for {len(missing)} of the "
                        f"{len(keys)} {split_name} images, e.g. '{missing[0]}'; write one row "
                        "per image (lg_tf.discover writes both splits) or re-run discovery "
                        "for this data")
    coarse_of = np.asarray(base.coarse_names)[base.extended_parent()[split.labels]]
    new = np.empty(len(keys), np.int32)
    for i, (key, true_coarse) in enumerate(zip(keys, coarse_of)):
        coarse, fine = labels.rows[key]
        if coarse != true_coarse:
            raise DataError(f"--labels_file='{labels.path}' puts '{key}' under coarse class "
                            f"'{coarse}', but the image belongs to '{true_coarse}'; a labels "
                            "file may split coarse classes, never move images between them")
        new[i] = fine_id[fine] if fine else h.coarse_only_label(h.coarse_names.index(coarse))
    return split.relabel(new)
