"""Getting a usable spool file: health check, salvage (now or in the background), copies.

Opening checks the file (``PRAGMA quick_check``); a damaged one is salvaged then and there
(tools, tests) or, for the agent, reported as :class:`SpoolDamaged` so that the salvage
runs later on its own thread (:class:`BackgroundSalvage`) and never holds the start. Either
way the damaged copies left behind are pruned to the policy's bound and their size counted.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edge_agent.logs import get_logger
from edge_agent.spool.database import connect, health_problem
from edge_agent.spool.model import SpoolDamaged, SpoolPolicy
from edge_agent.spool.salvage import (
    SalvageReport,
    finish_interrupted_salvage,
    prune_damaged_copies,
    salvage_if_damaged,
)

_log = get_logger("edge_agent.spool")


@dataclass(slots=True)
class OpenedFile:
    """A spool file open for this process, with what opening it found."""

    connection: sqlite3.Connection
    salvage_reports: list[SalvageReport] = field(default_factory=list)
    damaged_files: int = 0
    damaged_bytes: int = 0


def log_salvage(report: SalvageReport) -> None:
    """Say what a salvage kept, set aside and lost (one warning line)."""
    _log.warning(
        "spool damaged: salvaged readable records, kept the damaged file aside",
        reason=report.reason,
        damaged_file=str(report.damaged_file),
        recovered=report.recovered,
        quarantined=report.quarantined,
        unreadable_ids=report.unreadable_ids,
    )


def salvage_now(path: Path, policy: SpoolPolicy, now: float) -> SalvageReport | None:
    """Salvage ``path`` if it is damaged, keeping at most the policy's damaged copies."""
    return salvage_if_damaged(
        path, now, policy.wal_autocheckpoint_pages, policy.max_damaged_copies, policy.max_bytes
    )


def open_file(path: Path, policy: SpoolPolicy, now: float, salvage_on_open: bool) -> OpenedFile:
    """Open (creating if need be) the spool file ``path``.

    A damaged file is salvaged first, or, without ``salvage_on_open``, makes this raise
    :class:`SpoolDamaged`. Raises ``SpoolLocked`` when another process has the file, and
    ``OSError`` or ``sqlite3.Error`` when the disk does not let it be created or opened.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    reports: list[SalvageReport] = []
    if salvage_on_open:
        report = salvage_now(path, policy, now)
        if report is not None:
            reports.append(report)
            log_salvage(report)
    else:
        finish_interrupted_salvage(path)
        problem = health_problem(path) if path.exists() else None
        if problem is not None:
            raise SpoolDamaged(path, problem)
    files, size = prune_damaged_copies(path, policy.max_damaged_copies, policy.max_bytes)
    connection = connect(path, policy.wal_autocheckpoint_pages)
    return OpenedFile(connection, reports, files, size)


def open_memory(policy: SpoolPolicy, first_id: int) -> OpenedFile:
    """An in-memory spool database whose record ids start above ``first_id``."""
    connection = connect(None, policy.wal_autocheckpoint_pages)
    connection.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('records', ?)", (first_id,))
    return OpenedFile(connection)


class BackgroundSalvage:
    """One salvage of a spool file on its own thread; its owner polls :attr:`running`."""

    def __init__(self, path: Path, policy: SpoolPolicy, now: Callable[[], float]) -> None:
        self.outcome: SalvageReport | Exception | None = None
        _log.info("spool salvage starting in the background", path=str(path))

        def run() -> None:
            try:
                self.outcome = salvage_now(path, policy, now())
            except Exception as error:  # the owner reports it (a full disk: retried later)
                self.outcome = error

        self._thread = threading.Thread(target=run, name=f"spool-salvage:{path.name}", daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        """Whether the salvage is still going on."""
        return self._thread.is_alive()

    def wait(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for it to end; whether it has."""
        self._thread.join(seconds)
        return not self._thread.is_alive()
