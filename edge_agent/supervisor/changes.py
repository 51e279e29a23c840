"""Configuration changes at run time: desired states, signed configs, probation, parked waits.

One change at a time (a lock). A desired state carries tunable settings only; a signed config
(verified by the OTA module) may change anything but ``[agent]`` and ``[spool]``. Either is
validated in full before anything is touched, applied without disturbing unaffected modules,
and stored so the next start runs on it. A change that touches the cloud link is on probation
(:mod:`edge_agent.supervisor.probation`); while one is, further changes are refused. Modules
that may only restart while parked (the brake path) wait for it; the rest applies at once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from typing import TYPE_CHECKING, Any

from edge_agent.bus import Priority
from edge_agent.config.compose import compose
from edge_agent.config.desired import parse_desired, store_last_good, validate_desired
from edge_agent.config.errors import ConfigError, ConfigIssue
from edge_agent.config.loader import ConfigLayers, LoadedConfig
from edge_agent.config.signed import parse_signed, store_signed, validate_signed
from edge_agent.logs import get_logger
from edge_agent.ota.versions import is_newer
from edge_agent.spool import AppendRequest, SpoolPriority
from edge_agent.supervisor.probation import (
    EVENTS_STREAM,
    EVENTS_TOPIC,
    ProbationRecord,
    link_online,
    load_record,
    save_record,
    touches_link,
)
from edge_agent.supervisor.reconfigure import ApplyReport, apply_config
from edge_agent.vehicle_state import vehicle_parked

if TYPE_CHECKING:
    from edge_agent.supervisor.supervisor import Supervisor

PROBATION_POLL_S = 0.25
PARKED_POLL_S = 1.0


class ConfigChanges:
    """Applies desired states and signed configs to ``supervisor``, one at a time."""

    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor
        self.lock = asyncio.Lock()
        self.on_probation: ProbationRecord | None = None
        self.last_probation: dict[str, Any] | None = None
        self.waiting_for_parked: dict[str, Any] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._log = get_logger("edge_agent.supervisor.config")

    @property
    def _state_dir(self) -> Any:
        return self.supervisor.settings.state_dir

    def status(self) -> dict[str, Any]:
        """The configuration part of the health snapshot."""
        layers = self.supervisor.config.layers
        return {
            "signed_version": layers.signed_version,
            "desired_version": layers.desired_version,
            "probation": None if self.on_probation is None else self.on_probation.change,
            "last_probation": self.last_probation,
            "waiting_for_parked": self.waiting_for_parked,
        }

    def _spawn(self, coroutine: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Stop waiting for the link or for parked (the agent is shutting down)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- changes -----------------------------------------------------------------------------

    async def apply_desired(self, payload: Any) -> dict[str, Any]:
        """Validate and apply a desired state; the reply says what happened or why not."""
        version: Any = None
        try:
            document = parse_desired(payload)
            version = document.get("version")
            async with self.lock:
                self._refuse_during_probation(f"desired state {version}")
                new = validate_desired(self.supervisor.config, document)
                report = await self._apply(new, f"desired state {version}")
        except ConfigError as error:
            return {"accepted": False, "version": version, "errors": error.lines()}
        return {
            "accepted": True,
            "version": version,
            "errors": [],
            "report": dataclasses.asdict(report),
        }

    async def apply_signed(self, payload: Any) -> dict[str, Any]:
        """Apply a signed config the OTA module verified; refuse one that is not newer."""
        version: Any = None
        try:
            document = parse_signed(payload)
            version = document["version"]
            async with self.lock:
                change = f"signed config {version}"
                self._refuse_during_probation(change)
                self._refuse_older(version)
                new, dropped = validate_signed(self.supervisor.config, document)
                report = await self._apply(new, change)
        except ConfigError as error:
            return {"accepted": False, "version": version, "errors": error.lines()}
        return {
            "accepted": True,
            "version": version,
            "errors": [],
            "desired_dropped": dropped,
            "report": dataclasses.asdict(report),
        }

    def _refuse_older(self, version: str) -> None:
        current = self.supervisor.config.layers.signed_version
        if current is not None and not is_newer(version, current):
            issue = ConfigIssue("signed config.version", f"not newer than {current}", version)
            raise ConfigError([issue])

    def _refuse_during_probation(self, change: str) -> None:
        if self.on_probation is not None:
            raise ConfigError(
                [
                    ConfigIssue(
                        "config",
                        f"{self.on_probation.change} is on probation until the cloud link is "
                        f"back; {change} can follow after that",
                    )
                ]
            )

    async def _apply(self, new: LoadedConfig, change: str) -> ApplyReport:
        """Store ``new``'s layers, apply it, and put it on probation if it touches the link."""
        supervisor, old = self.supervisor, self.supervisor.config
        record = None
        if touches_link(old, new):
            record = ProbationRecord(change, old.layers.signed, old.layers.desired)
            await asyncio.to_thread(save_record, self._state_dir, record)
        await asyncio.to_thread(self._store_layers, new.layers)
        report = await apply_config(supervisor, new)
        supervisor.desired_version = new.layers.desired_version
        self._log.info("config applied", change=change, report=dataclasses.asdict(report))
        self._after_apply(report)
        if record is not None:
            self._start_probation(record)
        return report

    def _store_layers(self, layers: ConfigLayers) -> None:
        store_signed(self._state_dir, layers.signed)
        store_last_good(self._state_dir, layers.desired)

    # -- waiting for parked ------------------------------------------------------------------

    def _after_apply(self, report: ApplyReport) -> None:
        if not report.deferred:
            self.waiting_for_parked = None
            return
        self.waiting_for_parked = {"modules": report.deferred, "reason": report.waiting}
        self._log.warning(
            "config change waits for parked", modules=report.deferred, reason=report.waiting
        )
        if not any(task.get_name() == "agent.config.parked" for task in self._tasks):
            self._spawn(self._finish_when_parked(), "agent.config.parked")

    async def _finish_when_parked(self) -> None:
        clock = self.supervisor.clock
        while self.waiting_for_parked is not None:
            await clock.sleep(PARKED_POLL_S)
            parked, _ = await vehicle_parked(self.supervisor.bus)
            if not parked:
                continue
            async with self.lock:
                report = await apply_config(self.supervisor, self.supervisor.config)
                self._log.info("parked: deferred config applied", report=dataclasses.asdict(report))
                self.waiting_for_parked = (
                    {"modules": report.deferred, "reason": report.waiting}
                    if report.deferred
                    else None
                )

    # -- probation ---------------------------------------------------------------------------

    def resume(self) -> None:
        """Resume a probation an earlier run left unfinished (call once the agent runs)."""
        record = load_record(self._state_dir)
        if record is not None:
            self._log.warning("resuming the probation of a config change", change=record.change)
            self._start_probation(record)

    def _start_probation(self, record: ProbationRecord) -> None:
        self.on_probation = record
        self._spawn(self._watch(record), "agent.config.probation")

    async def _watch(self, record: ProbationRecord) -> None:
        clock, limit = self.supervisor.clock, self.supervisor.settings.link_probation_s
        deadline = clock.monotonic() + limit
        while clock.monotonic() < deadline:
            if link_online(self.supervisor.runners):
                await self._end_probation(record, "kept", "the cloud link is back online")
                return
            await clock.sleep(PROBATION_POLL_S)
        reason = f"the cloud link was not back online within {limit:g} s"
        async with self.lock:
            await self._revert(record, reason)

    async def _revert(self, record: ProbationRecord, reason: str) -> None:
        layers = dataclasses.replace(
            self.supervisor.config.layers,
            signed=record.previous_signed,
            desired=record.previous_desired,
        )
        try:
            previous = compose(layers)
        except ConfigError as error:
            # The file changed under us: the file alone is the safest thing left.
            self._log.warning(
                "previous config no longer valid; using the file", errors=error.lines()
            )
            layers = dataclasses.replace(layers, signed=None, desired=None)
            previous = compose(layers)
        await asyncio.to_thread(self._store_layers, layers)
        report = await apply_config(self.supervisor, previous)
        self.supervisor.desired_version = layers.desired_version
        self._after_apply(report)
        self._log.error("config change reverted", change=record.change, reason=reason)
        await self._end_probation(record, "reverted", f"{reason}; previous config restored")

    async def _end_probation(self, record: ProbationRecord, result: str, reason: str) -> None:
        await asyncio.to_thread(save_record, self._state_dir, None)
        self.on_probation = None
        self.last_probation = {
            "change": record.change,
            "result": result,
            "reason": reason,
            "at": time.time(),
        }
        self.supervisor.notify_changed()
        if result == "reverted":
            await self._send_event({"kind": "config-reverted", **self.last_probation})

    async def _send_event(self, event: dict[str, Any]) -> None:
        """Send ``event`` upstream durably: straight into the shared spool when there is one.

        The cloud link may be restarting right now (it was just reverted), so the bus route
        (``cloud/out/events``) is only the fallback for an agent without a shared spool.
        """
        spool = self.supervisor.spool
        if spool is None:
            self.supervisor.bus.publish_nowait(EVENTS_TOPIC, event, priority=Priority.CONTROL)
            return
        payload = json.dumps(event, separators=(",", ":"), default=str).encode()
        try:
            await spool.append_many([AppendRequest(EVENTS_STREAM, payload, SpoolPriority.EVENTS)])
        except Exception as error:  # reporting must not undo the revert; say so instead
            self._log.warning("could not spool the config event", error=repr(error))
