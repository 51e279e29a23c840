"""Uplink data cost of a drive: CAN frames through the agent's own pipeline, bytes counted.

Frames are decoded with ``edge_agent.can.FrameDecoder``, collected by the telemetry module's
schemes, captures and batch cuts (:class:`~edge_agent.modules.telemetry.collection.Collection`)
and encoded in the batch format (v2 unless the config says 1) with zstd, with the DBC's
conversions as scale hints, exactly as the agent would send them: format v2 (v1 if the
config says so) as the agent writes before the cloud acknowledged its signal catalogue,
and v3 once it has (the catalogue, built from every signal the drive produced, is a
one-time cost per vehicle and catalogue version, counted apart). The baselines are
measured in the same run on the same batches: one JSON object (and one msgpack map) per
sample, ``{"t": seconds, "signal": name, "value": value}``, each batch compressed alone with
the same zstd level, so neither side gains from a longer compression window.
"""

from __future__ import annotations

import json
import math
import random
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import can
import msgpack
import zstandard

from edge_agent.can.decode import FrameDecoder
from edge_agent.can.tally import DecodeTally
from edge_agent.can.types import DecodedMessage
from edge_agent.modules.telemetry.batch import (
    MICROSECONDS,
    MILLISECONDS,
    ClockQuality,
    LinearScale,
    Sample,
    build_batch,
    encode_batch,
)
from edge_agent.modules.telemetry.batch.catalogue import Catalogue, CatalogueEntry
from edge_agent.modules.telemetry.collection import CUT_CHECK_S, Collection, Cut
from edge_agent.modules.telemetry.config import SignalRule, StreamConfig, TelemetryConfig
from edge_agent.modules.telemetry.vss_paths import vss_path

ZSTD_LEVEL = 3  # what ``edge_agent.modules.telemetry.batch.encode_batch`` uses
MONOTONIC_BASE_S = 1000.0  # replayed drives start at this monotonic time (only intervals matter)
MAX_TIMESTAMP_S = 1e11  # frames stamped outside [0, this) cannot be batched: counted instead
# A silence longer than this between two frames is not driving (the car was off, or the log
# joins sessions recorded apart): rates per hour count driving time only.
MAX_DRIVING_GAP_S = 5.0
DEFAULT_VEHICLE_ID = "vin-wdd0000000000001"
NATIVE_STREAM = "signals"
BASELINE_SHAPE = (
    'one JSON object (msgpack map) per sample, {"t": wall seconds at the batch resolution, '
    '"signal": name, "value": value}, JSON lines (msgpack objects back to back), the same '
    f"samples cut into the same batches, each batch compressed alone with zstd level {ZSTD_LEVEL} "
    "(content size and checksum, like ours; no envelope); ratio_vs_json = bytes / json_bytes"
)


class RecordedDecoder(Protocol):
    """Decodes frames the DBC does not describe into signals (diagnostic answers, say).

    Contributed by the module that owns the format, through the ``edge_agent.recorded_decoders``
    entry-point group; its signals are collected and counted like decoded CAN signals.
    """

    @property
    def signals(self) -> set[str]:
        """Signal names it can produce."""

    def claims(self, frame: can.Message) -> bool:
        """Whether ``frame`` is one of its frames."""

    def decode(self, frame: can.Message) -> DecodedMessage | None:
        """The signals ``frame`` completes, if any."""


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
    sequence: int
    message_id: bytes
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
        batch_format: int = 3,
        units: Mapping[str, str] | None = None,
    ) -> None:
        self.vehicle_id = vehicle_id
        self.batch_format = batch_format
        self.resolution = resolution
        self.scales = dict(scales or {})
        self.units = dict(units or {})
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
        message_id = self._random.randbytes(16)
        batch = encode_batch(
            self._build(cut, sequence, message_id),
            scales=self.scales,
            pack=self.batch_format >= 2,
        )
        json_raw, json_count = json_lines(cut.samples, self.resolution)
        msgpack_raw, msgpack_count = msgpack_objects(cut.samples, self.resolution)
        return EncodedCut(
            cut=cut,
            batch=batch,
            sequence=sequence,
            message_id=message_id,
            json_zstd=self._zstd.compress(json_raw),
            msgpack_zstd=self._zstd.compress(msgpack_raw),
            json_raw_bytes=len(json_raw),
            msgpack_raw_bytes=len(msgpack_raw),
            json_objects=json_count,
            msgpack_objects=msgpack_count,
        )

    def _build(self, cut: Cut, sequence: int, message_id: bytes) -> Any:
        return build_batch(
            cut.samples,
            vehicle_id=self.vehicle_id,
            stream=cut.stream,
            sequence=sequence,
            clock=ClockQuality.TRUSTED,  # recorded timestamps are the receive (wall) times
            resolution=self.resolution,
            message_id=message_id,
            boot_id=self.boot_id,
        )

    def catalogue(self, cuts: Iterable[Cut]) -> Catalogue:
        """The signal catalogue the agent would publish for these cuts' signals.

        Signals in order of first appearance, with the DBC's scale and unit and the VSS path
        where known.
        """
        entries: dict[tuple[str, str], CatalogueEntry] = {}
        for cut in cuts:
            batch = build_batch(
                cut.samples, vehicle_id="-", stream="-", sequence=0, clock=ClockQuality.TRUSTED
            )
            for column in batch.signals:
                if (column.name, column.type) in entries:
                    continue
                hint = self.scales.get(column.name)
                entries[(column.name, column.type)] = CatalogueEntry(
                    column.name,
                    column.type,
                    unit=self.units.get(column.name, ""),
                    scale=hint.scale if hint else None,
                    offset=hint.offset if hint else None,
                    vss=vss_path(column.name),
                )
        return Catalogue.of(entries.values(), vehicle=self.vehicle_id)

    def encode_v3(self, encoded: EncodedCut, catalogue: Catalogue) -> bytes:
        """The same batch (sequence, message id) in format v3 with ``catalogue``."""
        batch = self._build(encoded.cut, encoded.sequence, encoded.message_id)
        return encode_batch(batch, scales=self.scales, catalogue=catalogue)


@dataclass
class StreamTotals:
    """Bytes and samples of one stream's batches (captures included)."""

    samples: int = 0
    bytes: int = 0
    batches: int = 0
    signals: set[str] = field(default_factory=set)
    v3_bytes: int = 0


@dataclass(slots=True)
class FrameCounts(DecodeTally):
    """What became of the frames: the decode tally, plus what the estimator checks first.

    ``frames`` counts the frames offered to the decoder; ``total`` adds those left out for
    a timestamp that cannot be batched (``bad_timestamp``). ``wrong_length`` counts every
    frame whose length differs from its DBC message's (shorter ones are not decoded, longer
    ones are, from their first bytes, as the CAN reader does).
    """

    wrong_length: int = 0
    bad_timestamp: int = 0
    recorded: int = 0  # frames a recorded decoder took (diagnostic answers), within ``frames``
    first_timestamp: float = math.inf
    last_timestamp: float = -math.inf
    driving_s: float = 0.0
    gaps: int = 0
    previous_timestamp: float | None = None

    def stamp(self, timestamp: float) -> None:
        """Account a batchable frame's time: the span, and driving time without long gaps."""
        self.first_timestamp = min(self.first_timestamp, timestamp)
        self.last_timestamp = max(self.last_timestamp, timestamp)
        # Steps past the latest time so far: receive jitter that reorders frames adds nothing.
        if self.previous_timestamp is not None:
            step = timestamp - self.previous_timestamp
            if step > MAX_DRIVING_GAP_S:
                self.gaps += 1
            elif step > 0:
                self.driving_s += step
        if self.previous_timestamp is None or timestamp > self.previous_timestamp:
            self.previous_timestamp = timestamp

    @property
    def total(self) -> int:
        """Every frame of the drive, batchable or not."""
        return self.frames + self.bad_timestamp

    @property
    def span_seconds(self) -> float:
        """Time between the earliest and the latest frame."""
        return max(0.0, self.last_timestamp - self.first_timestamp) if self.frames else 0.0

    @property
    def seconds(self) -> float:
        """Driving time: the time the frames span, less silences over ``MAX_DRIVING_GAP_S``."""
        return self.driving_s if self.frames else 0.0

    def summary(self) -> dict[str, int]:
        """The ``frames`` object of the JSON output."""
        return {
            "total": self.total,
            "decoded": self.decoded,
            "unknown_id": self.unknown_ids,
            "unknown_ids": len(self.unknown_id_set),
            "wrong_length": self.wrong_length,
            "bad_timestamp": self.bad_timestamp,
            "short": self.short_frames,
            "error": self.error_frames,
            "remote": self.remote_frames,
            "decode_failed": self.decode_failures - self.short_frames,
            "diagnostic": self.recorded,
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
    v3_bytes: int = 0
    catalogue_bytes: int = 0
    catalogue_signals: int = 0

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
    recorded: Sequence[RecordedDecoder] = (),
) -> UplinkEstimate:
    """Run ``frames`` through decoding, ``config``'s collection and ``encoder``; count it all.

    Frames whose id the DBC lacks go to the ``recorded`` decoders first (the diagnostics
    module's answers, for one): what they decode is collected like any decoded message.

    Message times are the frames' timestamps (``MONOTONIC_BASE_S`` plus the time since the
    first frame as the monotonic clock), and the module's periodic age check runs on the
    same 0.5 s grid, so batches are cut where the agent would cut them. Nothing in the
    frames can make this raise: what does not decode is counted in ``frames``.
    """
    estimate = UplinkEstimate()
    counts = estimate.frames
    encoded_cuts: list[EncodedCut] = []
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
                encoded_cuts.append(encoded)

    for frame in frames:
        stamp = frame.timestamp
        if not 0 <= stamp < MAX_TIMESTAMP_S:  # also NaN
            counts.bad_timestamp += 1
            continue
        counts.stamp(stamp)
        decoded = _decode(frame, decoder, counts, recorded)
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
    _add_v3(estimate, encoded_cuts, encoder)
    return estimate


def _add_v3(estimate: UplinkEstimate, cuts: list[EncodedCut], encoder: BatchEncoder) -> None:
    """The same batches in format v3, with the catalogue of every signal they carry."""
    if not cuts:
        return
    catalogue = encoder.catalogue([encoded.cut for encoded in cuts])
    estimate.catalogue_bytes = len(catalogue.document)
    estimate.catalogue_signals = len(catalogue)
    for encoded in cuts:
        size = len(encoder.encode_v3(encoded, catalogue))
        estimate.v3_bytes += size
        estimate.streams[encoded.cut.stream].v3_bytes += size


def _decode(
    frame: can.Message,
    decoder: FrameDecoder,
    counts: FrameCounts,
    recorded: Sequence[RecordedDecoder] = (),
) -> DecodedMessage | None:
    codec = decoder.codecs.get(frame.arbitration_id)
    if codec is None:
        for other in recorded:
            if other.claims(frame):
                counts.frames += 1
                counts.recorded += 1
                message = other.decode(frame)
                counts.decoded += message is not None
                return message
    if (
        codec is not None
        and not frame.is_error_frame
        and not frame.is_remote_frame
        and len(frame.data or b"") != codec.length
    ):
        counts.wrong_length += 1
    outcome = decoder.decode(frame)
    counts.count(frame, outcome)
    return outcome if isinstance(outcome, DecodedMessage) else None


def resolution_of(config: TelemetryConfig) -> int:
    """Ticks per second of the batches ``config`` asks for."""
    return MICROSECONDS if config.resolution == "us" else MILLISECONDS
