"""Disk headroom for events: a pre-allocated file the spool deletes when the disk is full."""

from __future__ import annotations

import errno
import os
from pathlib import Path


class DiskReserve:
    """A file of ``size`` allocated bytes next to the spool.

    When a write fails for lack of space, deleting it gives events that much room. It is
    allocated again once the file system has at least twice its size free.
    """

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        self.size = size

    @property
    def present(self) -> bool:
        """Whether the reserve is currently held."""
        return self.size <= 0 or self.path.exists()

    def free_bytes(self) -> int:
        """Bytes available to this process on the spool's file system."""
        status = os.statvfs(self.path.parent)
        return status.f_bavail * status.f_frsize

    def ensure(self) -> bool:
        """Allocate the reserve if it is missing and space allows; return whether it is held."""
        if self.present:
            return True
        if self.free_bytes() < 2 * self.size:
            return False
        try:
            descriptor = os.open(self.path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        except OSError:
            return False
        try:
            os.posix_fallocate(descriptor, 0, self.size)
            os.fsync(descriptor)
        except OSError as error:
            os.close(descriptor)
            self.path.unlink(missing_ok=True)
            if error.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EOPNOTSUPP, errno.EINVAL):
                raise
            return False
        os.close(descriptor)
        return True

    def release(self) -> bool:
        """Delete the reserve to make room; True if there was one to give up."""
        if self.size <= 0 or not self.path.exists():
            return False
        self.path.unlink(missing_ok=True)
        return True


class DiskGuard:
    """The spool's disk-full state: a shrunk cap while the disk is full, and the reserve.

    On the first SQLITE_FULL the spool's effective cap drops a little below what it held, so
    appends make room by degrading lower priorities (freeing pages inside the file). The
    state ends, and the reserve is taken back, once the file system has room for twice the
    reserve again.
    """

    def __init__(self, reserve: DiskReserve, record_overhead: int) -> None:
        self.reserve = reserve
        self.full = False
        self.cap: int | None = None
        self._record_overhead = record_overhead

    def filled_up(self, held_bytes: int) -> bool:
        """Enter the disk-full state; True if it is new."""
        if self.full:
            return False
        self.full = True
        self.cap = held_bytes - max(held_bytes // 10, self._record_overhead)
        return True

    def check(self) -> bool:
        """Leave the disk-full state if space has returned; True if it just did."""
        if not self.full and self.reserve.present:
            return False
        if self.reserve.free_bytes() < 2 * self.reserve.size + 64 * 1024:
            return False
        was_full = self.full
        self.full = False
        self.cap = None
        self.reserve.ensure()
        return was_full
