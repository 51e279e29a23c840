"""The OTA installer module: takes jobs from the cloud, installs, switches, gates, commits.

See docs/ota.md. Jobs arrive on ``cloud/in/ota/jobs`` (raw JSON), progress and results go to
``cloud/out/ota/status`` and into this module's health details; the durable record is
``STATE_DIR/ota/state.json`` and ``STATE_DIR/ota/install.log``.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from edge_agent.bus import Message, OverflowPolicy, Priority
from edge_agent.metrics import Sample
from edge_agent.module_api import Module, ModuleContext
from edge_agent.modules.ota.config import OtaConfig
from edge_agent.modules.ota.config_job import ConfigJobs
from edge_agent.modules.ota.engine import Engine
from edge_agent.modules.ota.guard import ParkedGuard
from edge_agent.modules.ota.job import job_id_of, parse_job
from edge_agent.modules.ota.metrics import ota_metrics
from edge_agent.modules.ota.trial import Boot, Recovery
from edge_agent.ota.errors import Code, OtaError
from edge_agent.ota.installers import ABInstaller, RaucInstaller, SystemUpdater
from edge_agent.ota.layout import OtaLayout
from edge_agent.vehicle_state import serve_parked

# If the graceful shutdown after a restart request hangs, exit anyway after this long.
RESTART_HARD_LIMIT_S = 120.0
# Jobs waiting to be looked at; one more is refused with "queue-full" on ota/status.
JOB_QUEUE = 16


class OtaInstallerModule(Module[OtaConfig]):
    """Verified (TUF), resumable, A/B or RAUC updates with a parked guard and a health gate.

    It also applies signed config targets (jobs of kind ``config``) and answers the agent's
    "is the vehicle parked?" (:mod:`edge_agent.vehicle_state`) from the same guard.
    """

    name = "ota"
    version = "1.0.0"
    config_model = OtaConfig
    # The install pipeline class; a test-side subclass may pause it at a phase (crash tests).
    engine_class: ClassVar[type[Engine]] = Engine

    @classmethod
    def health_metrics(cls, details: Mapping[str, Any]) -> Iterable[Sample]:
        """Prometheus metrics from the module's health details (see its ``metrics`` file)."""
        return ota_metrics(details)

    def __init__(self, config: OtaConfig, context: ModuleContext) -> None:
        super().__init__(config, context)
        self._job_task: asyncio.Task[None] | None = None
        self._restart_requested = False
        self._logging: set[asyncio.Task[bool]] = set()
        self.dropped_jobs = 0

    async def setup(self) -> None:
        """Open the OTA directory and read the persistent state."""
        config = self.config
        state_dir = config.state_dir or self.context.state_dir.parent.parent
        self.layout = OtaLayout.for_state_dir(state_dir)
        await asyncio.to_thread(self.layout.root.mkdir, parents=True, exist_ok=True)
        updater: SystemUpdater
        if config.updater == "rauc":
            updater = RaucInstaller(config.rauc.command, config.rauc.reboot_command)
        else:
            updater = ABInstaller(self.layout)
        self.guard = ParkedGuard(config.guard, self.context.clock.monotonic)
        self.engine = self.engine_class(
            config=config,
            layout=self.layout,
            updater=updater,
            guard=self.guard,
            publish=self._publish,
            restart=self.restart_agent,
        )
        self.config_jobs = ConfigJobs(
            config=config,
            layout=self.layout,
            client=self.engine.client,
            guard=self.guard,
            guard_changed=self.engine.guard_changed,
            bus=self.context.bus,
            publish=self._publish_config,
        )
        self.recovery = Recovery(
            self.engine,
            config.gate,
            self.context.bus,
            self.context.name,
            config.gate.spool_dir or state_dir / "spool",
        )

    async def start(self) -> None:
        """Reconcile the state, resume or start the trial, and listen for jobs and speed."""
        bus = self.context.bus
        guard = self.config.guard
        self.context.on_stop(serve_parked(bus, self.guard.verdict))
        self.context.on_stop(
            bus.listen(
                f"can/{guard.bus}/decoded/{guard.message}",
                self._on_speed,
                maxsize=8,
                overflow=OverflowPolicy.DROP_OLDEST,
                name="ota.speed",
            )
        )
        boot = await self.recovery.on_start()
        self.context.log.info("ota start", boot=boot.value, phase=self.engine.state.phase.value)
        if boot is Boot.RESUME:
            self._job_task = self.context.spawn(self.engine.drive(), "resume")
        elif boot is Boot.TRIAL:
            self._job_task = self.context.spawn(self.recovery.run_gate(), "health-gate")
        self.context.on_stop(
            bus.listen(
                self.config.jobs_topic,
                self._on_job,
                maxsize=JOB_QUEUE,
                overflow=OverflowPolicy.DROP_NEWEST,
                name="ota.jobs",
                on_drop=self._job_dropped,
            )
        )
        await self._publish(self.engine.status())

    async def _publish(self, status: dict[str, Any]) -> None:
        full = {"vehicle_id": self.context.vehicle_id, **status}
        if "phase" in status and status.get("phase") != "refused":
            self.context.health.set_detail("ota", full)
        await self.context.bus.publish(
            self.config.status_topic, full, priority=Priority.CONTROL, sender=self.name
        )

    async def _publish_config(self, status: dict[str, Any]) -> None:
        full = {"vehicle_id": self.context.vehicle_id, **status}
        self.context.health.set_detail("config_job", full)
        await self.context.bus.publish(
            self.config.status_topic, full, priority=Priority.CONTROL, sender=self.name
        )

    async def _on_speed(self, message: Message) -> None:
        signals = getattr(message.payload, "signals", None)
        if signals is None and isinstance(message.payload, dict):
            signals = message.payload.get("signals")
        if not isinstance(signals, dict):
            return
        value = signals.get(self.config.guard.signal)
        if isinstance(value, int | float) and not isinstance(value, bool):
            self.guard.observe(float(value))
            self.engine.guard_changed.set()

    def _job_dropped(self, message: Message) -> None:
        """A job the full queue turned away: refuse it by id on ota/status, never silently.

        Runs inside the bus's offer (no waiting): the status goes out with publish_nowait on
        the control lane and the refusal is logged within the install log's quota.
        """
        try:
            job = parse_job(message.payload)
            job_id, version = job.id, job.version
        except OtaError:
            job_id, version = job_id_of(message.payload), ""
        error = OtaError(
            Code.QUEUE_FULL, f"{JOB_QUEUE} jobs already waiting; job {job_id!r} was not taken"
        )
        status = {
            "vehicle_id": self.context.vehicle_id,
            "job_id": job_id,
            "phase": "refused",
            "code": error.code.value,
            "reason": error.reason,
        }
        self.dropped_jobs += 1
        self.context.bus.publish_nowait(
            self.config.status_topic, status, priority=Priority.CONTROL, sender=self.name
        )
        task = asyncio.get_running_loop().create_task(
            asyncio.to_thread(
                self.engine.refusals.record, job_id, self.engine.running_version(), version, error
            ),
            name="ota.refusal-log",
        )
        self._logging.add(task)
        task.add_done_callback(self._logging.discard)

    async def _on_job(self, message: Message) -> None:
        try:
            job = parse_job(message.payload)
        except OtaError as error:
            await self.engine.refuse(job_id_of(message.payload), "", error)
            return
        state = self.engine.state
        busy = (self._job_task is not None and not self._job_task.done()) or state.in_progress
        if busy or self._restart_requested:
            if job.id == state.job_id:
                await self._publish(self.engine.status())  # a re-sent job: say where it is
                return
            running = (
                f"job {state.job_id} is {state.phase.value}"
                if state.in_progress
                else f"{self._job_task.get_name() if self._job_task else 'a job'} is running"
            )
            await self.engine.refuse(
                job.id, job.version, OtaError(Code.BUSY, f"{running}; try later")
            )
            return
        if job.kind == "config":
            self._job_task = self.context.spawn(self.config_jobs.run(job), f"config[{job.id}]")
            return
        if job.id == state.job_id:
            await self._publish(self.engine.status())  # already finished: report the outcome
            return
        self._job_task = self.context.spawn(self._run_job(job), f"job[{job.id}]")

    async def _run_job(self, job: Any) -> None:
        try:
            await self.engine.accept(job)
        except OtaError as error:  # refused before anything was saved (not provisioned)
            await self.engine.refuse(job.id, job.version, error)

    async def run(self) -> None:
        """Between jobs, only close the refusal log's windows; the work is in spawned tasks."""
        refusals = self.engine.refusals
        while True:
            await self.context.clock.sleep(refusals.window_s)
            await asyncio.to_thread(refusals.flush)

    async def stop(self) -> None:
        """Write the summary of refusals not logged one by one."""
        await asyncio.gather(*self._logging, return_exceptions=True)
        await asyncio.to_thread(self.engine.refusals.flush, force=True)

    def restart_agent(self, reason: str) -> None:
        """Stop the agent gracefully and exit with ``restart_exit_status`` (systemd restarts it).

        The supervisor runs its staged shutdown and returns that status; a timer makes sure
        the process does exit even if the shutdown hangs. Without a supervisor (an embedding
        application), SIGTERM plus an exit handler do the same.
        """
        if self._restart_requested:
            return
        self._restart_requested = True
        status = self.config.restart_exit_status
        self.context.log.warning("restarting the agent", reason=reason, exit_status=status)
        hard_stop = threading.Timer(RESTART_HARD_LIMIT_S, os._exit, args=(status,))
        hard_stop.daemon = True
        if self.context.request_exit(status, reason):
            hard_stop.start()
            return

        def exit_with_status() -> None:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(OSError, ValueError):
                    stream.flush()
            logging.shutdown()
            os._exit(status)

        atexit.register(exit_with_status)
        timer = threading.Timer(RESTART_HARD_LIMIT_S, exit_with_status)
        timer.daemon = True
        timer.start()
        os.kill(os.getpid(), signal.SIGTERM)
