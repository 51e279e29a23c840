"""The A/B slot layout under ``STATE_DIR/ota`` and the atomic switch of ``current``.

::

    ota/slots/a/             an installed bundle: manifest.json, bin/edge-agent, payload,
                             .files.sha256 (its signed file list), .complete (written last)
    ota/slots/b/             the other slot
    ota/current -> slots/a   what the systemd unit runs (current/bin/edge-agent)
    ota/state.json           the persistent state machine
    ota/install.log          one JSON line per attempt outcome
    ota/tuf/                 trusted TUF metadata (root.json is the trust anchor)
    ota/downloads/           partial and complete target files
    ota/launch-count         trial-slot starts, counted by systemd/edge-agent-launch-guard
    ota/launch-failed        left by that guard when it restored the previous slot:
                             {"code": "launch-failed" | "slot-damaged", "reason": ...}
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_agent.durable import fsync_dir
from edge_agent.ota.errors import Code

SLOTS = ("a", "b")
LAUNCH_FAILED_CODE = Code.LAUNCH_FAILED.value
COMPLETE_MARKER = ".complete"
MANIFEST = "manifest.json"
# The launcher exports the slot it runs from, so the agent knows its own version.
SLOT_ENV = "EDGE_AGENT_OTA_SLOT"


def other_slot(slot: str) -> str:
    """The slot that is not ``slot``."""
    return SLOTS[1] if slot == SLOTS[0] else SLOTS[0]


@dataclass(frozen=True)
class LaunchFailure:
    """Why the launch guard restored the previous slot: a code and a one-line reason."""

    code: str
    reason: str


@dataclass(frozen=True)
class OtaLayout:
    """Paths and link operations of one agent's OTA directory (``STATE_DIR/ota``)."""

    root: Path

    @classmethod
    def for_state_dir(cls, state_dir: Path) -> OtaLayout:
        """The layout of the agent whose state directory is ``state_dir``."""
        return cls(Path(state_dir) / "ota")

    @property
    def current(self) -> Path:
        """The ``current`` link the service runs."""
        return self.root / "current"

    @property
    def state_file(self) -> Path:
        """The persistent state machine."""
        return self.root / "state.json"

    @property
    def log_file(self) -> Path:
        """The append-only install log."""
        return self.root / "install.log"

    @property
    def launch_count(self) -> Path:
        """Starts of a trial slot counted by ``edge-agent-launch-guard`` (systemd/)."""
        return self.root / "launch-count"

    @property
    def launch_failed(self) -> Path:
        """Left by the launch guard when it restored the previous slot: ``{"reason": ...}``."""
        return self.root / "launch-failed"

    def take_launch_failure(self) -> LaunchFailure | None:
        """Clear the launch guard's count (this agent did start); why it rolled back, if it did.

        The code is ``launch-failed`` (the trial slot never got as far as the agent) or
        ``slot-damaged`` (its files differ from its signed list); an unreadable marker still
        means the guard restored the previous slot.
        """
        self.launch_count.unlink(missing_ok=True)
        default = "the launch guard restored the previous slot"
        try:
            raw = self.launch_failed.read_bytes()[:4096]
        except FileNotFoundError:
            return None
        except OSError as error:
            return LaunchFailure(LAUNCH_FAILED_CODE, f"{default} ({error})")
        try:
            marker = json.loads(raw)
        except (ValueError, RecursionError):
            marker = None
        if not isinstance(marker, dict):
            return LaunchFailure(LAUNCH_FAILED_CODE, default)
        code, reason = marker.get("code"), marker.get("reason")
        return LaunchFailure(
            str(code) if isinstance(code, str) and code else LAUNCH_FAILED_CODE,
            str(reason) if reason else default,
        )

    def clear_launch_failure(self) -> None:
        """Remove the launch guard's marker once the rollback it started is recorded."""
        self.launch_failed.unlink(missing_ok=True)
        fsync_dir(self.root)

    @property
    def tuf_dir(self) -> Path:
        """Trusted TUF metadata."""
        return self.root / "tuf"

    @property
    def downloads(self) -> Path:
        """Partial and complete downloads."""
        return self.root / "downloads"

    def slot_dir(self, slot: str) -> Path:
        """The directory of ``slot`` ("a" or "b")."""
        if slot not in SLOTS:
            raise ValueError(f"unknown slot {slot!r}")
        return self.root / "slots" / slot

    def provisioned(self) -> bool:
        """Whether ``current`` points at a slot (``edge-agent ota provision`` ran)."""
        return self.active_slot() is not None

    def active_slot(self) -> str | None:
        """The slot ``current`` points at, or None when there is no valid link."""
        try:
            target = os.readlink(self.current)
        except OSError:
            return None
        name = Path(target).name
        return name if name in SLOTS and Path(target).parent.name == "slots" else None

    def running_slot(self) -> str | None:
        """The slot this process was started from (the launcher says so), else the active one."""
        started_from = os.environ.get(SLOT_ENV, "")
        if started_from:
            path = Path(started_from)
            if path.name in SLOTS and path.resolve() == self.slot_dir(path.name).resolve():
                return path.name
        return self.active_slot()

    def switch_to(self, slot: str) -> None:
        """Point ``current`` at ``slot`` atomically (temp link + rename) and durably."""
        self.slot_dir(slot)  # validates
        temporary = self.root / f".current.{os.getpid()}"
        temporary.unlink(missing_ok=True)
        os.symlink(f"slots/{slot}", temporary)
        os.replace(temporary, self.current)
        fsync_dir(self.root)

    def slot_manifest(self, slot: str) -> dict[str, Any] | None:
        """The manifest of a completely installed slot, or None (empty or half-written)."""
        directory = self.slot_dir(slot)
        if not (directory / COMPLETE_MARKER).exists():
            return None
        try:
            manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            return None
        return manifest if isinstance(manifest, dict) else None

    def slot_version(self, slot: str | None) -> str | None:
        """The bundle version installed in ``slot``, if it is completely installed."""
        if slot is None:
            return None
        manifest = self.slot_manifest(slot)
        version = manifest.get("version") if manifest else None
        return version if isinstance(version, str) else None

    def wipe_slot(self, slot: str) -> Path:
        """Empty ``slot`` (never the active one) and return its directory, created afresh."""
        if slot == self.active_slot():
            raise RuntimeError(f"refusing to wipe the active slot {slot!r}")
        directory = self.slot_dir(slot)
        if directory.is_symlink() or directory.is_file():
            directory.unlink()
        elif directory.exists():
            shutil.rmtree(directory)
        directory.mkdir(parents=True)
        fsync_dir(directory.parent)
        return directory
