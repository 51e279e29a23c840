"""Config jobs: a signed config target, verified like a bundle, applied while parked.

The target ``NAME-VERSION.config.json`` is resolved through the same TUF metadata, keys and
trust anchor as bundles (signatures, thresholds, expiry, rollback, lengths and hashes), then
checked like a bundle: its signed custom data must say ``kind: config``, this vehicle's
hardware id and the job's version; the version must be newer than every config version
this vehicle applied before (``ota/config-state.json``). The file is downloaded within the
signed length and ``max_config_bytes``, verified, and its document checked for shape. Then
the job waits until the vehicle is parked (the same guard as an install) and hands the
document to the supervisor (``agent/config/signed``), which validates it in full and applies
it (on probation when it touches the cloud link). Every outcome goes to the install log.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Coroutine
from typing import Any

from edge_agent.agent_topics import APPLY_SIGNED_TOPIC
from edge_agent.bus import Bus, NoResponder, RequestFailed, RequestTimeout
from edge_agent.config.errors import ConfigError
from edge_agent.config.signed import parse_signed
from edge_agent.durable import write_json_atomic
from edge_agent.logs import get_logger
from edge_agent.modules.ota.config import OtaConfig
from edge_agent.modules.ota.guard import ParkedGuard, wait_until_parked
from edge_agent.modules.ota.job import Job
from edge_agent.ota.client import TufClient, verify_file
from edge_agent.ota.download import DownloadLimits, download
from edge_agent.ota.errors import Code, OtaError
from edge_agent.ota.layout import OtaLayout
from edge_agent.ota.repo import config_target_path
from edge_agent.ota.state import InstallLog
from edge_agent.ota.versions import is_newer
from edge_agent.untrusted import UntrustedDataError, load_json_bounded

CONFIG_STATE_FILE = "config-state.json"
FINAL_RESULTS = ("config-applied", "config-failed")
APPLY_TIMEOUT_S = 120.0


class ConfigJobs:
    """Runs config jobs for the OTA module, one at a time."""

    def __init__(
        self,
        *,
        config: OtaConfig,
        layout: OtaLayout,
        client: TufClient,
        guard: ParkedGuard,
        guard_changed: asyncio.Event,
        bus: Bus,
        publish: Callable[[dict[str, Any]], Coroutine[Any, Any, None]],
    ) -> None:
        self.config = config
        self.layout = layout
        self.client = client
        self.guard = guard
        self.guard_changed = guard_changed
        self.bus = bus
        self._publish = publish
        self.install_log = InstallLog(layout.log_file)
        self.state_file = layout.root / CONFIG_STATE_FILE
        self._log = get_logger("edge_agent.modules.ota.config")

    def state(self) -> dict[str, Any]:
        """``{"floor_version", "job_id", "result", ...}`` of the last config job."""
        try:
            data = json.loads(self.state_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    async def _remember(self, **fields: Any) -> None:
        state = {**self.state(), **fields, "updated_at": time.time()}
        await asyncio.to_thread(write_json_atomic, self.state_file, state)

    async def _status(self, job: Job, phase: str, **fields: Any) -> None:
        await self._publish(
            {"job_id": job.id, "kind": "config", "target": job.target, "version": job.version}
            | {"phase": phase, **fields}
        )

    async def run(self, job: Job) -> None:
        """Take ``job`` from resolution to applied (or refused), logging the outcome.

        The version floor rises only once a config is applied, so a job cut short (the agent
        restarted while it waited for parked) can simply be sent again.
        """
        last = self.state()
        floor = str(last.get("floor_version") or "")
        if job.id == last.get("job_id") and last.get("result") in FINAL_RESULTS:
            phase = "applied" if last["result"] == "config-applied" else "failed"
            await self._status(job, phase, code=last.get("code", ""), reason=last.get("reason", ""))
            return
        try:
            document = await self._fetch(job, floor)
            await self._remember(job_id=job.id, result="verified", code="", reason="")
            await self._wait_until_parked(job)
            await self._status(job, "applying")
            reply = await self._apply(document)
        except OtaError as error:
            await self._finish(job, floor, "config-failed", error.code.value, error.reason)
            return
        await self._finish(job, floor, "config-applied", "", _summary(reply))

    async def _finish(self, job: Job, floor: str, result: str, code: str, reason: str) -> None:
        self._log.info("config job finished", job=job.id, result=result, code=code, reason=reason)
        await asyncio.to_thread(
            self.install_log.append,
            job_id=job.id,
            old_version=f"config {floor or 'none'}",
            new_version=f"config {job.version}",
            result=result,
            code=code,
            reason=reason,
        )
        applied = result == "config-applied"
        await self._remember(
            job_id=job.id,
            result=result,
            code=code,
            reason=reason,
            **({"floor_version": job.version} if applied else {}),
        )
        await self._status(job, "applied" if applied else "failed", code=code, reason=reason)

    async def _fetch(self, job: Job, floor: str) -> dict[str, Any]:
        await self._status(job, "downloading")
        path = config_target_path(job.target, job.version)
        resolved = await asyncio.to_thread(self.client.resolve, job.target, job.version, path=path)
        custom = resolved.custom
        if custom.get("kind") != "config":
            raise OtaError(Code.BAD_BUNDLE, f"target {path} is a {custom.get('kind')!r} target")
        if custom.get("version") != job.version:
            raise OtaError(
                Code.METADATA_ERROR,
                f"signed version {custom.get('version')!r} of {path} is not the job's "
                f"{job.version}",
            )
        hardware = custom.get("hardware_ids", [])
        if self.config.hardware_id not in hardware:
            raise OtaError(
                Code.WRONG_HARDWARE,
                f"config is for hardware {', '.join(map(str, hardware)) or 'none'}, "
                f"not {self.config.hardware_id}",
            )
        if floor and not is_newer(job.version, floor):
            raise OtaError(
                Code.TARGET_ROLLBACK,
                f"config version rollback: {job.version} is not newer than {floor}",
            )
        if resolved.info.length > self.config.max_config_bytes:
            raise OtaError(
                Code.BUNDLE_TOO_LARGE,
                f"config of {resolved.info.length} bytes exceeds the cap of "
                f"{self.config.max_config_bytes} bytes",
            )
        digest = next(iter(resolved.info.hashes.values()))
        part = self.layout.downloads / f"{digest}.config.part"
        limits = DownloadLimits(self.config.stall_timeout_s, self.config.download_timeout_s)
        try:
            await asyncio.to_thread(download, resolved.url, part, resolved.info.length, limits)
            await asyncio.to_thread(verify_file, resolved.info, part)
            raw = await asyncio.to_thread(part.read_bytes)
        finally:
            part.unlink(missing_ok=True)
        try:
            document = parse_signed(load_json_bounded(raw, what="config target"))
        except UntrustedDataError as error:
            raise OtaError(Code.BAD_BUNDLE, str(error)) from None
        except ConfigError as error:
            raise OtaError(Code.BAD_BUNDLE, f"config target: {error}") from None
        if document["version"] != job.version:
            raise OtaError(
                Code.BAD_BUNDLE,
                f"config document says version {document['version']}, the job {job.version}",
            )
        return document

    async def _wait_until_parked(self, job: Job) -> None:
        async def tell(waiting: str) -> None:
            if waiting:  # once parked, the next status is the job's own
                await self._status(job, "waiting", waiting=waiting)

        await wait_until_parked(self.guard, self.guard_changed, tell)

    async def _apply(self, document: dict[str, Any]) -> dict[str, Any]:
        try:
            reply = await self.bus.request(
                APPLY_SIGNED_TOPIC, document, timeout=APPLY_TIMEOUT_S, sender="ota"
            )
        except NoResponder:
            raise OtaError(Code.CONFIG_REFUSED, "no supervisor applies signed configs") from None
        except (RequestTimeout, RequestFailed) as error:
            raise OtaError(Code.CONFIG_REFUSED, f"applying the config failed: {error}") from None
        result = reply.payload if isinstance(reply.payload, dict) else {}
        if not result.get("accepted"):
            errors = "; ".join(map(str, result.get("errors") or ["refused"]))
            raise OtaError(Code.CONFIG_REFUSED, f"the agent refused the config: {errors}")
        return result


def _summary(reply: dict[str, Any]) -> str:
    report = reply.get("report") or {}
    parts = [
        f"{key} {', '.join(names)}" for key, names in report.items() if names and key != "waiting"
    ]
    if reply.get("desired_dropped"):
        parts.append("desired state dropped (it no longer fits)")
    if report.get("waiting"):
        parts.append(f"waiting for parked: {report['waiting']}")
    return "; ".join(parts) or "nothing changed"
