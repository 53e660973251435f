"""PresetStore: atomic writes, names never paths, unreadable files ignored."""

from __future__ import annotations

import json
import os

import pytest

from aedaemon.errors import ParameterError
from aedaemon.files import atomic_write
from aedaemon.presets import PresetStore


def test_save_load_list_delete(tmp_path):
    s = PresetStore(tmp_path)
    s.save("a_1", {"latent": [0.1, 0.2], "gain": 0.5})
    s.save("b-2", {"latent": [0.3, 0.4]})
    assert s.list() == ["a_1", "b-2"]
    assert s.load("a_1") == {"latent": [0.1, 0.2], "gain": 0.5}
    s.save("a_1", {"latent": [0.9, 0.9]})  # overwrite
    assert s.load("a_1")["latent"] == [0.9, 0.9]
    s.delete("a_1")
    assert s.list() == ["b-2"]
    with pytest.raises(ParameterError, match="no preset"):
        s.load("a_1")
    with pytest.raises(ParameterError, match="no preset"):
        s.delete("a_1")


@pytest.mark.parametrize("name", ["../x", "a/b", "", "x" * 65, ".hidden", "a b", "é"])
def test_names_never_paths(tmp_path, name):
    s = PresetStore(tmp_path)
    with pytest.raises(ParameterError):
        s.save(name, {})
    assert list(tmp_path.rglob("*.json")) == []


def test_atomic_write_leaves_old_or_new(tmp_path):
    p = tmp_path / "f.json"
    atomic_write(p, b"old")
    atomic_write(p, b"new")
    assert p.read_bytes() == b"new"
    assert [q.name for q in tmp_path.iterdir()] == ["f.json"]  # no temp files left


def test_stale_temp_files_are_removed_and_corrupt_files_ignored(tmp_path):
    (tmp_path / "presets").mkdir()
    (tmp_path / "presets" / ".p.json.abc.tmp").write_text("{half")
    (tmp_path / "presets" / "bad.json").write_text("{half")
    (tmp_path / "last_state.json").write_text("[]")
    s = PresetStore(tmp_path)
    assert not list((tmp_path / "presets").glob(".*.tmp"))
    with pytest.raises(ParameterError, match="unreadable"):
        s.load("bad")
    assert s.load_last() is None


def test_last_state_written_only_when_changed(tmp_path):
    s = PresetStore(tmp_path)
    assert s.save_last({"gain": 1.0}) is True
    mtime = os.stat(s.last_path).st_mtime_ns
    assert s.save_last({"gain": 1.0}) is False
    assert os.stat(s.last_path).st_mtime_ns == mtime
    assert s.save_last({"gain": 0.5}) is True
    assert json.loads(s.last_path.read_text())["state"] == {"gain": 0.5}
    s2 = PresetStore(tmp_path)
    assert s2.load_last() == {"gain": 0.5}
    assert s2.save_last({"gain": 0.5}) is False
