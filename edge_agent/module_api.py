"""The public API a module is written against: base class, context, states, policies.

A module is a small package with a pydantic config model and a :class:`Module` subclass,
registered in the ``edge_agent.modules`` entry-point group. The supervisor creates it with its
validated config and a :class:`ModuleContext`, then drives ``setup``, ``start``, ``run`` and
``stop``. See docs/writing-a-module.md.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from edge_agent.bus import Bus
from edge_agent.clock import Clock
from edge_agent.logs import EventLogger, get_logger
from edge_agent.metrics.samples import Sample
from edge_agent.streams import StreamRegistry

if TYPE_CHECKING:
    # Only named in annotations: a module that never spools does not load SQLite for it.
    from edge_agent.spool import AsyncSpool


class ModuleState(enum.StrEnum):
    """Where a module is in its lifecycle (see ``edge_agent.supervisor.lifecycle``)."""

    LOADING = "loading"
    STARTING = "starting"
    RUNNING = "running"
    BACKING_OFF = "backing-off"
    FAILED = "failed"
    BROKEN = "broken"
    STOPPING = "stopping"
    STOPPED = "stopped"


class RestartPolicy(enum.StrEnum):
    """When the supervisor restarts a module whose ``run`` ended."""

    NEVER = "never"
    ON_FAILURE = "on-failure"
    ALWAYS = "always"


class Isolation(enum.StrEnum):
    """Where a module runs: in the agent's event loop, or in a supervised child process."""

    IN_LOOP = "in-loop"
    PROCESS = "process"


class NotReady(Exception):
    """Raised from ``setup`` or ``start`` when a resource is not there yet: retry with backoff."""


class EmptyConfig(BaseModel):
    """Config model of a module that takes no options."""

    model_config = ConfigDict(extra="forbid")


ConfigT = TypeVar("ConfigT", bound=BaseModel)


@dataclass
class HealthReport:
    """What a module says about itself beyond its lifecycle state."""

    ok: bool = True
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)


# Health detail through which the module that carries the cloud link says whether it is up.
LINK_ONLINE_DETAIL = "link_online"


class HealthReporter:
    """A module's handle to report degraded health and live figures (counters, latencies)."""

    def __init__(self) -> None:
        self.report = HealthReport()

    def link_online(self, online: bool) -> None:
        """Say whether the cloud link is up (for a module with ``is_cloud_link``).

        The supervisor keeps a config change that touches the link only if the link says
        online again within ``agent.link_probation_s``.
        """
        self.report.details[LINK_ONLINE_DETAIL] = online

    def set_detail(self, key: str, value: Any) -> None:
        """Publish a live figure (JSON-serialisable) in the health model under ``key``."""
        self.report.details[key] = value

    def degraded(self, reason: str) -> None:
        """Mark the module degraded (still running, not fully well) with a one-line reason."""
        self.report.ok = False
        self.report.reason = reason

    def healthy(self) -> None:
        """Clear a previous degraded mark."""
        self.report.ok = True
        self.report.reason = ""


class ModuleContext:
    """Everything the runtime lends a module: bus, logger, state dir, clock, health, tasks, spool.

    Tasks spawned here and callbacks registered with ``on_stop`` are cleaned up by the
    supervisor when the module stops, whatever way it stops. ``streams`` is the agent's
    registry of per-stream transforms (:mod:`edge_agent.streams`): a module that writes an
    upstream stream in a format of its own registers there how to degrade and re-stamp it.
    """

    def __init__(
        self,
        *,
        name: str,
        bus: Bus,
        state_dir: Path,
        clock: Clock,
        vehicle_id: str,
        liveness: Callable[[str, Callable[[], bool]], None] | None = None,
        spool: AsyncSpool | None = None,
        streams: StreamRegistry | None = None,
        request_exit: Callable[[int, str], None] | None = None,
    ) -> None:
        self.name = name
        self.bus = bus
        self.state_dir = state_dir
        self.clock = clock
        self.vehicle_id = vehicle_id
        # The agent's durable upstream spool (edge_agent.spool), shared by every module that
        # sends data to the cloud; None when the agent runs without one.
        self.spool = spool
        # Shared by every module of the agent. A module in a child process (or built by a
        # test) gets a private one: what it registers there does not reach the agent's spool.
        self.streams = streams if streams is not None else StreamRegistry()
        self._request_exit = request_exit
        self.log: EventLogger = get_logger(f"edge_agent.module.{name}").bind(module=name)
        self.health = HealthReporter()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._on_stop: list[Callable[[], Awaitable[None] | None]] = []
        self._liveness = liveness
        self.task_failed: Callable[[asyncio.Task[Any]], None] | None = None

    def spawn(self, coroutine: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Run ``coroutine`` as a task owned by this module; it is cancelled when the module stops.

        A task that fails makes the module fail (and the restart policy applies).
        """
        task = asyncio.get_running_loop().create_task(coroutine, name=f"{self.name}.{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if self.task_failed is not None and not task.cancelled() and task.exception() is not None:
            self.task_failed(task)

    def on_stop(self, callback: Callable[[], Awaitable[None] | None]) -> None:
        """Register a clean-up callback; callbacks run last-registered first on stop."""
        self._on_stop.append(callback)

    def add_liveness_check(self, check: Callable[[], bool]) -> None:
        """Gate the systemd watchdog on ``check()``: pings stop while it returns False."""
        if self._liveness is not None:
            self._liveness(self.name, check)

    def request_exit(self, status: int, reason: str) -> bool:
        """Ask the agent to shut down in stages and exit with ``status``.

        ``status`` is one of :class:`edge_agent.exit_codes.Exit`, typically
        ``RESTART_REQUESTED`` (75: start me again). Returns False when the module runs
        without a supervisor that can do it.
        """
        if self._request_exit is None:
            return False
        self._request_exit(status, reason)
        return True

    @property
    def tasks(self) -> frozenset[asyncio.Task[Any]]:
        """The module's live background tasks."""
        return frozenset(self._tasks)

    def take_stop_callbacks(self) -> list[Callable[[], Awaitable[None] | None]]:
        """Hand the clean-up callbacks to the supervisor (newest first) and forget them."""
        callbacks = list(reversed(self._on_stop))
        self._on_stop.clear()
        return callbacks


class Module(Generic[ConfigT]):
    """Base class of every module.

    Subclasses set ``name``, ``version`` and ``config_model``, and may set ``requires`` (names
    of modules that must be running first) and ``isolation``. A module with
    ``isolation = Isolation.PROCESS`` runs in a child process of its own; the agent forwards
    the bus topics matching ``bridge_subscriptions`` to it, and everything it publishes comes
    back to the agent's bus. The supervisor calls:

    * ``setup()`` once per start attempt: open resources; raise NotReady to retry later;
    * ``start()``: return once the module does its job (readiness); bounded by its start limit;
    * ``run()``: the module's life; returning ends it normally, raising is a failure;
    * ``stop()``: release resources, bounded by the module's stop limit.

    Two declarations concern configuration changes at run time:

    * ``is_cloud_link``: this module carries the vehicle's link to the cloud and reports it
      with ``context.health.link_online``; a change that touches it is on probation;
    * ``restart_only_when_parked``: a safety function (the brake path); the supervisor stops
      or restarts it for a config change only while the vehicle-state guard says parked
      (:mod:`edge_agent.vehicle_state`); until then the change waits. Changes it can take
      in place (``reconfigure``) apply at once.
    """

    name: ClassVar[str]
    version: ClassVar[str] = "0.0.0"
    config_model: ClassVar[type[BaseModel]] = EmptyConfig
    requires: ClassVar[tuple[str, ...]] = ()
    isolation: ClassVar[Isolation] = Isolation.IN_LOOP
    bridge_subscriptions: ClassVar[tuple[str, ...]] = ()
    is_cloud_link: ClassVar[bool] = False
    restart_only_when_parked: ClassVar[bool] = False

    def __init__(self, config: ConfigT, context: ModuleContext) -> None:
        self.config = config
        self.context = context

    async def setup(self) -> None:
        """Open resources; the default does nothing."""

    async def start(self) -> None:
        """Become ready; the default is ready at once."""

    async def run(self) -> None:
        """Do the module's work until cancelled; the default waits for its spawned tasks."""
        await asyncio.Event().wait()

    async def stop(self) -> None:
        """Release resources; the default does nothing."""

    async def reconfigure(self, config: ConfigT) -> bool:
        """Apply a new validated config in place; return False to ask for a restart instead."""
        return False

    @classmethod
    def health_metrics(cls, details: Mapping[str, Any]) -> Iterable[Sample]:
        """The module's Prometheus metrics, read from its latest health ``details``.

        Called at scrape time, in the metrics thread, with a snapshot: it must be a pure
        function of ``details`` (no module state, no I/O). The default reports nothing; the
        runtime reports every module's state, health, restarts and failures anyway.
        """
        return ()
