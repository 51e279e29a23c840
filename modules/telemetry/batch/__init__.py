"""Telemetry batch format v3 (and v2, v1): columnar, delta-encoded, msgpack inside zstd.

The telemetry module owns this format: it writes it, and it registers the format's
transforms (downsample, re-stamp) for its streams with the runtime (see
``edge_agent.modules.telemetry.transforms``), so the spool and the cloud link carry batches
as opaque bytes. The format is specified in docs/batch-format.md; :func:`decode_batch` is its
reference decoder and reads all three versions. Encoding: :func:`build_batch` groups samples into
a :class:`Batch`, :func:`encode_batch` turns it into bytes (:func:`encode_samples` does
both). A batch is written as v2 when it has a Rice-packed integer column (``pack=False``
never packs, for a back end that reads only v1), else as v1; given a ``catalogue`` (a
:class:`Catalogue` the cloud acknowledged) it is written as v3, signals by id in it. A v3
batch decodes only with its catalogue (``decode_batch(..., catalogues=...)``), else
:class:`UnknownCatalogue` names it.
"""

from edge_agent.modules.telemetry.batch.catalogue import (
    Catalogue,
    CatalogueEntry,
    parse_catalogue,
)
from edge_agent.modules.telemetry.batch.codec import (
    build_batch,
    decode_batch,
    encode_batch,
    encode_samples,
    new_message_id,
    reencode_batch,
)
from edge_agent.modules.telemetry.batch.columns import LinearScale
from edge_agent.modules.telemetry.batch.errors import (
    BatchFormatError,
    CorruptBatch,
    MalformedBatch,
    MalformedCatalogue,
    NotABatch,
    OversizedBatch,
    TruncatedBatch,
    UnknownCatalogue,
    UnsupportedBatchVersion,
)
from edge_agent.modules.telemetry.batch.frame import MAX_DECOMPRESSED
from edge_agent.modules.telemetry.batch.model import (
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
from edge_agent.modules.telemetry.batch.transform import (
    downsample,
    downsample_encoded,
    restamp,
    restamp_encoded,
)

__all__ = [
    "FORMAT_VERSION",
    "MAX_DECOMPRESSED",
    "MICROSECONDS",
    "MILLISECONDS",
    "Batch",
    "BatchFormatError",
    "Catalogue",
    "CatalogueEntry",
    "ClockQuality",
    "CorruptBatch",
    "DecodedSample",
    "LinearScale",
    "MalformedBatch",
    "MalformedCatalogue",
    "NotABatch",
    "OversizedBatch",
    "Sample",
    "SampleValue",
    "SignalColumn",
    "TruncatedBatch",
    "UnknownCatalogue",
    "UnsupportedBatchVersion",
    "ValueType",
    "build_batch",
    "decode_batch",
    "downsample",
    "downsample_encoded",
    "encode_batch",
    "encode_samples",
    "new_message_id",
    "parse_catalogue",
    "reencode_batch",
    "restamp",
    "restamp_encoded",
]
