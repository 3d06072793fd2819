"""Tests for lg_tf.hierarchy: named tables, digit strings, user files, folder trees, validation."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from lg_tf import hierarchy as H
from lg_tf.hierarchy import Hierarchy, HierarchyError

# CIFAR-100 fine label -> coarse label, as shipped with the dataset (the well-known
# `coarse_labels` array); an independent reference for lg_tf's superclass table.
CIFAR100_COARSE_OF_FINE = [
    4, 1, 14, 8, 0, 6, 7, 7, 18, 3, 3, 14, 9, 18, 7, 11, 3, 9, 7, 11, 6, 11, 5, 10, 7, 6, 13,
    15, 3, 15, 0, 11, 1, 10, 12, 14, 16, 9, 11, 5, 5, 19, 8, 8, 15, 13, 14, 17, 18, 10, 16, 4,
    17, 4, 2, 0, 17, 4, 18, 17, 10, 3, 2, 12, 12, 16, 12, 1, 9, 19, 2, 10, 0, 1, 16, 12, 9, 13,
    15, 13, 16, 19, 2, 4, 6, 19, 5, 5, 8, 19, 18, 1, 2, 15, 6, 0, 17, 8, 14, 13]

# name -> (num_coarse, num_fine, fine classes per coarse class)
EXPECTED_COUNTS = {
    "cifar10": (2, 10, [4, 6]),
    "cifar100": (20, 100, [5] * 20),
    "cifar100_5": (5, 25, [5] * 5),
    "cifar100_animals": (10, 50, [5] * 10),
    "cifar100_15": (15, 75, [5] * 15),
    "imagenet_dog_cat": (2, 10, [5, 5]),
    "imagenet_fruit_veg": (2, 17, [8, 9]),
    "shapes": (4, 12, [3, 3, 3, 3]),
    **{name: (4, 12, [3, 3, 3, 3]) for name in H.EMBEDDED_GROUPINGS[1:]},
}

CIFAR100_SUBSETS = ("cifar100_5", "cifar100_animals", "cifar100_15")


# --------------------------------------------------------------------------- named tables

def test_every_named_table_is_tested():
    assert set(H.NAMED_HIERARCHIES) == set(EXPECTED_COUNTS)


@pytest.mark.parametrize("name", sorted(EXPECTED_COUNTS))
def test_named_counts(name):
    h = H.named(name)
    num_coarse, num_fine, per_coarse = EXPECTED_COUNTS[name]
    assert h.name == name
    assert (h.num_coarse, h.num_fine) == (num_coarse, num_fine)
    assert len(h.parent) == num_fine
    assert np.bincount(h.parent_array(), minlength=num_coarse).tolist() == per_coarse
    assert [len(h.children(c)) for c in range(num_coarse)] == per_coarse
    assert h.parent_array().dtype == np.int32
    # Round trip through the dict form.
    assert Hierarchy.from_dict(h.to_dict()) == h
    assert json.loads(json.dumps(h.to_dict())) == h.to_dict()
    text = h.describe()
    assert f"{num_fine} fine classes in {num_coarse} coarse classes" in text
    assert all(c in text for c in h.coarse_names)


def test_cifar10_vehicles_vs_animals():
    h = H.named("cifar10")
    assert h.fine_names == H.CIFAR10_CLASSES
    assert h.coarse_names == ("vehicle", "animal")
    assert set(h.children(0)) == {0, 1, 8, 9}
    assert {h.fine_names[f] for f in h.children(0)} == {"airplane", "automobile", "ship", "truck"}
    assert set(h.children(1)) == {2, 3, 4, 5, 6, 7}


def test_cifar100_table_matches_dataset_coarse_labels():
    h = H.named("cifar100")
    assert h.fine_names == H.CIFAR100_FINE
    assert len(set(H.CIFAR100_FINE)) == 100
    # Fine names are in the dataset's (alphabetical) label order.
    assert list(H.CIFAR100_FINE) == sorted(H.CIFAR100_FINE)
    assert h.coarse_names == tuple(c for c, _ in H.CIFAR100_SUPERCLASSES)
    assert list(h.parent) == CIFAR100_COARSE_OF_FINE
    # The superclass names are in the dataset's alphabetical coarse_label order too.
    assert list(h.coarse_names) == sorted(h.coarse_names)


def test_imagenet_tables():
    dc = H.named("imagenet_dog_cat")
    assert dc.coarse_names == ("dog", "cat")
    fv = H.named("imagenet_fruit_veg")
    assert fv.coarse_names == ("fruit", "vegetable")
    assert len(fv.children(0)) == 8 and len(fv.children(1)) == 9
    for h in (dc, fv):
        assert all(w.startswith("n") and len(w) == 9 for w in h.fine_names)
        assert all(w in H.IMAGENET_NAMES for w in h.fine_names)
    assert H.IMAGENET_NAMES[fv.fine_names[fv.children(0)[0]]] == "strawberry"


def test_shapes_table_matches_embedded_dataset():
    from lg_tf.data import embedded
    h = H.named("shapes")
    assert h.fine_names == embedded.FINE_NAMES
    assert h.coarse_names == embedded.COARSE_NAMES
    assert h.parent == embedded.PARENT


def test_shapes_hierarchies_import_neither_tfds_nor_tensorflow():
    code = ("import sys; from lg_tf import hierarchy; "
            "[hierarchy.named(n) for n in hierarchy.EMBEDDED_GROUPINGS]; "
            "print(sorted(m for m in ('tensorflow', 'tensorflow_datasets') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("name", CIFAR100_SUBSETS)
def test_cifar100_subsets_keep_source_order_and_parents(name):
    full = H.named("cifar100")
    h = H.named(name)
    table = h.source_to_fine(H.CIFAR100_FINE)
    assert table.dtype == np.int32 and table.shape == (100,)
    kept = np.flatnonzero(table >= 0)
    # Dense ids 0..n-1 in ascending source order; every other class maps to -1.
    np.testing.assert_array_equal(table[kept], np.arange(h.num_fine))
    assert np.sum(table == -1) == 100 - h.num_fine
    assert [H.CIFAR100_FINE[s] for s in kept] == list(h.fine_names)
    # Each kept class keeps its CIFAR-100 superclass (by name).
    for fine, source in enumerate(kept):
        assert h.coarse_names[h.parent[fine]] == full.coarse_names[full.parent[source]]
    # Coarse classes keep the dataset's coarse order.
    order = [full.coarse_names.index(c) for c in h.coarse_names]
    assert order == sorted(order)


def test_subsets_are_nested():
    five, ten, fifteen = (set(H.named(n).fine_names) for n in CIFAR100_SUBSETS)
    assert five < ten < fifteen
    assert {H.CIFAR100_FINE[i] for i, c in enumerate(CIFAR100_COARSE_OF_FINE)
            if c in (0, 8, 11, 12, 16)} == five  # the five mammal superclasses


def test_source_to_fine_full_and_missing():
    h = H.named("cifar10")
    np.testing.assert_array_equal(h.source_to_fine(H.CIFAR10_CLASSES), np.arange(10))
    # Source order different from the hierarchy's: maps by name.
    reversed_names = tuple(reversed(H.CIFAR10_CLASSES))
    np.testing.assert_array_equal(h.source_to_fine(reversed_names), np.arange(10)[::-1])
    with pytest.raises(HierarchyError, match="does not have"):
        h.source_to_fine(H.CIFAR10_CLASSES[:9])


def test_unknown_named():
    with pytest.raises(HierarchyError, match="unknown hierarchy 'nope'.*cifar100_animals"):
        H.named("nope")


# --------------------------------------------------------------------------- digit strings

@pytest.mark.parametrize("digits,zero", [("01289", {0, 1, 2, 8, 9}), ("0189", {0, 1, 8, 9}),
                                         ("5", {5}), ("987654321", set(range(1, 10))),
                                         (" 34 ", {3, 4})])
def test_digit_string(digits, zero):
    h = H.from_digit_string(digits)
    assert h.fine_names == H.CIFAR10_CLASSES
    assert h.num_coarse == 2
    assert set(h.children(0)) == zero
    assert set(h.children(1)) == set(range(10)) - zero
    assert h.name == f"cifar10_{digits.strip()}"
    assert H.from_digit_string(digits, name="x").name == "x"


def test_digit_string_0189_equals_named_cifar10_split():
    assert H.from_digit_string("0189").parent == H.named("cifar10").parent


@pytest.mark.parametrize("digits,message", [
    ("0119", "repeats a digit"),
    ("012a", "must be CIFAR-10 class digits"),
    ("0,1", "must be CIFAR-10 class digits"),
    ("-1", "must be CIFAR-10 class digits"),
    ("", "must be CIFAR-10 class digits"),
    ("   ", "must be CIFAR-10 class digits"),
    ("0123456789", "all 10 classes"),
    ("9876543210", "all 10 classes"),
    # str.isdigit() is True for a superscript two, but it is not a CIFAR-10 class digit.
    ("\u00b2", "must be CIFAR-10 class digits"),
])
def test_digit_string_errors(digits, message):
    with pytest.raises(HierarchyError, match=message):
        H.from_digit_string(digits)


# --------------------------------------------------------------------------- files

def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("name", ["cifar10", "cifar100", "cifar100_animals", "shapes"])
def test_json_round_trip(tmp_path, name):
    h = H.named(name)
    mapping = {f: h.coarse_names[p] for f, p in zip(h.fine_names, h.parent)}
    path = _write(tmp_path, f"my_{name}.json", json.dumps(mapping, indent=1))
    got = H.from_file(path)
    assert got.name == f"my_{name}"
    assert got.fine_names == h.fine_names
    assert {f: got.coarse_names[p] for f, p in zip(got.fine_names, got.parent)} == mapping
    # Coarse classes are numbered by first appearance.
    assert got.coarse_names == tuple(dict.fromkeys(mapping.values()))
    if name in ("cifar10", "shapes"):
        assert (got.coarse_names, got.parent) == (h.coarse_names, h.parent)


@pytest.mark.parametrize("header", [True, False])
def test_csv_round_trip(tmp_path, header):
    h = H.named("cifar100")
    rows = [f"{f},{h.coarse_names[p]}" for f, p in zip(h.fine_names, h.parent)]
    text = ("fine,coarse\n" if header else "") + "\n".join(rows) + "\n"
    got = H.from_file(_write(tmp_path, "c100.csv", text))
    assert got.name == "c100"
    assert got.fine_names == h.fine_names
    assert [got.coarse_names[p] for p in got.parent] == [h.coarse_names[p] for p in h.parent]


def test_csv_whitespace_comments_blank_lines_and_header_case(tmp_path):
    text = ("# my hierarchy\n"
            " Fine , COARSE \n"
            "\n"
            "cat, animal\n"
            "  dog ,animal  \n"
            "# a comment\n"
            "car,vehicle\n"
            ",\n")
    got = H.from_file(_write(tmp_path, "h.txt", text))  # any non-.json extension is CSV
    assert got.fine_names == ("cat", "dog", "car")
    assert got.coarse_names == ("animal", "vehicle")
    assert got.parent == (0, 0, 1)


def test_json_strips_names(tmp_path):
    got = H.from_file(_write(tmp_path, "h.JSON", '{" cat ": "animal ", "car": "vehicle"}'))
    assert got.fine_names == ("cat", "car")
    assert got.coarse_names == ("animal", "vehicle")


@pytest.mark.parametrize("filename,text,message", [
    # fine class listed twice (JSON keeps duplicate keys; CSV rows)
    ("dup.json", '{"cat": "animal", "dog": "animal", "cat": "pet"}',
     "lists fine class 'cat' twice \\(entry 3\\)"),
    ("dup.csv", "cat,animal\ndog,animal\ncat,pet\n", "lists fine class 'cat' twice \\(entry 3\\)"),
    # empty names
    ("empty_fine.csv", "cat,animal\n,animal\n", "entry 2: both a fine and a coarse name"),
    ("empty_coarse.csv", "cat,animal\ndog,  \n", "entry 2: both a fine and a coarse name"),
    ("empty_fine.json", '{"cat": "animal", " ": "animal"}', "entry 2: both a fine and a coarse"),
    ("empty_coarse.json", '{"cat": ""}', "entry 1: both a fine and a coarse name"),
    # wrong column count
    ("three.csv", "cat,animal\ndog,animal,pet\n",
     "line 2: expected 2 columns 'fine,coarse', found 3"),
    ("one.csv", "fine,coarse\ncat\n", "line 2: expected 2 columns 'fine,coarse', found 1"),
    # invalid JSON
    ("bad.json", '{"cat": "animal",', "is not valid JSON"),
    ("trailing.json", '{"cat": "animal"} x', "is not valid JSON"),
    # non-string coarse
    ("int.json", '{"cat": 1}', "the coarse class of 'cat' must be a string, not int"),
    ("null.json", '{"cat": null}', "the coarse class of 'cat' must be a string, not NoneType"),
    ("nested.json", '{"cat": {"a": "b"}}', "the coarse class of 'cat' must be a string, not list"),
    # not an object
    ("list.json", '["cat", "animal"]', "must hold one JSON object"),
    ("str.json", '"cat"', "must hold one JSON object"),
    ("list_of_objects.json", '[{"cat": "animal"}]', "must hold one JSON object"),
    ("list_of_pairs.json", '[[1, "animal"]]', "must hold one JSON object"),
    # empty files
    ("empty.csv", "", "lists no classes"),
    ("header_only.csv", "fine,coarse\n", "lists no classes"),
    ("comments_only.csv", "# nothing\n\n", "lists no classes"),
    ("empty_object.json", "{}", "lists no classes"),
    ("empty.json", "", "is not valid JSON"),
])
def test_file_errors(tmp_path, filename, text, message):
    path = _write(tmp_path, filename, text)
    with pytest.raises(HierarchyError, match=message) as info:
        H.from_file(path)
    assert path in str(info.value)


def test_file_missing(tmp_path):
    path = str(tmp_path / "nope.json")
    with pytest.raises(HierarchyError, match=f"hierarchy file '{path}' does not exist"):
        H.from_file(path)
    with pytest.raises(HierarchyError, match="is a folder; pass a file"):
        H.from_file(str(tmp_path))  # a directory is not a file (review D14)


def test_file_single_coarse_class_is_valid(tmp_path):
    got = H.from_file(_write(tmp_path, "one.csv", "a,x\nb,x\n"))
    assert got.num_coarse == 1 and got.parent == (0, 0)


# --------------------------------------------------------------------------- folder trees

def _make_tree(root, groups, files_per_class=1):
    for coarse, fines in groups.items():
        for fine in fines:
            d = root / coarse / fine
            d.mkdir(parents=True)
            for i in range(files_per_class):
                (d / f"{i}.png").write_bytes(b"")
    return str(root)


def test_folder_tree(tmp_path):
    root = _make_tree(tmp_path / "zoo",
                      {"vehicle": ["truck", "car"], "animal": ["dog", "cat", "ape"]})
    (tmp_path / "zoo" / ".hidden").mkdir()
    (tmp_path / "zoo" / "animal" / ".cache").mkdir()
    (tmp_path / "zoo" / "README.txt").write_text("not a class")
    h = H.from_folder_tree(root)
    assert h.name == "zoo"
    # Sorted coarse names, then sorted fine names within each coarse class.
    assert h.coarse_names == ("animal", "vehicle")
    assert h.fine_names == ("ape", "cat", "dog", "car", "truck")
    assert h.parent == (0, 0, 0, 1, 1)
    assert H.from_folder_tree(root + os.sep).name == "zoo"


def test_folder_tree_empty_coarse_dir(tmp_path):
    root = _make_tree(tmp_path / "zoo", {"animal": ["dog", "cat"]})
    (tmp_path / "zoo" / "vehicle").mkdir()
    with pytest.raises(HierarchyError, match="has no fine-class subfolders") as info:
        H.from_folder_tree(root)
    assert os.path.join(root, "vehicle") in str(info.value)


def test_folder_tree_missing_root(tmp_path):
    root = str(tmp_path / "missing")
    with pytest.raises(HierarchyError, match=f"image folder '{root}' does not exist"):
        H.from_folder_tree(root)


def test_folder_tree_without_class_folders(tmp_path):
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "a.png").write_bytes(b"")
    with pytest.raises(HierarchyError, match="has no class subfolders"):
        H.from_folder_tree(str(tmp_path / "flat"))


def test_folder_tree_same_fine_name_under_two_coarse(tmp_path):
    root = _make_tree(tmp_path / "t", {"a": ["x", "y"], "b": ["x"]})
    with pytest.raises(HierarchyError, match="puts fine class 'x' in two coarse classes"):
        H.from_folder_tree(root)


# --------------------------------------------------------------------------- validation

def test_valid_hierarchy_normalises_types():
    h = Hierarchy("h", ["a", "b", "c"], ["x", "y"], np.array([0, 1, 1]))
    assert h.fine_names == ("a", "b", "c") and h.coarse_names == ("x", "y")
    assert h.parent == (0, 1, 1) and all(type(p) is int for p in h.parent)
    assert h.children(1) == [1, 2]
    hash(h)  # frozen and hashable


@pytest.mark.parametrize("fine,coarse,parent,message", [
    (["a", "b"], ["x", "y", "z"], [0, 2], "coarse class 'y' has no fine class"),
    (["a", "b"], ["x", "y"], [0, 0], "coarse class 'y' has no fine class"),
    (["a", "a"], ["x"], [0, 0], "lists fine class 'a' twice"),
    (["a", "b"], ["x", "x"], [0, 1], "lists coarse class 'x' twice"),
    (["a", "b"], ["x"], [0, 1], "parent index 1 outside 0..0"),
    (["a", "b"], ["x", "y"], [0, -1], "parent index -1 outside 0..1"),
    (["a", "b"], ["x", "y"], [0, 1, 1], "2 fine classes but 3 parents"),
    (["a", "b"], ["x", "y"], [0], "2 fine classes but 1 parents"),
    ([], ["x"], [], "has no fine classes"),
    (["a", ""], ["x"], [0, 0], "empty fine class name"),
    (["a", " "], ["x"], [0, 0], "empty fine class name"),
    (["a"], [""], [0], "empty coarse class name"),
    (["a", 3], ["x"], [0, 0], "fine class name"),
])
def test_hierarchy_validation_errors(fine, coarse, parent, message):
    with pytest.raises(HierarchyError, match=message):
        Hierarchy("bad", fine, coarse, parent)


def test_hierarchy_error_is_value_error():
    assert issubclass(HierarchyError, ValueError)
