"""BLF read with bounded memory: log containers are inflated here, under limits, first.

A BLF file is a header and a sequence of objects; CAN frames sit inside "log containers",
each a zlib stream of (usually) 128 KiB. python-can's ``BLFReader`` inflates a container
whole, whatever its size, and keeps the bytes of an object that continues into the next
container, however large that object says it is: a 300 KB crafted file made it allocate
hundreds of megabytes (docs/reliability.md, "Log readers"). An object size of 0 even makes
it loop forever on one object.

:func:`bounded_blf` sits between the file and python-can. It walks the top-level objects
itself and hands python-can the same file with every container already inflated (stored
uncompressed): at most :attr:`BlfLimits.container_bytes` per container, checked against the
size the container declares; the objects inside are walked too, so none may declare more
than :attr:`BlfLimits.object_bytes` or less than its own header. A file that ends early
says where ("truncated at byte N"): inside an object, inside a deflate stream, or before the
size its header declares. Frames before the damage are kept; python-can still decodes them.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from typing import BinaryIO

SIGNATURE = b"LOGG"
OBJECT_SIGNATURE = b"LOBJ"
# signature, header size, 8 version bytes, file size, uncompressed size, object counts, times
FILE_HEADER = struct.Struct("<4sLBBBBBBBBQQLL8H8H")
# signature, header size, header version, object size, object type
OBJECT_HEADER = struct.Struct("<4sHHLL")
# compression method, uncompressed size
CONTAINER_HEADER = struct.Struct("<H6xL4x")
_OBJECT_SIZE = struct.Struct("<L")  # the object size, 8 bytes into an object header
LOG_CONTAINER = 10
NO_COMPRESSION = 0
ZLIB_DEFLATE = 2
SKIP_CHUNK = 1 << 16


class BlfDamaged(ValueError):
    """The BLF file ends early or holds sizes outside the limits; the message says where."""


@dataclass(frozen=True)
class BlfLimits:
    """What one BLF file may make the reader hold in memory."""

    # Inflated bytes of one log container; Vector's tools and python-can write 128 KiB.
    container_bytes: int = 4 * 1024 * 1024
    # One object inside the containers; CAN and CAN FD objects are under 200 bytes.
    object_bytes: int = 1024 * 1024
    # The file header; it is 144 bytes in the files we know.
    header_bytes: int = 64 * 1024


def bounded_blf(raw: BinaryIO, limits: BlfLimits | None = None) -> io.BufferedReader:
    """A binary file for ``can.BLFReader`` that serves ``raw`` with bounded memory.

    The file header is checked here (BlfDamaged if it is not a usable BLF header); damage
    further on raises BlfDamaged from the read in which python-can meets it.
    """
    return io.BufferedReader(_InflatedContainers(raw, limits or BlfLimits()), SKIP_CHUNK)


class _InflatedContainers(io.RawIOBase):
    """The BLF stream of ``raw`` with every log container inflated and stored uncompressed."""

    def __init__(self, raw: BinaryIO, limits: BlfLimits) -> None:
        super().__init__()
        self._raw = raw
        self._limits = limits
        self._offset = 0  # bytes consumed from raw
        self._pending = bytearray()
        self._error: BlfDamaged | None = None
        self._ended = False
        self._objects = _ObjectWalk(limits.object_bytes)
        head = self._take(FILE_HEADER.size, "the file header")  # empty: says so
        signature, header_size = FILE_HEADER.unpack_from(head)[:2]
        if signature != SIGNATURE:
            raise BlfDamaged("not a BLF file (no LOGG signature)")
        if not FILE_HEADER.size <= header_size <= limits.header_bytes:
            raise BlfDamaged(f"the file header declares {header_size} bytes (not a BLF header)")
        self._declared_size = int(FILE_HEADER.unpack_from(head)[10])
        self._pending += head + self._take(header_size - FILE_HEADER.size, "the file header")

    def readable(self) -> bool:
        """Always: this is a read-only stream."""
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        """Copy the next bytes of the inflated stream; raise the damage once they are used."""
        while not self._pending and not self._ended:
            if self._error is not None:
                error, self._error = self._error, None
                raise error
            self._next_object()
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        del self._pending[:size]
        return size

    def close(self) -> None:
        """Close the underlying file too."""
        self._raw.close()
        super().close()

    def _take(self, size: int, what: str) -> bytes:
        data = self._raw.read(size)
        self._offset += len(data)
        if self._offset == 0 and size:
            raise BlfDamaged("the file is empty")
        if len(data) < size:
            raise BlfDamaged(f"truncated at byte {self._offset} (in {what})")
        return data

    def _next_object(self) -> None:
        start = self._offset
        head = self._raw.read(OBJECT_HEADER.size)
        self._offset += len(head)
        if not head:
            self._end()
            return
        if len(head) < OBJECT_HEADER.size:
            raise BlfDamaged(f"truncated at byte {self._offset} (in the object at byte {start})")
        signature, _, _, size, kind = OBJECT_HEADER.unpack(head)
        if signature != OBJECT_SIGNATURE:
            raise BlfDamaged(f"no object starts at byte {start} (damaged or not BLF)")
        if size < OBJECT_HEADER.size + (CONTAINER_HEADER.size if kind == LOG_CONTAINER else 0):
            raise BlfDamaged(f"the object at byte {start} declares only {size} bytes")
        body_size = size - OBJECT_HEADER.size
        if kind != LOG_CONTAINER:  # python-can ignores top-level objects other than containers
            self._skip(body_size + size % 4, start)
            return
        if body_size > self._limits.container_bytes + SKIP_CHUNK:
            raise BlfDamaged(
                f"the container at byte {start} is {body_size} bytes "
                f"(limit {self._limits.container_bytes})"
            )
        body = self._raw.read(body_size)
        self._offset += len(body)
        if len(body) < body_size:
            # Keep the frames before the cut; python-can meets the cut when it asks for more.
            self._error = BlfDamaged(
                f"truncated at byte {self._offset} (the container at byte {start} ends early)"
            )
            if len(body) < CONTAINER_HEADER.size:
                return
        else:
            self._offset += len(self._raw.read(size % 4))  # padding; may be missing at the end
        inflated = self._inflate(body, start)
        self._objects.feed(inflated, start)
        self._pending += OBJECT_HEADER.pack(
            OBJECT_SIGNATURE,
            OBJECT_HEADER.size,
            1,
            OBJECT_HEADER.size + CONTAINER_HEADER.size + len(inflated),
            LOG_CONTAINER,
        )
        self._pending += CONTAINER_HEADER.pack(NO_COMPRESSION, len(inflated)) + inflated
        self._pending += bytes((OBJECT_HEADER.size + CONTAINER_HEADER.size + len(inflated)) % 4)

    def _inflate(self, body: bytes, start: int) -> bytes:
        method, declared = CONTAINER_HEADER.unpack_from(body)
        data = body[CONTAINER_HEADER.size :]
        limit = self._limits.container_bytes
        if method == NO_COMPRESSION:
            return data
        if method != ZLIB_DEFLATE:
            return b""  # python-can skips a container it cannot decompress
        if declared > limit:
            raise BlfDamaged(
                f"the container at byte {start} declares {declared} bytes inflated (limit {limit})"
            )
        inflater = zlib.decompressobj()
        try:
            inflated = inflater.decompress(data, declared + 1)
        except zlib.error as error:
            raise BlfDamaged(
                f"the container at byte {start} is not a zlib stream: {error}"
            ) from None
        if len(inflated) > declared:
            raise BlfDamaged(
                f"the container at byte {start} inflates to more than the {declared} bytes "
                "it declares"
            )
        if not inflater.eof and self._error is None:
            self._error = BlfDamaged(
                f"the container at byte {start} holds a deflate stream that ends early"
            )
        return inflated

    def _skip(self, size: int, start: int) -> None:
        while size > 0:
            chunk = self._raw.read(min(size, SKIP_CHUNK))
            self._offset += len(chunk)
            if not chunk:
                raise BlfDamaged(
                    f"truncated at byte {self._offset} (in the object at byte {start})"
                )
            size -= len(chunk)

    def _end(self) -> None:
        self._ended = True
        if self._declared_size > self._offset:
            raise BlfDamaged(
                f"truncated at byte {self._offset} (its header says {self._declared_size} bytes)"
            )
        self._objects.finish(self._offset)


class _ObjectWalk:
    """Follows the objects inside the containers the way python-can will, with size limits.

    python-can keeps the bytes of an object that continues into the next container; this
    walk refuses any object larger than ``object_bytes`` (or smaller than its header, which
    would make python-can loop), so what it keeps stays bounded.
    """

    def __init__(self, object_bytes: int) -> None:
        self.object_bytes = object_bytes
        self.tail = b""

    def feed(self, data: bytes, container: int) -> None:
        """Walk the objects completed by ``data`` (the container at byte ``container``)."""
        buffer = self.tail + data if self.tail else data
        end, find, size_at = len(buffer), buffer.find, _OBJECT_SIZE.unpack_from
        smallest, largest = OBJECT_HEADER.size, self.object_bytes
        position = 0
        while True:  # once per object: kept to the few operations python-can repeats anyway
            found = find(OBJECT_SIGNATURE, position, position + 8)
            if found < 0:
                if position + 8 > end:
                    break  # the next object starts in the next container
                raise BlfDamaged(
                    f"the container at byte {container} holds no object where one should start"
                )
            if found + smallest > end:
                position = found
                break
            size = size_at(buffer, found + 8)[0]
            if not smallest <= size <= largest:
                raise BlfDamaged(
                    f"an object in the container at byte {container} declares {size} bytes "
                    f"(limit {largest})"
                )
            if found + size > end:
                position = found
                break
            position = found + size
        self.tail = buffer[position:]

    def finish(self, end: int) -> None:
        """At the end of the file: an object still incomplete was cut off."""
        if self.tail.strip(b"\0"):
            raise BlfDamaged(f"truncated at byte {end} (the last object is incomplete)")
