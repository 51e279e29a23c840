"""What a load-generator vehicle sends: the telemetry estimator's batches, at its byte rates.

A :class:`TrafficProfile` is made once (in the parent process) by running the simulator's
standard drive through the agent's own pipeline, exactly as ``edge-agent bench uplink`` does
(:func:`~edge_agent.modules.telemetry.estimate.estimate_uplink`: CAN decoding, the telemetry
module's collection and batch cuts, the batch encoder). The batches it cut become templates
(kept as real encoded batches, so they travel to the generator processes as bytes), and each
stream's cadence is the estimator's: the drive's length over the batches that stream cut. A
vehicle then re-stamps a template (its own vehicle id, sequence, fresh message id, the time
now) and encodes it again with the telemetry batch encoder before every send
(:class:`BatchMaker`), so every batch on the wire is a real, unique v2 (or v3) batch.

Two profiles:

* ``fleet``: the collection schemes of ``deploy/examples/vehicle.toml`` (4 signals, periodic
  and on-change, 30 s batches): the cost docs/benchmarks.md measures for a production
  vehicle, about 67 kB per hour of driving;
* ``native``: every signal at its native rate (10 s batches of about 14,800 samples, about
  2 MB/h). Encoding one such batch costs tens of milliseconds of CPU, so on a small machine
  the generator itself is the limit long before the back end.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from edge_agent.modules.telemetry.batch import (
    Batch,
    Catalogue,
    LinearScale,
    decode_batch,
    encode_batch,
    new_message_id,
)
from edge_agent.modules.telemetry.collection import Cut
from edge_agent.modules.telemetry.config import TelemetryConfig
from edge_agent.spool import SpoolPriority

PROFILES = ("fleet", "native")
DEFAULT_DRIVE_S = 120.0
SIMULATOR_DBC = "package:edge_agent.simulator/data/vehicle.dbc"
# The telemetry section of deploy/examples/vehicle.toml (a test checks they are the same).
FLEET_TELEMETRY: dict[str, Any] = {
    "scale_dbc": [SIMULATOR_DBC],
    "batch_max_age_s": 30.0,
    "streams": [
        {
            "name": "motion",
            "priority": "telemetry-high",
            "signals": [
                {"signal": "EgoSpeed", "scheme": "periodic", "period_s": 1.0},
                {
                    "signal": "LongitudinalAccel",
                    "scheme": "on-change",
                    "deadband": 0.5,
                    "max_interval_s": 10.0,
                },
            ],
        },
        {
            "name": "battery",
            "signals": [
                {"signal": "HvSoc", "scheme": "on-change", "deadband": 0.5, "max_interval_s": 60.0},
                {
                    "signal": "CellTempMax",
                    "scheme": "on-change",
                    "deadband": 1.0,
                    "max_interval_s": 60.0,
                },
            ],
        },
    ],
    "captures": [
        {
            "name": "hard-braking",
            "stream": "captures",
            "when": {"signal": "LongitudinalAccel", "op": "<", "value": -6.0},
            "signals": ["EgoSpeed", "LongitudinalAccel", "ObjectDistance", "BrakePressure"],
            "pre_s": 10.0,
            "post_s": 5.0,
        }
    ],
}
_PRIORITIES = {
    "telemetry-high": SpoolPriority.TELEMETRY_HIGH,
    "telemetry-low": SpoolPriority.TELEMETRY_LOW,
}


@dataclass(frozen=True, slots=True)
class StreamProfile:
    """One telemetry stream: a batch every ``period_s``, cycling through ``templates``."""

    stream: str
    priority: SpoolPriority
    period_s: float
    templates: tuple[bytes, ...]

    @property
    def bytes_per_hour(self) -> float:
        """What the stream costs per hour of driving (mean template size x batches/hour)."""
        mean = sum(len(t) for t in self.templates) / len(self.templates)
        return mean * 3600.0 / self.period_s


@dataclass(frozen=True, slots=True)
class TrafficProfile:
    """Every stream a vehicle sends, as the estimator cut them from ``drive_s`` of driving."""

    name: str
    drive_s: float
    streams: tuple[StreamProfile, ...]

    @property
    def bytes_per_hour(self) -> float:
        """Batch bytes per vehicle and hour of driving (v2, as measured on the templates)."""
        return sum(stream.bytes_per_hour for stream in self.streams)

    @property
    def batches_per_hour(self) -> float:
        """Batches per vehicle and hour of driving."""
        return sum(3600.0 / stream.period_s for stream in self.streams)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form (templates in base64) for the generator processes' plan."""
        return {
            "name": self.name,
            "drive_s": self.drive_s,
            "streams": [
                {
                    "stream": s.stream,
                    "priority": int(s.priority),
                    "period_s": s.period_s,
                    "templates": [base64.b64encode(t).decode() for t in s.templates],
                }
                for s in self.streams
            ],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TrafficProfile:
        """The inverse of :meth:`to_json` (our own plan file: trusted, but checked by type)."""
        return cls(
            str(data["name"]),
            float(data["drive_s"]),
            tuple(
                StreamProfile(
                    str(s["stream"]),
                    SpoolPriority(int(s["priority"])),
                    float(s["period_s"]),
                    tuple(base64.b64decode(t) for t in s["templates"]),
                )
                for s in data["streams"]
            ),
        )


def telemetry_config(profile: str) -> TelemetryConfig:
    """The telemetry collection a profile stands for (see the module docstring)."""
    if profile == "fleet":
        return TelemetryConfig.model_validate(FLEET_TELEMETRY)
    if profile == "native":
        from edge_agent.modules.telemetry.estimate import native_rate_config

        database = _dbc().database
        return native_rate_config(s.name for m in database.messages for s in m.signals)
    raise ValueError(f"unknown traffic profile {profile!r} (one of {', '.join(PROFILES)})")


@functools.cache
def _dbc() -> Any:
    from edge_agent.can.databases import load_database
    from edge_agent.can.resources import resolve_data_path

    return load_database(resolve_data_path(SIMULATOR_DBC))


@functools.cache
def dbc_scale_hints() -> dict[str, LinearScale]:
    """The simulator DBC's conversions: the scale hints the estimator and the agent use."""
    from edge_agent.modules.telemetry.scales import dbc_scales

    return dbc_scales(_dbc().database)


def build_profile(profile: str, drive_s: float = DEFAULT_DRIVE_S) -> TrafficProfile:
    """Run ``drive_s`` of the simulator's standard drive through the estimator; keep its cuts.

    Takes a few seconds of CPU (the simulation and the collection); do it once per run.
    """
    from edge_agent.can.decode import FrameDecoder
    from edge_agent.modules.telemetry.estimate import (
        BatchEncoder,
        EncodedCut,
        estimate_uplink,
        resolution_of,
    )
    from edge_agent.modules.telemetry.scales import dbc_units
    from edge_agent.modules.telemetry.uplink_bench import synthetic_frames

    config = telemetry_config(profile)
    cuts: list[tuple[Cut, bytes]] = []

    class _Keeping(BatchEncoder):
        def encode(self, cut: Cut) -> EncodedCut:
            encoded = super().encode(cut)
            cuts.append((cut, encoded.batch))
            return encoded

    database = _dbc().database
    encoder = _Keeping(
        resolution=resolution_of(config),
        scales=dbc_scale_hints(),
        units=dbc_units(database),
        batch_format=config.batch_format,
    )
    estimate = estimate_uplink(synthetic_frames(drive_s), FrameDecoder(database), config, encoder)
    seconds = estimate.frames.seconds or drive_s
    by_stream: dict[str, list[tuple[Cut, bytes]]] = {}
    for cut, batch in cuts:
        by_stream.setdefault(cut.stream, []).append((cut, batch))
    streams = tuple(
        StreamProfile(
            name,
            _PRIORITIES.get(kept[0][0].priority, SpoolPriority.TELEMETRY_LOW),
            seconds / len(kept),
            tuple(batch for _, batch in kept),
        )
        for name, kept in sorted(by_stream.items())
    )
    if not streams:
        raise ValueError(f"profile {profile!r}: the drive produced no batches")
    return TrafficProfile(profile, seconds, streams)


class BatchMaker:
    """Makes one vehicle's next batch of a stream: a template re-stamped and encoded anew.

    ``batch_format`` 3 writes v3 against the vehicle's own :attr:`catalogue` (which the
    vehicle publishes first, as the telemetry module does); 2 writes v2.
    """

    def __init__(self, vehicle_id: str, profile: TrafficProfile, *, batch_format: int = 2) -> None:
        if batch_format not in (2, 3):
            raise ValueError("batch_format must be 2 or 3")
        self.vehicle_id = vehicle_id
        self.batch_format = batch_format
        self.boot_id = str(uuid.uuid4())
        self._templates = {s.stream: _templates(s.templates) for s in profile.streams}
        self._next: dict[str, int] = {}
        self.catalogue: Catalogue | None = None
        if batch_format == 3:
            self.catalogue = _catalogue_of(profile, vehicle_id)

    def make(self, stream: str, sequence: int, wall: float, monotonic: float) -> Batch:
        """The batch of ``stream`` numbered ``sequence``, its last sample at ``wall``."""
        templates = self._templates[stream]
        index = self._next.get(stream, 0)
        self._next[stream] = (index + 1) % len(templates)
        template = templates[index]
        span = max((sum(c.offsets) for c in template.signals), default=0)
        wall_ticks = round(wall * template.resolution)
        monotonic_ticks = round(monotonic * template.resolution)
        return dataclasses.replace(
            template,
            vehicle_id=self.vehicle_id,
            sequence=sequence,
            message_id=new_message_id(),
            wall_base=wall_ticks - span,
            monotonic_base=monotonic_ticks - span,
            boot_id=self.boot_id,
        )

    def encode(self, batch: Batch) -> bytes:
        """``batch`` in the wire format, by the telemetry module's own encoder."""
        return encode_batch(batch, scales=dbc_scale_hints(), catalogue=self.catalogue)


@functools.cache
def _templates(encoded: tuple[bytes, ...]) -> tuple[Batch, ...]:
    # Shared by every vehicle of the process: decoded once.
    return tuple(decode_batch(data) for data in encoded)


def _catalogue_of(profile: TrafficProfile, vehicle_id: str) -> Catalogue:
    from edge_agent.modules.telemetry.batch import CatalogueEntry

    scales = dbc_scale_hints()
    entries: dict[tuple[str, str], CatalogueEntry] = {}
    for stream in profile.streams:
        for template in _templates(stream.templates):
            for column in template.signals:
                hint = scales.get(column.name)
                entries.setdefault(
                    (column.name, column.type),
                    CatalogueEntry(
                        column.name,
                        column.type,
                        scale=hint.scale if hint else None,
                        offset=hint.offset if hint else None,
                    ),
                )
    return Catalogue.of(entries.values(), vehicle=vehicle_id)
