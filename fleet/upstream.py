"""What one message from the upstream stream is, and what the workers must write for it.

A pure function, :func:`interpret`: the subject (``$MQTT.msgs.vehicles.{vid}.{suffix}``) and
payload in, one of the outcomes below out, never an exception for bad input (anything that
cannot be stored is :class:`Park` with a one-line reason). Telemetry batches are decoded
with the batch format's own decoder (``edge_agent.modules.telemetry.batch.decode_batch``,
every version, catalogues included); catalogues are checked as the SQLite stand-in checks
them (``edge_agent.simulator.cloud_store``).
"""

from __future__ import annotations

import datetime
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass

from edge_agent.fleet.streams import MESSAGES_SUBJECT_PREFIX
from edge_agent.modules.telemetry.batch import (
    Batch,
    BatchFormatError,
    UnknownCatalogue,
    decode_batch,
)
from edge_agent.modules.telemetry.batch.catalogue import Catalogue, parse_catalogue
from edge_agent.simulator.cloud_store import catalogue_hash_from_name, own_catalogue

_VEHICLE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_UPWARD = re.compile(
    r"^(telemetry/[^/]+(/[^/]+)*|events|state/reported|commands/[^/]+/reply|ota/status|status"
    r"|catalog/[^/]+|diag/[^/]+(/[^/]+)*)$"
)
_DOWNWARD = re.compile(r"^(state/desired|commands/[^/]+|ota/jobs|catalog/[^/]+/ack)$")
_EARLIEST = datetime.datetime(1, 1, 2, tzinfo=datetime.UTC)
_MAX_REASON = 300


@dataclass(frozen=True, slots=True)
class StoreBatch:
    """A decoded telemetry batch: its rows go to ``batches`` and ``samples``."""

    vehicle: str
    topic: str
    key: str
    batch: Batch
    first_sample_at: datetime.datetime
    sent_at: datetime.datetime


@dataclass(frozen=True, slots=True)
class HoldBatch:
    """A version-3 batch whose catalogue is unknown: kept in ``held`` until it arrives."""

    vehicle: str
    topic: str
    key: str
    catalogue: bytes


@dataclass(frozen=True, slots=True)
class StoreCatalogue:
    """A checked signal catalogue: kept, acknowledged, and releases the batches it held."""

    vehicle: str
    topic: str
    key: str
    catalogue: Catalogue


@dataclass(frozen=True, slots=True)
class StoreState:
    """The latest ``status`` or ``state/reported`` of a vehicle (``column`` names which)."""

    vehicle: str
    topic: str
    key: str
    column: str
    text: str


@dataclass(frozen=True, slots=True)
class StoreEvent:
    """Any other upward message (events, command replies, OTA status, diagnostics)."""

    vehicle: str
    topic: str
    key: str


@dataclass(frozen=True, slots=True)
class Park:
    """Not storable: parked with ``reason`` (and acknowledged, never retried forever)."""

    vehicle: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class NotOurs:
    """A downward message (desired state, commands, OTA jobs): for vehicles, not workers."""


Outcome = StoreBatch | HoldBatch | StoreCatalogue | StoreState | StoreEvent | Park | NotOurs


def content_key(topic: str, payload: bytes) -> str:
    """The identity of a message without its own id: a hash of its topic and payload."""
    digest = hashlib.sha256(topic.encode() + b"\0" + payload).hexdigest()
    return f"h:{digest}"


def batch_key(batch: Batch) -> str:
    """The identity of a telemetry batch: the message id in its envelope."""
    return f"b:{batch.message_id.hex()}"


def split_subject(subject: str) -> tuple[str, str] | None:
    """``(vehicle, MQTT topic suffix)`` of an upstream-stream subject, or None."""
    if not subject.startswith(MESSAGES_SUBJECT_PREFIX + "vehicles."):
        return None
    parts = subject[len(MESSAGES_SUBJECT_PREFIX) :].split(".")
    if len(parts) < 3 or not _VEHICLE.fullmatch(parts[1]) or not all(parts[2:]):
        return None
    return parts[1], "/".join(parts[2:])


def _reason(text: str) -> str:
    return " ".join(text.split())[:_MAX_REASON]


def _utc(seconds: float) -> datetime.datetime:
    """A datetime for epoch ``seconds``; ValueError outside what PostgreSQL and Python hold."""
    try:
        return datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    except (OverflowError, OSError, ValueError) as error:
        raise ValueError(f"time {seconds!r} is out of range") from error


def _batch_times(batch: Batch) -> tuple[datetime.datetime, datetime.datetime]:
    # Wall time grows with the offset (the decoder admits positive resolutions only), so the
    # extreme offsets give the extreme times without building every sample.
    columns = [column.offsets for column in batch.signals if len(column.offsets)]
    first = _utc(batch.wall_time(min((min(offsets) for offsets in columns), default=0)))
    last = _utc(batch.wall_time(max((max(offsets) for offsets in columns), default=0)))
    if first < _EARLIEST:
        raise ValueError("time is before year 1")
    return first, last


def interpret(subject: str, payload: bytes, catalogues: Mapping[bytes, Catalogue]) -> Outcome:
    """What to do with one upstream message (see the module docstring)."""
    where = split_subject(subject)
    if where is None:
        return Park(None, f"not a vehicle topic: {subject[:120]!r}")
    vehicle, suffix = where
    topic = f"vehicles/{vehicle}/{suffix}"
    if _DOWNWARD.fullmatch(suffix):
        return NotOurs()
    if not _UPWARD.fullmatch(suffix):
        return Park(vehicle, f"not an upward topic: {suffix[:120]!r}")
    if suffix.startswith("telemetry/"):
        return _telemetry(vehicle, topic, payload, catalogues)
    if suffix.startswith("catalog/"):
        try:
            digest = catalogue_hash_from_name(suffix.removeprefix("catalog/"))
            catalogue = own_catalogue(parse_catalogue(payload, expected_hash=digest), vehicle)
        except (ValueError, BatchFormatError) as error:
            return Park(vehicle, _reason(f"catalogue refused: {error}"))
        return StoreCatalogue(vehicle, topic, content_key(topic, payload), catalogue)
    if suffix in ("status", "state/reported"):
        text = payload.decode("utf-8", errors="replace").replace("\x00", "\ufffd")
        column = "status" if suffix == "status" else "reported"
        return StoreState(vehicle, topic, content_key(topic, payload), column, text)
    return StoreEvent(vehicle, topic, content_key(topic, payload))


def _telemetry(
    vehicle: str, topic: str, payload: bytes, catalogues: Mapping[bytes, Catalogue]
) -> Outcome:
    try:
        batch = decode_batch(payload, catalogues=catalogues)
    except UnknownCatalogue as error:
        return HoldBatch(vehicle, topic, content_key(topic, payload), error.catalogue_hash)
    except BatchFormatError as error:
        return Park(vehicle, _reason(f"batch does not decode: {error}"))
    if batch.vehicle_id not in ("", vehicle):
        return Park(vehicle, _reason(f"batch names vehicle {batch.vehicle_id[:64]!r}"))
    try:
        first, last = _batch_times(batch)
    except ValueError as error:
        return Park(vehicle, _reason(f"batch time unusable: {error}"))
    return StoreBatch(vehicle, topic, batch_key(batch), batch, first, last)
