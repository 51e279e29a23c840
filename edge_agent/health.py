"""The health model and the health file that ``edge-agent status`` reads."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HEALTH_FILE = "health.json"
# A health file older than this many health intervals (and at least 10 s) is stale.
STALE_AFTER_INTERVALS = 5


class NoAgentRunning(Exception):
    """No live agent wrote the health file in the state directory."""


def write_health_file(state_dir: Path, snapshot: dict[str, Any]) -> None:
    """Atomically replace the health file (write a temporary, fsync-free, then rename)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=".health.", dir=state_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(snapshot, handle, indent=None, default=str)
        os.replace(temporary, state_dir / HEALTH_FILE)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


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
        try:
            snapshot = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise NoAgentRunning(f"no agent is running (no {path})") from None
        except (OSError, ValueError) as error:
            raise NoAgentRunning(f"no agent is running ({path} unreadable: {error})") from None
        if not isinstance(snapshot, dict) or not isinstance(snapshot.get("agent"), dict):
            raise NoAgentRunning(f"no agent is running ({path} is not a health file)")
        agent = snapshot["agent"]
        pid = agent.get("pid")
        if not isinstance(pid, int) or not _pid_alive(pid):
            raise NoAgentRunning(f"no agent is running (pid {pid} from {path} is gone)")
        if agent.get("state") == "stopped":
            raise NoAgentRunning(f"no agent is running (the agent with pid {pid} has stopped)")
        interval = float(agent.get("health_interval_s", 1.0))
        age = now - float(agent.get("updated_at", 0.0))
        if age > max(10.0, STALE_AFTER_INTERVALS * interval):
            raise NoAgentRunning(
                f"no agent is answering (health file {path} is {age:.0f} s old; pid {pid})"
            )
        return snapshot
