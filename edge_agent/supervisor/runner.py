"""Runs one module through its lifecycle: start, readiness, run, failure, backoff, stop."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import inspect
import random
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from edge_agent.backoff import Backoff, FailureWindow
from edge_agent.bus import Bus
from edge_agent.clock import Clock
from edge_agent.config import ModulePlan
from edge_agent.logs import get_logger
from edge_agent.module_api import (
    Isolation,
    Module,
    ModuleContext,
    ModuleState,
    NotReady,
    RestartPolicy,
)
from edge_agent.process.proxy import ProcessModuleProxy
from edge_agent.spool import AsyncSpool
from edge_agent.streams import StreamRegistry
from edge_agent.supervisor.lifecycle import TERMINAL, check_transition

# After a task has been cancelled, how long we wait for it to actually end before naming it
# a straggler and moving on.
CANCEL_GRACE_S = 0.5


class Outcome(enum.Enum):
    """How one start-and-run attempt of a module ended."""

    COMPLETED = "completed"  # stopped on request, or run() returned
    FAILED = "failed"


async def _wait_bounded(tasks: Sequence[asyncio.Task[Any]], grace_s: float) -> list[str]:
    """Cancel ``tasks``, wait up to ``timeout``, and return the names of those still alive."""
    pending = [task for task in tasks if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=grace_s)
    return [task.get_name() for task in pending if not task.done()]


async def _until_first(*awaitables: Awaitable[Any]) -> None:
    """Wait until one of ``awaitables`` is done; cancel the others."""
    waiters = [asyncio.ensure_future(awaitable) for awaitable in awaitables]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


class ModuleRunner:
    """Owns one module instance at a time and applies its restart policy.

    The supervisor reads ``state``, ``restarts``, ``last_error`` and ``health`` for the health
    model; ``running`` is set while the module is RUNNING.
    """

    def __init__(
        self,
        plan: ModulePlan,
        *,
        bus: Bus,
        clock: Clock,
        state_root: Path,
        vehicle_id: str,
        register_liveness: Callable[[str, Callable[[], bool]], None] | None = None,
        rng: random.Random | None = None,
        child_logging: tuple[str, str] = ("info", "json"),
        spool: AsyncSpool | None = None,
        streams: StreamRegistry | None = None,
        request_exit: Callable[[int, str], None] | None = None,
    ) -> None:
        self.plan = plan
        self.name = plan.name
        self.settings = plan.settings
        self._bus = bus
        self._clock = clock
        self._state_root = state_root
        self._vehicle_id = vehicle_id
        self._register_liveness = register_liveness
        self._child_logging = child_logging
        self.spool = spool
        self.streams = streams
        self._request_exit = request_exit
        self.state = ModuleState.LOADING
        self.state_since = clock.monotonic()
        self.restarts = 0
        self.failures = 0
        self.last_error = ""
        self.stragglers: list[str] = []
        self.module: Module[Any] | None = None
        self.context: ModuleContext | None = None
        self.running = asyncio.Event()
        self.settled = asyncio.Event()  # set on RUNNING or on any terminal state
        self._stop_requested = asyncio.Event()
        self._cleanups: set[asyncio.Future[Any]] = set()  # started by _cut_off, not awaited
        self._backoff = Backoff(
            plan.settings.backoff_initial_s, plan.settings.backoff_max_s, rng=rng or random.Random()
        )
        self._window = FailureWindow(plan.settings.failure_window_s, plan.settings.max_failures)
        self._log = get_logger("edge_agent.supervisor").bind(module=self.name)
        self.on_state_change: Callable[[ModuleRunner], None] | None = None

    # -- state -------------------------------------------------------------------------------

    def _set_state(self, target: ModuleState, reason: str = "") -> None:
        if target is self.state:
            return
        check_transition(self.state, target)
        self._log.info("module state", state=target.value, previous=self.state.value, reason=reason)
        self.state = target
        self.state_since = self._clock.monotonic()
        if target is ModuleState.RUNNING:
            self.running.set()
            self.settled.set()
        else:
            self.running.clear()
            if target in TERMINAL:
                self.settled.set()
            else:
                # Left RUNNING for a retry: dependents waiting on ``settled`` must sleep again,
                # or they would spin on an event that stays set.
                self.settled.clear()
        if self.on_state_change is not None:
            self.on_state_change(self)

    @property
    def terminal(self) -> bool:
        """Whether the module has stopped trying (failed, broken or stopped)."""
        return self.state in TERMINAL

    # -- lifecycle ---------------------------------------------------------------------------

    async def lifecycle(self, dependencies: Sequence[ModuleRunner]) -> None:
        """Start (after ``dependencies`` run), run, and restart by policy until told to stop."""
        attempt = 0
        while not self._stop_requested.is_set():
            blocker = await self._wait_for_dependencies(dependencies)
            if self._stop_requested.is_set():
                break
            if blocker:
                self.last_error = blocker
                self._set_state(ModuleState.FAILED, blocker)
                return
            attempt += 1
            if attempt > 1:
                self.restarts += 1
            self._set_state(ModuleState.STARTING)
            outcome, reason, retry_only = await self._attempt()
            if self._stop_requested.is_set():
                break
            if outcome is Outcome.COMPLETED:
                if self.settings.restart is not RestartPolicy.ALWAYS:
                    self._set_state(ModuleState.STOPPED, "run() returned")
                    return
                delay = self._backoff.delay(1)
            else:
                self.last_error = reason
                if not retry_only:
                    self.failures += 1
                    count = self._window.record(self._clock.monotonic())
                    if count >= self.settings.max_failures:
                        window = self.settings.failure_window_s
                        self._set_state(
                            ModuleState.BROKEN, f"{count} failures within {window:g} s: {reason}"
                        )
                        return
                    if self.settings.restart is RestartPolicy.NEVER:
                        self._set_state(ModuleState.FAILED, reason)
                        return
                delay = self._backoff.delay(attempt)
            self._set_state(ModuleState.BACKING_OFF, f"retry in {delay:.2f} s")
            await self._back_off(delay)
        if self.state is not ModuleState.STOPPED:
            if self.state in (ModuleState.STARTING, ModuleState.RUNNING):
                self._set_state(ModuleState.STOPPING)
            self._set_state(ModuleState.STOPPED, "shutdown")

    async def _back_off(self, delay: float) -> None:
        """Wait ``delay`` seconds on the module clock, or until a stop is requested."""
        await _until_first(self._clock.sleep(delay), self._stop_requested.wait())

    async def _wait_for_dependencies(self, dependencies: Sequence[ModuleRunner]) -> str:
        for dependency in dependencies:
            while not dependency.running.is_set():
                if dependency.terminal:
                    return f"dependency {dependency.name!r} is {dependency.state.value}"
                await _until_first(
                    dependency.running.wait(),
                    self._stop_requested.wait(),
                    dependency.settled.wait(),
                )
                if self._stop_requested.is_set():
                    return ""
        return ""

    def _new_instance(self) -> Module[Any]:
        state_dir = self._state_root / "modules" / self.name
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            # A full or read-only disk must not keep a module from starting; what the
            # module itself writes there will fail and say so.
            self._log.warning("cannot create the module's state directory", error=str(error))
        self.context = ModuleContext(
            name=self.name,
            bus=self._bus,
            state_dir=state_dir,
            clock=self._clock,
            vehicle_id=self._vehicle_id,
            liveness=self._register_liveness,
            spool=self.spool,
            streams=self.streams,
            request_exit=self._request_exit,
        )
        module_class = self.plan.module_class
        if (self.settings.isolation or module_class.isolation) is Isolation.PROCESS:
            level, log_format = self._child_logging
            return ProcessModuleProxy(
                module_class,
                self.plan.config,
                self.context,
                log_level=level,
                log_format=log_format,
                stop_grace_s=self.settings.stop_timeout_s * 0.6,
                cpu_affinity=self.settings.cpu_affinity,
            )
        return module_class(self.plan.config, self.context)

    async def _attempt(self) -> tuple[Outcome, str, bool]:
        """One start-and-run attempt: (outcome, reason, retry_without_counting)."""
        try:
            module = self._new_instance()
        except Exception as error:
            return Outcome.FAILED, f"could not be created: {type(error).__name__}: {error}", False
        self.module = module
        assert self.context is not None
        task_failed: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._watch_spawned(task_failed)
        run_task: asyncio.Task[None] | None = None
        cut_off = False
        try:
            try:
                if not await self._start_unless_stopped(module):
                    return Outcome.COMPLETED, "stopped while starting", False
            except TimeoutError:
                return (
                    Outcome.FAILED,
                    f"did not signal readiness within {self.settings.start_timeout_s:g} s",
                    False,
                )
            except NotReady as error:
                return Outcome.FAILED, f"not ready: {error}", True
            except Exception as error:
                return Outcome.FAILED, f"start failed: {type(error).__name__}: {error}", False
            if task_failed.done():
                return Outcome.FAILED, task_failed.result(), False
            self._set_state(ModuleState.RUNNING)
            run_task = asyncio.get_running_loop().create_task(module.run(), name=f"{self.name}.run")
            stop_wait = asyncio.ensure_future(self._stop_requested.wait())
            watched: list[asyncio.Future[Any]] = [run_task, stop_wait, task_failed]
            try:
                await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stop_wait.cancel()
            if task_failed.done():
                await _wait_bounded([run_task], CANCEL_GRACE_S)
                return Outcome.FAILED, task_failed.result(), False
            if not run_task.done():  # stop requested
                self._set_state(ModuleState.STOPPING)
                await _wait_bounded([run_task], CANCEL_GRACE_S)
                return Outcome.COMPLETED, "stopped", False
            if run_task.cancelled():
                return Outcome.FAILED, "run() was cancelled", False
            run_error = run_task.exception()
            if run_error is not None:
                return Outcome.FAILED, f"run failed: {type(run_error).__name__}: {run_error}", False
            return Outcome.COMPLETED, "run() returned", False
        except asyncio.CancelledError:
            # The agent's shutdown limit ran out and the supervisor cancelled us: a graceful
            # stop could take the whole stop limit again, so cut the instance off instead.
            cut_off = True
            raise
        finally:
            if not task_failed.done():
                task_failed.cancel()
            if cut_off:
                self._cut_off(run_task)
            else:
                await self._teardown(module)

    async def _start_unless_stopped(self, module: Module[Any]) -> bool:
        """Run setup and start within the start limit; False if a stop came first."""

        async def setup_and_start() -> None:
            async with asyncio.timeout(self.settings.start_timeout_s):
                await module.setup()
                await module.start()

        starting = asyncio.get_running_loop().create_task(
            setup_and_start(), name=f"{self.name}.start"
        )
        stop_wait = asyncio.ensure_future(self._stop_requested.wait())
        try:
            await asyncio.wait([starting, stop_wait], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop_wait.cancel()
        if not starting.done():
            await _wait_bounded([starting], CANCEL_GRACE_S)
            return False
        starting.result()  # re-raise what setup or start raised
        return True

    def _watch_spawned(self, task_failed: asyncio.Future[str]) -> None:
        assert self.context is not None

        def check(task: asyncio.Task[Any]) -> None:
            if task_failed.done():
                return
            error = task.exception()
            task_failed.set_result(
                f"task {task.get_name()!r} failed: {type(error).__name__}: {error}"
            )

        self.context.task_failed = check

    async def _teardown(self, module: Module[Any]) -> None:
        """Stop the instance within its stop limit, then cancel what it left behind."""
        assert self.context is not None
        context = self.context
        stop_task = asyncio.get_running_loop().create_task(module.stop(), name=f"{self.name}.stop")
        try:
            await self._finish_stop(context, stop_task)
        except asyncio.CancelledError:  # cut off in the middle of stopping
            self._cut_off(stop_task)
            raise

    async def _finish_stop(self, context: ModuleContext, stop_task: asyncio.Task[None]) -> None:
        limit = self.settings.stop_timeout_s
        done, _ = await asyncio.wait([stop_task], timeout=limit)
        stragglers: list[str] = []
        if not done:
            self._log.warning("module stop timed out", limit_s=limit)
            self.last_error = f"stop() did not finish within {limit:g} s; cancelled"
            stragglers += await _wait_bounded([stop_task], CANCEL_GRACE_S)
        elif stop_task.exception() is not None:
            error = stop_task.exception()
            self._log.warning("module stop failed", error=f"{type(error).__name__}: {error}")
        stragglers += await _wait_bounded(list(context.tasks), CANCEL_GRACE_S)
        for callback in context.take_stop_callbacks():
            try:
                result = callback()
                if inspect.isawaitable(result):
                    async with asyncio.timeout(limit):
                        await result
            except Exception as error:
                self._log.warning("stop callback failed", error=f"{type(error).__name__}: {error}")
        if stragglers:
            self._log.warning("tasks did not end when cancelled", tasks=stragglers)
        self.stragglers = stragglers
        self.module = None

    def _cut_off(self, task: asyncio.Task[Any] | None) -> None:
        """Cancel ``task`` and the instance's spawned tasks without waiting; mark it stopped.

        Clean-up callbacks are still started (one may kill a child process) but not awaited.
        """
        leftovers: list[asyncio.Task[Any]] = [task] if task is not None else []
        if self.context is not None:
            leftovers.extend(self.context.tasks)
            for callback in self.context.take_stop_callbacks():
                with contextlib.suppress(Exception):
                    result = callback()
                    if inspect.isawaitable(result):
                        cleanup = asyncio.ensure_future(result)
                        self._cleanups.add(cleanup)
                        cleanup.add_done_callback(self._cleanups.discard)
        for leftover in leftovers:
            leftover.cancel()
        self.last_error = "did not stop within the agent's shutdown limit; cancelled"
        self._log.warning("module cut off at the shutdown limit")
        if self.state in (ModuleState.STARTING, ModuleState.RUNNING):
            self._set_state(ModuleState.STOPPING)
        self._set_state(ModuleState.STOPPED, "cut off at the shutdown limit")
        self.module = None

    def request_stop(self) -> None:
        """Ask the lifecycle to end; the module's ``stop`` runs within its stop limit."""
        self._stop_requested.set()
