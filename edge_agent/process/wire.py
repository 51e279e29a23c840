"""Framing between the agent and a module's child process: length-prefixed pickles.

Both ends are this project's own code in the same installation, so pickle is acceptable here;
the frame size is capped so a confused peer cannot make the other allocate without bound.
"""

from __future__ import annotations

import asyncio
import pickle
import struct
from typing import Any

MAX_FRAME_BYTES = 16 * 1024 * 1024
_HEADER = struct.Struct(">I")


class WireError(Exception):
    """The peer sent something that is not a frame of this protocol."""


def encode_frame(kind: str, **fields: Any) -> bytes:
    """Serialise one frame ``{"t": kind, **fields}`` with its length prefix."""
    body = pickle.dumps({"t": kind, **fields}, protocol=pickle.HIGHEST_PROTOCOL)
    if len(body) > MAX_FRAME_BYTES:
        raise WireError(f"frame of {len(body)} bytes exceeds {MAX_FRAME_BYTES}")
    return _HEADER.pack(len(body)) + body


async def read_frame(reader: asyncio.StreamReader) -> dict[str, Any] | None:
    """Read the next frame; None at a clean end of stream."""
    try:
        header = await reader.readexactly(_HEADER.size)
    except asyncio.IncompleteReadError as error:
        if error.partial:
            raise WireError("stream ended inside a frame header") from None
        return None
    (length,) = _HEADER.unpack(header)
    if length > MAX_FRAME_BYTES:
        raise WireError(f"peer announced a {length}-byte frame (limit {MAX_FRAME_BYTES})")
    try:
        body = await reader.readexactly(length)
    except asyncio.IncompleteReadError:
        raise WireError("stream ended inside a frame") from None
    frame = pickle.loads(body)  # noqa: S301 - our own child process, see module docstring
    if not isinstance(frame, dict) or not isinstance(frame.get("t"), str):
        raise WireError("frame is not a dict with a 't' kind")
    return frame
