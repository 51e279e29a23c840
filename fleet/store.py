"""Writing the fleet's data to PostgreSQL, and reading back what it holds (for the bench).

Every ``write_*`` runs inside the caller's transaction and first claims the message's
identity in ``received`` (edge_agent.fleet.schema): a claim that finds a row writes nothing
and returns ``"duplicate"``. Catalogue arrivals and held batches take a per-catalogue
advisory lock, so a batch held by one worker while another stores its catalogue is never
left behind.
"""

from __future__ import annotations

import datetime
from collections.abc import MutableMapping

import asyncpg

from edge_agent.fleet.batch_rows import write_batches
from edge_agent.fleet.schema import create_tables
from edge_agent.fleet.upstream import (
    HoldBatch,
    Outcome,
    Park,
    StoreBatch,
    StoreCatalogue,
    StoreEvent,
    StoreState,
    content_key,
    interpret,
)
from edge_agent.modules.telemetry.batch.catalogue import Catalogue, parse_catalogue


async def ensure_schema(dsn: str) -> None:
    """Create the fleet tables and today's partitions in the database ``dsn`` (idempotent)."""
    connection = await asyncpg.connect(dsn)
    try:
        await create_tables(connection)
    finally:
        await connection.close()


async def _claim(
    connection: asyncpg.Connection, vehicle: str, key: str, kind: str, stored_at: datetime.datetime
) -> bool:
    claimed = await connection.fetchval(
        "INSERT INTO received (vehicle, key, kind, stored_at) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT DO NOTHING RETURNING true",
        vehicle,
        key,
        kind,
        stored_at,
    )
    return bool(claimed)


async def write_batch(
    connection: asyncpg.Connection, item: StoreBatch, stored_at: datetime.datetime
) -> str:
    """Store a decoded batch (one ``batches`` row, its ``samples``); ``stored``/``duplicate``."""
    (outcome,) = await write_batches(connection, [(item, stored_at)])
    return outcome


async def write_event(
    connection: asyncpg.Connection, item: StoreEvent, payload: bytes, stored_at: datetime.datetime
) -> str:
    """Store an event (or command reply, OTA status, diagnostics); ``stored``/``duplicate``."""
    if not await _claim(connection, item.vehicle, item.key, "event", stored_at):
        return "duplicate"
    await connection.execute(
        "INSERT INTO events (vehicle, topic, key, payload, stored_at) VALUES ($1, $2, $3, $4, $5)",
        item.vehicle,
        item.topic.split("/", 2)[2],
        item.key,
        payload,
        stored_at,
    )
    return "stored"


async def write_state(
    connection: asyncpg.Connection, item: StoreState, stored_at: datetime.datetime
) -> str:
    """Keep the newest status / reported state (an older redelivery changes nothing).

    No identity claim: the same content may rightly come back (online, offline, online),
    and the newest-wins rule on JetStream's store time is idempotent by itself.
    """
    status = item.column == "status"
    column, when = ("status", "status_at") if status else ("reported", "reported_at")
    await connection.execute(
        f"INSERT INTO vehicles (vehicle, {column}, {when}) VALUES ($1, $2, $3) "  # noqa: S608 - fixed names
        f"ON CONFLICT (vehicle) DO UPDATE SET {column} = excluded.{column}, "
        f"{when} = excluded.{when} "
        f"WHERE vehicles.{when} IS NULL OR vehicles.{when} <= excluded.{when}",
        item.vehicle,
        item.text,
        stored_at,
    )
    return "state"


async def _lock_catalogue(connection: asyncpg.Connection, digest: bytes) -> None:
    await connection.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 21))", digest.hex())


async def load_catalogue(connection: asyncpg.Connection, digest: bytes) -> Catalogue | None:
    """The catalogue ``digest`` if some worker stored it, else None."""
    document = await connection.fetchval("SELECT document FROM catalogues WHERE hash = $1", digest)
    return None if document is None else parse_catalogue(bytes(document), expected_hash=digest)


async def write_held(
    connection: asyncpg.Connection,
    item: HoldBatch,
    payload: bytes,
    stored_at: datetime.datetime,
    catalogues: MutableMapping[bytes, Catalogue],
) -> str:
    """Hold a batch until its catalogue arrives; decode it now if it arrived meanwhile."""
    await _lock_catalogue(connection, item.catalogue)
    known = await load_catalogue(connection, item.catalogue)
    if known is not None:
        catalogues[item.catalogue] = known
        return await write_outcome(
            connection, _subject(item.topic), payload, stored_at, catalogues, deliveries=0
        )
    await connection.execute(
        "INSERT INTO held (vehicle, key, catalogue, topic, payload, stored_at) "
        "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        item.vehicle,
        item.key,
        item.catalogue,
        item.topic,
        payload,
        stored_at,
    )
    return "held"


async def write_catalogue(
    connection: asyncpg.Connection,
    item: StoreCatalogue,
    stored_at: datetime.datetime,
    catalogues: MutableMapping[bytes, Catalogue],
) -> str:
    """Keep a catalogue and decode every batch held for it; returns ``catalogue``."""
    digest = item.catalogue.hash
    await _lock_catalogue(connection, digest)
    await connection.execute(
        "INSERT INTO catalogues (hash, vehicle, document, stored_at) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (hash) DO NOTHING",
        digest,
        item.vehicle,
        item.catalogue.document,
        stored_at,
    )
    catalogues[digest] = item.catalogue
    held = await connection.fetch(
        "DELETE FROM held WHERE catalogue = $1 RETURNING topic, payload, stored_at", digest
    )
    for row in held:
        await write_outcome(
            connection,
            _subject(row["topic"]),
            bytes(row["payload"]),
            row["stored_at"],
            catalogues,
            deliveries=0,
        )
    return "catalogue"


async def park(
    connection: asyncpg.Connection,
    subject: str,
    payload: bytes,
    reason: str,
    *,
    vehicle: str | None,
    deliveries: int,
    stream_sequence: int | None,
    stored_at: datetime.datetime,
) -> str:
    """Keep an unstorable message aside with its reason (once); returns ``parked``."""
    key = "p:" + content_key(subject, payload)
    if not await _claim(connection, vehicle or "", key, "parked", stored_at):
        return "duplicate"
    await connection.execute(
        "INSERT INTO parked (vehicle, subject, reason, deliveries, stream_sequence, payload) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        vehicle,
        subject,
        reason,
        deliveries,
        stream_sequence,
        payload,
    )
    return "parked"


def _subject(topic: str) -> str:
    return "$MQTT.msgs." + topic.replace("/", ".")


async def write_outcome(
    connection: asyncpg.Connection,
    subject: str,
    payload: bytes,
    stored_at: datetime.datetime,
    catalogues: MutableMapping[bytes, Catalogue],
    *,
    deliveries: int,
    stream_sequence: int | None = None,
) -> str:
    """Interpret one upstream message and write what it calls for; returns the outcome name.

    ``ignored`` for a downward message (not the workers' to store).
    """
    item = interpret(subject, payload, catalogues)
    return await write_item(
        connection,
        item,
        subject,
        payload,
        stored_at,
        catalogues,
        deliveries=deliveries,
        stream_sequence=stream_sequence,
    )


async def write_item(  # noqa: PLR0917 - the message's parts, as write_outcome has them
    connection: asyncpg.Connection,
    item: Outcome,
    subject: str,
    payload: bytes,
    stored_at: datetime.datetime,
    catalogues: MutableMapping[bytes, Catalogue],
    *,
    deliveries: int,
    stream_sequence: int | None = None,
) -> str:
    """Write what an interpreted message calls for; returns the outcome name."""
    if isinstance(item, StoreBatch):
        return await write_batch(connection, item, stored_at)
    if isinstance(item, HoldBatch):
        return await write_held(connection, item, payload, stored_at, catalogues)
    if isinstance(item, StoreCatalogue):
        return await write_catalogue(connection, item, stored_at, catalogues)
    if isinstance(item, StoreState):
        return await write_state(connection, item, stored_at)
    if isinstance(item, StoreEvent):
        return await write_event(connection, item, payload, stored_at)
    if isinstance(item, Park):
        return await park(
            connection,
            subject,
            payload,
            item.reason,
            vehicle=item.vehicle,
            deliveries=deliveries,
            stream_sequence=stream_sequence,
            stored_at=stored_at,
        )
    return "ignored"


# -- reading (the bench, the tests, an operator) -------------------------------------------

COUNTS = {
    "batches": "SELECT count(*) FROM batches",
    "samples": "SELECT count(*) FROM samples",
    "events": "SELECT count(*) FROM events WHERE topic = 'events'",
    "messages": "SELECT count(*) FROM events",
    "parked": "SELECT count(*) FROM parked",
    "held": "SELECT count(*) FROM held",
    "vehicles": "SELECT count(*) FROM vehicles",
    "catalogues": "SELECT count(*) FROM catalogues",
}
DUPLICATES = (
    "SELECT count(*) - count(DISTINCT (vehicle, message_id)) FROM batches",
    "SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM samples "
    "GROUP BY vehicle, message_id, signal, ordinal HAVING count(*) > 1) AS repeated",
    "SELECT count(*) - count(DISTINCT (vehicle, key)) FROM events",
    "SELECT count(*) - count(DISTINCT (subject, payload)) FROM parked",
)


async def counts(dsn: str) -> dict[str, int]:
    """Rows per table, and ``duplicate_rows``: rows whose identity repeats (counted by SQL)."""
    connection = await asyncpg.connect(dsn)
    try:
        result = {name: int(await connection.fetchval(query)) for name, query in COUNTS.items()}
        result["duplicate_rows"] = sum(
            [int(await connection.fetchval(query)) for query in DUPLICATES]
        )
        return result
    finally:
        await connection.close()


async def send_to_row_ms(dsn: str) -> dict[str, float | None]:
    """p50/p99/max of ``written_at - sent_at`` over every batch, in milliseconds."""
    connection = await asyncpg.connect(dsn)
    try:
        row = await connection.fetchrow(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS p50, "
            "percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) AS p99, max(ms) AS max "
            "FROM (SELECT extract(epoch FROM written_at - sent_at) * 1000 AS ms FROM batches) t"
        )
        return {key: None if row[key] is None else float(row[key]) for key in ("p50", "p99", "max")}
    finally:
        await connection.close()
