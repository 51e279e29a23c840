"""Safe extraction of bundle archives into a slot.

Only regular files and directories are accepted. An archive with an absolute path, a ``..``
component, a symbolic or hard link, a device node or FIFO, too many members or too many
bytes is refused as a whole before anything is written; files are created with
``O_EXCL | O_NOFOLLOW`` and without set-id bits.
"""

from __future__ import annotations

import os
import stat
import tarfile
from pathlib import Path, PurePosixPath

from edge_agent.ota.errors import Code, OtaError

MAX_MEMBERS = 20_000
PAYLOAD = "payload"
MANIFEST_NAME = "manifest.json"
# The manifest lists every payload file (about 130 bytes each, at most MAX_MEMBERS of them).
MANIFEST_MAX_BYTES = 4 * 1024 * 1024


# A slot path is STATE_DIR/ota/slots/X/ plus the member's name; keep well inside PATH_MAX.
MAX_MEMBER_PATH = 1024


def _unsafe(reason: str, name: str) -> OtaError:
    return OtaError(Code.UNSAFE_ARCHIVE, f"unsafe archive member {name!r}: {reason}")


def _check_member(member: tarfile.TarInfo) -> PurePosixPath:
    name = member.name
    if name.startswith("/") or PurePosixPath(name).is_absolute():
        raise _unsafe("absolute path", name)
    parts = PurePosixPath(name).parts
    if not parts or ".." in parts:
        raise _unsafe("path leaves the slot ('..')", name)
    # Linux refuses paths past PATH_MAX (4096) and names past NAME_MAX (255) with an OSError
    # half-way through extraction; refuse them here, before anything is written.
    if len(name.encode()) > MAX_MEMBER_PATH or any(len(part.encode()) > 255 for part in parts):
        raise _unsafe(f"path longer than {MAX_MEMBER_PATH} bytes or a name over 255", name[:80])
    if member.issym() or member.islnk():
        raise _unsafe(f"link to {member.linkname!r}", name)
    if member.ischr() or member.isblk():
        raise _unsafe("device node", name)
    if member.isfifo():
        raise _unsafe("FIFO", name)
    if not (member.isfile() or member.isdir()):
        raise _unsafe(f"unsupported member type {member.type!r}", name)
    return PurePosixPath(*[part for part in parts if part != "."])


def scan(archive: Path, max_bytes: int) -> list[tarfile.TarInfo]:
    """Check every member of ``archive``; return them, or raise OtaError(UNSAFE_ARCHIVE)."""
    total = 0
    members: list[tarfile.TarInfo] = []
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                _check_member(member)
                total += max(member.size, 0)
                members.append(member)
                if len(members) > MAX_MEMBERS:
                    raise _unsafe(f"more than {MAX_MEMBERS} members", member.name)
                if total > max_bytes:
                    raise _unsafe(f"unpacks to more than {max_bytes} bytes", member.name)
    except (tarfile.TarError, EOFError, OSError) as error:
        raise OtaError(Code.BAD_BUNDLE, f"bundle is not a readable tar archive: {error}") from None
    return members


def read_member(archive: Path, name: str, max_bytes: int = MANIFEST_MAX_BYTES) -> bytes | None:
    """The content of the regular file ``name`` in ``archive`` (bounded), or None if absent."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                # Only the name is compared here; ``scan`` judges every member before install.
                if PurePosixPath(member.name) == PurePosixPath(name) and member.isfile():
                    if member.size > max_bytes:
                        raise OtaError(Code.BAD_BUNDLE, f"{name} is larger than {max_bytes} bytes")
                    handle = tar.extractfile(member)
                    return handle.read(max_bytes + 1) if handle else None
    except (tarfile.TarError, EOFError, OSError) as error:
        raise OtaError(Code.BAD_BUNDLE, f"bundle is not a readable tar archive: {error}") from None
    return None


def extract_payload(archive: Path, destination: Path, max_bytes: int) -> int:
    """Extract ``manifest.json`` and the ``payload/`` tree of ``archive`` into ``destination``.

    ``payload/x`` lands at ``destination/x``. Returns the number of files written. The whole
    archive is checked first (:func:`scan`); nothing is written if any member is unsafe.
    """
    scan(archive, max_bytes)
    written = 0
    root = destination.resolve()
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                relative = _check_member(member)
                if relative == PurePosixPath(MANIFEST_NAME):
                    inside = PurePosixPath(MANIFEST_NAME)
                elif relative.parts[0] == PAYLOAD and len(relative.parts) > 1:
                    inside = PurePosixPath(*relative.parts[1:])
                elif relative == PurePosixPath(PAYLOAD):
                    continue
                else:
                    raise OtaError(
                        Code.BAD_BUNDLE,
                        f"bundle member {member.name!r} is outside payload/ and not the manifest",
                    )
                target = root.joinpath(*inside.parts)
                # Belt and braces: the checks above already exclude any escape.
                if root not in target.parents:
                    raise _unsafe("path leaves the slot", member.name)
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                _ensure_real_dirs(root, target.parent)
                source = tar.extractfile(member)
                if source is None:
                    raise OtaError(Code.BAD_BUNDLE, f"cannot read {member.name!r}")
                mode = stat.S_IMODE(member.mode) & 0o755 or 0o644
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                fd = os.open(target, flags, mode)
                with os.fdopen(fd, "wb") as out:
                    while chunk := source.read(1 << 16):
                        out.write(chunk)
                    out.flush()
                    os.fsync(out.fileno())
                written += 1
    except (tarfile.TarError, EOFError) as error:
        raise OtaError(Code.BAD_BUNDLE, f"bundle is not a readable tar archive: {error}") from None
    except FileExistsError as error:
        raise OtaError(Code.BAD_BUNDLE, f"bundle has a duplicate member: {error}") from None
    return written


def _ensure_real_dirs(root: Path, directory: Path) -> None:
    """Create ``directory`` under ``root``; refuse if any part of it is a symlink."""
    current = root
    for part in directory.relative_to(root).parts:
        current = current / part
        if current.is_symlink():
            raise _unsafe("path goes through a symbolic link", str(current))
        current.mkdir(exist_ok=True)
