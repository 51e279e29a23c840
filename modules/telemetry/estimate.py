"""Uplink data cost of a drive: CAN frames through the agent's own pipeline, bytes counted.

Frames are decoded with ``edge_agent.can.FrameDecoder``, collected by the telemetry module's
schemes, captures and batch cuts (:class:`~edge_agent.modules.telemetry.collection.Collection`)
and encoded in the batch format (v2 unless the config says 1) with zstd, with the DBC's
conversions as scale hints, exactly as the agent would send them. The baselines are
measured in the same run on the same batches: one JSON object (and one msgpack map) per
sample, ``{"t": seconds, "signal": name, "value": value}``, each batch compressed alone with
the same zstd level, so neither side gains from a longer compression window.
"""

from __future__ import annotations

import json
import math
import random
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import can
import msgpack
import zstandard

from edge_agent.batch import (
    MICROSECONDS,
    MILLISECONDS,
    ClockQuality,
    LinearScale,
    Sample,
    encode_samples,
)
from edge_agent.can.decode import DecodeOutcome, FrameDecoder
from edge_agent.can.types import DecodedMessage
from edge_agent.modules.telemetry.collection import CUT_CHECK_S, Collection, Cut
from edge_agent.modules.telemetry.config import SignalRule, StreamConfig, TelemetryConfig

ZSTD_LEVEL = 3  # what ``edge_agent.batch.encode_batch`` uses
MONOTONIC_BASE_S = 1000.0  # replayed drives start at this monotonic time (only intervals matter)
MAX_TIMESTAMP_S = 1e11  # frames stamped outside [0, this) cannot be batched: counted instead
DEFAULT_VEHICLE_ID = "vin-wdd0000000000001"
NATIVE_STREAM = "signals"
BASELINE_SHAPE = (
    'one JSON object (msgpack map) per sample, {"t": wall seconds at the batch resolution, '
    '"signal": name, "value": value}, JSON lines (msgpack objects back to back), the same '
    f"samples cut into the same batches, each batch compressed alone with zstd level {ZSTD_LEVEL} "
    "(content size and checksum, like ours; no envelope); ratio_vs_json = bytes / json_bytes"
)


def native_rate_config(signals: Iterable[str], **options: Any) -> TelemetryConfig:
    """A telemetry config keeping every one of ``signals`` at its native rate, in one stream."""
    rules = [SignalRule(signal=name) for name in sorted(set(signals))]
    return TelemetryConfig(streams=[StreamConfig(name=NATIVE_STREAM, signals=rules)], **options)


def json_lines(samples: Iterable[Sample], resolution: int) -> tuple[bytes, int]:
    """The JSON baseline of ``samples``: one compact object per line; and the object count."""
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    lines = [
        dumps({"t": round(s.wall * resolution) / resolution, "signal": s.signal, "value": s.value})
        for s in samples
    ]
    return ("\n".join(lines) + "\n").encode() if lines else b"", len(lines)


def msgpack_objects(samples: Iterable[Sample], resolution: int) -> tuple[bytes, int]:
    """The msgpack baseline of ``samples``: one map per sample, back to back; and the count."""
    pack = msgpack.Packer(use_bin_type=True).pack
    objects = [
        pack({"t": round(s.wall * resolution) / resolution, "signal": s.signal, "value": s.value})
        for s in samples
    ]
    return b"".join(objects), len(objects)


@dataclass(frozen=True, slots=True)
class EncodedCut:
    """One batch in every encoding: ours (the agent's format) and the compressed baselines."""

    cut: Cut
    batch: bytes
    json_zstd: bytes
    msgpack_zstd: bytes
    json_raw_bytes: int
    msgpack_raw_bytes: int
    json_objects: int
    msgpack_objects: int


class BatchEncoder:
    """Encodes cuts the way the telemetry module does, and the baselines beside them.

    Sequence numbers count per stream from 1; message ids and the boot id come from a
    seeded generator, so a run is reproducible byte for byte.
    """

    def __init__(
        self,
        *,
        vehicle_id: str = DEFAULT_VEHICLE_ID,
        resolution: int = MILLISECONDS,
        scales: Mapping[str, LinearScale] | None = None,
        seed: int = 0,
        batch_format: int = 2,
    ) -> None:
        self.vehicle_id = vehicle_id
        self.batch_format = batch_format
        self.resolution = resolution
        self.scales = dict(scales or {})
        self._random = random.Random(seed)
        self.boot_id = str(uuid.UUID(bytes=self._random.randbytes(16), version=4))
        self._sequences: dict[str, int] = {}
        self._zstd = zstandard.ZstdCompressor(
            level=ZSTD_LEVEL, write_checksum=True, write_content_size=True
        )

    def encode(self, cut: Cut) -> EncodedCut:
        """Batch bytes of ``cut`` (as the module writes them) and its JSON and msgpack baselines.

        Raises ValueError, as the module's encoder would, for a cut too large for one batch.
        """
        sequence = self._sequences.get(cut.stream, 0) + 1
        self._sequences[cut.stream] = sequence
        batch = encode_samples(
            cut.samples,
            vehicle_id=self.vehicle_id,
            stream=cut.stream,
            sequence=sequence,
            clock=ClockQuality.TRUSTED,  # recorded timestamps are the receive (wall) times
            resolution=self.resolution,
            message_id=self._random.randbytes(16),
            boot_id=self.boot_id,
            scales=self.scales,
            pack=self.batch_format >= 2,
        )
        json_raw, json_count = json_lines(cut.samples, self.resolution)
        msgpack_raw, msgpack_count = msgpack_objects(cut.samples, self.resolution)
        return EncodedCut(
            cut=cut,
            batch=batch,
            json_zstd=self._zstd.compress(json_raw),
            msgpack_zstd=self._zstd.compress(msgpack_raw),
            json_raw_bytes=len(json_raw),
            msgpack_raw_bytes=len(msgpack_raw),
            json_objects=json_count,
            msgpack_objects=msgpack_count,
        )


@dataclass
class StreamTotals:
    """Bytes and samples of one stream's batches (captures included)."""

    samples: int = 0
    bytes: int = 0
    batches: int = 0
    signals: set[str] = field(default_factory=set)


@dataclass
class FrameCounts:
    """What became of the frames: decoded, or why not.

    ``wrong_length`` counts every frame whose length differs from its DBC message's (shorter
    ones are not decoded, longer ones are, from their first bytes, as the CAN reader does).
    """

    total: int = 0
    decoded: int = 0
    unknown_id: int = 0
    unknown_ids: set[int] = field(default_factory=set)
    wrong_length: int = 0
    bad_timestamp: int = 0
    short: int = 0
    error: int = 0
    remote: int = 0
    decode_failed: int = 0
    first_timestamp: float = math.inf
    last_timestamp: float = -math.inf

    @property
    def seconds(self) -> float:
        """Time between the earliest and the latest frame."""
        return max(0.0, self.last_timestamp - self.first_timestamp) if self.total else 0.0

    def summary(self) -> dict[str, int]:
        """The ``frames`` object of the JSON output."""
        return {
            "total": self.total,
            "decoded": self.decoded,
            "unknown_id": self.unknown_id,
            "unknown_ids": len(self.unknown_ids),
            "wrong_length": self.wrong_length,
            "bad_timestamp": self.bad_timestamp,
            "short": self.short,
            "error": self.error,
            "remote": self.remote,
            "decode_failed": self.decode_failed,
        }


@dataclass
class UplinkEstimate:
    """Totals of one estimator run over every batch it cut."""

    frames: FrameCounts = field(default_factory=FrameCounts)
    streams: dict[str, StreamTotals] = field(default_factory=dict)
    samples: int = 0
    bytes: int = 0
    batches: int = 0
    captures: int = 0
    json_bytes: int = 0
    msgpack_bytes: int = 0
    json_raw_bytes: int = 0
    msgpack_raw_bytes: int = 0
    json_objects: int = 0
    msgpack_objects: int = 0
    signals: set[str] = field(default_factory=set)
    lost_batches: int = 0
    lost_samples: int = 0
    lost_reason: str = ""

    def lose(self, cut: Cut, reason: str) -> None:
        """Count a cut the encoder refused (the agent would lose it too)."""
        self.lost_batches += 1
        self.lost_samples += len(cut.samples)
        self.lost_reason = self.lost_reason or reason

    def add(self, encoded: EncodedCut) -> None:
        """Count one encoded batch."""
        cut = encoded.cut
        count = len(cut.samples)
        names = {sample.signal for sample in cut.samples}
        self.samples += count
        self.bytes += len(encoded.batch)
        self.batches += 1
        self.captures += cut.capture is not None
        self.json_bytes += len(encoded.json_zstd)
        self.msgpack_bytes += len(encoded.msgpack_zstd)
        self.json_raw_bytes += encoded.json_raw_bytes
        self.msgpack_raw_bytes += encoded.msgpack_raw_bytes
        self.json_objects += encoded.json_objects
        self.msgpack_objects += encoded.msgpack_objects
        self.signals |= names
        stream = self.streams.setdefault(cut.stream, StreamTotals())
        stream.samples += count
        stream.bytes += len(encoded.batch)
        stream.batches += 1
        stream.signals |= names


def estimate_uplink(
    frames: Iterable[can.Message],
    decoder: FrameDecoder,
    config: TelemetryConfig,
    encoder: BatchEncoder,
) -> UplinkEstimate:
    """Run ``frames`` through decoding, ``config``'s collection and ``encoder``; count it all.

    Message times are the frames' timestamps (``MONOTONIC_BASE_S`` plus the time since the
    first frame as the monotonic clock), and the module's periodic age check runs on the
    same 0.5 s grid, so batches are cut where the agent would cut them. Nothing in the
    frames can make this raise: what does not decode is counted in ``frames``.
    """
    estimate = UplinkEstimate()
    counts = estimate.frames
    collection = Collection(config)
    start: float | None = None
    next_check = 0.0

    def send(cuts: list[Cut]) -> None:
        for cut in cuts:
            try:
                encoded = encoder.encode(cut)
            except ValueError as error:  # e.g. a capture larger than one batch may hold
                estimate.lose(cut, str(error))
            else:
                estimate.add(encoded)

    for frame in frames:
        counts.total += 1
        stamp = frame.timestamp
        if not 0 <= stamp < MAX_TIMESTAMP_S:  # also NaN
            counts.bad_timestamp += 1
            continue
        counts.first_timestamp = min(counts.first_timestamp, stamp)
        counts.last_timestamp = max(counts.last_timestamp, stamp)
        decoded = _decode(frame, decoder, counts)
        if decoded is None:
            continue
        if start is None:
            start = stamp
            next_check = CUT_CHECK_S
        elapsed = stamp - start
        if elapsed >= next_check:
            # The module's timer fires every CUT_CHECK_S; the last tick before this frame
            # sees the same buffers as every tick since the previous frame, so one will do.
            ticks = math.floor(elapsed / CUT_CHECK_S)
            send(collection.tick(MONOTONIC_BASE_S + ticks * CUT_CHECK_S))
            next_check = (ticks + 1) * CUT_CHECK_S
        decoded.monotonic = MONOTONIC_BASE_S + elapsed
        send(collection.ingest(decoded))
    send(collection.flush())
    return estimate


def _decode(
    frame: can.Message, decoder: FrameDecoder, counts: FrameCounts
) -> DecodedMessage | None:
    codec = decoder.codecs.get(frame.arbitration_id)
    if (
        codec is not None
        and not frame.is_error_frame
        and not frame.is_remote_frame
        and len(frame.data or b"") != codec.length
    ):
        counts.wrong_length += 1
    outcome = decoder.decode(frame)
    if isinstance(outcome, DecodedMessage):
        counts.decoded += 1
        return outcome
    if outcome is DecodeOutcome.UNKNOWN_ID:
        counts.unknown_id += 1
        counts.unknown_ids.add(frame.arbitration_id)
    elif outcome is DecodeOutcome.SHORT_FRAME:
        counts.short += 1
    elif outcome is DecodeOutcome.ERROR_FRAME:
        counts.error += 1
    elif outcome is DecodeOutcome.REMOTE_FRAME:
        counts.remote += 1
    else:
        counts.decode_failed += 1
    return None


def resolution_of(config: TelemetryConfig) -> int:
    """Ticks per second of the batches ``config`` asks for."""
    return MICROSECONDS if config.resolution == "us" else MILLISECONDS
