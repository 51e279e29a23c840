"""Gzip-compressed logs read with a bound on what they may expand to.

python-can reads ``name.asc.gz`` and friends through ``gzip.open``, which streams: memory
stays small, but a few kilobytes can inflate to terabytes, and a replay or an estimate would
then run for hours on a file the user thought small. :func:`bounded_gzip` serves the
inflated bytes and stops with :class:`GzipDamaged` past :attr:`GzipLimits.inflated_bytes`,
and names the byte where a cut-off or corrupt stream ends, so callers can say so in one line.
"""

from __future__ import annotations

import io
import zlib
from dataclasses import dataclass
from typing import BinaryIO

GZIP_SIGNATURE = b"\x1f\x8b"
CHUNK = 1 << 16
GZIP_WBITS = 31  # zlib's setting for a gzip header and trailer


class GzipDamaged(ValueError):
    """The compressed log is cut off, corrupt or expands past the limit; the message says so."""


@dataclass(frozen=True)
class GzipLimits:
    """What one compressed log may expand to."""

    # A day of five busy buses in candump text is about 10 GiB; a bigger file is a bomb or
    # a mistake, and either way not something to replay without splitting it first.
    inflated_bytes: int = 16 * 1024**3


def bounded_gzip(raw: BinaryIO, limits: GzipLimits | None = None) -> io.BufferedReader:
    """The inflated content of the gzip file ``raw``, raising GzipDamaged instead of overrunning.

    Not a gzip stream at all raises GzipDamaged here, before the first byte is served.
    """
    head = raw.read(len(GZIP_SIGNATURE))
    if head != GZIP_SIGNATURE:
        raise GzipDamaged("not gzip-compressed (no 1f 8b signature)")
    raw.seek(0)
    return io.BufferedReader(_Inflated(raw, limits or GzipLimits()), CHUNK)


class _Inflated(io.RawIOBase):
    """``raw`` inflated member after member, counting bytes out.

    A zlib decompressor object rather than ``gzip.GzipFile``: it hands out what it has inflated
    before a cut, where GzipFile raises EOFError and drops the rest of its buffer.
    """

    def __init__(self, raw: BinaryIO, limits: GzipLimits) -> None:
        super().__init__()
        self._raw = raw
        self._limit = limits.inflated_bytes
        self._served = 0
        self._consumed = 0  # compressed bytes read from raw
        self._inflater = zlib.decompressobj(wbits=GZIP_WBITS)
        self._tail = b""  # compressed bytes read but not yet given to the inflater

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        room = min(len(buffer), self._limit - self._served + 1)
        chunk = b""
        while not chunk:
            if self._inflater.eof:  # end of a member: another may follow (as gzip allows)
                self._tail = self._inflater.unused_data + self._tail
                if not self._tail:
                    self._tail = self._raw.read(CHUNK)
                    self._consumed += len(self._tail)
                if not self._tail:
                    return 0
                self._inflater = zlib.decompressobj(wbits=GZIP_WBITS)
            if not self._tail:
                self._tail = self._raw.read(CHUNK)
                self._consumed += len(self._tail)
                if not self._tail:
                    raise GzipDamaged(
                        f"gzip stream truncated at byte {self._consumed} "
                        f"(after {self._served} inflated bytes)"
                    )
            try:
                chunk = self._inflater.decompress(self._tail, room)
            except zlib.error as error:
                raise GzipDamaged(
                    f"corrupt gzip stream before byte {self._consumed}: {error}"
                ) from None
            self._tail = self._inflater.unconsumed_tail
        self._served += len(chunk)
        if self._served > self._limit:
            raise GzipDamaged(
                f"gzip stream expands past {self._limit} bytes (limit); split the log"
            )
        buffer[: len(chunk)] = chunk
        return len(chunk)

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()
