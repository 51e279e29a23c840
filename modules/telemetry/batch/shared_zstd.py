"""One zstd compression context per setting for the whole process, used under a lock.

A ``zstandard.ZstdCompressor`` is not thread-safe, and its context keeps a workspace sized
for the largest input it has compressed (0.2-0.5 MB for this agent's batches). Kept one per
thread, as before, every thread of asyncio's default executor that ever encoded a batch (up
to ``min(32, CPUs + 4)`` threads) held its own workspace, each in that thread's glibc arena:
the agent's slow RSS creep (docs/reliability.md, Run 6). Shared, there is one per setting.
Batches are encoded one at a time in practice, so the lock costs no waiting.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import zstandard


class SharedCompressor:
    """A zstd compressor built on first use by ``build`` and shared by every thread."""

    def __init__(self, build: Callable[[], zstandard.ZstdCompressor]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._compressor: zstandard.ZstdCompressor | None = None

    def compress(self, data: bytes) -> bytes:
        """One zstd frame of ``data``, from the one shared context."""
        with self._lock:
            if self._compressor is None:
                self._compressor = self._build()
            return self._compressor.compress(data)

    @property
    def contexts(self) -> int:
        """How many compression contexts this holds: 0 before first use, then 1."""
        return int(self._compressor is not None)

    def memory_size(self) -> int:
        """Bytes zstd reports for the context (its workspace), 0 before first use."""
        with self._lock:
            return 0 if self._compressor is None else self._compressor.memory_size()
