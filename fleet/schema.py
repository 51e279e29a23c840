"""The fleet database's tables (PostgreSQL): what the workers write, partitioned by time.

Idempotency: every stored upstream message (status and reported state aside: newest wins)
first claims its identity in ``received``
(``vehicle`` + ``key``: ``b:<batch message id>`` for a telemetry batch, from its envelope;
``h:<sha256 of topic and payload>`` for anything else) with ``ON CONFLICT DO NOTHING``, in
the same transaction as its rows; a message whose claim finds a row writes nothing. So a
vehicle re-sending after a lost PUBACK and a JetStream redelivery both write nothing twice.
``received`` is the one table that is not time-partitioned (its key does not hold a time);
``prune_received`` keeps it bounded (older than the dedupe horizon: 30 days by default,
longer than any spool keeps a record).

Time partitions: ``batches`` by ``sent_at`` (the batch's newest sample: the vehicle's own
time, so a re-sent batch lands in the same partition), ``samples`` by sample time,
``events`` by the time JetStream stored them. One partition per UTC day, made ahead of
time by :func:`ensure_partitions`; anything outside them (an unsynchronised vehicle clock
in 1970) lands in each table's ``_default`` partition, never refused.
"""

from __future__ import annotations

import datetime

import asyncpg

SCHEMA_LOCK = 2_1_0001  # pg_advisory_xact_lock key: one worker at a time changes the schema
PARTITIONED = {"batches": "sent_at", "samples": "at", "events": "stored_at"}
DEDUPE_HORIZON = datetime.timedelta(days=30)

TABLES = """
CREATE TABLE IF NOT EXISTS received (
    vehicle text NOT NULL,
    key text NOT NULL,
    kind text NOT NULL,
    stored_at timestamptz NOT NULL,
    written_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (vehicle, key)
);
CREATE INDEX IF NOT EXISTS received_written ON received (written_at);
CREATE TABLE IF NOT EXISTS batches (
    vehicle text NOT NULL,
    message_id bytea NOT NULL,
    stream text NOT NULL,
    sequence bigint NOT NULL,
    version smallint NOT NULL,
    samples integer NOT NULL,
    signals integer NOT NULL,
    clock text NOT NULL,
    decimation integer NOT NULL,
    catalogue bytea,
    first_sample_at timestamptz NOT NULL,
    sent_at timestamptz NOT NULL,
    stored_at timestamptz NOT NULL,
    written_at timestamptz NOT NULL DEFAULT clock_timestamp()
) PARTITION BY RANGE (sent_at);
CREATE TABLE IF NOT EXISTS samples (
    vehicle text NOT NULL,
    message_id bytea NOT NULL,
    signal text NOT NULL,
    ordinal integer NOT NULL,
    at timestamptz NOT NULL,
    value_float double precision,
    value_int bigint,
    value_text text,
    value_bytes bytea
) PARTITION BY RANGE (at);
CREATE TABLE IF NOT EXISTS events (
    vehicle text NOT NULL,
    topic text NOT NULL,
    key text NOT NULL,
    payload bytea NOT NULL,
    stored_at timestamptz NOT NULL,
    written_at timestamptz NOT NULL DEFAULT clock_timestamp()
) PARTITION BY RANGE (stored_at);
CREATE TABLE IF NOT EXISTS batches_default PARTITION OF batches DEFAULT;
CREATE TABLE IF NOT EXISTS samples_default PARTITION OF samples DEFAULT;
CREATE TABLE IF NOT EXISTS events_default PARTITION OF events DEFAULT;
CREATE INDEX IF NOT EXISTS batches_identity ON batches (vehicle, message_id);
CREATE INDEX IF NOT EXISTS samples_signal ON samples (vehicle, signal, at);
CREATE TABLE IF NOT EXISTS vehicles (
    vehicle text PRIMARY KEY,
    status text,
    status_at timestamptz,
    reported text,
    reported_at timestamptz
);
CREATE TABLE IF NOT EXISTS catalogues (
    hash bytea PRIMARY KEY,
    vehicle text NOT NULL,
    document bytea NOT NULL,
    stored_at timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS held (
    vehicle text NOT NULL,
    key text NOT NULL,
    catalogue bytea NOT NULL,
    topic text NOT NULL,
    payload bytea NOT NULL,
    stored_at timestamptz NOT NULL,
    PRIMARY KEY (vehicle, key)
);
CREATE INDEX IF NOT EXISTS held_catalogue ON held (catalogue);
CREATE TABLE IF NOT EXISTS parked (
    id bigserial PRIMARY KEY,
    vehicle text,
    subject text NOT NULL,
    reason text NOT NULL,
    deliveries integer NOT NULL,
    stream_sequence bigint,
    payload bytea NOT NULL,
    parked_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
"""


def _day_partition(table: str, day: datetime.date) -> str:
    start = datetime.datetime.combine(day, datetime.time(), datetime.UTC)
    end = start + datetime.timedelta(days=1)
    name = f"{table}_p{day:%Y%m%d}"
    return (
        f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF {table} "
        f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
    )


async def create_tables(connection: asyncpg.Connection) -> None:
    """Create every table (idempotent; serialised between workers by an advisory lock)."""
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock($1)", SCHEMA_LOCK)
        await connection.execute(TABLES)
    await ensure_partitions(connection)


async def ensure_partitions(
    connection: asyncpg.Connection,
    *,
    today: datetime.date | None = None,
    days_back: int = 1,
    days_ahead: int = 2,
) -> None:
    """Make the daily partitions from ``days_back`` before to ``days_ahead`` after ``today``.

    A day whose rows already sit in the default partition keeps them there (PostgreSQL
    refuses to create that partition): nothing is moved, nothing lost.
    """
    today = today or datetime.datetime.now(datetime.UTC).date()
    for offset in range(-days_back, days_ahead + 1):
        day = today + datetime.timedelta(days=offset)
        for table in PARTITIONED:
            try:
                async with connection.transaction():
                    await connection.execute("SELECT pg_advisory_xact_lock($1)", SCHEMA_LOCK)
                    await connection.execute(_day_partition(table, day))
            except asyncpg.CheckViolationError:
                continue  # rows of that day are in the default partition already


async def prune_received(
    connection: asyncpg.Connection, horizon: datetime.timedelta = DEDUPE_HORIZON
) -> int:
    """Forget message identities older than ``horizon``; returns how many were removed."""
    status = await connection.execute(
        "DELETE FROM received WHERE written_at < clock_timestamp() - $1::interval", horizon
    )
    return int(status.split()[-1])
