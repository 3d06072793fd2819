"""lg_tf.files, the one file API: atomic writes of text and bytes, reads, copies and removal
of empty folders (local paths; remote ones take the same calls through tf.io.gfile)."""

import io
import os

import numpy as np
import pytest

from lg_tf import files


def test_atomic_writes_of_text_and_bytes_leave_no_temp_file(tmp_path):
    text, blob = tmp_path / "a.json", tmp_path / "f.npz"
    files.write_json_atomic(str(text), {"x": np.float32(1.5)})
    assert files.read_json(str(text)) == {"x": 1.5}
    buffer = io.BytesIO()
    np.savez(buffer, train=np.arange(3))
    files.write_text_atomic(str(blob), buffer.getvalue())
    with np.load(io.BytesIO(files.read_bytes(str(blob)))) as loaded:
        assert loaded["train"].tolist() == [0, 1, 2]
    assert sorted(os.listdir(tmp_path)) == ["a.json", "f.npz"]


def test_copy_replaces_and_rmdir_removes_only_an_empty_folder(tmp_path):
    (tmp_path / "src").write_text("new")
    (tmp_path / "dst").write_text("old")
    files.copy(str(tmp_path / "src"), str(tmp_path / "dst"))
    assert (tmp_path / "dst").read_text() == "new"
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep").write_text("mine")
    with pytest.raises(OSError):
        files.rmdir(str(full))
    assert (full / "keep").read_text() == "mine"
    (tmp_path / "empty").mkdir()
    files.rmdir(str(tmp_path / "empty"))
    assert not (tmp_path / "empty").exists()


def test_read_json_is_none_for_missing_damaged_or_non_object_files(tmp_path):
    (tmp_path / "cut.json").write_text('{"a": ')
    (tmp_path / "list.json").write_text("[1, 2]")
    for name in ("missing.json", "cut.json", "list.json"):
        assert files.read_json(str(tmp_path / name)) is None
