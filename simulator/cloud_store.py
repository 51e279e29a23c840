"""The cloud stand-in's database (SQLite): what a fleet sent, each message once.

Every upstream message that carries a message id (the MQTT v5 user property ``message-id``
the agent sets on every spooled record; for a batch without one, the id inside the batch) is
stored at most once: a repeat of a known id is counted as a duplicate and dropped. Telemetry
batches are decoded with ``edge_agent.modules.telemetry.batch.decode_batch``; one that does
not decode is kept aside with the reason. Status and reported state are kept as the latest
per vehicle.

Signal catalogues (``catalog/{hash}``) are checked against their hash and kept; each one
earns an acknowledgement (``catalog/{hash}/ack``, queued in :attr:`CloudStore.acks` for the
consumer to publish once the transaction is committed). A v3 batch whose catalogue has not
arrived yet is stored and *held* (never dropped): it is decoded the moment its catalogue
arrives, and :attr:`CloudStore.wanted` names the catalogues to fetch (the consumer
re-subscribes to their retained topics).
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_agent.modules.telemetry.batch import Batch, BatchFormatError, decode_batch
from edge_agent.modules.telemetry.batch.catalogue import Catalogue, parse_catalogue
from edge_agent.modules.telemetry.batch.errors import UnknownCatalogue

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    message_id TEXT PRIMARY KEY, vehicle TEXT NOT NULL, suffix TEXT NOT NULL,
    received_at REAL NOT NULL, size INTEGER NOT NULL, payload BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS batches (
    message_id TEXT PRIMARY KEY, vehicle TEXT NOT NULL, stream TEXT NOT NULL,
    sequence INTEGER NOT NULL, samples INTEGER NOT NULL, signals INTEGER NOT NULL,
    clock TEXT NOT NULL, decimation INTEGER NOT NULL, first_wall REAL, last_wall REAL
);
CREATE TABLE IF NOT EXISTS rejected (
    vehicle TEXT NOT NULL, suffix TEXT NOT NULL, message_id TEXT, reason TEXT NOT NULL,
    received_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS vehicles (
    vehicle TEXT PRIMARY KEY, status TEXT, reported TEXT, updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    vehicle TEXT PRIMARY KEY, duplicates INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS catalogues (
    hash TEXT PRIMARY KEY, vehicle TEXT NOT NULL, signals INTEGER NOT NULL,
    size INTEGER NOT NULL, document BLOB NOT NULL, received_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS held (
    message_id TEXT PRIMARY KEY, vehicle TEXT NOT NULL, catalogue TEXT NOT NULL,
    received_at REAL NOT NULL
);
"""
CATALOGUE_PREFIX = "catalog/"


@dataclass(frozen=True, slots=True)
class Incoming:
    """One message as the consumer got it."""

    topic: str
    payload: bytes
    message_id: str | None


def split_topic(topic: str) -> tuple[str, str] | None:
    """``(vehicle, suffix)`` of ``vehicles/{vid}/{suffix}``, or None for any other topic."""
    parts = topic.split("/", 2)
    if len(parts) != 3 or parts[0] != "vehicles" or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


class CloudStore:
    """A SQLite file of everything received; use from one thread at a time."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self._catalogues: dict[bytes, Catalogue] = {}
        for (document,) in self._db.execute("SELECT document FROM catalogues"):
            catalogue = parse_catalogue(document)
            self._catalogues[catalogue.hash] = catalogue
        self.acks: list[tuple[str, bytes]] = []
        """Acknowledgements to publish (topic, payload) after a committed ``ingest_many``."""
        self.wanted: set[tuple[str, str]] = set()
        """(vehicle, catalogue hash) pairs that held batches wait for."""

    def close(self) -> None:
        """Close the file; safe to call twice."""
        self._db.close()

    def ingest_many(self, messages: list[Incoming]) -> list[str]:
        """Store ``messages`` in one transaction; returns each one's outcome.

        Outcomes: ``stored``, ``duplicate``, ``state`` (latest status/reported kept),
        ``rejected`` (a batch that did not decode, or a foreign topic), ``held`` (a v3 batch
        stored until its catalogue arrives), ``catalogue`` (a catalogue kept and acknowledged).
        """
        outcomes: list[str] = []
        self._db.execute("BEGIN IMMEDIATE")
        try:
            outcomes = [self._ingest(message) for message in messages]
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return outcomes

    def _ingest(self, message: Incoming) -> str:
        now = time.time()
        where = split_topic(message.topic)
        if where is None:
            return "rejected"
        vehicle, suffix = where
        if suffix.startswith(CATALOGUE_PREFIX):
            return self._catalogue(vehicle, suffix, message.payload, now)
        if suffix in ("status", "state/reported"):
            column = "status" if suffix == "status" else "reported"
            self._db.execute(
                f"INSERT INTO vehicles (vehicle, {column}, updated_at) VALUES (?, ?, ?) "  # noqa: S608
                f"ON CONFLICT(vehicle) DO UPDATE SET {column} = excluded.{column}, "
                "updated_at = excluded.updated_at",
                (vehicle, message.payload.decode(errors="replace"), now),
            )
            if suffix == "status" or message.message_id is None:
                return "state"
        batch = None
        held: bytes | None = None
        message_id = message.message_id
        if suffix.startswith("telemetry/"):
            try:
                batch = decode_batch(message.payload, catalogues=self._catalogues)
            except UnknownCatalogue as error:
                held = error.catalogue_hash
                message_id = message_id or f"held:{vehicle}:{suffix}:{now}"
            except BatchFormatError as error:
                self._db.execute(
                    "INSERT INTO rejected VALUES (?, ?, ?, ?, ?)",
                    (vehicle, suffix, message_id, str(error), now),
                )
                return "rejected"
            else:
                message_id = message_id or batch.message_id.hex()
        if message_id is None:
            message_id = f"none:{vehicle}:{suffix}:{now}"
        inserted = self._db.execute(
            "INSERT OR IGNORE INTO messages VALUES (?, ?, ?, ?, ?, ?)",
            (message_id, vehicle, suffix, now, len(message.payload), message.payload),
        ).rowcount
        if not inserted:
            self._db.execute(
                "INSERT INTO counters (vehicle, duplicates) VALUES (?, 1) "
                "ON CONFLICT(vehicle) DO UPDATE SET duplicates = duplicates + 1",
                (vehicle,),
            )
            return "duplicate"
        if held is not None:
            self._db.execute(
                "INSERT INTO held VALUES (?, ?, ?, ?)", (message_id, vehicle, held.hex(), now)
            )
            self.wanted.add((vehicle, held.hex()))
            return "held"
        if batch is not None:
            self._record_batch(message_id, vehicle, batch)
        return "stored"

    def _record_batch(self, message_id: str, vehicle: str, batch: Batch) -> None:
        walls = [sample.wall for sample in batch.samples()]
        self._db.execute(
            "INSERT INTO batches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                message_id,
                vehicle,
                batch.stream,
                batch.sequence,
                batch.sample_count,
                len(batch.signals),
                batch.clock.value,
                batch.decimation,
                min(walls, default=None),
                max(walls, default=None),
            ),
        )

    def _catalogue(self, vehicle: str, suffix: str, document: bytes, now: float) -> str:
        """Check and keep a catalogue, acknowledge it, and decode the batches it held."""
        name = suffix[len(CATALOGUE_PREFIX) :]
        try:
            digest = catalogue_hash_from_name(name)
            catalogue = own_catalogue(parse_catalogue(document, expected_hash=digest), vehicle)
        except (ValueError, BatchFormatError) as error:
            reason = " ".join(str(error).splitlines())
            self._db.execute(
                "INSERT INTO rejected VALUES (?, ?, ?, ?, ?)", (vehicle, suffix, None, reason, now)
            )
            if len(name) == 32:  # say no, so the vehicle keeps writing v2
                refusal = json.dumps({"accepted": False, "reason": reason}).encode()
                self.acks.append((f"vehicles/{vehicle}/{suffix}/ack", refusal))
            return "rejected"
        known = self._catalogues.get(digest)
        if known is not None and known.document != catalogue.document:
            # Same content hash: parse_catalogue checked the payload, so only the framing
            # (compression) differs; the first document stays.
            catalogue = known
        if known is None:
            self._db.execute(
                "INSERT OR IGNORE INTO catalogues VALUES (?, ?, ?, ?, ?, ?)",
                (name, vehicle, len(catalogue), len(document), document, now),
            )
            self._catalogues[digest] = catalogue
            self._release(name)
        self.acks.append((f"vehicles/{vehicle}/{suffix}/ack", b'{"accepted":true}'))
        return "catalogue"

    def _release(self, name: str) -> None:
        rows = self._db.execute(
            "SELECT held.message_id, held.vehicle, messages.payload FROM held "
            "JOIN messages USING (message_id) WHERE held.catalogue = ?",
            (name,),
        ).fetchall()
        for message_id, vehicle, payload in rows:
            try:
                batch = decode_batch(payload, catalogues=self._catalogues)
            except BatchFormatError as error:
                self._db.execute(
                    "INSERT INTO rejected VALUES (?, ?, ?, ?, ?)",
                    (vehicle, "telemetry", message_id, str(error), time.time()),
                )
            else:
                self._record_batch(message_id, vehicle, batch)
            self._db.execute("DELETE FROM held WHERE message_id = ?", (message_id,))
        self.wanted = {(v, h) for v, h in self.wanted if h != name}

    # -- reading ---------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """Per vehicle: batches, samples, events, duplicates, rejected, status, desired version."""
        vehicles: dict[str, dict[str, Any]] = {}

        def entry(vehicle: str) -> dict[str, Any]:
            return vehicles.setdefault(
                vehicle,
                {
                    "messages": 0,
                    "bytes": 0,
                    "batches": 0,
                    "samples": 0,
                    "events": 0,
                    "duplicates": 0,
                    "rejected": 0,
                    "held": 0,
                    "catalogues": 0,
                    "status": None,
                    "desired_version": None,
                    "health_ok": None,
                },
            )

        for vehicle, count, size, events in self._db.execute(
            "SELECT vehicle, count(*), sum(size), sum(suffix = 'events') FROM messages "
            "GROUP BY vehicle"
        ):
            entry(vehicle).update(messages=count, bytes=size, events=events)
        for vehicle, count, samples in self._db.execute(
            "SELECT vehicle, count(*), sum(samples) FROM batches GROUP BY vehicle"
        ):
            entry(vehicle).update(batches=count, samples=samples)
        for vehicle, duplicates in self._db.execute("SELECT vehicle, duplicates FROM counters"):
            entry(vehicle)["duplicates"] = duplicates
        for vehicle, count in self._db.execute(
            "SELECT vehicle, count(*) FROM rejected GROUP BY vehicle"
        ):
            entry(vehicle)["rejected"] = count
        for vehicle, count in self._db.execute(
            "SELECT vehicle, count(*) FROM held GROUP BY vehicle"
        ):
            entry(vehicle)["held"] = count
        for vehicle, count in self._db.execute(
            "SELECT vehicle, count(*) FROM catalogues GROUP BY vehicle"
        ):
            entry(vehicle)["catalogues"] = count
        for vehicle, status, reported in self._db.execute(
            "SELECT vehicle, status, reported FROM vehicles"
        ):
            row = entry(vehicle)
            row["status"] = _field(status, "state")
            row["desired_version"] = _field(reported, "desired_version")
            health = _field(reported, "health")
            row["health_ok"] = health.get("ok") if isinstance(health, dict) else None
        return vehicles

    def payloads(self, vehicle: str, suffix: str) -> list[bytes]:
        """Stored payloads of ``vehicle`` on ``suffix`` (``diag/dtc``, ``events``), in order."""
        rows = self._db.execute(
            "SELECT payload FROM messages WHERE vehicle = ? AND suffix = ? ORDER BY rowid",
            (vehicle, suffix),
        )
        return [bytes(row[0]) for row in rows]

    def message_ids(self, vehicle: str, suffix_prefix: str = "") -> list[str]:
        """Stored message ids of ``vehicle`` (whose suffix starts with ``suffix_prefix``)."""
        rows = self._db.execute(
            "SELECT message_id FROM messages WHERE vehicle = ? AND suffix LIKE ? ORDER BY rowid",
            (vehicle, suffix_prefix + "%"),
        )
        return [row[0] for row in rows]


def own_catalogue(catalogue: Catalogue, vehicle: str) -> Catalogue:
    """``catalogue`` if ``vehicle`` may send it (it names no other vehicle); ValueError if not."""
    if catalogue.vehicle not in ("", vehicle):
        # Its batches would decode as another vehicle's: refuse it.
        raise ValueError(f"catalogue names vehicle {catalogue.vehicle[:40]!r}")
    return catalogue


def catalogue_hash_from_name(name: str) -> bytes:
    """The 16-byte hash a ``catalog/{hash}`` topic names; ValueError if it names none."""
    if len(name) != 32:
        raise ValueError("topic does not end in a 32-digit catalogue hash")
    return bytes.fromhex(name)


def _field(document: str | None, key: str) -> Any:
    if not document:
        return None
    try:
        parsed = json.loads(document)
    except ValueError:
        return None
    return parsed.get(key) if isinstance(parsed, dict) else None
