"""The parts ``fleet-bench`` starts and stops itself: worker processes and a throw-away database.

:class:`WorkerPool` runs K ``edge-agent-cloud worker`` processes (real processes, so one can
be SIGKILLed mid-transaction) and reads the stats line each prints every second.
:func:`scratch_database` creates a database with a unique name on a PostgreSQL server and
drops it afterwards.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

STOP_TIMEOUT_S = 15.0


class WorkerPool:
    """K worker processes on the same consumer; kill and restart them by index."""

    def __init__(self, workdir: Path, nats_urls: Sequence[str], dsn: str, count: int) -> None:
        self.workdir = workdir
        self.nats_urls = list(nats_urls)
        self.dsn = dsn
        self.count = count
        self.processes: list[subprocess.Popen[bytes] | None] = [None] * count
        self.logs: list[Path] = []
        self.killed = 0

    @property
    def pids(self) -> list[int]:
        """Process ids of the running workers."""
        return [p.pid for p in self.processes if p is not None and p.poll() is None]

    def start(self) -> None:
        """Start every worker."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        for index in range(self.count):
            self._spawn(index)

    def _spawn(self, index: int) -> None:
        log = self.workdir / f"worker-{index}-{len(self.logs)}.log"
        self.logs.append(log)
        with log.open("wb") as out:
            self.processes[index] = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "edge_agent.simulator.cloud",
                    "worker",
                    "--nats",
                    ",".join(self.nats_urls),
                    "--db",
                    self.dsn,
                    "--name",
                    f"worker-{index}",
                    "--stats-every",
                    "1",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,  # not a source checkout that would shadow the package
            )

    def kill(self, index: int) -> None:
        """SIGKILL worker ``index`` (mid-transaction, most likely) and reap it."""
        process = self.processes[index]
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait()
            self.killed += 1

    def restart(self, index: int) -> None:
        """Start worker ``index`` again (a new process, a new log)."""
        self.kill(index)
        self._spawn(index)

    def stop(self) -> None:
        """SIGTERM every worker (each finishes its transaction and prints its last stats)."""
        for process in self.processes:
            if process is not None and process.poll() is None:
                process.terminate()
        for process in self.processes:
            if process is None:
                continue
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def failed(self) -> list[str]:
        """Workers that ended on their own (not killed by us), with their log's last line."""
        ended = []
        for index, process in enumerate(self.processes):
            if process is not None and process.poll() not in (None, 0, -signal.SIGTERM):
                ended.append(f"worker-{index}: status {process.returncode}")
        return ended

    def stats(self) -> dict[str, Any]:
        """The last stats line of every worker process this pool ran, summed."""
        redeliveries = commits = retries = 0
        outcomes: dict[str, int] = {}
        for log in self.logs:
            last = _last_stats(log)
            if last is None:
                continue
            redeliveries += int(last.get("redeliveries", 0))
            commits += int(last.get("commits", 0))
            retries += int(last.get("db_retries", 0))
            for outcome, count in dict(last.get("outcomes", {})).items():
                outcomes[outcome] = outcomes.get(outcome, 0) + int(count)
        return {
            "redeliveries": redeliveries,
            "commits": commits,
            "db_retries": retries,
            "outcomes": outcomes,
            "processes": len(self.logs),
        }


def _last_stats(log: Path) -> dict[str, Any] | None:
    if not log.exists():
        return None
    last = None
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{") and '"worker"' in line:
            with contextlib.suppress(ValueError):
                last = json.loads(line)
    return last if isinstance(last, dict) else None


@contextlib.asynccontextmanager
async def scratch_database(admin_dsn: str) -> AsyncIterator[str]:
    """A new, empty database on ``admin_dsn``'s server; yields its DSN, drops it after."""
    name = f"fleet_bench_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    parts = urlsplit(admin_dsn)
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        admin = await asyncpg.connect(admin_dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def backend_pids(dsn: str) -> list[int]:
    """PostgreSQL backend processes serving ``dsn``'s database (for CPU accounting)."""
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
        return [int(row["pid"]) for row in rows]
    finally:
        await connection.close()


async def batch_rows(dsn: str) -> dict[tuple[str, str], tuple[float, float]]:
    """Every batch row: (vehicle, message id hex) -> (written_at, stored_at), epoch seconds.

    ``stored_at`` is JetStream's time of the message (when NATS stored it).
    """
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            "SELECT vehicle, encode(message_id, 'hex') AS id, "
            "extract(epoch FROM written_at)::float8 AS written, "
            "extract(epoch FROM stored_at)::float8 AS stored FROM batches"
        )
        return {
            (row["vehicle"], row["id"]): (float(row["written"]), float(row["stored"]))
            for row in rows
        }
    finally:
        await connection.close()
