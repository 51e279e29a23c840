"""``edge-agent bench spool``: durable appends and drain against a plain fsync'd log.

Every spool figure counts a record only once its append returned, i.e. after the commit
and its fsync. The baseline, measured in the same run on the same file system with the
same records, is the simplest durable log: length + CRC32 + payload appended to a file,
then ``os.fsync``. Modes: one record per commit; groups of records per commit (what the
telemetry batcher and the async facade do); concurrent producers through ``AsyncSpool``
(group commit happens by itself); drain (lease + ack of 100 records, against reading
100 log records and fsyncing the consumed offset).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import struct
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge_agent.bench.report import machine
from edge_agent.spool import AppendRequest, AsyncSpool, Spool, SpoolPolicy, SpoolPriority
from edge_agent.spool.database import DURABILITY

RECORD = struct.Struct("<II")
GROUP = 32
PRODUCERS = 16
SAMPLES_PER_S = 40_000
BYTES_PER_SAMPLE = 1.9  # batch format v1 on the synthetic drive (v2: 1.7; edge-agent bench batch)


def _payloads(count: int, size: int) -> list[bytes]:
    block = os.urandom(size)
    return [index.to_bytes(4, "big") + block[4:] for index in range(count)]


def _log_appends(path: Path, payloads: list[bytes], group: int) -> float:
    """Baseline: append records to a file, fsync after every ``group``; records/s."""
    started = time.perf_counter()
    with path.open("ab", buffering=0) as log:
        for start in range(0, len(payloads), group):
            chunk = payloads[start : start + group]
            log.write(b"".join(RECORD.pack(len(p), zlib.crc32(p)) + p for p in chunk))
            os.fsync(log.fileno())
    return len(payloads) / (time.perf_counter() - started)


def _log_drain(path: Path) -> float:
    """Baseline drain: read 100 records, then fsync the consumed offset; records/s.

    That is what an append-log spool must do to remember its acks (CRCs are checked).
    """
    started = time.perf_counter()
    count = 0
    offset_file = path.with_suffix(".offset")
    with path.open("rb") as log, offset_file.open("wb", buffering=0) as offsets:
        while True:
            read = 0
            while read < 100 and (header := log.read(RECORD.size)):
                size, crc = RECORD.unpack(header)
                if zlib.crc32(log.read(size)) != crc:
                    raise RuntimeError("baseline log damaged")
                read += 1
            if not read:
                break
            count += read
            offsets.seek(0)
            offsets.write(log.tell().to_bytes(8, "little"))
            os.fsync(offsets.fileno())
    return count / (time.perf_counter() - started)


def _spool_appends(path: Path, payloads: list[bytes], group: int) -> float:
    with Spool(path, SpoolPolicy(reserve_bytes=0)) as spool:
        started = time.perf_counter()
        for start in range(0, len(payloads), group):
            chunk = payloads[start : start + group]
            results = spool.append_many(
                [AppendRequest("bench", p, SpoolPriority.TELEMETRY_HIGH) for p in chunk]
            )
            if not all(result.stored for result in results):
                raise RuntimeError("spool refused a record during the benchmark")
        return len(payloads) / (time.perf_counter() - started)


def _spool_drain(path: Path, count: int) -> float:
    with Spool(path, SpoolPolicy(reserve_bytes=0)) as spool:
        started = time.perf_counter()
        drained = 0
        while records := spool.lease(100):
            drained += spool.ack(record.id for record in records)
        elapsed = time.perf_counter() - started
    if drained != count:
        raise RuntimeError(f"drained {drained} of {count} records")
    return drained / elapsed


async def _async_producers(path: Path, payloads: list[bytes], producers: int) -> float:
    spool = await AsyncSpool.open(path, SpoolPolicy(reserve_bytes=0))
    share = len(payloads) // producers

    async def produce(index: int) -> None:
        for payload in payloads[index * share : (index + 1) * share]:
            result = await spool.append("bench", payload, priority=SpoolPriority.TELEMETRY_HIGH)
            if not result.stored:
                raise RuntimeError("spool refused a record during the benchmark")

    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for index in range(producers):
            group.create_task(produce(index), name=f"bench.producer{index}")
    elapsed = time.perf_counter() - started
    await spool.close()
    return share * producers / elapsed


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def run_spool_benchmark(records: int = 1000, size: int = 4096, runs: int = 3) -> dict[str, Any]:
    """Measure every mode ``runs`` times, interleaved with its baseline; report medians."""
    payloads = _payloads(records, size)
    figures: dict[str, list[float]] = {}

    def measure(name: str, run: Callable[[Path], float], directory: Path) -> None:
        figures.setdefault(name, []).append(run(directory))

    root = os.environ.get("EDGE_AGENT_BENCH_DIR")
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="spool-bench-", dir=root) as temporary:
            where = Path(temporary)
            measure("append_1", lambda d: _spool_appends(d / "a.db", payloads, 1), where)
            measure("log_append_1", lambda d: _log_appends(d / "a.log", payloads, 1), where)
            measure("drain", lambda d: _spool_drain(d / "a.db", records), where)
            measure("log_drain", lambda d: _log_drain(d / "a.log"), where)
            measure("append_group", lambda d: _spool_appends(d / "g.db", payloads, GROUP), where)
            measure("log_append_group", lambda d: _log_appends(d / "g.log", payloads, GROUP), where)
            measure(
                "append_async",
                lambda d: asyncio.run(_async_producers(d / "p.db", payloads, PRODUCERS)),
                where,
            )
    rate = {name: round(_median(values)) for name, values in figures.items()}
    batch_bytes = SAMPLES_PER_S * BYTES_PER_SAMPLE  # one batch per second of 40k samples
    return {
        "records": records,
        "record_bytes": size,
        "runs": runs,
        "durability": DURABILITY,
        "baseline": "append-only file, 8-byte length+CRC32 header, os.fsync after each commit",
        "append_records_per_s": rate["append_1"],
        "baseline_append_records_per_s": rate["log_append_1"],
        "append_ratio": round(rate["append_1"] / rate["log_append_1"], 3),
        "group_commit": {
            "records_per_commit": GROUP,
            "append_records_per_s": rate["append_group"],
            "baseline_append_records_per_s": rate["log_append_group"],
            "ratio": round(rate["append_group"] / rate["log_append_group"], 3),
        },
        "async_producers": {
            "producers": PRODUCERS,
            "append_records_per_s": rate["append_async"],
        },
        "drain_records_per_s": rate["drain"],
        "baseline_drain_records_per_s": rate["log_drain"],
        "drain_ratio": round(rate["drain"] / rate["log_drain"], 3),
        "drain_batch": 100,
        "telemetry_40k_samples_per_s": {
            "batch_bytes_per_s": round(batch_bytes),
            "spool_mb_per_s_group_commit": round(rate["append_group"] * size / 1e6, 2),
            "headroom_x": round(rate["append_group"] * size / batch_bytes, 1),
        },
        "directory": root or tempfile.gettempdir(),
        "machine": machine(),
    }


def bench_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Entry for ``edge-agent bench spool``."""
    return run_spool_benchmark(records=args.messages or 1000, runs=args.runs or 3)
