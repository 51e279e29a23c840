"""Pure functions over a batch: re-stamping once time is trusted, and downsampling.

Neither touches the message id: a re-stamped or downsampled batch is the same batch to the
cloud, which drops whichever copy arrives second. The ``*_encoded`` forms work on batch
bytes; the telemetry module registers them as its streams' transforms
(``edge_agent.modules.telemetry.transforms``). A batch keeps the format version it was
written in (a v1 batch re-encodes as v1).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from edge_agent.modules.telemetry.batch.catalogue import Catalogue
from edge_agent.modules.telemetry.batch.codec import decode_batch, reencode_batch
from edge_agent.modules.telemetry.batch.errors import BatchFormatError
from edge_agent.modules.telemetry.batch.model import Batch, ClockQuality, SignalColumn


def restamp(batch: Batch, monotonic_to_wall_offset: float, *, boot_id: str | None = None) -> Batch:
    """Recompute the wall base of an untrusted batch from its monotonic base.

    ``monotonic_to_wall_offset`` is ``wall - monotonic`` (seconds) measured while the wall
    clock was trusted, in the boot the batch was cut in. Sample offsets of untrusted batches
    are monotonic intervals, so only the base changes: ``wall = mono + offset``. Trusted
    batches are returned unchanged; so is a batch from another boot (``boot_id`` given and
    different from the batch's), whose monotonic clock the offset says nothing about.
    """
    if batch.clock is ClockQuality.TRUSTED:
        return batch
    if boot_id is not None and batch.boot_id and boot_id != batch.boot_id:
        return batch
    shift = round(monotonic_to_wall_offset * batch.resolution)
    return dataclasses.replace(
        batch,
        wall_base=batch.monotonic_base + shift,
        clock=ClockQuality.UNTRUSTED_RESTAMPED,
    )


def downsample(batch: Batch) -> Batch:
    """Keep every other sample of every column (the first, third, ...); decimation + 1."""
    return dataclasses.replace(
        batch,
        decimation=batch.decimation + 1,
        signals=tuple(
            SignalColumn(column.name, column.type, column.offsets[::2], column.values[::2])
            for column in batch.signals
        ),
    )


def downsample_encoded(
    data: bytes, *, catalogues: Mapping[bytes, Catalogue] | None = None
) -> bytes | None:
    """Downsample encoded batch bytes; None when they are not a batch or would not shrink.

    The degrade transform of telemetry streams (the spool calls it when it must make room).
    A v3 batch needs its catalogue in ``catalogues`` (else it is left as it is) and stays v3.
    """
    try:
        batch = decode_batch(data, catalogues=catalogues)
    except BatchFormatError:
        return None
    if batch.sample_count < 2:
        return None
    smaller = reencode_batch(downsample(batch), (catalogues or {}).get(batch.catalogue))
    return smaller if len(smaller) < len(data) else None


def restamp_encoded(
    data: bytes,
    monotonic_to_wall_offset: float,
    *,
    boot_id: str,
    catalogues: Mapping[bytes, Catalogue] | None = None,
) -> bytes | None:
    """Re-stamp encoded batch bytes cut untrusted in boot ``boot_id``; None when nothing to do.

    None for bytes that are not a batch, a batch that is not ``untrusted``, one cut in
    another boot (its monotonic clock is not the one the offset was measured on), or a v3
    batch whose catalogue is not in ``catalogues``.
    """
    try:
        batch = decode_batch(data, catalogues=catalogues)
    except BatchFormatError:
        return None
    if batch.clock is not ClockQuality.UNTRUSTED or batch.boot_id != boot_id:
        return None
    restamped = restamp(batch, monotonic_to_wall_offset, boot_id=boot_id)
    return reencode_batch(restamped, (catalogues or {}).get(batch.catalogue))
