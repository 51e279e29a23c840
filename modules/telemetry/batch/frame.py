"""The outer layer of a batch: a 10-byte header, then exactly one zstd frame.

``EABT`` magic, format version, codec, declared decompressed length (docs/batch-format.md,
"Byte layout"). The decoder checks all of it, and the zstd frame's own header, before it
decompresses a single byte, and decompresses into a buffer bounded by the declared length.
"""

from __future__ import annotations

import struct
import threading

import zstandard

from edge_agent.modules.telemetry.batch.errors import (
    CorruptBatch,
    NotABatch,
    OversizedBatch,
    TruncatedBatch,
    UnsupportedBatchVersion,
)
from edge_agent.modules.telemetry.batch.model import FORMAT_VERSION, SUPPORTED_VERSIONS
from edge_agent.modules.telemetry.batch.shared_zstd import SharedCompressor

MAGIC = b"EABT"
CODEC_ZSTD = 1
HEADER = struct.Struct(">4sBBI")
MAX_DECOMPRESSED = 16 * 1024 * 1024
# zstd's worst case on incompressible input: 3 bytes per 128 KiB block, header and checksum.
_FRAME_OVERHEAD = 64 + 3 * (MAX_DECOMPRESSED // (128 * 1024) + 1)
MAX_BATCH_BYTES = HEADER.size + MAX_DECOMPRESSED + _FRAME_OVERHEAD
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
# One compressor per level for the process, shared by every thread (shared_zstd.py says why).
_compressors: dict[int, SharedCompressor] = {}
_compressors_lock = threading.Lock()


def _compressor(level: int) -> SharedCompressor:
    with _compressors_lock:
        if level not in _compressors:
            _compressors[level] = SharedCompressor(
                lambda: zstandard.ZstdCompressor(
                    level=level, write_checksum=True, write_content_size=True
                )
            )
        return _compressors[level]


def compression_contexts() -> tuple[int, int]:
    """(contexts, bytes) of the zstd compression contexts :func:`seal` holds, all levels."""
    with _compressors_lock:
        shared = list(_compressors.values())
    return sum(c.contexts for c in shared), sum(c.memory_size() for c in shared)


def seal(
    payload: bytes,
    level: int = 3,
    version: int = FORMAT_VERSION,
    *,
    magic: bytes = MAGIC,
    limit: int = MAX_DECOMPRESSED,
) -> bytes:
    """Header plus one zstd frame (content size and checksum included) around ``payload``.

    ``magic`` and ``limit`` let the signal catalogue (``EACT``) share the batch's outer layer.
    """
    if len(payload) > limit:
        raise ValueError(
            f"payload is {len(payload)} bytes, over the {limit}-byte limit: "
            "cut smaller batches (or a smaller catalogue)"
        )
    header = HEADER.pack(magic, version, CODEC_ZSTD, len(payload))
    return header + _compressor(level).compress(payload)


def unseal(
    data: bytes | bytearray | memoryview,
    max_decompressed: int = MAX_DECOMPRESSED,
    *,
    magic: bytes = MAGIC,
    versions: tuple[int, ...] = SUPPORTED_VERSIONS,
    what: str = "batch",
) -> bytes:
    """Check the header and the zstd frame, then return the decompressed payload.

    Raises a ``BatchFormatError`` subclass for anything but a well-formed batch (or, with
    another ``magic``, ``versions`` and ``what``, a well-formed document of that kind).
    """
    view = memoryview(data).cast("B")
    if len(view) < HEADER.size:
        if magic.startswith(bytes(view[:4])):
            raise TruncatedBatch(f"{what}: {len(view)} bytes, shorter than the 10-byte header")
        raise NotABatch(f"{what}: does not start with the {magic.decode()} magic")
    found, version, codec, size = HEADER.unpack_from(view)
    if found != magic:
        raise NotABatch(f"{what}: starts with {found!r}, not the {magic.decode()} magic")
    if version not in versions:
        readable = " and ".join(str(v) for v in versions)
        raise UnsupportedBatchVersion(
            f"{what}: format version {version}, this decoder reads versions {readable}"
        )
    if codec != CODEC_ZSTD:
        raise UnsupportedBatchVersion(f"{what}: unknown codec {codec} (1 is zstd)")
    if size > max_decompressed:
        raise OversizedBatch(
            f"{what}: declares {size} decompressed bytes, over the {max_decompressed}-byte limit"
        )
    if len(view) > HEADER.size + max_decompressed + _FRAME_OVERHEAD:
        raise OversizedBatch(f"{what}: {len(view)} bytes, over the size limit")
    return _decompress(view[HEADER.size :], size, max_decompressed, what)


def _decompress(frame: memoryview, size: int, max_decompressed: int, what: str) -> bytes:
    if len(frame) < 4 and _ZSTD_MAGIC.startswith(bytes(frame)):
        raise TruncatedBatch(f"{what}: ends inside the zstd frame header")
    if bytes(frame[:4]) != _ZSTD_MAGIC:
        raise CorruptBatch(f"{what}: no zstd frame after the header")
    try:
        params = zstandard.get_frame_parameters(frame)
    except zstandard.ZstdError as error:
        raise TruncatedBatch(f"{what}: unreadable zstd frame header ({error})") from None
    if params.content_size != size:
        raise CorruptBatch(
            f"{what}: zstd frame declares {_content_size(params.content_size)}, "
            f"header declares {size} bytes"
        )
    if params.dict_id:
        raise UnsupportedBatchVersion(f"{what}: zstd frame needs a dictionary (not supported)")
    if not params.has_checksum:
        raise CorruptBatch(f"{what}: zstd frame has no checksum (required)")
    window = max(1 << 10, 1 << max(size, 1).bit_length())
    decompressor = zstandard.ZstdDecompressor(max_window_size=min(window, 1 << 31))
    stream = decompressor.decompressobj()
    try:
        # The declared content size bounds the output: zstd stops with an error as soon as a
        # frame would produce more, so a forged frame cannot make us allocate beyond the cap.
        payload = stream.decompress(frame)
    except zstandard.ZstdError as error:
        raise CorruptBatch(f"{what}: zstd frame is damaged ({error})") from None
    if not stream.eof:
        raise TruncatedBatch(f"{what}: zstd frame ends early ({len(payload)} of {size} bytes)")
    if stream.unused_data:
        raise CorruptBatch(f"{what}: {len(stream.unused_data)} stray bytes after the zstd frame")
    if len(payload) != size:
        raise CorruptBatch(f"{what}: decompressed {len(payload)} bytes, header declares {size}")
    return payload


def _content_size(value: int) -> str:
    if value in (zstandard.CONTENTSIZE_UNKNOWN, zstandard.CONTENTSIZE_ERROR):
        return "no size"
    return f"{value} bytes"
