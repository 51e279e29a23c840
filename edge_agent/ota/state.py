"""The persistent install state machine (``state.json``) and the install log.

Phases (``->`` is a durable step; any failure before SWITCHED ends in FAILED with ``current``
untouched; any failure after it ends in ROLLED_BACK)::

    IDLE -> DOWNLOADING -> DOWNLOADED -> VERIFIED -> INSTALLING -> INSTALLED
         -> SWITCHED (restart, trial boot, health gate) -> COMMITTED | ROLLED_BACK

``state.json`` may have been written by another version (a newer one that was rolled back, or
one with a later format) or damaged. Reading never fails: what this version does not
understand becomes a default value plus a one-line ``read_warning``, and a phase it does not
know becomes :attr:`Phase.UNKNOWN`, which the OTA module settles from the slots on start
(:mod:`edge_agent.ota.settle`).
"""

from __future__ import annotations

import enum
import json
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from edge_agent.durable import append_line, read_json_lines, write_json_atomic
from edge_agent.ota.errors import Code

STATE_FORMAT = 1
# state.json is a few kilobytes; anything far larger is not ours and is not read whole.
MAX_STATE_BYTES = 1024 * 1024
# Each value quoted in a read warning is cut to this many characters (one line stays short).
QUOTE_CHARS = 40


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
    # Never written by this version: what it reads when state.json names a phase it does not
    # know (or is in a later format). The module settles it from the slots on start.
    UNKNOWN = "unknown"


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
    # What this version did not understand when it read state.json (one line; "" = all of
    # it). Not saved: it describes the file as read, and a save replaces that file.
    read_warning: str = ""

    def to_json(self) -> dict[str, Any]:
        """The JSON form written to ``state.json``."""
        data = asdict(self)
        del data["read_warning"]
        data["phase"] = self.phase.value
        data["format"] = STATE_FORMAT
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OtaState:
        """Read the JSON form; never fails.

        Keys this version does not know are ignored (additions of newer versions). A known key
        with a value of the wrong type keeps its default; an unknown phase, or anything not
        understood in the middle of an attempt (a later format included), reads as
        :attr:`Phase.UNKNOWN`. Each is named in the one-line ``read_warning``.
        """
        state = cls()
        problems: list[str] = []
        written_format = data.get("format", STATE_FORMAT)
        if not _is_int(written_format) or written_format > STATE_FORMAT:
            problems.append(f"format {_quote(written_format)} is newer than {STATE_FORMAT}")
        for item in fields(cls):
            if item.name in ("phase", "read_warning") or item.name not in data:
                continue
            value = _typed(data[item.name], getattr(state, item.name))
            if value is None:
                problems.append(f"{item.name} {_quote(data[item.name])} is not understood")
            else:
                setattr(state, item.name, value)
        raw_phase = data.get("phase", Phase.IDLE.value)
        known = {phase.value for phase in Phase} - {Phase.UNKNOWN.value}
        if not isinstance(raw_phase, str) or raw_phase not in known:
            problems.insert(0, f"phase {_quote(raw_phase)} is not known to this version")
            state.phase = Phase.UNKNOWN
        else:
            state.phase = Phase(raw_phase)
            if problems and (state.in_progress or not state.finalised):
                # Half understood in the middle of an attempt: nothing read can be relied on
                # to finish it; the module settles it from the slots instead.
                state.phase = Phase.UNKNOWN
        if problems:
            state.read_warning = "state.json not fully understood: " + "; ".join(problems)
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
        """The saved state; a fresh IDLE state when there is none. Never raises.

        An unreadable file (damaged, truncated, not JSON, too large) reads as IDLE with the
        code ``state-unreadable`` and the reason: it is only written atomically, so this is
        damage from outside and nothing in it can be trusted to finish an attempt with.
        """
        try:
            with self.path.open("rb") as handle:
                raw = handle.read(MAX_STATE_BYTES + 1)
        except FileNotFoundError:
            return OtaState()
        except OSError as error:
            return self._unreadable(f"cannot be read ({error.strerror or error})")
        if len(raw) > MAX_STATE_BYTES:
            return self._unreadable(f"is larger than {MAX_STATE_BYTES} bytes")
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            return self._unreadable(f"is not valid JSON ({len(raw)} bytes; damaged or truncated)")
        if not isinstance(data, dict):
            return self._unreadable(f"holds a JSON {type(data).__name__}, not an object")
        return OtaState.from_json(data)

    def _unreadable(self, why: str) -> OtaState:
        reason = f"{self.path} {why}; starting from idle"
        return OtaState(code=Code.STATE_UNREADABLE.value, reason=reason, read_warning=reason)

    def save(self, state: OtaState) -> None:
        """Write ``state`` atomically and durably."""
        state.updated_at = time.time()
        write_json_atomic(self.path, state.to_json())


class InstallLog:
    """Append-only JSON lines, one per attempt outcome; a torn last line is ignored.

    Outcomes are fsynced; refusals (``durable=False``) are not, they only say what was turned
    away. Bounded: once the file reaches ``max_bytes`` it is renamed ``install.log.1`` (older
    ones shift up) and ``keep`` rotated files are kept.
    """

    def __init__(self, path: Path, *, max_bytes: int = 1024 * 1024, keep: int = 3) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.keep = keep

    def rotated(self, number: int) -> Path:
        """The ``number``-th rotated file (1 is the newest)."""
        return self.path.with_name(f"{self.path.name}.{number}")

    def _rotate_if_full(self) -> None:
        try:
            if self.path.stat().st_size < self.max_bytes:
                return
        except FileNotFoundError:
            return
        self.rotated(self.keep).unlink(missing_ok=True)
        for number in range(self.keep - 1, 0, -1):
            if self.rotated(number).exists():
                os.replace(self.rotated(number), self.rotated(number + 1))
        os.replace(self.path, self.rotated(1))

    def append(
        self,
        *,
        job_id: str,
        old_version: str,
        new_version: str,
        result: str,
        code: str = "",
        reason: str = "",
        durable: bool = True,
        **extra: Any,
    ) -> dict[str, Any]:
        """Record one outcome (fsynced if ``durable``) and return the record."""
        record = {
            "time": time.time(),
            "job_id": job_id,
            "old_version": old_version,
            "new_version": new_version,
            "result": result,
            "code": code,
            "reason": reason,
            **extra,
        }
        self._rotate_if_full()
        append_line(self.path, json.dumps(record, sort_keys=True), fsync=durable)
        return record

    def records(self) -> list[dict[str, Any]]:
        """Every complete record still kept (rotated files too), oldest first."""
        records: list[dict[str, Any]] = []
        for number in range(self.keep, 0, -1):
            records += read_json_lines(self.rotated(number))
        return records + read_json_lines(self.path)

    def has(self, job_id: str, result: str) -> bool:
        """Whether the outcome ``result`` of ``job_id`` is already recorded."""
        return any(r.get("job_id") == job_id and r.get("result") == result for r in self.records())


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _typed(value: Any, default: Any) -> Any:
    """``value`` if it has the type of ``default`` (ints accepted for floats), else None."""
    if isinstance(default, bool):
        return value if isinstance(value, bool) else None
    if isinstance(default, int):
        return value if _is_int(value) and value >= 0 else None
    if isinstance(default, float):
        return float(value) if _is_int(value) or isinstance(value, float) else None
    return value if isinstance(value, type(default)) else None


def _quote(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= QUOTE_CHARS else text[: QUOTE_CHARS - 3] + "..."
