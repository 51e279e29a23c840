"""The signed file list of a bundle's payload, and what the installer does with it in a slot.

``edge-agent ota bundle build`` (any :func:`~edge_agent.ota.bundle.pack_bundle`) lists every
payload file with its size and sha256 in ``manifest.json``; the bundle, manifest included, is
what the TUF targets metadata signs. After installing a slot the installer checks the slot
against that list, writes it as ``.files.sha256`` in ``sha256sum -c`` form for the launch
guard (``systemd/edge-agent-launch-guard`` checks a trial slot before it starts), and flushes
every file and directory to disk before the ``.complete`` marker: after a power cut a slot is
either not complete, or complete with every byte.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from edge_agent.durable import fsync_dir, write_bytes_atomic

CHECK_LIST = ".files.sha256"
CHUNK = 1 << 20


class SlotFile(BaseModel):
    """One payload file as signed: its path inside the slot, size and sha256."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(min_length=1, max_length=4096)
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")

    @field_validator("path")
    @classmethod
    def _inside_the_slot(cls, path: str) -> str:
        # sha256sum escapes names with a newline or backslash; such a list would not check.
        if any(char in path for char in "\n\r\\"):
            raise ValueError("contains a newline or backslash")
        if any(segment in ("", ".", "..") for segment in path.split("/")):
            raise ValueError("is not a plain relative path inside the slot")
        return path


def sha256_of(path: Path) -> str:
    """The sha256 of the file at ``path``, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def list_payload(payload_dir: Path) -> list[SlotFile]:
    """Every regular file under ``payload_dir`` (sorted), as it will be signed.

    Raises ValueError for a symbolic link or a name the list cannot carry.
    """
    files: list[SlotFile] = []
    for path in sorted(payload_dir.rglob("*")):
        relative = path.relative_to(payload_dir).as_posix()
        if path.is_symlink():
            raise ValueError(f"payload contains a symbolic link: {relative}")
        if path.is_file():
            files.append(SlotFile(path=relative, size=path.stat().st_size, sha256=sha256_of(path)))
    return files


def differences(slot_dir: Path, files: list[SlotFile]) -> list[str]:
    """One ``path: why`` line per listed file that is missing or differs in ``slot_dir``."""
    found: list[str] = []
    for entry in files:
        path = slot_dir / entry.path
        try:
            size = path.lstat().st_size if path.is_file() and not path.is_symlink() else None
        except OSError:
            size = None
        if size is None:
            found.append(f"{entry.path}: missing")
        elif size != entry.size:
            found.append(f"{entry.path}: {size} bytes, signed {entry.size}")
        elif sha256_of(path) != entry.sha256:
            found.append(f"{entry.path}: content differs")
    return found


def write_check_list(slot_dir: Path, files: list[SlotFile]) -> None:
    """Write ``files`` as ``slot_dir/.files.sha256`` (``sha256sum -c`` form), durably."""
    text = "".join(f"{entry.sha256}  {entry.path}\n" for entry in files)
    write_bytes_atomic(slot_dir / CHECK_LIST, text.encode())


def sync_tree(directory: Path) -> None:
    """Flush (fsync) every regular file and directory under ``directory``, and it, last.

    A directory is flushed after its children (deepest first), so the entries that name them
    are durable too. Symbolic links are not followed (their entry is flushed with their directory).
    """
    with os.scandir(directory) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                sync_tree(Path(entry.path))
            elif entry.is_file(follow_symlinks=False):
                fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
    fsync_dir(directory)
