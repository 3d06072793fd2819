"""Label hierarchies: fine class names, coarse class names and each fine class's parent.

A `Hierarchy` is the one object every other module uses to go from fine to coarse. It
comes from a named table (every dataset of the paper), a CIFAR-10 digit string (Table
VI), a user's JSON/CSV file, or an image folder tree. Subset hierarchies (e.g.
``cifar100_animals``) name only some of a dataset's classes; `source_to_fine` maps the
dataset's own label ids onto the dense ids 0..num_fine-1 and drops the rest.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import unicodedata
from typing import Iterable, Mapping, Sequence

import numpy as np

from lg_tf.errors import HierarchyError  # noqa: F401 - raised here, re-exported


@dataclasses.dataclass(frozen=True)
class Hierarchy:
    name: str
    fine_names: tuple[str, ...]
    coarse_names: tuple[str, ...]
    parent: tuple[int, ...]

    def __post_init__(self):
        object.__setattr__(self, "fine_names", tuple(self.fine_names))
        object.__setattr__(self, "coarse_names", tuple(self.coarse_names))
        object.__setattr__(self, "parent", tuple(int(p) for p in self.parent))
        _validate(self)

    @property
    def num_fine(self) -> int:
        return len(self.fine_names)

    @property
    def num_coarse(self) -> int:
        return len(self.coarse_names)

    def parent_array(self) -> np.ndarray:
        return np.asarray(self.parent, dtype=np.int32)

    def extended_parent(self) -> np.ndarray:
        """The coarse class of every label value: a fine label f < num_fine has parent[f];
        the label num_fine + c marks an image known only by its coarse class c (partial fine
        labels). The one table that turns any label into its coarse class."""
        return np.concatenate([self.parent_array(),
                               np.arange(self.num_coarse, dtype=np.int32)])

    def coarse_only_label(self, coarse: int) -> int:
        """The label of an image whose coarse class is known and fine class is not."""
        return self.num_fine + int(coarse)

    def fine_name_of(self, label: int) -> str:
        """The fine class name of a label, or '' for a coarse-only one."""
        return self.fine_names[label] if label < self.num_fine else ""

    def children(self, coarse: int) -> list[int]:
        return [f for f, p in enumerate(self.parent) if p == coarse]

    def source_to_fine(self, source_names: Sequence[str],
                       source: str = "the dataset") -> np.ndarray:
        """Dense fine id for each of a dataset's labels, -1 for labels outside this hierarchy.

        `source` names the dataset in the error (e.g. "--dataset=cifar10").
        """
        position = {n: i for i, n in enumerate(source_names)}
        missing = [n for n in self.fine_names if n not in position]
        _check_normalisation(self.name, missing, source_names, source)
        if missing:
            names = list(source_names)
            shown = ", ".join(f"'{n}'" for n in missing[:3]) + (" ..." if len(missing) > 3 else "")
            raise HierarchyError(
                f"hierarchy '{self.name}' names {len(missing)} class(es) that {source} does not "
                f"have ({shown}); fix the names to match its classes: "
                f"{', '.join(names[:12]) or '(none)'}{' ...' if len(names) > 12 else ''}")
        table = np.full(len(source_names), -1, dtype=np.int32)
        for fine, name in enumerate(self.fine_names):
            table[position[name]] = fine
        return table

    def describe(self) -> str:
        lines = [f"hierarchy '{self.name}': {self.num_fine} fine classes in "
                 f"{self.num_coarse} coarse classes"]
        for c, coarse in enumerate(self.coarse_names):
            kids = ", ".join(self.fine_names[f] for f in self.children(c))
            lines.append(f"  {coarse}: {kids}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"name": self.name, "fine_names": list(self.fine_names),
                "coarse_names": list(self.coarse_names), "parent": list(self.parent)}

    @classmethod
    def from_dict(cls, d: Mapping) -> "Hierarchy":
        return cls(d["name"], d["fine_names"], d["coarse_names"], d["parent"])


def _validate(h: Hierarchy) -> None:
    if not h.fine_names:
        raise HierarchyError(f"hierarchy '{h.name}' has no fine classes")
    if len(h.parent) != len(h.fine_names):
        raise HierarchyError(f"hierarchy '{h.name}': {len(h.fine_names)} fine classes but "
                             f"{len(h.parent)} parents; give exactly one parent per fine class")
    for kind, names in (("fine", h.fine_names), ("coarse", h.coarse_names)):
        seen = set()
        for n in names:
            if not isinstance(n, str) or not n.strip():
                raise HierarchyError(f"hierarchy '{h.name}' has an empty {kind} class name")
            if n in seen:
                raise HierarchyError(f"hierarchy '{h.name}' lists {kind} class '{n}' twice")
            seen.add(n)
    bad = [p for p in h.parent if not 0 <= p < len(h.coarse_names)]
    if bad:
        raise HierarchyError(f"hierarchy '{h.name}' has parent index {bad[0]} outside "
                             f"0..{len(h.coarse_names) - 1}")
    empty = [c for i, c in enumerate(h.coarse_names) if i not in set(h.parent)]
    if empty:
        raise HierarchyError(f"hierarchy '{h.name}': coarse class '{empty[0]}' has no fine "
                             "class; remove it or give it members")


def from_groups(name: str, groups: Sequence[tuple[str, Sequence[str]]],
                fine_order: Sequence[str] | None = None) -> Hierarchy:
    """Builds a hierarchy from (coarse, [fine, ...]) groups.

    Fine ids follow `fine_order` when given (a dataset's own label order, so subsets keep
    ascending source ids), else the order of the groups.
    """
    parent_of = {}
    for c, (_, fines) in enumerate(groups):
        for f in fines:
            if f in parent_of:
                raise HierarchyError(f"hierarchy '{name}' puts fine class '{f}' in two "
                                     "coarse classes")
            parent_of[f] = c
    fine = [f for f in fine_order if f in parent_of] if fine_order else list(parent_of)
    return Hierarchy(name, fine, [c for c, _ in groups], [parent_of[f] for f in fine])


# --------------------------------------------------------------------------- shapes table

# The embedded dataset's classes (lg_tf/data/embedded.py renders them), in its label order.
# Here rather than there so that the `shapes` hierarchies never import TFDS.
SHAPES_COARSE: tuple[str, ...] = ("round", "angular", "striped", "tiled")
SHAPES_FINE: tuple[str, ...] = (
    "disc", "ring", "crescent",                 # round
    "square", "triangle", "cross",              # angular
    "stripes", "waves", "zigzag",               # striped
    "checkerboard", "polka_dots", "bricks",     # tiled
)
SHAPES_PARENT: tuple[int, ...] = (0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3)


# --------------------------------------------------------------------------- CIFAR tables

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")

# CIFAR-100 fine classes in the dataset's label order (TFDS `label`).
CIFAR100_FINE = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle",
    "bottle", "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle",
    "caterpillar", "cattle", "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch",
    "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox",
    "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion",
    "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse", "mushroom",
    "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road",
    "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake",
    "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank",
    "telephone", "television", "tiger", "tractor", "train", "trout", "tulip", "turtle",
    "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm")

# The 20 superclasses in the dataset's `coarse_label` order, with their 5 members each.
CIFAR100_SUPERCLASSES = (
    ("aquatic_mammals", ("beaver", "dolphin", "otter", "seal", "whale")),
    ("fish", ("aquarium_fish", "flatfish", "ray", "shark", "trout")),
    ("flowers", ("orchid", "poppy", "rose", "sunflower", "tulip")),
    ("food_containers", ("bottle", "bowl", "can", "cup", "plate")),
    ("fruit_and_vegetables", ("apple", "mushroom", "orange", "pear", "sweet_pepper")),
    ("household_electrical_devices", ("clock", "keyboard", "lamp", "telephone", "television")),
    ("household_furniture", ("bed", "chair", "couch", "table", "wardrobe")),
    ("insects", ("bee", "beetle", "butterfly", "caterpillar", "cockroach")),
    ("large_carnivores", ("bear", "leopard", "lion", "tiger", "wolf")),
    ("large_man-made_outdoor_things", ("bridge", "castle", "house", "road", "skyscraper")),
    ("large_natural_outdoor_scenes", ("cloud", "forest", "mountain", "plain", "sea")),
    ("large_omnivores_and_herbivores", ("camel", "cattle", "chimpanzee", "elephant", "kangaroo")),
    ("medium_mammals", ("fox", "porcupine", "possum", "raccoon", "skunk")),
    ("non-insect_invertebrates", ("crab", "lobster", "snail", "spider", "worm")),
    ("people", ("baby", "boy", "girl", "man", "woman")),
    ("reptiles", ("crocodile", "dinosaur", "lizard", "snake", "turtle")),
    ("small_mammals", ("hamster", "mouse", "rabbit", "shrew", "squirrel")),
    ("trees", ("maple_tree", "oak_tree", "palm_tree", "pine_tree", "willow_tree")),
    ("vehicles_1", ("bicycle", "bus", "motorcycle", "pickup_truck", "train")),
    ("vehicles_2", ("lawn_mower", "rocket", "streetcar", "tank", "tractor")),
)

_CIFAR100_5 = ("aquatic_mammals", "large_carnivores", "large_omnivores_and_herbivores",
               "medium_mammals", "small_mammals")
_CIFAR100_10 = _CIFAR100_5 + ("fish", "insects", "non-insect_invertebrates", "people", "reptiles")
_CIFAR100_15 = _CIFAR100_10 + ("flowers", "fruit_and_vegetables", "trees", "vehicles_1",
                               "vehicles_2")

# ImageNet subsets (wnids; display names in IMAGENET_NAMES).
IMAGENET_DOG_CAT = (
    ("dog", ("n02085620", "n02085936", "n02086079", "n02086910", "n02088238")),
    ("cat", ("n02123045", "n02123159", "n02123394", "n02123597", "n02124075")),
)
IMAGENET_FRUIT_VEG = (
    ("fruit", ("n07745940", "n07747607", "n07749582", "n07753113", "n07753275", "n07753592",
               "n07754684", "n07760859")),
    ("vegetable", ("n07714571", "n07714990", "n07715103", "n07716358", "n07717556",
                   "n07718472", "n07718747", "n07720875", "n07734744")),
)
IMAGENET_NAMES = {
    "n02085620": "Chihuahua", "n02085936": "Maltese", "n02086079": "Pekinese",
    "n02086910": "papillon", "n02088238": "basset", "n02123045": "tabby",
    "n02123159": "tiger cat", "n02123394": "Persian", "n02123597": "Siamese",
    "n02124075": "Egyptian cat", "n07745940": "strawberry", "n07747607": "orange",
    "n07749582": "lemon", "n07753113": "fig", "n07753275": "pineapple", "n07753592": "banana",
    "n07754684": "jackfruit", "n07760859": "custard apple", "n07714571": "head cabbage",
    "n07714990": "broccoli", "n07715103": "cauliflower", "n07716358": "zucchini",
    "n07717556": "butternut squash", "n07718472": "cucumber", "n07718747": "artichoke",
    "n07720875": "bell pepper", "n07734744": "mushroom",
}

def cifar100_subset(name: str, coarse: Iterable[str]) -> Hierarchy:
    keep = set(coarse)
    groups = [g for g in CIFAR100_SUPERCLASSES if g[0] in keep]
    return from_groups(name, groups, fine_order=CIFAR100_FINE)


def from_digit_string(digits: str, name: str | None = None) -> Hierarchy:
    """CIFAR-10 split where the listed class indices form coarse class 0 (Table VI)."""
    digits = str(digits).strip()
    if not digits or not set(digits) <= set("0123456789"):
        raise HierarchyError(f"--coarse_zero='{digits}' must be CIFAR-10 class digits 0-9, "
                             "e.g. 0189 for plane, car, ship, truck")
    if len(set(digits)) != len(digits):
        raise HierarchyError(f"--coarse_zero='{digits}' repeats a digit; list each class once")
    if len(digits) >= 10:
        raise HierarchyError(f"--coarse_zero='{digits}' puts all 10 classes in coarse class 0; "
                             "leave at least one class for coarse class 1")
    zero = {int(d) for d in digits}
    parent = [0 if i in zero else 1 for i in range(10)]
    return Hierarchy(name or f"cifar10_{digits}", CIFAR10_CLASSES,
                     (f"group_{''.join(sorted(digits))}", "rest"), parent)


def _embedded() -> Hierarchy:
    return Hierarchy("shapes", SHAPES_FINE, SHAPES_COARSE, SHAPES_PARENT)


# Groupings of the 12 embedded shapes into 4 coarse classes of 3, fixed before any run
# (pipelines.groupings): from semantic (similar shapes share a parent: low ACR expected) to
# mixed (each parent unites dissimilar shapes, like Table VI's arbitrary CIFAR-10 groups).
# Fine class k is member j = k % 3 of semantic group g = k // 3.
#   shapes_half:    parent (g + 2j) mod 4  -> two siblings of one group + one stranger
#   shapes_mixed:   parent (g + j) mod 4   -> three shapes from three different groups
#   shapes_mixed_b: parent (g + 3j) mod 4  -> the same, other triples
#   shapes_random0..3: numpy.random.default_rng(seed).permutation(12) cut into 4 x 3
EMBEDDED_GROUPINGS = ("shapes", "shapes_half", "shapes_mixed", "shapes_mixed_b",
                      "shapes_random0", "shapes_random1", "shapes_random2", "shapes_random3")


def _embedded_grouping(name: str) -> Hierarchy:
    fine = SHAPES_FINE
    if name.startswith("shapes_random"):
        order = np.random.default_rng(int(name[-1])).permutation(len(fine))
        parent = np.empty(len(fine), int)
        parent[order] = np.arange(len(fine)) // 3
    else:
        step = {"shapes_half": 2, "shapes_mixed": 1, "shapes_mixed_b": 3}[name]
        parent = [(k // 3 + step * (k % 3)) % 4 for k in range(len(fine))]
    groups = [[fine[k] for k in range(len(fine)) if parent[k] == c] for c in range(4)]
    # Coarse names list their members, so a report says what each parent holds.
    return from_groups(name, [("+".join(g), g) for g in groups], fine_order=fine)


_NAMED = {
    "cifar10": lambda: Hierarchy("cifar10", CIFAR10_CLASSES, ("vehicle", "animal"),
                                 [0 if i in (0, 1, 8, 9) else 1 for i in range(10)]),
    "cifar100": lambda: from_groups("cifar100", CIFAR100_SUPERCLASSES, fine_order=CIFAR100_FINE),
    "cifar100_5": lambda: cifar100_subset("cifar100_5", _CIFAR100_5),
    "cifar100_animals": lambda: cifar100_subset("cifar100_animals", _CIFAR100_10),
    "cifar100_15": lambda: cifar100_subset("cifar100_15", _CIFAR100_15),
    "imagenet_dog_cat": lambda: from_groups("imagenet_dog_cat", IMAGENET_DOG_CAT),
    "imagenet_fruit_veg": lambda: from_groups("imagenet_fruit_veg", IMAGENET_FRUIT_VEG),
    "shapes": _embedded,
    **{n: (lambda n=n: _embedded_grouping(n)) for n in EMBEDDED_GROUPINGS[1:]},
}
NAMED_HIERARCHIES = tuple(_NAMED)


def named(name: str) -> Hierarchy:
    try:
        return _NAMED[name]()
    except KeyError:
        raise HierarchyError(f"unknown hierarchy '{name}'; choose one of: "
                             f"{', '.join(NAMED_HIERARCHIES)}") from None


def _check_normalisation(name: str, missing: Sequence[str], source_names: Sequence[str],
                         source: str) -> None:
    """Refuses names that differ from the dataset's only in Unicode normalisation (NFD
    'cafe\u0301' from a macOS file vs NFC 'caf\xe9' from a folder): they print alike, so
    the usual 'names classes ... does not have' sentence would show two identical names."""
    by_nfc = {unicodedata.normalize("NFC", n): n for n in source_names}
    pairs = [(n, by_nfc[unicodedata.normalize("NFC", n)]) for n in missing
             if unicodedata.normalize("NFC", n) in by_nfc]
    if not pairs:
        return
    ours, theirs = pairs[0]
    form = next((f for f in ("NFC", "NFD") if unicodedata.is_normalized(f, theirs)), "its")
    raise HierarchyError(
        f"hierarchy '{name}' spells {len(pairs)} class name(s) in another Unicode "
        f"normalisation than {source} does: {ascii(ours)} here, {ascii(theirs)} there (they "
        f"look the same, e.g. '{theirs}', but are different characters); write the names in "
        f"{form} form, as {source} does")


# --------------------------------------------------------------------------- user files

# Formats people reach for that are not JSON or CSV: refused by extension, with the fix.
_OTHER_FORMATS = {".yaml": "YAML", ".yml": "YAML", ".toml": "TOML", ".xml": "XML",
                  ".tsv": "tab-separated", ".xlsx": "Excel", ".xls": "Excel",
                  ".ods": "OpenDocument",
                  ".pkl": "pickle", ".pickle": "pickle", ".npy": "NumPy", ".npz": "NumPy",
                  ".parquet": "Parquet", ".py": "Python"}
_FORMATS_HINT = ("write JSON ({\"cat\": \"animal\", ...}, a .json file) or CSV (one "
                 "'cat,animal' row per fine class)")


def from_file(path: str) -> Hierarchy:
    """Reads fine -> coarse pairs from JSON ({"fine": "coarse", ...}) or CSV (fine,coarse rows).

    .json files are JSON; any other extension is CSV, unless the text starts with '{' or
    '[' (then it is read as JSON). YAML, TOML, XML, spreadsheets and binary files are
    refused with a message naming the two accepted formats.
    """
    if os.path.isdir(path):
        raise HierarchyError(f"hierarchy file '{path}' is a folder; pass a file of fine,coarse "
                             "pairs (JSON or CSV) instead")
    if not os.path.isfile(path):
        raise HierarchyError(f"hierarchy file '{path}' does not exist")
    name = os.path.splitext(os.path.basename(path))[0]
    ext = os.path.splitext(path)[1].lower()
    if ext in _OTHER_FORMATS:
        raise HierarchyError(f"hierarchy file '{path}' is {_OTHER_FORMATS[ext]}, which lg_tf "
                             f"does not read; {_FORMATS_HINT}")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise HierarchyError(f"cannot read hierarchy file '{path}' ({e.strerror}); check its "
                             "permissions") from None
    try:
        if b"\0" in raw:
            raise UnicodeDecodeError("utf-8", raw, 0, 1, "NUL byte")
        text = raw.decode("utf-8-sig")  # a byte-order mark (Excel's CSV) is not a class name
    except UnicodeDecodeError:
        raise HierarchyError(f"hierarchy file '{path}' is not a UTF-8 text file; "
                             f"{_FORMATS_HINT}") from None
    if not text.strip():
        why = ", which is not valid JSON" if ext == ".json" else " and lists no classes"
        raise HierarchyError(f"hierarchy file '{path}' is empty{why}; {_FORMATS_HINT}")
    as_json = ext == ".json" or text.lstrip()[:1] in ("{", "[")
    pairs = _pairs_from_json(path, text) if as_json else _pairs_from_csv(path, text)
    if not pairs:
        raise HierarchyError(f"hierarchy file '{path}' lists no classes; {_FORMATS_HINT}")
    parent_names: dict[str, str] = {}
    for line, (fine, coarse) in pairs:
        if not fine or not coarse:
            missing = "coarse" if fine else "fine"
            raise HierarchyError(f"hierarchy file '{path}', entry {line}: both a fine and a "
                                 f"coarse name are needed, but the {missing} name is empty; "
                                 "fill it in or delete the entry")
        if fine in parent_names:
            raise HierarchyError(f"hierarchy file '{path}' lists fine class '{fine}' twice "
                                 f"(entry {line}); each fine class needs exactly one parent")
        parent_names[fine] = coarse
    coarse_names = list(dict.fromkeys(parent_names.values()))
    return Hierarchy(name, list(parent_names), coarse_names,
                     [coarse_names.index(c) for c in parent_names.values()])


def _pairs_from_json(path: str, text: str) -> list[tuple[int, tuple[str, str]]]:
    try:
        items = json.loads(text, object_pairs_hook=list)
    except json.JSONDecodeError as e:
        raise HierarchyError(f"hierarchy file '{path}' is not valid JSON ({e.msg} at line "
                             f"{e.lineno}); write an object like {{\"cat\": \"animal\"}}") from None
    # object_pairs_hook turns every JSON object into a list of (key, value) tuples, so a
    # top-level object is a list of tuples and anything else (an array, a string) is not.
    if not isinstance(items, list) or not all(isinstance(p, tuple) for p in items):
        raise HierarchyError(f"hierarchy file '{path}' must hold one JSON object mapping each "
                             "fine class name to its coarse class name")
    pairs = []
    for i, (fine, coarse) in enumerate(items, 1):
        if not isinstance(coarse, str):
            raise HierarchyError(f"hierarchy file '{path}': the coarse class of '{fine}' must be "
                                 f"a string, not {type(coarse).__name__}")
        pairs.append((i, (fine.strip(), coarse.strip())))
    return pairs


def _pairs_from_csv(path: str, text: str) -> list[tuple[int, tuple[str, str]]]:
    rows = [(i, r) for i, r in enumerate(csv.reader(text.splitlines()), 1)
            if r and any(c.strip() for c in r) and not r[0].lstrip().startswith("#")]
    if rows and [c.strip().lower() for c in rows[0][1]] == ["fine", "coarse"]:
        rows = rows[1:]
    pairs = []
    for i, r in rows:
        if len(r) != 2:
            raise HierarchyError(f"hierarchy file '{path}', line {i}: expected 2 columns "
                                 f"'fine,coarse', found {len(r)} ({','.join(r)[:60]!r}); "
                                 "write one comma-separated fine,coarse pair per line")
        pairs.append((i, (r[0].strip(), r[1].strip())))
    return pairs


# --------------------------------------------------------------------------- folder trees

# What tf.io.decode_image reads.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")


def from_folder_tree(root: str, name: str | None = None) -> Hierarchy:
    """root/<coarse>/<fine>/<images>: coarse and fine classes are the sorted folder names.
    Images directly in root/<coarse>/ beside its fine folders are that coarse class's images
    without a fine label (partial fine labels; data/sources.coarse_only_images).

    A tree of class folders that all hold images directly (root/<class>/<images>, coarse
    labels only) is a hierarchy whose every coarse class has one fine class of the same
    name: a coarse classifier, and what `lg_tf.discover` finds fine classes in.
    """
    if not os.path.isdir(root):
        raise HierarchyError(f"image folder '{root}' does not exist; pass --data_dir pointing at "
                             "root/<coarse>/<fine>/<images>" if not os.path.exists(root)
                             else f"--data_dir='{root}' is a file, not an image folder; pass "
                             "the folder holding root/<coarse>/<fine>/<images>")
    classes = sorted(_subdirs(root))
    if classes and not any(_subdirs(os.path.join(root, c)) for c in classes):
        return from_groups(name or os.path.basename(os.path.normpath(root)),
                           [(c, [c]) for c in classes])
    groups = []
    for coarse in classes:
        fines = sorted(_subdirs(os.path.join(root, coarse)))
        if not fines:
            raise HierarchyError(
                f"folder '{os.path.join(root, coarse)}' has no fine-class subfolders while "
                "other coarse classes have them, so none of its images has a fine label; put "
                f"some of them in {os.path.join(root, coarse, '<fine>')}/ (the others may stay "
                f"in {os.path.join(root, coarse)}/ with their coarse label only), or for a flat "
                "root/<fine>/<images> tree pass --hierarchy_file")
        same = [f for f in fines if f in classes]
        if same:
            raise HierarchyError(
                f"fine-class folder '{os.path.join(root, coarse, same[0])}' has the name of a "
                f"coarse class ('{same[0]}'), so a label '{same[0]}' would mean two things; "
                "rename the fine folder")
        groups.append((coarse, fines))
    if not groups:
        raise HierarchyError(f"folder '{root}' has no class subfolders; the layout is "
                             "root/<coarse>/<fine>/<images>")
    return from_groups(name or os.path.basename(os.path.normpath(root)), groups)


def _subdirs(path: str) -> list[str]:
    return [d for d in os.listdir(path)
            if os.path.isdir(os.path.join(path, d)) and not d.startswith(".")]
