"""The health model and the health file that ``edge-agent status`` reads.

The file may have been written by another version of the agent (a newer one that was rolled
back, or an older CLI reading a newer agent's file). Reading it never fails: what decides
"is an agent running" (``agent.pid``, ``agent.updated_at``) must be understood, or the answer
is "no agent running" with the reason; everything else is shown as far as it is understood.
"""

from __future__ import annotations

import enum
import errno
import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HEALTH_FILE = "health.json"
# A health snapshot is tens of kilobytes; a file far larger is not read whole.
MAX_HEALTH_BYTES = 4 * 1024 * 1024
# A health file older than this many health intervals (and at least 10 s) is stale.
STALE_AFTER_INTERVALS = 5
# Reading the file while a full disk made the agent rewrite it in place can see a mix.
READ_ATTEMPTS = 3
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
# Room kept at the end of the file (spaces) for a full disk, where the file can only be
# rewritten inside the blocks it holds: a degraded agent's snapshot is longer than a healthy
# one's (reasons, memory figures, module errors), so without slack the first rewrite that
# crosses a block boundary fails and the file stays frozen at its last healthy state.
HEADROOM_FRACTION = 0.5
HEADROOM_MIN_BYTES = 8192
_BLOCK = 4096
PID_MAX = 4_194_304  # the kernel's limit for /proc/sys/kernel/pid_max


class AgentState(enum.StrEnum):
    """The agent process's state in the health model (``agent.state``).

    The agent's own life has fewer states than a module's
    (:class:`~edge_agent.module_api.ModuleState`): it starts, runs once every required module
    does, then stops in stages.
    """

    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


class NoAgentRunning(Exception):
    """No live agent wrote the health file in the state directory."""


def write_health_file(state_dir: Path, snapshot: dict[str, Any]) -> None:
    """Atomically replace the health file (write a temporary, fsync-free, then rename).

    The file is padded with trailing spaces (valid JSON) to leave room for longer snapshots.
    On a full disk, where the temporary cannot be written, the existing file is overwritten
    in place instead if the new text fits in the space it already holds, so that
    ``edge-agent status`` still tells what the agent is doing.
    """
    text = json.dumps(snapshot, indent=None, default=str).encode()
    try:
        _replace(state_dir, text)
    except OSError as error:
        if error.errno not in _NO_SPACE or not _overwrite_in_place(state_dir / HEALTH_FILE, text):
            raise


def with_headroom(text: bytes) -> bytes:
    """``text`` padded with spaces to a whole number of blocks, leaving room to grow."""
    wanted = len(text) + max(int(len(text) * HEADROOM_FRACTION), HEADROOM_MIN_BYTES)
    blocks = -(-wanted // _BLOCK)
    return text + b" " * (blocks * _BLOCK - len(text))


def _replace(state_dir: Path, text: bytes) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=".health.", dir=state_dir)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(with_headroom(text))
        os.replace(temporary, state_dir / HEALTH_FILE)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _overwrite_in_place(path: Path, text: bytes) -> bool:
    """Write ``text`` over ``path`` without allocating; False if it does not fit."""
    try:
        descriptor = os.open(path, os.O_WRONLY)
    except OSError:
        return False
    try:
        status = os.fstat(descriptor)
        # The blocks already allocated: writing inside them needs no free space.
        if len(text) > max(status.st_size, status.st_blocks * 512):
            return False
        # Spaces pad the rest of the old text (JSON allows trailing white space).
        padded = text + b" " * max(0, status.st_size - len(text))
        return os.pwrite(descriptor, padded, 0) == len(padded)
    except OSError:
        return False
    finally:
        os.close(descriptor)


def _is_pid(value: Any) -> bool:
    # Not 0 or negative: os.kill would then signal a whole process group.
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= PID_MAX


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class HealthFile:
    """Reads the health file of the agent using ``state_dir``."""

    state_dir: Path

    def read(self, now: float) -> dict[str, Any]:
        """Return the running agent's health snapshot or raise NoAgentRunning saying why."""
        path = self.state_dir / HEALTH_FILE
        raw = b""
        snapshot: Any = None
        for attempt in range(READ_ATTEMPTS):
            try:
                with path.open("rb") as handle:
                    raw = handle.read(MAX_HEALTH_BYTES + 1)
            except FileNotFoundError:
                raise NoAgentRunning(f"no agent is running (no {path})") from None
            except OSError as error:
                raise NoAgentRunning(f"no agent is running ({path} unreadable: {error})") from None
            try:
                snapshot = json.loads(raw) if len(raw) <= MAX_HEALTH_BYTES else None
                break
            except (ValueError, RecursionError) as error:
                if isinstance(error, ValueError) and attempt + 1 < READ_ATTEMPTS:
                    continue  # caught it mid-rewrite (in place, on a full disk): read again
                reason = str(error) if isinstance(error, ValueError) else "nested too deeply"
                raise NoAgentRunning(f"no agent is running ({path} unreadable: {reason})") from None
        if not isinstance(snapshot, dict) or not isinstance(snapshot.get("agent"), dict):
            raise NoAgentRunning(f"no agent is running ({path} is not a health file)")
        agent = snapshot["agent"]
        pid = agent.get("pid")
        if not _is_pid(pid) or not _pid_alive(pid):
            raise NoAgentRunning(f"no agent is running (pid {pid} from {path} is gone)")
        if agent.get("state") == AgentState.STOPPED:
            raise NoAgentRunning(f"no agent is running (the agent with pid {pid} has stopped)")
        updated_at = _number(agent.get("updated_at"))
        if updated_at is None:
            raise NoAgentRunning(
                f"no agent this version understands ({path}: agent.updated_at "
                f"{agent.get('updated_at')!r} is not a time; pid {pid})"
            )
        interval = _number(agent.get("health_interval_s")) or 1.0
        age = now - updated_at
        if age > max(10.0, STALE_AFTER_INTERVALS * interval):
            raise NoAgentRunning(
                f"no agent is answering (health file {path} is {age:.0f} s old; pid {pid})"
            )
        return snapshot


def _number(value: Any) -> float | None:
    """``value`` as a float if it is a finite JSON number, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None
