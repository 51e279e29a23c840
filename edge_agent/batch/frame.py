"""The outer layer of a batch: a 10-byte header, then exactly one zstd frame.

``EABT`` magic, format version, codec, declared decompressed length (docs/batch-format.md,
"Byte layout"). The decoder checks all of it, and the zstd frame's own header, before it
decompresses a single byte, and decompresses into a buffer bounded by the declared length.
"""

from __future__ import annotations

import struct
import threading

import zstandard

from edge_agent.batch.errors import (
    CorruptBatch,
    NotABatch,
    OversizedBatch,
    TruncatedBatch,
    UnsupportedBatchVersion,
)
from edge_agent.batch.model import FORMAT_VERSION, SUPPORTED_VERSIONS

MAGIC = b"EABT"
CODEC_ZSTD = 1
HEADER = struct.Struct(">4sBBI")
MAX_DECOMPRESSED = 16 * 1024 * 1024
# zstd's worst case on incompressible input: 3 bytes per 128 KiB block, header and checksum.
_FRAME_OVERHEAD = 64 + 3 * (MAX_DECOMPRESSED // (128 * 1024) + 1)
MAX_BATCH_BYTES = HEADER.size + MAX_DECOMPRESSED + _FRAME_OVERHEAD
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_local = threading.local()


def _compressor(level: int) -> zstandard.ZstdCompressor:
    # A compressor is not thread-safe but is costly to build: keep one per thread and level.
    cache: dict[int, zstandard.ZstdCompressor] = _local.__dict__.setdefault("compressors", {})
    if level not in cache:
        cache[level] = zstandard.ZstdCompressor(
            level=level, write_checksum=True, write_content_size=True
        )
    return cache[level]


def seal(payload: bytes, level: int = 3, version: int = FORMAT_VERSION) -> bytes:
    """Header plus one zstd frame (content size and checksum included) around ``payload``."""
    if len(payload) > MAX_DECOMPRESSED:
        raise ValueError(
            f"batch payload is {len(payload)} bytes, over the {MAX_DECOMPRESSED}-byte limit: "
            "cut smaller batches"
        )
    header = HEADER.pack(MAGIC, version, CODEC_ZSTD, len(payload))
    return header + _compressor(level).compress(payload)


def unseal(data: bytes | bytearray | memoryview, max_decompressed: int = MAX_DECOMPRESSED) -> bytes:
    """Check the header and the zstd frame, then return the decompressed payload.

    Raises a ``BatchFormatError`` subclass for anything but a well-formed batch.
    """
    view = memoryview(data).cast("B")
    if len(view) < HEADER.size:
        if MAGIC.startswith(bytes(view[:4])):
            raise TruncatedBatch(f"batch: {len(view)} bytes, shorter than the 10-byte header")
        raise NotABatch("batch: does not start with the EABT magic")
    magic, version, codec, size = HEADER.unpack_from(view)
    if magic != MAGIC:
        raise NotABatch(f"batch: starts with {magic!r}, not the EABT magic")
    if version not in SUPPORTED_VERSIONS:
        readable = " and ".join(str(v) for v in SUPPORTED_VERSIONS)
        raise UnsupportedBatchVersion(
            f"batch: format version {version}, this decoder reads versions {readable}"
        )
    if codec != CODEC_ZSTD:
        raise UnsupportedBatchVersion(f"batch: unknown codec {codec} (1 is zstd)")
    if size > max_decompressed:
        raise OversizedBatch(
            f"batch: declares {size} decompressed bytes, over the {max_decompressed}-byte limit"
        )
    if len(view) > HEADER.size + max_decompressed + _FRAME_OVERHEAD:
        raise OversizedBatch(f"batch: {len(view)} bytes, over the size limit")
    return _decompress(view[HEADER.size :], size, max_decompressed)


def _decompress(frame: memoryview, size: int, max_decompressed: int) -> bytes:
    if len(frame) < 4 and _ZSTD_MAGIC.startswith(bytes(frame)):
        raise TruncatedBatch("batch: ends inside the zstd frame header")
    if bytes(frame[:4]) != _ZSTD_MAGIC:
        raise CorruptBatch("batch: no zstd frame after the header")
    try:
        params = zstandard.get_frame_parameters(frame)
    except zstandard.ZstdError as error:
        raise TruncatedBatch(f"batch: unreadable zstd frame header ({error})") from None
    if params.content_size != size:
        raise CorruptBatch(
            f"batch: zstd frame declares {_content_size(params.content_size)}, "
            f"header declares {size} bytes"
        )
    if params.dict_id:
        raise UnsupportedBatchVersion("batch: zstd frame needs a dictionary (not supported)")
    if not params.has_checksum:
        raise CorruptBatch("batch: zstd frame has no checksum (required)")
    window = max(1 << 10, 1 << max(size, 1).bit_length())
    decompressor = zstandard.ZstdDecompressor(max_window_size=min(window, 1 << 31))
    stream = decompressor.decompressobj()
    try:
        # The declared content size bounds the output: zstd stops with an error as soon as a
        # frame would produce more, so a forged frame cannot make us allocate beyond the cap.
        payload = stream.decompress(frame)
    except zstandard.ZstdError as error:
        raise CorruptBatch(f"batch: zstd frame is damaged ({error})") from None
    if not stream.eof:
        raise TruncatedBatch(f"batch: zstd frame ends early ({len(payload)} of {size} bytes)")
    if stream.unused_data:
        raise CorruptBatch(f"batch: {len(stream.unused_data)} stray bytes after the zstd frame")
    if len(payload) != size:
        raise CorruptBatch(f"batch: decompressed {len(payload)} bytes, header declares {size}")
    return payload


def _content_size(value: int) -> str:
    if value in (zstandard.CONTENTSIZE_UNKNOWN, zstandard.CONTENTSIZE_ERROR):
        return "no size"
    return f"{value} bytes"
