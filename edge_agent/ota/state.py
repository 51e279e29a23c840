"""The persistent install state machine (``state.json``) and the install log.

Phases (``->`` is a durable step; any failure before SWITCHED ends in FAILED with ``current``
untouched; any failure after it ends in ROLLED_BACK)::

    IDLE -> DOWNLOADING -> DOWNLOADED -> VERIFIED -> INSTALLING -> INSTALLED
         -> SWITCHED (restart, trial boot, health gate) -> COMMITTED | ROLLED_BACK
"""

from __future__ import annotations

import enum
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edge_agent.ota.durable import append_line, read_json_lines, write_json_atomic

STATE_FORMAT = 1


class Phase(enum.StrEnum):
    """Where the current (or last) install attempt is."""

    IDLE = "idle"
    DOWNLOADING = "downloading"
    DOWNLOADED = "downloaded"
    VERIFIED = "verified"
    INSTALLING = "installing"
    INSTALLED = "installed"
    SWITCHED = "switched"
    COMMITTED = "committed"
    ROLLED_BACK = "rolled-back"
    FAILED = "failed"


TERMINAL_PHASES = frozenset({Phase.IDLE, Phase.COMMITTED, Phase.ROLLED_BACK, Phase.FAILED})
# Phases in which a job is under way before the switch: a restart resumes it from the start
# of its current step (download resumes with Range, verification and install are redone).
RESUMABLE_PHASES = frozenset(
    {Phase.DOWNLOADING, Phase.DOWNLOADED, Phase.VERIFIED, Phase.INSTALLING, Phase.INSTALLED}
)


@dataclass
class OtaState:
    """Everything needed to resume or finish an attempt after a crash or power loss."""

    phase: Phase = Phase.IDLE
    job_id: str = ""
    target: str = ""
    version: str = ""
    from_slot: str = ""
    to_slot: str = ""
    from_version: str = ""
    # The signed target we pinned: path, length, hashes, custom (from TUF targets metadata).
    target_info: dict[str, Any] = field(default_factory=dict)
    boot_attempts: int = 0
    waiting: str = ""
    progress: dict[str, Any] = field(default_factory=dict)
    code: str = ""
    reason: str = ""
    # Highest version ever committed here: nothing older is installed again.
    floor_version: str = ""
    finalised: bool = True  # log written and updater told (mark-good/-bad) for a final phase
    updated_at: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The JSON form written to ``state.json``."""
        data = asdict(self)
        data["phase"] = self.phase.value
        data["format"] = STATE_FORMAT
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OtaState:
        """Read the JSON form (unknown keys from newer versions are ignored)."""
        known = {name for name in cls.__dataclass_fields__ if name != "phase"}
        state = cls(**{k: v for k, v in data.items() if k in known})
        state.phase = Phase(data.get("phase", Phase.IDLE.value))
        return state

    @property
    def in_progress(self) -> bool:
        """Whether an attempt is under way (not in a final phase)."""
        return self.phase not in TERMINAL_PHASES


class StateStore:
    """Loads and durably saves ``state.json``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> OtaState:
        """The saved state, or a fresh IDLE state when there is none (or it is unreadable)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return OtaState()
        except (OSError, ValueError):
            # Only written atomically, so this is damage from outside: start clean but say so.
            return OtaState(code="state-unreadable", reason=f"{self.path} was unreadable")
        return OtaState.from_json(data) if isinstance(data, dict) else OtaState()

    def save(self, state: OtaState) -> None:
        """Write ``state`` atomically and durably."""
        state.updated_at = time.time()
        write_json_atomic(self.path, state.to_json())


class InstallLog:
    """Append-only JSON lines, one per attempt outcome; fsynced; a torn last line is ignored."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(
        self,
        *,
        job_id: str,
        old_version: str,
        new_version: str,
        result: str,
        code: str = "",
        reason: str = "",
    ) -> dict[str, Any]:
        """Record one outcome durably and return the record."""
        record = {
            "time": time.time(),
            "job_id": job_id,
            "old_version": old_version,
            "new_version": new_version,
            "result": result,
            "code": code,
            "reason": reason,
        }
        append_line(self.path, json.dumps(record, sort_keys=True))
        return record

    def records(self) -> list[dict[str, Any]]:
        """Every complete record, oldest first."""
        return read_json_lines(self.path)

    def has(self, job_id: str, result: str) -> bool:
        """Whether the outcome ``result`` of ``job_id`` is already recorded."""
        return any(r.get("job_id") == job_id and r.get("result") == result for r in self.records())
