"""Telemetry batches as rows: many batches per statement, each written at most once.

The hot path of the workers. One fetch's batches cost three statements whatever their
number: one identity claim for all of them (``INSERT ... SELECT FROM unnest(...) ON
CONFLICT DO NOTHING RETURNING``), one COPY of the ``batches`` rows of those claimed, one
COPY of their ``samples``. A batch whose claim found a row (a re-send, a redelivery, or a
twin in the same fetch) writes nothing.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

import asyncpg

from edge_agent.fleet.upstream import StoreBatch
from edge_agent.modules.telemetry.batch import SampleValue

BATCH_COLUMNS = (
    "vehicle",
    "message_id",
    "stream",
    "sequence",
    "version",
    "samples",
    "signals",
    "clock",
    "decimation",
    "catalogue",
    "first_sample_at",
    "sent_at",
    "stored_at",
)
SAMPLE_COLUMNS = (
    "vehicle",
    "message_id",
    "signal",
    "ordinal",
    "at",
    "value_float",
    "value_int",
    "value_text",
    "value_bytes",
)
_INT64 = 1 << 63
_CLAIM = (
    "INSERT INTO received (vehicle, key, kind, stored_at) "
    "SELECT vehicle, key, 'batch', stored_at "
    "FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS claim(vehicle, key, stored_at) "
    "ON CONFLICT DO NOTHING RETURNING vehicle, key"
)


def value_columns(value: SampleValue) -> tuple[Any, Any, Any, Any]:
    """(float, int, text, bytes) columns of one value; exactly one is not None."""
    if isinstance(value, bool):
        return None, int(value), None, None
    if isinstance(value, int):
        if -_INT64 <= value < _INT64:
            return None, value, None, None
        return None, None, str(value), None
    if isinstance(value, float):
        return value, None, None, None
    if isinstance(value, str):
        if "\x00" in value:  # PostgreSQL text cannot hold NUL: keep the UTF-8 bytes
            return None, None, None, value.encode()
        return None, None, value, None
    return None, None, None, bytes(value)


def _batch_row(item: StoreBatch, stored_at: datetime.datetime) -> tuple[Any, ...]:
    batch = item.batch
    return (
        item.vehicle,
        batch.message_id,
        batch.stream,
        batch.sequence,
        batch.version,
        batch.sample_count,
        len(batch.signals),
        batch.clock.value,
        batch.decimation,
        batch.catalogue or None,
        item.first_sample_at,
        item.sent_at,
        stored_at,
    )


def _sample_rows(item: StoreBatch) -> list[tuple[Any, ...]]:
    batch = item.batch
    rows = []
    for column in batch.signals:
        for ordinal, (offset, value) in enumerate(zip(column.offsets, column.values, strict=True)):
            at = datetime.datetime.fromtimestamp(batch.wall_time(offset), datetime.UTC)
            rows.append(
                (item.vehicle, batch.message_id, column.name, ordinal, at, *value_columns(value))
            )
    return rows


async def write_batches(
    connection: asyncpg.Connection, items: Sequence[tuple[StoreBatch, datetime.datetime]]
) -> list[str]:
    """Store decoded batches (with their JetStream store times); ``stored``/``duplicate`` each."""
    if not items:
        return []
    claimed = {
        (row["vehicle"], row["key"])
        for row in await connection.fetch(
            _CLAIM,
            [item.vehicle for item, _ in items],
            [item.key for item, _ in items],
            [stored_at for _, stored_at in items],
        )
    }
    outcomes: list[str] = []
    batch_rows: list[tuple[Any, ...]] = []
    sample_rows: list[tuple[Any, ...]] = []
    for item, stored_at in items:
        identity = (item.vehicle, item.key)
        if identity not in claimed:
            outcomes.append("duplicate")
            continue
        claimed.discard(identity)  # a twin later in this fetch is a duplicate
        outcomes.append("stored")
        batch_rows.append(_batch_row(item, stored_at))
        sample_rows.extend(_sample_rows(item))
    if batch_rows:
        await connection.copy_records_to_table("batches", records=batch_rows, columns=BATCH_COLUMNS)
    if sample_rows:
        await connection.copy_records_to_table(
            "samples", records=sample_rows, columns=SAMPLE_COLUMNS
        )
    return outcomes
