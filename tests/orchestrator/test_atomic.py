"""Atomic writes: the target holds the old or the new content, never a torn file or a leftover."""

from __future__ import annotations

import json
import os

import pytest

from orchestrator.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text


def test_atomic_write_text_creates_a_file(tmp_path):
    path = tmp_path / "trials.json"
    atomic_write_text(path, "héllo\n")
    assert path.read_text(encoding="utf-8") == "héllo\n"
    assert os.listdir(tmp_path) == ["trials.json"]


def test_atomic_write_text_replaces_the_content(tmp_path):
    path = tmp_path / "trials.json"
    path.write_text("a much longer old content that must not leave a tail\n")
    atomic_write_text(path, "new\n")
    assert path.read_text() == "new\n"
    assert os.listdir(tmp_path) == ["trials.json"]


def test_atomic_write_creates_missing_folders(tmp_path):
    path = tmp_path / "run" / "trial-0003" / "metrics.json"
    atomic_write_text(str(path), "{}")
    assert path.read_text() == "{}"


def test_atomic_write_json_writes_indented_json_with_a_newline(tmp_path):
    path = tmp_path / "pareto.json"
    atomic_write_json(path, {"b": 1, "a": [1.5, None], "path": tmp_path})
    text = path.read_text()
    assert text.endswith("}\n")
    assert json.loads(text) == {"b": 1, "a": [1.5, None], "path": str(tmp_path)}
    assert list(json.loads(text)) == ["b", "a", "path"]


def test_a_failed_rename_leaves_the_old_file_and_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "trials.json"
    path.write_text("old\n")

    def refuse(src, dst):
        assert os.path.dirname(src) == str(tmp_path)  # the temporary file lives next to the target
        assert open(src).read() == "new\n"
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="disk on fire"):
        atomic_write_text(path, "new\n")
    assert path.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["trials.json"]


def test_a_failure_while_writing_leaves_the_old_file_and_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "trials.json"
    path.write_bytes(b"old")

    def crash(fd):
        raise KeyboardInterrupt  # a user pressing Ctrl-C mid-write

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["trials.json"]


def test_a_failed_first_write_leaves_nothing(tmp_path, monkeypatch):
    path = tmp_path / "trials.json"

    def refuse(src, dst):
        raise OSError("read-only file system")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="read-only"):
        atomic_write_text(path, "new\n")
    assert os.listdir(tmp_path) == []


def test_written_files_get_the_mode_open_would_give_them(tmp_path):
    import os
    import stat

    mask = os.umask(0o022)
    os.umask(mask)
    atomic_write_text(tmp_path / "report.md", "x")
    assert stat.S_IMODE((tmp_path / "report.md").stat().st_mode) == 0o666 & ~mask
