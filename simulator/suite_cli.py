"""``edge-agent-sim suite``: every scenario in closed loop against a real, running agent.

Without ``--attach`` the suite starts the agent itself (the fast path in its own process) on
``vcan0`` if the kernel has it, else on ``udp_multicast`` inside a network namespace it
creates; in that case the scenarios run in a child ``edge-agent-sim suite --attach`` inside
the namespace too. Exit statuses: see :class:`SuiteExit` and docs/scenarios.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import functools
import json
import math
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import can

from edge_agent.simulator.agent_process import (
    MULTICAST_GROUP,
    PYTHON,
    VCAN,
    AgentFailed,
    AgentProcess,
    ChannelUnavailable,
    fast_path_status,
)
from edge_agent.simulator.agent_process import cross_process_channel as _channel
from edge_agent.simulator.arguments import can_interface, number
from edge_agent.simulator.can_io import BusSetupError, open_bus
from edge_agent.simulator.grid import GridCell
from edge_agent.simulator.grid_cli import (
    STALL_MS,
    STALL_RERUNS,
    RealTimeGrid,
    add_grid_arguments,
    grid_problem,
    run_lockstep_cells,
)
from edge_agent.simulator.scenarios import SCENARIOS, get_scenario
from edge_agent.simulator.suite import SETTLE_S, SuiteResult, replay_log, run_scenario

PROG = "edge-agent-sim"
HEALTH_LAG_S = 2.5
"""The fast path reports every 1 s, its process host every 0.25 s, the agent writes every 1 s."""


class SuiteExit(enum.IntEnum):
    """Exit statuses of ``edge-agent-sim suite``."""

    OK = 0
    """Every run finished (targets missed too, unless ``--fail-on-target-miss``)."""
    TARGET_MISSED = 1
    """``--fail-on-target-miss`` and at least one run missed its target."""
    BAD_INPUT = 2
    """Bad arguments, an unknown scenario, an unreadable log."""
    CHANNEL_UNAVAILABLE = 3
    """No cross-process CAN channel: no vcan0 and no network namespace (not root)."""
    AGENT_FAILED = 4
    """The agent did not start, or its fast path stopped running during the suite."""
    INTERRUPTED = 130


def _seconds(text: str) -> float:
    return number(text, lambda value: 0 <= value < math.inf, "must be zero or more and finite")


def _speed(text: str) -> float:
    value = _seconds(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be positive, got 0")
    return value


def _names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    for name in names:
        get_scenario(name)  # UnknownScenarioError lists the known names
    return names


def add_suite_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``suite`` on the ``edge-agent-sim`` sub-command parser."""
    suite = sub.add_parser(
        "suite",
        help="run scenarios in closed loop against a real agent and judge them",
        description="Run the scenarios one after another, in real time, against a real agent "
        "running the fast path (started here unless --attach), and print one result per "
        "scenario with its target (docs/scenarios.md).",
    )
    suite.add_argument(
        "--only", metavar="NAME[,NAME]", help="run these scenarios only (default: all)"
    )
    suite.add_argument("--json", action="store_true", help="one JSON object per line")
    suite.add_argument(
        "--fail-on-target-miss", action="store_true", help="exit 1 if any target is missed"
    )
    suite.add_argument(
        "--interface",
        type=can_interface,
        help="python-can interface the agent and the simulator share (default: socketcan "
        "if vcan0 exists, else udp_multicast in a network namespace made for the run)",
    )
    suite.add_argument("--channel", help="channel (default vcan0, or 239.74.163.2 for udp)")
    suite.add_argument(
        "--attach",
        action="store_true",
        help="do not start an agent: one already runs on --interface/--channel",
    )
    suite.add_argument(
        "--state-dir",
        metavar="DIR",
        help="with --attach: the running agent's state directory (checks its fast path)",
    )
    suite.add_argument(
        "--replay",
        action="append",
        metavar="FILE",
        help="also replay this drive log (candump .log, .asc, .blf; repeatable; it must carry "
        "no obstacle: every brake activation is false); without --only, replays only",
    )
    suite.add_argument(
        "--replay-speed",
        type=_speed,
        default=1.0,
        help="replay this many times faster than recorded (default 1)",
    )
    suite.add_argument("--seed", type=int, default=0, help="noise seed (default 0; grid cells too)")
    suite.add_argument(
        "--settle",
        type=_seconds,
        default=SETTLE_S,
        metavar="S",
        help=f"seconds of silence between runs (default {SETTLE_S})",
    )
    suite.add_argument(
        "--agent-start-timeout",
        type=_speed,
        default=60.0,
        metavar="S",
        help="seconds to wait for the agent's fast path to run (default 60)",
    )
    add_grid_arguments(suite)


def _row(result: SuiteResult) -> str:
    def number(value: float | None, digits: int) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    collision = "-" if result.collision is None else ("yes" if result.collision else "no")
    verdict = "met" if result.target_met else "MISSED: " + "; ".join(result.misses)
    return (
        f"{result.name:<18} collision={collision:<3} impact={number(result.impact_speed_kmh, 1):>5}"
        f" min_ttc={number(result.min_ttc_s, 2):>5} activations={result.brake_activations}"
        f" false={'yes' if result.false_activation else 'no':<3}"
        f" max_latency_ms={number(result.max_decision_latency_ms, 2):>6}  target {verdict}"
    )


def _print(result: SuiteResult, as_json: bool) -> None:
    print(json.dumps(result.as_dict()) if as_json else _row(result), flush=True)


def _agent_summary(state_dir: Path) -> str:
    try:
        module = fast_path_status(state_dir)
    except AgentFailed as error:
        return f"agent: {error}"
    details = module.get("details", {})
    latency = details.get("latency_ms", {})
    return (
        f"agent fast path, its own measure (radar frame received to brake frame sent, last "
        f"60 s): p50 {latency.get('p50_ms')} ms, p99 {latency.get('p99_ms')} ms, max "
        f"{latency.get('max_ms')} ms over {latency.get('count')} decisions; "
        f"{details.get('brake_frames')} brake frames, {details.get('send_failures')} send failures"
    )


class _AgentWatch:
    """Checks the agent between runs: a dead agent aborts, a fast-path restart is a miss."""

    def __init__(self, agent: AgentProcess | None, state_dir: Path | None) -> None:
        self.agent = agent
        self.state_dir = state_dir
        self.restarts: object = None

    def _restarts(self) -> object:
        if self.agent is not None:
            self.agent.check()
        return None if self.state_dir is None else fast_path_status(self.state_dir)["restarts"]

    def start(self) -> None:
        """Note the fast path's restart count before the first run."""
        self.restarts = self._restarts()

    def judge(self, result: SuiteResult) -> SuiteResult:
        """``result``, marked missed if the fast path restarted during the run."""
        restarts, self.restarts = self.restarts, self._restarts()
        if restarts == self.restarts:
            return result
        misses = [*result.misses, "the agent's fast path restarted during the run"]
        return dataclasses.replace(result, target_met=False, misses=misses)


def _watched(
    watch: _AgentWatch, run: Callable[[can.BusABC], SuiteResult], bus: can.BusABC
) -> SuiteResult:
    return watch.judge(run(bus))


def _judged_cell(
    grid: RealTimeGrid, cell: GridCell, result: SuiteResult, again: Callable[[], SuiteResult]
) -> SuiteResult:
    """``result`` judged against lock-step; a run the machine stalled is run again (bounded)."""
    for _ in range(STALL_RERUNS):
        judged = grid.judge(cell, result, may_rerun=True)
        if judged is not None:
            return judged[0]
        print(
            f"{PROG}: {cell.name}: the agent's slowest decision took "
            f"{result.max_decision_latency_ms or 0.0:.1f} ms (over {STALL_MS:.0f} ms: the machine "
            "stalled it) and the run disagreed with lock-step; running the cell again",
            file=sys.stderr,
        )
        result = again()
    judged = grid.judge(cell, result)
    assert judged is not None  # without may_rerun every run is judged
    return judged[0]


def run_on_bus(
    args: argparse.Namespace,
    interface: str,
    channel: str,
    *,
    state_dir: Path | None,
    agent: AgentProcess | None = None,
) -> int:
    """Run the selected scenarios and replays on an open bus; print each result."""
    default = [] if args.replay or args.grid else list(SCENARIOS)
    names = _names(args.only) if args.only else default
    replays = [Path(path) for path in args.replay or []]
    for path in replays:
        if not path.is_file():
            print(f"{PROG}: cannot read drive log {path}", file=sys.stderr)
            return int(SuiteExit.BAD_INPUT)

    grid = RealTimeGrid(args) if args.grid else None
    cells = grid.cells if grid is not None else []
    watch = _AgentWatch(agent, state_dir)
    runs: list[Callable[[can.BusABC], SuiteResult]] = [
        functools.partial(run_scenario, get_scenario(name), seed=args.seed, settle_s=args.settle)
        for name in names
    ]
    runs += [
        functools.partial(run_scenario, cell.scenario(), seed=cell.seed, settle_s=args.settle)
        for cell in cells
    ]
    runs += [
        functools.partial(replay_log, path, speed=args.replay_speed, settle_s=args.settle)
        for path in replays
    ]
    missed = 0
    with open_bus(interface, channel) as bus:
        watch.start()
        for index, run in enumerate(runs):
            result = watch.judge(run(bus))
            if grid is not None:
                again = functools.partial(_watched, watch, run, bus)
                result = _judged_cell(grid, cells[index], result, again)
            missed += not result.target_met
            _print(result, args.json)
    total = len(runs)
    print(f"{PROG}: {total - missed} of {total} runs met their target", file=sys.stderr)
    if grid is not None:
        print(
            f"{PROG}: every cell also ran in lock-step; a disagreement is a miss", file=sys.stderr
        )
        if grid.finish():
            return int(SuiteExit.BAD_INPUT)
    if state_dir is not None:
        time.sleep(HEALTH_LAG_S)  # the agent's figures reach its health file within ~2 s
        print(f"{PROG}: {_agent_summary(state_dir)}", file=sys.stderr)
    if missed and args.fail_on_target_miss:
        return int(SuiteExit.TARGET_MISSED)
    return int(SuiteExit.OK)


def _child_argv(
    args: argparse.Namespace, state_dir: Path, interface: str, channel: str
) -> list[str]:
    argv = [*PYTHON, "-m", "edge_agent.simulator.cli", "suite", "--attach"]
    argv += ["--state-dir", str(state_dir), "--interface", interface, "--channel", channel]
    argv += ["--seed", str(args.seed), "--settle", str(args.settle)]
    argv += ["--replay-speed", str(args.replay_speed)]
    if args.only:
        argv += ["--only", args.only]
    if args.grid:
        argv += ["--grid", args.grid]
    if args.sample:
        argv += ["--sample", str(args.sample)]
    if args.report:
        argv += ["--report", str(Path(args.report).resolve())]
    for path in args.replay or []:
        argv += ["--replay", str(Path(path).resolve())]
    if args.json:
        argv.append("--json")
    if args.fail_on_target_miss:
        argv.append("--fail-on-target-miss")
    return argv


def run_suite(args: argparse.Namespace) -> int:
    """Entry of ``edge-agent-sim suite``; returns a :class:`SuiteExit` status."""
    try:
        if args.only:
            _names(args.only)
        problem = grid_problem(args)
        if problem:
            print(f"{PROG}: {problem}", file=sys.stderr)
            return int(SuiteExit.BAD_INPUT)
        if args.lockstep:
            return run_lockstep_cells(args)
        if args.attach:
            if not args.interface:
                print(f"{PROG}: --attach needs --interface (and --channel)", file=sys.stderr)
                return int(SuiteExit.BAD_INPUT)
            state_dir = Path(args.state_dir) if args.state_dir else None
            default = MULTICAST_GROUP if args.interface == "udp_multicast" else VCAN
            return run_on_bus(args, args.interface, args.channel or default, state_dir=state_dir)
        with _channel(args.interface, args.channel) as channel:
            print(f"{PROG}: agent starting, fast path on {channel.describe()}", file=sys.stderr)
            with AgentProcess(channel, start_timeout_s=args.agent_start_timeout) as agent:
                if channel.namespace is None:
                    return run_on_bus(
                        args,
                        channel.interface,
                        channel.channel,
                        state_dir=agent.state_dir,
                        agent=agent,
                    )
                argv = _child_argv(args, agent.state_dir, channel.interface, channel.channel)
                return subprocess.run(channel.command(argv), check=False).returncode
    except ChannelUnavailable as error:
        print(f"{PROG}: cannot run the suite: {error}", file=sys.stderr)
        return int(SuiteExit.CHANNEL_UNAVAILABLE)
    except BusSetupError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return int(SuiteExit.CHANNEL_UNAVAILABLE)
    except AgentFailed as error:
        print(f"{PROG}: agent failed: {error}", file=sys.stderr)
        return int(SuiteExit.AGENT_FAILED)
