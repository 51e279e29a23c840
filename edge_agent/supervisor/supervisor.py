"""The supervisor: starts modules in dependency order, watches them, and shuts down in stages."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import time
from collections.abc import Callable
from typing import Any

from edge_agent.agent_topics import HEALTH_TOPIC
from edge_agent.bus import Bus, Priority
from edge_agent.clock import Clock, SystemClock
from edge_agent.clocktrust import WallClockTrust, current_boot_id
from edge_agent.config import LoadedConfig, ModulePlan
from edge_agent.exit_codes import Exit
from edge_agent.health import AgentState, write_health_file
from edge_agent.logs import get_logger, log_context
from edge_agent.metrics.view import MetricsView
from edge_agent.module_api import ModuleState
from edge_agent.module_order import start_order
from edge_agent.sdnotify import SystemdNotifier
from edge_agent.spool import AgeClock, AsyncSpool, SpoolPolicy
from edge_agent.spool.model import MIB
from edge_agent.streams import StreamRegistry
from edge_agent.supervisor.changes import ConfigChanges
from edge_agent.supervisor.runner import CANCEL_GRACE_S, ModuleRunner
from edge_agent.supervisor.services import serve_agent_requests
from edge_agent.version import __version__

LOOP_LAG_PROBE_S = 0.1


class Supervisor:
    """Hosts the configured modules for the life of the agent process.

    ``run`` returns the process exit status after a staged shutdown: stop modules (dependents
    first) within ``shutdown_timeout_s`` in total, cancel and name what is left, close the bus.
    """

    def __init__(
        self,
        config: LoadedConfig,
        *,
        bus: Bus | None = None,
        clock: Clock | None = None,
        notifier: SystemdNotifier | None = None,
    ) -> None:
        self.config = config
        self.settings = config.agent.agent
        self.bus = bus or Bus()
        self.clock = clock or SystemClock()
        self.notifier = notifier or SystemdNotifier()
        self.state = AgentState.STARTING
        self.started_at = time.time()
        self.ready = False
        self.loop_lag_s = 0.0
        self.desired_version: Any = config.desired_version
        self._exit_status: int | None = None
        self.spool: AsyncSpool | None = None
        # Modules register their streams' transforms here; the spool degrades through it.
        self.streams = StreamRegistry()
        self.spool_stats: dict[str, Any] = {}
        self.stragglers: list[str] = []
        # The last published snapshot, swapped whole: the metrics thread reads it, no lock.
        self.metrics_view: MetricsView | None = None
        self._metrics: Any = None  # MetricsServer, when [metrics] is configured
        self._stop = asyncio.Event()
        self._changed = asyncio.Event()  # health file needs rewriting
        self._wake = asyncio.Event()  # the supervise loop should look again
        self._liveness: dict[str, Callable[[], bool]] = {}
        self._log = get_logger("edge_agent.supervisor")
        order = start_order(
            {name: plan.module_class.requires for name, plan in config.modules.items()}
        )
        self.runners: dict[str, ModuleRunner] = {}
        for name in order:
            self.runners[name] = self.make_runner(config.modules[name])
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._background: set[asyncio.Task[None]] = set()
        self.changes = ConfigChanges(self)

    def make_runner(self, plan: ModulePlan) -> ModuleRunner:
        """A runner for ``plan`` wired to this supervisor's bus, clock and health."""
        runner = ModuleRunner(
            plan,
            bus=self.bus,
            clock=self.clock,
            state_root=self.settings.state_dir,
            vehicle_id=self.settings.vehicle_id,
            register_liveness=self._register_liveness,
            child_logging=(self.settings.log_level, self.settings.log_format),
            spool=self.spool,
            streams=self.streams,
            request_exit=self.request_exit,
        )
        runner.on_state_change = self._module_changed
        return runner

    def launch(self, name: str) -> None:
        """Start the lifecycle task of runner ``name`` (it waits for its dependencies)."""
        runner = self.runners[name]
        dependencies = [self.runners[d] for d in runner.plan.module_class.requires]
        # module=name rides on every line the module's tasks log, python-can's and aiomqtt's too.
        self._tasks[name] = asyncio.get_running_loop().create_task(
            runner.lifecycle(dependencies),
            name=f"agent.module[{name}]",
            context=log_context(module=name),
        )

    async def retire(self, name: str) -> None:
        """Stop module ``name`` within its stop limit and forget it."""
        runner = self.runners.pop(name)
        self._liveness.pop(name, None)
        runner.request_stop()
        task = self._tasks.pop(name, None)
        if task is not None:
            done, _ = await asyncio.wait(
                [task], timeout=runner.settings.stop_timeout_s + CANCEL_GRACE_S * 3
            )
            if not done:
                task.cancel()
        self._changed.set()
        self._wake.set()

    # -- hooks -------------------------------------------------------------------------------

    def _register_liveness(self, name: str, check: Callable[[], bool]) -> None:
        self._liveness[name] = check

    def _module_changed(self, runner: ModuleRunner) -> None:
        self.notify_changed()

    def notify_changed(self) -> None:
        """Rewrite the health file soon and let the supervise loop look again."""
        self._changed.set()
        self._wake.set()

    def request_exit(self, status: int, reason: str) -> None:
        """Shut down in stages, then make ``run`` return ``status`` (a module's request)."""
        if self._exit_status is None:
            self._exit_status = status
        self.request_stop(f"{reason} (exit status {status})")

    def request_stop(self, reason: str = "requested") -> None:
        """Begin the staged shutdown (what SIGTERM and SIGINT do)."""
        if not self._stop.is_set():
            self._log.info("shutdown requested", reason=reason)
            self._stop.set()
            self._wake.set()

    @property
    def metrics_address(self) -> tuple[str, int] | None:
        """Where the metrics endpoint listens (host, port), or None when it is not serving."""
        return self._metrics.address if self._metrics is not None else None

    # -- health ------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The health model: agent state plus state, restarts and last error per module."""
        now = self.clock.monotonic()
        modules: dict[str, Any] = {}
        for name, runner in self.runners.items():
            report = runner.context.health.report if runner.context else None
            modules[name] = {
                "state": runner.state.value,
                "required": runner.settings.required,
                "version": runner.plan.module_class.version,
                "restarts": runner.restarts,
                "failures": runner.failures,
                "last_error": runner.last_error,
                "state_for_s": round(now - runner.state_since, 3),
                "ok": report.ok if report else runner.state is ModuleState.RUNNING,
                "reason": report.reason if report else "",
                "details": dict(report.details) if report else {},
            }
        self._mark_dependencies_down(modules)
        return {
            "agent": {
                "pid": os.getpid(),
                "version": __version__,
                "vehicle_id": self.settings.vehicle_id,
                "state": self.state.value,
                "ready": self.ready,
                "started_at": self.started_at,
                "updated_at": time.time(),
                "health_interval_s": self.settings.health_interval_s,
                "loop_lag_ms": round(self.loop_lag_s * 1000, 3),
                "stragglers": self.stragglers,
                "config_source": self.config.source,
                "desired_version": self.desired_version,
                "config": self.changes.status(),
                "desired_ignored": self.config.desired_ignored,
            },
            "modules": modules,
            "bus": [dataclasses.asdict(stats) for stats in self.bus.stats()],
            "spool": self.spool_stats,
        }

    def _mark_dependencies_down(self, modules: dict[str, Any]) -> None:
        """A running module whose dependency has ended for good is not healthy: say which.

        Dependencies are only awaited before a start; a module keeps running if one breaks
        later (it may well cope), but its health says so: ``ok`` false, the reason, and
        ``dependencies_down``.
        """
        for name, runner in self.runners.items():
            down = [
                needed
                for needed in runner.plan.module_class.requires
                if needed in self.runners and self.runners[needed].terminal
            ]
            if not down or runner.state is not ModuleState.RUNNING:
                continue
            reasons = [f"dependency {d!r} is {self.runners[d].state.value}" for d in down]
            entry = modules[name]
            entry["ok"] = False
            entry["reason"] = "; ".join([*reasons, entry["reason"]] if entry["reason"] else reasons)
            entry["dependencies_down"] = down

    async def _open_spool(self) -> None:
        """Open the shared spool (before any module starts), if configured.

        It opens whatever the disk's state: on a disk it cannot use, in memory (docs/spool.md,
        "When the disk cannot be used"). Its repairs (reopening, salvage) wait for READY.
        """
        settings = self.config.agent.spool
        if not settings.enabled:
            return
        path = settings.resolved_path(self.settings.state_dir)
        policy = SpoolPolicy(
            max_bytes=int(settings.max_mb * MIB),
            reserve_bytes=int(settings.reserve_mb * MIB),
            memory_bytes=int(settings.memory_mb * MIB),
        )
        # Record ages for TTLs: the boot clock, and the wall clock across reboots if trusted.
        ages = AgeClock(current_boot_id(), wall_trusted=WallClockTrust().trusted)
        # A stream whose producer registered a degrade transform (telemetry: downsampling,
        # same message id) is shrunk before it is ever dropped; the spool sees opaque bytes.
        self.spool = await AsyncSpool.open(
            path, policy, degrade=self.streams.degrade, age_clock=ages, hold_repairs=True
        )

    async def _write_health(self) -> None:
        if self.spool is not None:
            try:
                self.spool_stats = (await self.spool.stats()).as_dict()
            except Exception as error:  # a spool problem must not stop health reporting
                self.spool_stats = {"error": repr(error)}
        try:
            snapshot = self.snapshot()
            self.metrics_view = MetricsView(
                snapshot,
                {name: r.plan.module_class.health_metrics for name, r in self.runners.items()},
            )
            await asyncio.to_thread(write_health_file, self.settings.state_dir, snapshot)
        except Exception as error:  # health reporting must never die; say why and go on
            self._log.warning("could not write the health file", error=repr(error))
            return
        self.bus.publish_nowait(HEALTH_TOPIC, snapshot, priority=Priority.CONTROL)

    async def _health_loop(self) -> None:
        while True:
            await self._write_health()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.health_interval_s):
                    await self._changed.wait()
            self._changed.clear()

    # -- watchdog ----------------------------------------------------------------------------

    async def _loop_lag_probe(self) -> None:
        """Measure how late the event loop wakes us; a blocked loop shows as a large lag."""
        lag_window: list[float] = []
        while True:
            before = time.monotonic()
            await asyncio.sleep(LOOP_LAG_PROBE_S)
            lag = max(0.0, time.monotonic() - before - LOOP_LAG_PROBE_S)
            lag_window.append(lag)
            if len(lag_window) > 10:
                lag_window.pop(0)
            self.loop_lag_s = max(lag_window)

    def alive(self) -> tuple[bool, str]:
        """Whether the watchdog may be pinged now, and if not, why."""
        if self.loop_lag_s > self.settings.watchdog_max_loop_lag_s:
            return False, f"event loop lag {self.loop_lag_s * 1000:.0f} ms"
        for name, check in self._liveness.items():
            runner = self.runners.get(name)
            if runner is not None and runner.state is not ModuleState.RUNNING:
                # A check speaks for one live instance. A module that failed, broke or is
                # restarting is the restart policy's business; its stale check must not make
                # systemd kill every other module with the agent.
                continue
            try:
                if not check():
                    return False, f"module {name!r} liveness check failed"
            except Exception as error:
                return False, f"module {name!r} liveness check raised {type(error).__name__}"
        return True, ""

    async def _watchdog_loop(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            ok, reason = self.alive()
            if ok:
                self.notifier.watchdog()
            else:
                self._log.warning("watchdog ping withheld", reason=reason)

    # -- running -----------------------------------------------------------------------------

    def _spawn(self, coroutine: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coroutine, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _required_failure(self) -> ModuleRunner | None:
        for runner in self.runners.values():
            if runner.settings.required and runner.state in (
                ModuleState.BROKEN,
                ModuleState.FAILED,
            ):
                return runner
        return None

    def _all_required_running(self) -> bool:
        return all(r.running.is_set() for r in self.runners.values() if r.settings.required)

    def _install_signal_handlers(self) -> list[signal.Signals]:
        loop = asyncio.get_running_loop()
        installed: list[signal.Signals] = []
        for signum in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(signum, self.request_stop, signum.name)
            except (NotImplementedError, RuntimeError, ValueError):
                continue  # not the main thread: the embedding application handles signals
            installed.append(signum)
        return installed

    async def run(self) -> int:
        """Run until SIGTERM/SIGINT (or a required module breaks); return the exit status."""
        installed = self._install_signal_handlers()
        exit_code = Exit.OK
        await self._open_spool()
        for runner in self.runners.values():
            runner.spool = self.spool
        if self.config.agent.metrics is not None:
            from edge_agent.metrics.endpoint import start_endpoint  # prometheus_client: only now

            self._metrics = start_endpoint(
                self.config.agent.metrics, lambda: self.metrics_view, self._log
            )
        try:
            self.notifier.status(f"starting {len(self.runners)} modules")
            self._spawn(self._loop_lag_probe(), "agent.loop_lag_probe")
            self._spawn(self._health_loop(), "agent.health")
            if self.notifier.watchdog_interval_s:
                self._spawn(
                    self._watchdog_loop(self.notifier.watchdog_interval_s / 2), "agent.watchdog"
                )
            for name in self.runners:
                self.launch(name)
            serve_agent_requests(self)
            self.changes.resume()
            exit_code = await self._supervise()
        finally:
            await self._shutdown()
            loop = asyncio.get_running_loop()
            for signum in installed:
                loop.remove_signal_handler(signum)
        if self._exit_status is not None and exit_code == Exit.OK:
            return self._exit_status
        return exit_code

    async def _supervise(self) -> Exit:
        while not self._stop.is_set():
            broken = self._required_failure()
            if broken is not None:
                self._log.error(
                    "required module failed; stopping the agent",
                    module=broken.name,
                    state=broken.state.value,
                    error=broken.last_error,
                )
                return Exit.REQUIRED_MODULE_FAILED
            if not self.ready and self._all_required_running():
                self.ready = True
                self.state = AgentState.RUNNING
                running = sum(1 for r in self.runners.values() if r.running.is_set())
                self.notifier.ready(f"running {running}/{len(self.runners)} modules")
                self._log.info("agent ready", modules=running, total=len(self.runners))
                if self.spool is not None:
                    self.spool.allow_repairs()  # a salvage must never hold the start
                self._changed.set()
            await self._wake.wait()
            self._wake.clear()
        return Exit.OK

    async def _shutdown(self) -> None:
        """Stage 1: stop modules, dependents first; stage 2: cancel stragglers; stage 3: bus."""
        self.state = AgentState.STOPPING
        self.notifier.stopping("stopping modules")
        await self.changes.close()
        deadline = self.clock.monotonic() + self.settings.shutdown_timeout_s
        for name in reversed(list(self.runners)):
            runner = self.runners[name]
            runner.request_stop()
            task = self._tasks.get(name)
            if task is None:
                continue
            remaining = deadline - self.clock.monotonic()
            budget = min(runner.settings.stop_timeout_s + CANCEL_GRACE_S * 3, max(remaining, 0.0))
            done, _ = await asyncio.wait([task], timeout=budget)
            if not done:
                self._log.warning("module did not stop in time; cancelling", module=name)
        leftovers = [task for task in self._tasks.values() if not task.done()]
        for task in leftovers:
            task.cancel()
        if leftovers:
            await asyncio.wait(leftovers, timeout=CANCEL_GRACE_S)
        self.stragglers = [task.get_name() for task in leftovers if not task.done()]
        for runner in self.runners.values():
            self.stragglers.extend(runner.stragglers)
        if self.stragglers:
            self._log.warning("shutdown left tasks behind", tasks=self.stragglers)
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.bus.close()
        if self._metrics is not None:
            await asyncio.to_thread(self._metrics.close)
        if self.spool is not None:
            await self.spool.close()
        self.state = AgentState.STOPPED
        with contextlib.suppress(OSError):
            await asyncio.to_thread(write_health_file, self.settings.state_dir, self.snapshot())
        self.notifier.close()
        self._log.info("agent stopped", stragglers=self.stragglers)
