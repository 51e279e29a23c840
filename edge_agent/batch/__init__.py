"""Telemetry batch format v1: columnar, delta-encoded, msgpack inside zstd.

The format is specified in docs/batch-format.md; :func:`decode_batch` is its reference
decoder. Encoding: :func:`build_batch` groups samples into a :class:`Batch`,
:func:`encode_batch` turns it into bytes (:func:`encode_samples` does both).
"""

from edge_agent.batch.clocktrust import (
    TrustPolicy,
    WallClockTrust,
    current_boot_id,
    kernel_clock_synchronised,
)
from edge_agent.batch.codec import (
    build_batch,
    decode_batch,
    encode_batch,
    encode_samples,
    new_message_id,
    reencode_batch,
)
from edge_agent.batch.columns import LinearScale
from edge_agent.batch.errors import (
    BatchFormatError,
    CorruptBatch,
    MalformedBatch,
    NotABatch,
    OversizedBatch,
    TruncatedBatch,
    UnsupportedBatchVersion,
)
from edge_agent.batch.frame import MAX_DECOMPRESSED
from edge_agent.batch.model import (
    FORMAT_VERSION,
    MICROSECONDS,
    MILLISECONDS,
    Batch,
    ClockQuality,
    DecodedSample,
    Sample,
    SampleValue,
    SignalColumn,
    ValueType,
)
from edge_agent.batch.transform import downsample, downsample_encoded, restamp

__all__ = [
    "FORMAT_VERSION",
    "MAX_DECOMPRESSED",
    "MICROSECONDS",
    "MILLISECONDS",
    "Batch",
    "BatchFormatError",
    "ClockQuality",
    "CorruptBatch",
    "DecodedSample",
    "LinearScale",
    "MalformedBatch",
    "NotABatch",
    "OversizedBatch",
    "Sample",
    "SampleValue",
    "SignalColumn",
    "TruncatedBatch",
    "TrustPolicy",
    "UnsupportedBatchVersion",
    "ValueType",
    "WallClockTrust",
    "build_batch",
    "current_boot_id",
    "decode_batch",
    "downsample",
    "downsample_encoded",
    "encode_batch",
    "encode_samples",
    "kernel_clock_synchronised",
    "new_message_id",
    "reencode_batch",
    "restamp",
]
