"""The install pipeline: resolve, download, verify, install, wait until parked, switch.

Every step ends with a durable phase in ``state.json``; after a crash the engine resumes at
the start of the step it was in (see ``edge_agent.ota.state``). Any failure before the switch
ends in FAILED with ``current`` untouched and the inactive slot wiped.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from edge_agent.backoff import Backoff
from edge_agent.durable import fsync_dir
from edge_agent.logs import get_logger
from edge_agent.modules.ota.config import OtaConfig
from edge_agent.modules.ota.guard import ParkedGuard, wait_until_parked
from edge_agent.modules.ota.job import Job
from edge_agent.ota.bundle import BundleManifest, read_manifest
from edge_agent.ota.client import TufClient, pinned_target, verify_file
from edge_agent.ota.download import DownloadLimits, download
from edge_agent.ota.errors import Code, OtaError
from edge_agent.ota.extract import scan
from edge_agent.ota.installers import SystemUpdater
from edge_agent.ota.layout import OtaLayout, other_slot
from edge_agent.ota.refusals import RefusalLog
from edge_agent.ota.state import InstallLog, OtaState, Phase, StateStore
from edge_agent.ota.versions import is_newer, parse_version
from edge_agent.version import __version__

PROGRESS_EVERY_S = 1.0
RAUC_OTHER = "other"


class Engine:
    """Owns the state machine; the module feeds it jobs and starts it on boot."""

    def __init__(
        self,
        *,
        config: OtaConfig,
        layout: OtaLayout,
        updater: SystemUpdater,
        guard: ParkedGuard,
        publish: Callable[[dict[str, Any]], Coroutine[Any, Any, None]],
        restart: Callable[[str], None],
    ) -> None:
        self.config = config
        self.layout = layout
        self.updater = updater
        self.guard = guard
        self.store = StateStore(layout.state_file)
        self.log = InstallLog(layout.log_file)
        self.refusals = RefusalLog(self.log)
        self.state = self.store.load()
        self._publish = publish
        self.restart_agent = restart
        self.client = TufClient(
            layout.tuf_dir, config.metadata_url, config.targets_url, config.stall_timeout_s
        )
        self._cancel = threading.Event()
        self._last_progress = 0.0
        self._progress_task: asyncio.Task[None] | None = None
        self.guard_changed = asyncio.Event()
        self._log = get_logger("edge_agent.modules.ota")

    # -- reporting ---------------------------------------------------------------------------

    @property
    def ab(self) -> bool:
        """Whether the built-in A/B installer is in use (else RAUC)."""
        return self.updater.name == "ab"

    def running_version(self) -> str:
        """The version of the software this process runs."""
        if self.ab:
            return self.layout.slot_version(self.layout.running_slot()) or __version__
        return self.state.floor_version or __version__

    def status(self) -> dict[str, Any]:
        """The status document for ``ota/status`` and the module's health details."""
        state = self.state
        return {
            "job_id": state.job_id,
            "phase": state.phase.value,
            "target": state.target,
            "version": state.version,
            "from_version": state.from_version,
            "waiting": state.waiting,
            "progress": state.progress,
            "code": state.code,
            "reason": state.reason,
            "boot_attempts": state.boot_attempts,
            "running_version": self.running_version(),
            "running_slot": self.layout.running_slot() if self.ab else None,
            "updater": self.updater.name,
            "read_warning": state.read_warning,
            "time": time.time(),
        }

    async def save(self, phase: Phase | None = None) -> None:
        """Persist the state (optionally entering ``phase``) and publish the status."""
        if phase is not None:
            self.state.phase = phase
        await asyncio.to_thread(self.store.save, self.state)
        self._log.info("ota state", phase=self.state.phase.value, job=self.state.job_id)
        await self._publish(self.status())

    async def record(self, phase: Phase) -> None:
        """Write the outcome of the current attempt (a terminal phase) to the install log, once."""
        state = self.state
        result = phase.value

        def append() -> None:
            if not self.log.has(state.job_id, result):
                self.log.append(
                    job_id=state.job_id,
                    old_version=state.from_version,
                    new_version=state.version,
                    result=result,
                    code=state.code,
                    reason=state.reason,
                )

        await asyncio.to_thread(append)

    async def refuse(self, job_id: str, version: str, error: OtaError) -> None:
        """Report and log a job refused without touching the state machine (bad, busy).

        Always reported on ota/status; logged within the install log's refusal quota.
        """
        await asyncio.to_thread(
            self.refusals.record, job_id, self.running_version(), version, error
        )
        await self._publish(
            {"job_id": job_id, "phase": "refused", "code": error.code.value, "reason": error.reason}
        )

    # -- the pipeline ------------------------------------------------------------------------

    async def accept(self, job: Job) -> None:
        """Start a new attempt for ``job`` (the caller checked nothing else is in progress)."""
        running = self.running_version()
        active = await asyncio.to_thread(self.updater.active_slot)
        if active is None:
            raise OtaError(
                Code.NOT_PROVISIONED, "no active slot; run 'edge-agent ota provision' first"
            )
        floor = self.state.floor_version
        self.state = OtaState(
            phase=Phase.DOWNLOADING,
            job_id=job.id,
            target=job.target,
            version=job.version,
            from_slot=active,
            to_slot=other_slot(active) if self.ab else RAUC_OTHER,
            from_version=running,
            floor_version=floor or running,
            finalised=False,
        )
        await self.save()
        await self.drive()

    async def drive(self) -> None:
        """Run the pipeline from the current phase to SWITCHED (then restart) or FAILED."""
        try:
            while self.state.phase in (
                Phase.DOWNLOADING,
                Phase.DOWNLOADED,
                Phase.VERIFIED,
                Phase.INSTALLING,
                Phase.INSTALLED,
            ):
                await self._step()
        except OtaError as error:
            await self.fail(error)
        except asyncio.CancelledError:
            self._cancel.set()  # the download thread stops at its next chunk
            raise
        except Exception as error:  # never leave a half-done attempt unreported
            self._log.exception("ota pipeline crashed")
            await self.fail(
                OtaError(Code.INSTALL_FAILED, f"internal error: {type(error).__name__}: {error}")
            )

    async def _step(self) -> None:
        phase = self.state.phase
        if phase is Phase.DOWNLOADING:
            if not self.state.target_info:
                await self._resolve()
            await self._download()
            await self.save(Phase.DOWNLOADED)
        elif phase is Phase.DOWNLOADED:
            await self._verify()
            await self.save(Phase.VERIFIED)
        elif phase in (Phase.VERIFIED, Phase.INSTALLING):
            await self.save(Phase.INSTALLING)
            manifest = await self._verify()  # again: the file may have changed while we slept
            await asyncio.to_thread(
                self.updater.install,
                self._bundle_path(),
                self.state.to_slot,
                manifest,
                self.config.max_unpacked_bytes,
            )
            await self.save(Phase.INSTALLED)
        elif phase is Phase.INSTALLED:
            if self.ab and self.layout.slot_manifest(self.state.to_slot) is None:
                await self.save(Phase.VERIFIED)  # the slot was damaged: install again
                return
            await self._wait_until_parked()
            await self.switch()

    async def _resolve(self) -> None:
        state, config = self.state, self.config
        resolved = await asyncio.to_thread(self.client.resolve, state.target, state.version)
        custom = resolved.custom
        if custom.get("version") != state.version:
            raise OtaError(
                Code.METADATA_ERROR,
                f"signed version {custom.get('version')!r} of {resolved.info.path} "
                f"is not the job's {state.version}",
            )
        kind = custom.get("kind", "ab")
        if kind != self.updater.name:
            raise OtaError(
                Code.BAD_BUNDLE, f"target is a {kind} bundle; this vehicle uses {self.updater.name}"
            )
        hardware = custom.get("hardware_ids", [])
        if config.hardware_id not in hardware:
            raise OtaError(
                Code.WRONG_HARDWARE,
                f"bundle is for hardware {', '.join(map(str, hardware)) or 'none'}, "
                f"not {config.hardware_id}",
            )
        floor = max(
            state.from_version, state.floor_version or state.from_version, key=parse_version
        )
        if not is_newer(state.version, floor):
            raise OtaError(
                Code.TARGET_ROLLBACK,
                f"target version rollback: {state.version} is not newer than {floor}",
            )
        if resolved.info.length > config.max_bundle_bytes:
            raise OtaError(
                Code.BUNDLE_TOO_LARGE,
                f"bundle of {resolved.info.length} bytes exceeds the cap of "
                f"{config.max_bundle_bytes} bytes",
            )
        state.target_info = resolved.pinned()
        await asyncio.to_thread(self.clear_downloads, keep=self._digest())
        await self.save()

    def _digest(self) -> str:
        return str(next(iter(self.state.target_info.get("hashes", {"x": "none"}).values())))

    def _bundle_path(self) -> Path:
        return self.layout.downloads / f"{self._digest()}.bundle"

    def clear_downloads(self, keep: str = "") -> None:
        """Remove downloaded files except those named after ``keep`` (a target digest)."""
        if not self.layout.downloads.exists():
            return
        for path in self.layout.downloads.iterdir():
            if not keep or not path.name.startswith(keep):
                path.unlink(missing_ok=True)

    async def _download(self) -> None:
        info = self.state.target_info
        final = self._bundle_path()
        if final.exists():
            return
        part = final.with_suffix(".part")
        limits = DownloadLimits(self.config.stall_timeout_s, self.config.download_timeout_s)
        loop = asyncio.get_running_loop()

        def progress(have: int, total: int) -> None:
            loop.call_soon_threadsafe(self._progress, have, total)

        self._cancel.clear()
        # Capped and jittered: a fleet whose download server failed at once does not come
        # back to it in lockstep.
        backoff = Backoff(self.config.retry_delay_s, self.config.retry_max_s)
        for attempt in range(1, self.config.download_attempts + 1):
            try:
                await asyncio.to_thread(
                    download,
                    info["url"],
                    part,
                    int(info["length"]),
                    limits,
                    progress=progress,
                    cancel=self._cancel,
                )
                break
            except OtaError as error:
                if not error.retryable or attempt == self.config.download_attempts:
                    raise
                delay = backoff.delay(attempt)
                self._log.warning(
                    "download failed; retrying",
                    attempt=attempt,
                    retry_in_s=round(delay, 3),
                    reason=str(error),
                )
                await asyncio.sleep(delay)
        os.replace(part, final)
        await asyncio.to_thread(fsync_dir, final.parent)

    def _progress(self, have: int, total: int) -> None:
        self.state.progress = {"bytes": have, "total": total}
        now = time.monotonic()
        if now - self._last_progress >= PROGRESS_EVERY_S or have == total:
            self._last_progress = now
            # Keep a reference until the next one (a bare task could be collected mid-flight).
            self._progress_task = asyncio.get_running_loop().create_task(
                self._publish(self.status())
            )

    async def _verify(self) -> BundleManifest | None:
        bundle = self._bundle_path()
        info = pinned_target(self.state.target_info)
        try:
            await asyncio.to_thread(verify_file, info, bundle)
        except OtaError:
            bundle.unlink(missing_ok=True)
            raise
        except FileNotFoundError:
            raise OtaError(Code.DOWNLOAD_FAILED, f"downloaded bundle {bundle} vanished") from None
        if not self.ab:
            return None
        await asyncio.to_thread(scan, bundle, self.config.max_unpacked_bytes)
        manifest = await asyncio.to_thread(read_manifest, bundle)
        if manifest.version != self.state.version or manifest.name != self.state.target:
            raise OtaError(
                Code.BAD_BUNDLE,
                f"bundle manifest says {manifest.name} {manifest.version}, "
                f"the job asks for {self.state.target} {self.state.version}",
            )
        if self.config.hardware_id not in manifest.hardware_ids:
            raise OtaError(
                Code.WRONG_HARDWARE,
                f"bundle manifest is for hardware {', '.join(manifest.hardware_ids)}, "
                f"not {self.config.hardware_id}",
            )
        return manifest

    async def _wait_until_parked(self) -> None:
        async def keep(waiting: str) -> None:
            self.state.waiting = waiting
            await self.save()

        await wait_until_parked(self.guard, self.guard_changed, keep, reported=self.state.waiting)

    async def switch(self) -> None:
        """Make the new slot current (durably), then restart into it."""
        self.state.boot_attempts = 0
        await self.save(Phase.SWITCHED)  # a crash from here on is a trial boot or a re-switch
        await asyncio.to_thread(self.updater.activate, self.state.from_slot, self.state.to_slot)
        self.restart_agent(f"switched to {self.state.to_slot} ({self.state.version})")

    async def fail(self, error: OtaError) -> None:
        """End the attempt before the switch: FAILED, inactive slot wiped, logged, reported."""
        state = self.state
        self._log.warning("ota attempt failed", code=error.code.value, reason=error.reason)
        state.code, state.reason, state.waiting = error.code.value, error.reason, ""
        state.finalised = False
        await self.save(Phase.FAILED)
        await self.finish_failed()

    async def finish_failed(self) -> None:
        """Clean up after FAILED (idempotent: also run on start-up)."""
        state = self.state
        if self.ab and state.to_slot in ("a", "b") and state.to_slot != self.layout.active_slot():
            await asyncio.to_thread(self.layout.wipe_slot, state.to_slot)
        if state.code not in (Code.DOWNLOAD_STALLED.value, Code.DOWNLOAD_FAILED.value):
            await asyncio.to_thread(self.clear_downloads)
        await self.record(Phase.FAILED)
        state.finalised = True
        await self.save()
