"""msgpack encoding with a buffer sized to what is packed, not msgpack's fixed 256 KiB.

``msgpack.packb`` builds a ``Packer``, whose C buffer starts at ``buf_size`` bytes, 256 KiB
by default, and grows by doubling when an object needs more. The batch encoder packs every
column while sizing it and every envelope, on asyncio's executor threads: a heaptrack
profile of the soak agent (docs/reliability.md, Run 7) counted 2.4 such 256 KiB buffers a
second, 58 % of all bytes those threads asked glibc for, each taken from and given back to
that thread's malloc arena. Starting at :data:`START_BYTES` keeps a small object inside
Python's own small-object allocator and a large one at about twice its size. (It did not
measurably change the agent's slow RSS creep; Run 7 says what that is.)
"""

from __future__ import annotations

from typing import Any

import msgpack

START_BYTES = 512
"""The packer's first buffer: Python's small-object allocator serves up to 512 bytes."""


def packb(value: Any) -> bytes:
    """``value`` as msgpack (binary type on), as ``msgpack.packb`` writes it."""
    packed: bytes = msgpack.Packer(use_bin_type=True, buf_size=START_BYTES).pack(value)
    return packed
