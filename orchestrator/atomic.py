"""Atomic file writes: a temporary file in the same folder, then a rename, so a killed run never
leaves a torn file behind."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: the mode ``open()`` would give a new file (mkstemp makes them private, 0600)
FILE_MODE = 0o666 & ~_umask()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


@contextlib.contextmanager
def staging_folder(dest: Path) -> Iterator[Path]:
    """A temporary folder beside ``dest`` to write into; call :func:`move_into` once every file is
    written and checked. Whatever happens, the temporary folder is gone afterwards, so a failure
    leaves nothing half-written in ``dest``."""
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        from orchestrator.errors import UsageError

        raise UsageError(f"{dest} is a file, not a folder")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp"))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def move_into(src: Path, dest: Path) -> None:
    """Move the files of folder ``src`` into ``dest`` (each an atomic rename; files already in
    ``dest`` under other names stay)."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for f in sorted(Path(src).iterdir()):
        os.replace(f, dest / f.name)
