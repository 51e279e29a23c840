"""The supervisor against misbehaving modules, driven in-process on the test's event loop.

Every module here comes from ``fixtures.misbehaving`` through the ``entry_point`` config key,
the same path a third-party module takes. Backoffs are tiny so crash loops run in milliseconds;
tests about the backoff itself drive it with a manual clock.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Literal

import pytest

from edge_agent.bus import Message
from edge_agent.clock import Clock, ManualClock
from edge_agent.config import validate_config
from edge_agent.exit_codes import Exit
from edge_agent.module_api import ModuleState
from edge_agent.sdnotify import SystemdNotifier
from edge_agent.supervisor import ModuleRunner, Supervisor
from fixtures import misbehaving
from fixtures.clock import next_sleep, wake_next_sleeper
from fixtures.misbehaving import JOURNAL
from fixtures.waiting import wait_until

FAST = {"backoff_initial_s": 0.01, "backoff_max_s": 0.02}


def module(cls: str, **settings: Any) -> dict[str, Any]:
    """A ``[modules.NAME]`` table for a class in fixtures.misbehaving, with fast backoff."""
    return {"entry_point": f"fixtures.misbehaving:{cls}", **FAST, **settings}


def heartbeat(**settings: Any) -> dict[str, Any]:
    return {"config": {"interval_s": 0.02, "topic": "test/beat"}, **settings}


class RecordingNotifier(SystemdNotifier):
    """Keeps what would go to systemd, with the module states at that moment."""

    def __init__(self, supervisor_states: Callable[[], dict[str, str]] | None = None) -> None:
        super().__init__(environ={})
        self.sent: list[tuple[dict[str, str], dict[str, str]]] = []
        self.states = supervisor_states or dict

    def notify(self, **fields: str) -> bool:
        self.sent.append((fields, self.states()))
        return True


class Agent:
    """A Supervisor running as a task; ``stop`` requests shutdown and times it."""

    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor
        self.transitions: list[tuple[str, str]] = []
        for runner in supervisor.runners.values():
            self._record(runner)
        self.task = asyncio.create_task(supervisor.run())

    def _record(self, runner: ModuleRunner) -> None:
        forward = runner.on_state_change

        def changed(changed_runner: ModuleRunner) -> None:
            self.transitions.append((changed_runner.name, changed_runner.state.value))
            if forward is not None:
                forward(changed_runner)

        runner.on_state_change = changed

    def runner(self, name: str) -> ModuleRunner:
        return self.supervisor.runners[name]

    def states_of(self, name: str) -> list[str]:
        return [state for who, state in self.transitions if who == name]

    def module(self, name: str) -> dict[str, Any]:
        snapshot: dict[str, Any] = self.supervisor.snapshot()["modules"][name]
        return snapshot

    async def reach(self, name: str, state: ModuleState, timeout: float = 5.0) -> None:
        await wait_until(
            lambda: self.runner(name).state is state, timeout=timeout, what=f"{name} {state.value}"
        )

    async def stop(self, timeout: float = 10.0) -> tuple[int, float]:
        started = time.monotonic()
        self.supervisor.request_stop("test")
        code = await asyncio.wait_for(self.task, timeout)
        return code, time.monotonic() - started


@pytest.fixture(autouse=True)
def _clear_journal() -> None:
    JOURNAL.clear()


@pytest.fixture
async def start(tmp_path: Path) -> AsyncIterator[Callable[..., Agent]]:
    """Start a Supervisor for the given module tables; anything left running is stopped."""
    agents: list[Agent] = []

    def starter(
        *,
        notifier: SystemdNotifier | None = None,
        clock: Clock | None = None,
        shutdown_timeout_s: float = 5.0,
        agent_settings: dict[str, Any] | None = None,
        **modules: dict[str, Any],
    ) -> Agent:
        loaded = validate_config(
            {
                "agent": {
                    "vehicle_id": "test-car",
                    "state_dir": str(tmp_path),
                    "shutdown_timeout_s": shutdown_timeout_s,
                    "health_interval_s": 0.05,
                    **(agent_settings or {}),
                },
                "modules": modules,
            }
        )
        agent = Agent(Supervisor(loaded, notifier=notifier, clock=clock))
        agents.append(agent)
        return agent

    yield starter
    for agent in agents:
        if not agent.task.done():
            agent.supervisor.request_stop("test teardown")
            await asyncio.wait_for(agent.task, 10)


def attempts(tmp_path: Path, name: str) -> int:
    return int((tmp_path / "modules" / name / "attempts").read_text())


# -- start failures and restarts -------------------------------------------------------------


async def test_crash_on_start_backs_off_and_restarts(start: Callable[..., Agent]) -> None:
    agent = start(flaky=module("CrashOnStart", config={"first_attempts": 2}))
    await agent.reach("flaky", ModuleState.RUNNING)
    assert agent.states_of("flaky") == [
        "starting",
        "backing-off",
        "starting",
        "backing-off",
        "starting",
        "running",
    ]
    status = agent.module("flaky")
    assert status["restarts"] == 2
    assert status["failures"] == 2
    assert status["last_error"] == "start failed: RuntimeError: boom on start #2"
    code, _ = await agent.stop()
    assert code == Exit.OK
    assert agent.runner("flaky").state is ModuleState.STOPPED


async def test_crash_loop_ends_broken_after_max_failures(
    start: Callable[..., Agent], tmp_path: Path
) -> None:
    agent = start(crasher=module("CrashOnStart", max_failures=3))
    await agent.reach("crasher", ModuleState.BROKEN)
    status = agent.module("crasher")
    assert status["state"] == "broken"
    assert status["failures"] == 3
    assert status["restarts"] == 2
    assert status["last_error"] == "start failed: RuntimeError: boom on start #3"
    assert agent.states_of("crasher")[-2:] == ["starting", "broken"]
    await agent.stop()
    assert attempts(tmp_path, "crasher") == 3, "a broken module must not be started again"


async def test_failures_outside_the_window_do_not_break_the_module(
    start: Callable[..., Agent], manual_clock: ManualClock
) -> None:
    # Each failure is followed by a backoff (15 to 30 s of module time) longer than the 10 s
    # window: never 2 failures in one window.
    agent = start(
        clock=manual_clock,
        crasher=module(
            "CrashInRun",
            max_failures=2,
            failure_window_s=10.0,
            backoff_initial_s=30.0,
            backoff_max_s=30.0,
        ),
    )
    runner = agent.runner("crasher")
    for failure in range(1, 5):
        await wait_until(lambda n=failure: runner.failures == n, what=f"failure {failure}")
        assert runner.state is ModuleState.BACKING_OFF
        await wake_next_sleeper(manual_clock, what=f"the backoff after failure {failure}")
    await wait_until(lambda: runner.failures == 5, what="failure 5")
    assert runner.state is ModuleState.BACKING_OFF, "never broken"
    await agent.stop()


async def test_a_restart_waits_out_its_backoff_on_the_module_clock(
    start: Callable[..., Agent], manual_clock: ManualClock
) -> None:
    agent = start(
        clock=manual_clock,
        flaky=module(
            "CrashOnStart",
            config={"first_attempts": 2},
            backoff_initial_s=10.0,
            backoff_max_s=15.0,
        ),
    )
    runner = agent.runner("flaky")
    delays = []
    for attempt in (1, 2):
        delay = await next_sleep(manual_clock, what=f"backoff {attempt}")
        assert runner.state is ModuleState.BACKING_OFF
        assert manual_clock.advance(delay * 0.99) == 0  # just short of it: no retry yet
        await wake_next_sleeper(manual_clock, what=f"the rest of backoff {attempt}")
        delays.append(delay)
    await agent.reach("flaky", ModuleState.RUNNING)
    # Exponential from 10 s, capped at 15 s, each shortened by up to half (jitter).
    assert 5.0 <= delays[0] <= 10.0
    assert 7.5 <= delays[1] <= 15.0
    assert agent.states_of("flaky") == [
        "starting",
        "backing-off",
        "starting",
        "backing-off",
        "starting",
        "running",
    ]
    await agent.stop()


async def test_broken_module_leaves_the_others_running(
    start: Callable[..., Agent],
) -> None:
    agent = start(crasher=module("CrashInRun", max_failures=3), heartbeat=heartbeat())
    beats = agent.supervisor.bus.subscribe("test/beat", maxsize=100)
    await agent.reach("crasher", ModuleState.BROKEN)
    while beats.get_nowait() is not None:
        pass
    # The heartbeat keeps beating after its neighbour broke.
    for _ in range(3):
        message: Message = await asyncio.wait_for(beats.get(), 5)
        assert message.sender == "heartbeat"
    snapshot = agent.supervisor.snapshot()
    assert snapshot["modules"]["heartbeat"]["state"] == "running"
    assert snapshot["modules"]["heartbeat"]["restarts"] == 0
    assert snapshot["modules"]["heartbeat"]["last_error"] == ""
    assert snapshot["modules"]["heartbeat"]["details"]["beats"] >= 3
    assert snapshot["modules"]["crasher"]["state"] == "broken"
    assert (
        snapshot["modules"]["crasher"]["last_error"] == "run failed: ValueError: sensor unplugged"
    )
    assert agent.supervisor.ready, "nothing is required, so the agent is ready"
    code, _ = await agent.stop()
    assert code == Exit.OK


async def test_broken_required_module_stops_the_agent_with_exit_4(
    start: Callable[..., Agent], tmp_path: Path
) -> None:
    agent = start(
        crasher=module("CrashOnStart", required=True, max_failures=2),
        heartbeat=heartbeat(),
    )
    code = await asyncio.wait_for(agent.task, 10)
    assert code == Exit.REQUIRED_MODULE_FAILED == 4
    snapshot = agent.supervisor.snapshot()
    assert snapshot["agent"]["state"] == "stopped"
    assert snapshot["agent"]["ready"] is False
    crasher = snapshot["modules"]["crasher"]
    assert (crasher["state"], crasher["restarts"], crasher["failures"]) == ("broken", 1, 2)
    assert crasher["last_error"] == "start failed: RuntimeError: boom on start #2"
    assert crasher["required"] is True
    beat = snapshot["modules"]["heartbeat"]
    assert (beat["state"], beat["restarts"], beat["last_error"]) == ("stopped", 0, "")
    assert "running" in agent.states_of("heartbeat"), "the heartbeat did run meanwhile"
    on_disk = json.loads((tmp_path / "health.json").read_text())
    assert on_disk["agent"]["state"] == "stopped"
    assert on_disk["modules"]["crasher"]["state"] == "broken"


# -- readiness -------------------------------------------------------------------------------


async def test_module_that_never_signals_readiness_fails_at_its_start_limit(
    start: Callable[..., Agent],
) -> None:
    agent = start(stuck=module("NeverReady", restart="never", start_timeout_s=0.1))
    started = time.monotonic()
    await agent.reach("stuck", ModuleState.FAILED)
    assert time.monotonic() - started >= 0.1
    assert agent.module("stuck")["last_error"] == "did not signal readiness within 0.1 s"
    assert agent.states_of("stuck") == ["starting", "failed"]
    await agent.stop()


async def test_not_ready_retries_without_counting_failures(
    start: Callable[..., Agent],
) -> None:
    # Five NotReady in a row would break a module allowed 2 failures, if they counted.
    agent = start(can=module("NotReadyYet", max_failures=2, config={"first_attempts": 5}))
    await agent.reach("can", ModuleState.RUNNING)
    status = agent.module("can")
    assert status["failures"] == 0
    assert status["restarts"] == 5
    assert status["last_error"] == "not ready: CAN interface missing (attempt 5)"
    await agent.stop()


async def test_ready_is_sent_only_once_required_modules_run(
    start: Callable[..., Agent],
) -> None:
    holder: list[Agent] = []

    def states() -> dict[str, str]:
        return {n: r.state.value for n, r in holder[0].supervisor.runners.items()}

    notifier = RecordingNotifier(states)
    agent = start(
        notifier=notifier,
        slow=module("Steady", required=True, config={"start_delay_s": 0.2}),
        optional=module("CrashOnStart", max_failures=1000),  # not required: must not block
    )
    holder.append(agent)
    await wait_until(lambda: agent.supervisor.ready, what="the agent ready")
    ready = [states for fields, states in notifier.sent if fields.get("ready") == "1"]
    assert len(ready) == 1
    assert ready[0]["slow"] == "running"
    assert notifier.sent[0][0] == {"status": "starting 2 modules"}
    await agent.stop()
    assert notifier.sent[-1][0] == {"stopping": "1", "status": "stopping modules"}


# -- restart policies ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "cls", "final", "restarts"),
    [
        ("never", "CrashInRun", ModuleState.FAILED, 0),
        ("never", "ReturnsFromRun", ModuleState.STOPPED, 0),
        ("on-failure", "ReturnsFromRun", ModuleState.STOPPED, 0),
        ("on-failure", "CrashInRun", ModuleState.BROKEN, 2),
        ("always", "CrashInRun", ModuleState.BROKEN, 2),
    ],
)
async def test_restart_policy_decides_what_happens_when_run_ends(
    start: Callable[..., Agent],
    policy: str,
    cls: str,
    final: ModuleState,
    restarts: int,
) -> None:
    agent = start(subject=module(cls, restart=policy, max_failures=3))
    await agent.reach("subject", final)
    assert agent.runner("subject").restarts == restarts
    await agent.stop()
    assert agent.runner("subject").state is final, "a settled module stays as it ended"


async def test_always_restarts_a_module_whose_run_returns(
    start: Callable[..., Agent], tmp_path: Path
) -> None:
    agent = start(job=module("ReturnsFromRun", restart="always", max_failures=1))
    await wait_until(lambda: agent.runner("job").restarts >= 3, what="three restarts")
    assert agent.runner("job").failures == 0, "returning from run is no failure"
    assert agent.runner("job").last_error == ""
    await agent.stop()
    assert attempts(tmp_path, "job") >= 4


async def test_on_failure_keeps_restarting_a_crashing_module(
    start: Callable[..., Agent],
) -> None:
    agent = start(crasher=module("CrashInRun", restart="on-failure", max_failures=1000))
    await wait_until(lambda: agent.runner("crasher").restarts >= 3, what="three restarts")
    assert agent.runner("crasher").state is not ModuleState.BROKEN
    await agent.stop()


async def test_a_failing_spawned_task_makes_the_module_fail(
    start: Callable[..., Agent],
) -> None:
    agent = start(poller=module("FailingTask", restart="never"))
    await agent.reach("poller", ModuleState.FAILED)
    assert agent.module("poller")["last_error"] == "task 'poller.poll' failed: OSError: bus-off"
    assert agent.states_of("poller") == ["starting", "running", "failed"]
    await agent.stop()


# -- stopping --------------------------------------------------------------------------------


async def test_hang_on_stop_is_cancelled_after_the_stop_limit(
    start: Callable[..., Agent],
) -> None:
    agent = start(hangs=module("HangOnStop", stop_timeout_s=0.2), heartbeat=heartbeat())
    await agent.reach("hangs", ModuleState.RUNNING)
    await agent.reach("heartbeat", ModuleState.RUNNING)
    code, took = await agent.stop()
    assert code == Exit.OK
    assert took >= 0.2
    hangs = agent.module("hangs")
    assert hangs["state"] == "stopped"
    assert hangs["last_error"] == "stop() did not finish within 0.2 s; cancelled"
    assert agent.module("heartbeat")["state"] == "stopped"
    assert agent.supervisor.stragglers == [], "a hang that ends when cancelled leaves nothing"


async def test_stop_that_ignores_cancellation_is_named_as_a_straggler(
    start: Callable[..., Agent],
) -> None:
    misbehaving.StubbornStop.released = asyncio.Event()
    agent = start(stubborn=module("StubbornStop", stop_timeout_s=0.1))
    await agent.reach("stubborn", ModuleState.RUNNING)
    code, _ = await agent.stop()
    assert code == Exit.OK
    assert agent.supervisor.stragglers == ["stubborn.stop"]
    assert agent.supervisor.snapshot()["agent"]["stragglers"] == ["stubborn.stop"]
    assert ("stubborn", "ignored a cancellation") in JOURNAL
    # Let the straggler go so the test's loop can close cleanly.
    misbehaving.StubbornStop.released.set()
    [straggler] = [t for t in asyncio.all_tasks() if t.get_name() == "stubborn.stop"]
    await asyncio.wait_for(straggler, 5)


async def test_shutdown_keeps_to_its_total_limit(start: Callable[..., Agent]) -> None:
    # Each module may take 3 s to stop, but the whole shutdown has only 0.4 s: what is not
    # done by then is cut off, named, and leaves no task behind. The error each module ends
    # with says which limit stopped it (its own would read "stop() did not finish within 3 s").
    agent = start(
        shutdown_timeout_s=0.4,
        one=module("HangOnStop", stop_timeout_s=3),
        two=module("HangOnStop", stop_timeout_s=3),
        starting=module("NeverReady", start_timeout_s=30, stop_timeout_s=3),
    )
    await agent.reach("one", ModuleState.RUNNING)
    await agent.reach("two", ModuleState.RUNNING)
    await agent.reach("starting", ModuleState.STARTING)
    code, _ = await agent.stop()
    assert code == Exit.OK
    snapshot = agent.supervisor.snapshot()
    assert snapshot["agent"]["state"] == "stopped"
    for name in ("one", "two"):
        assert snapshot["modules"][name]["state"] == "stopped"
        assert (
            snapshot["modules"][name]["last_error"]
            == "did not stop within the agent's shutdown limit; cancelled"
        )
    # A module still starting is stopped at once: the stop request interrupts its start.
    assert snapshot["modules"]["starting"]["state"] == "stopped"
    assert snapshot["modules"]["starting"]["last_error"] == ""
    assert agent.states_of("starting")[-2:] == ["stopping", "stopped"]
    await asyncio.sleep(0)  # let the cancellations land
    left = [t.get_name() for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert left == [], f"tasks outlived the shutdown: {left}"


# -- dependencies ----------------------------------------------------------------------------


async def test_a_module_starts_only_after_the_module_it_requires_runs(
    start: Callable[..., Agent],
) -> None:
    agent = start(
        # Listed first on purpose: the config order must not matter.
        dependent=module("Dependent"),
        base=module("Steady", config={"start_delay_s": 0.1}),
    )
    await agent.reach("dependent", ModuleState.RUNNING)
    assert JOURNAL == [("base", "start begun"), ("base", "ready"), ("dependent", "setup")]
    await agent.stop()
    # Dependents stop first.
    assert JOURNAL[-2:] == [("dependent", "stopped"), ("base", "stopped")]


async def test_a_dependent_waits_while_its_dependency_restarts(
    start: Callable[..., Agent],
) -> None:
    agent = start(
        base=module("CrashOnStart", config={"first_attempts": 3}),
        dependent=module("Dependent"),
    )
    await agent.reach("dependent", ModuleState.RUNNING)
    order = agent.transitions
    assert order.index(("dependent", "starting")) > order.index(("base", "running"))
    assert agent.runner("dependent").restarts == 0
    await agent.stop()


async def test_dependent_of_a_broken_module_fails_naming_it(
    start: Callable[..., Agent],
) -> None:
    agent = start(
        base=module("CrashOnStart", max_failures=2),
        dependent=module("Dependent"),
    )
    await agent.reach("dependent", ModuleState.FAILED)
    assert agent.module("dependent")["last_error"] == "dependency 'base' is broken"
    assert agent.module("base")["state"] == "broken"
    assert ("dependent", "setup") not in JOURNAL, "it was never started"
    await agent.stop()


async def test_a_dependency_breaking_later_makes_the_running_dependent_unhealthy(
    start: Callable[..., Agent],
) -> None:
    agent = start(
        base=module("BreaksLater", max_failures=3, config={"block_after_s": 0.5}),
        dependent=module("Dependent"),
    )
    await agent.reach("dependent", ModuleState.RUNNING)
    assert agent.module("dependent")["ok"] is True
    await agent.reach("base", ModuleState.BROKEN)
    entry = agent.module("dependent")
    assert entry["state"] == "running"  # it keeps running (it may cope) ...
    assert entry["ok"] is False  # ... but its health says why it may not
    assert entry["reason"] == "dependency 'base' is broken"
    assert entry["dependencies_down"] == ["base"]
    code, _ = await agent.stop()
    assert code == Exit.OK


async def test_dependency_breaking_while_the_dependent_backs_off(
    start: Callable[..., Agent],
) -> None:
    # The dependent fails on its own and backs off; meanwhile its dependency breaks. It must
    # end failed with a reason, not crash its supervision task on an illegal transition.
    agent = start(
        base=module("CrashInRun", max_failures=3),
        dependent=module(
            "Dependent",
            max_failures=1000,
            backoff_initial_s=0.2,
            backoff_max_s=0.2,
            config={"first_attempts": 1000},
        ),
    )
    await agent.reach("dependent", ModuleState.FAILED)
    assert agent.module("dependent")["last_error"] == "dependency 'base' is broken"
    assert agent.states_of("dependent")[-2:] == ["backing-off", "failed"]
    code, _ = await agent.stop()
    assert code == Exit.OK


class CountingEvent(asyncio.Event):
    """An :class:`asyncio.Event` that counts how often it is waited on."""

    def __init__(self) -> None:
        super().__init__()
        self.waits = 0

    async def wait(self) -> Literal[True]:
        self.waits += 1
        return await super().wait()


async def test_waiting_for_a_restarting_dependency_does_not_spin(
    start: Callable[..., Agent], manual_clock: ManualClock
) -> None:
    agent = start(
        clock=manual_clock,
        base=module("CrashInRun", max_failures=100, backoff_initial_s=40, backoff_max_s=40),
        dependent=module(
            "Dependent", config={"first_attempts": 1}, backoff_initial_s=1, backoff_max_s=1
        ),
    )
    # Count the dependent's looks at the base (before the supervisor's task first runs).
    base = agent.runner("base")
    base.settled = CountingEvent()
    dependent = agent.runner("dependent")
    # The base ran once and backs off (20 to 40 s); the dependent's first setup failed and it
    # backs off too (0.5 to 1 s). Wake the dependent: it must wait for the base to run again.
    await wait_until(lambda: manual_clock.sleepers == 2, what="both modules backing off")
    looks = base.settled.waits
    assert await wake_next_sleeper(manual_clock, what="the dependent's backoff") <= 1.0
    await wait_until(lambda: base.settled.waits > looks, what="the dependent waiting for the base")
    looks = base.settled.waits
    for _ in range(200):  # every ready task gets 200 turns: a spinning wait would use them
        await asyncio.sleep(0)
    assert base.settled.waits == looks, "the dependent spins while its dependency backs off"
    assert dependent.state is ModuleState.BACKING_OFF  # still in its retry, waiting
    await wake_next_sleeper(manual_clock, what="the base's backoff")
    await agent.reach("dependent", ModuleState.RUNNING)
    await agent.stop()


# -- health and watchdog ---------------------------------------------------------------------


async def test_liveness_check_of_a_failed_module_no_longer_gates_the_watchdog(
    start: Callable[..., Agent],
) -> None:
    agent = start(
        # Only the liveness check may decide here, not a loaded test machine's loop lag.
        agent_settings={"watchdog_max_loop_lag_s": 60},
        unwell=module("Unwell", restart="never", config={"block_after_s": 0.5}),
    )
    await agent.reach("unwell", ModuleState.RUNNING)
    assert agent.supervisor.alive() == (False, "module 'unwell' liveness check failed")
    await agent.reach("unwell", ModuleState.FAILED)
    assert agent.supervisor.alive() == (True, "")
    await agent.stop()


async def test_health_file_and_bus_carry_the_snapshot(
    start: Callable[..., Agent], tmp_path: Path
) -> None:
    agent = start(heartbeat=heartbeat())
    health = agent.supervisor.bus.subscribe("agent/health", maxsize=10)
    await agent.reach("heartbeat", ModuleState.RUNNING)
    await wait_until((tmp_path / "health.json").exists, what="the health file")

    def on_disk() -> dict[str, Any]:
        try:
            loaded: dict[str, Any] = json.loads((tmp_path / "health.json").read_text())
        except ValueError:
            return {}
        return loaded

    await wait_until(
        lambda: on_disk().get("modules", {}).get("heartbeat", {}).get("state") == "running",
        what="the heartbeat running in the health file",
    )
    snapshot = on_disk()
    assert snapshot["agent"]["vehicle_id"] == "test-car"
    assert snapshot["agent"]["ready"] is True
    assert snapshot["modules"]["heartbeat"]["state"] == "running"
    assert snapshot["modules"]["heartbeat"]["version"] == "1.0.0"
    assert any(s["name"].startswith("sub-") for s in snapshot["bus"])
    message = await asyncio.wait_for(health.get(), 5)
    assert message.payload["agent"]["vehicle_id"] == "test-car"
    await agent.stop()
    assert on_disk()["agent"]["state"] == "stopped"
