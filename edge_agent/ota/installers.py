"""System updaters behind one interface: the built-in A/B bundle installer and RAUC.

The OTA state machine calls ``install`` (write the inactive slot), ``activate`` (make it the
one that starts next), then, after the restart and the health gate, ``commit`` or
``rollback``. Every call is idempotent, because after a crash the state machine repeats the
step it was in.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from edge_agent.durable import write_bytes_atomic
from edge_agent.ota.bundle import BundleManifest, install_wheelhouse
from edge_agent.ota.errors import Code, OtaError
from edge_agent.ota.extract import extract_payload
from edge_agent.ota.layout import COMPLETE_MARKER, OtaLayout
from edge_agent.ota.slot_files import CHECK_LIST, differences, sync_tree, write_check_list

LAUNCHER = Path("bin") / "edge-agent"


class SystemUpdater(Protocol):
    """What the OTA state machine needs from an updater."""

    name: str

    def active_slot(self) -> str | None:
        """The slot that starts next (None: not provisioned)."""

    def running_slot(self) -> str | None:
        """The slot this system runs now (None: unknown)."""

    def install(
        self, bundle: Path, to_slot: str, manifest: BundleManifest | None, max_bytes: int
    ) -> None:
        """Write ``bundle`` into the inactive slot ``to_slot`` (never the running one)."""

    def activate(self, from_slot: str, to_slot: str) -> None:
        """Make ``to_slot`` the one that starts next."""

    def commit(self, slot: str) -> None:
        """Mark ``slot`` good after it passed the health gate."""

    def rollback(self, from_slot: str, to_slot: str) -> None:
        """Mark ``to_slot`` bad and make ``from_slot`` start next."""


class ABInstaller:
    """The built-in updater: agent bundles in ``ota/slots/{a,b}``, switched by ``ota/current``."""

    name = "ab"

    def __init__(self, layout: OtaLayout) -> None:
        self.layout = layout

    def active_slot(self) -> str | None:
        """The slot ``current`` points at."""
        return self.layout.active_slot()

    def running_slot(self) -> str | None:
        """The slot this process was started from."""
        return self.layout.running_slot()

    def install(
        self, bundle: Path, to_slot: str, manifest: BundleManifest | None, max_bytes: int
    ) -> None:
        """Wipe ``to_slot``, extract the payload safely, install wheels, mark it complete.

        The slot is checked against the bundle's signed file list and flushed to disk (every
        file and directory) before the ``.complete`` marker is written: a power cut leaves
        either an incomplete slot (installed again) or a complete one with every byte.
        """
        if manifest is None:
            raise OtaError(Code.BAD_BUNDLE, "an A/B bundle needs a manifest")
        slot_dir = self.layout.wipe_slot(to_slot)
        extract_payload(bundle, slot_dir, max_bytes)
        if manifest.install == "wheelhouse":
            install_wheelhouse(slot_dir)
        launcher = slot_dir / LAUNCHER
        if not launcher.is_file() or not os.access(launcher, os.X_OK):
            raise OtaError(Code.BAD_BUNDLE, f"bundle has no executable payload/{LAUNCHER}")
        marker = f"{manifest.version}\n"
        if manifest.files:
            damage = differences(slot_dir, manifest.files)
            if damage:
                raise OtaError(
                    Code.INSTALL_FAILED,
                    f"slot {to_slot} does not match the bundle's signed file list "
                    f"({len(damage)} files): {damage[0]}",
                )
            write_check_list(slot_dir, manifest.files)
            marker += f"files {CHECK_LIST}\n"  # the launch guard checks a slot that says so
        sync_tree(slot_dir)
        write_bytes_atomic(slot_dir / COMPLETE_MARKER, marker.encode())

    def activate(self, from_slot: str, to_slot: str) -> None:
        """Switch ``current`` to ``to_slot`` atomically."""
        if self.layout.slot_manifest(to_slot) is None:
            raise OtaError(Code.INSTALL_FAILED, f"slot {to_slot} is not completely installed")
        self.layout.switch_to(to_slot)

    def commit(self, slot: str) -> None:
        """Nothing to do: ``current`` already points at ``slot``."""

    def rollback(self, from_slot: str, to_slot: str) -> None:
        """Switch ``current`` back to ``from_slot``."""
        if self.layout.active_slot() != from_slot:
            self.layout.switch_to(from_slot)


class RaucInstaller:
    """Hands the bundle to RAUC: ``rauc install``, ``rauc status mark-good`` / ``mark-bad``.

    RAUC writes its inactive slot group and marks it primary for the next boot; activation is
    a reboot (``reboot_command``, e.g. ``systemctl reboot``); the bootloader falls back to the
    old slot when the new one is marked bad or fails to boot.
    """

    name = "rauc"

    def __init__(
        self,
        rauc_command: Sequence[str] = ("rauc",),
        reboot_command: Sequence[str] = (),
        timeout_s: float = 1800.0,
    ) -> None:
        self.rauc = list(rauc_command)
        self.reboot = list(reboot_command)
        self.timeout_s = timeout_s

    def active_slot(self) -> str | None:
        """RAUC's booted slot (RAUC decides what starts next; we only track the booted one)."""
        return self.running_slot()

    def running_slot(self) -> str | None:
        """The booted slot from ``rauc status --output-format=json`` (None if unknown)."""
        try:
            output = self._run([*self.rauc, "status", "--output-format=json"], Code.INSTALL_FAILED)
            booted = json.loads(output).get("booted")
        except (OtaError, ValueError, AttributeError):
            return None
        return booted if isinstance(booted, str) and booted else None

    def _run(self, arguments: list[str], code: Code) -> str:
        try:
            result = subprocess.run(
                arguments, capture_output=True, text=True, timeout=self.timeout_s, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise OtaError(code, f"{' '.join(arguments)}: {error}") from None
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
            raise OtaError(code, f"{' '.join(arguments)} exited {result.returncode}: {detail[0]}")
        return result.stdout

    def install(
        self, bundle: Path, to_slot: str, manifest: BundleManifest | None, max_bytes: int
    ) -> None:
        """``rauc install BUNDLE`` (RAUC checks its own signature and compatible string too)."""
        self._run([*self.rauc, "install", str(bundle)], Code.INSTALL_FAILED)

    def activate(self, from_slot: str, to_slot: str) -> None:
        """Reboot into the slot RAUC marked primary (no-op without a reboot command)."""
        if self.reboot:
            self._run(self.reboot, Code.INSTALL_FAILED)

    def commit(self, slot: str) -> None:
        """``rauc status mark-good booted``: the booted (new) slot stays."""
        self._run([*self.rauc, "status", "mark-good", "booted"], Code.INSTALL_FAILED)

    def rollback(self, from_slot: str, to_slot: str) -> None:
        """``rauc status mark-bad booted`` and reboot, unless the old slot already runs."""
        if self.running_slot() == from_slot:
            return  # the bootloader already fell back (or we never left): nothing to undo
        self._run([*self.rauc, "status", "mark-bad", "booted"], Code.INSTALL_FAILED)
        if self.reboot:
            self._run(self.reboot, Code.INSTALL_FAILED)
