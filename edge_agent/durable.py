"""Writes that survive power loss: atomic JSON replace and fsynced appends.

A file replaced with :func:`write_json_atomic` is either the old or the new content after a
crash, never a mix; the directory is fsynced so the rename itself is durable. A line appended
with :func:`append_line` is on disk when the call returns.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def fsync_dir(directory: Path) -> None:
    """Make renames and new entries in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically and durably (temp file, fsync, rename, fsync)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_json_atomic(path: Path, value: Any) -> None:
    """Replace ``path`` with ``value`` as indented JSON, atomically and durably."""
    text = json.dumps(value, indent=2, sort_keys=True, default=str) + "\n"
    write_bytes_atomic(path, text.encode())


def append_line(path: Path, line: str, *, fsync: bool = True) -> None:
    """Append one line (no newline inside); fsync before returning unless ``fsync`` is False."""
    if "\n" in line:
        raise ValueError("a log line cannot contain a newline")
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        # A torn previous line (power cut mid-write) must not swallow this one.
        size = os.fstat(fd).st_size
        prefix = b""
        if size:
            with path.open("rb") as reader:
                reader.seek(size - 1)
                if reader.read(1) != b"\n":
                    prefix = b"\n"
        os.write(fd, prefix + line.encode() + b"\n")
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    if new:
        fsync_dir(path.parent)


def read_json_lines(path: Path) -> list[dict[str, Any]]:
    """Every complete JSON object line of ``path``; torn or garbled lines are skipped."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return []
    records: list[dict[str, Any]] = []
    for line in raw.split(b"\n"):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            continue  # a torn line from a power cut, or damage: never fatal
        if isinstance(record, dict):
            records.append(record)
    return records
