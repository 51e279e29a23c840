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
