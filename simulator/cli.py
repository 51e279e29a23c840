"""The ``edge-agent-sim`` command: list, run and record scenarios, run the suite."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import enum
import json
import math
import sys
import threading
from collections.abc import Sequence

import can

from edge_agent.simulator.arguments import OneLineParser, can_interface, number
from edge_agent.simulator.attack_cli import add_attack_parser, run_attack, write_labels
from edge_agent.simulator.can_io import BusSetupError, SimulatorSession, open_bus
from edge_agent.simulator.ecu_faults import EcuFaultMonitor
from edge_agent.simulator.ecus import EcuServer, brake_ecu, engine_ecu, place_dtcs
from edge_agent.simulator.euro_ncap import FORMS
from edge_agent.simulator.faults import FaultPlan, parse_garbage_kinds
from edge_agent.simulator.profiles import TimeWindows, parse_window
from edge_agent.simulator.recorder import CandumpRecorder
from edge_agent.simulator.results import ScenarioResult
from edge_agent.simulator.runner import RECORDING_EPOCH, record_scenario, run_paced
from edge_agent.simulator.scenario import Scenario
from edge_agent.simulator.scenarios import SCENARIOS, UnknownScenarioError, get_scenario
from edge_agent.simulator.suite_cli import add_suite_parser, run_suite

PROG = "edge-agent-sim"
DEFAULT_CHANNELS = {"udp_multicast": "239.74.163.2"}


class Exit(enum.IntEnum):
    """Exit statuses of ``edge-agent-sim``."""

    OK = 0
    INTERNAL_ERROR = 1
    BAD_INPUT = 2
    BUS_UNAVAILABLE = 3
    INTERRUPTED = 130


def _positive(text: str) -> float:
    return number(text, lambda value: value > 0, "must be positive")


def _rate(text: str) -> float:
    value = _positive(text)
    if math.isinf(value):
        raise argparse.ArgumentTypeError(f"must be finite, got {text!r}")
    return value


def _jitter(text: str) -> float:
    return number(text, lambda value: 0 <= value <= 1000, "must be between 0 and 1000 ms")


def _window(text: str) -> tuple[float, float]:
    try:
        return parse_window(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _frame_id(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a frame id: {text!r} (e.g. 0x6F0)") from None
    if not 0 <= value <= 0x7FF:
        raise argparse.ArgumentTypeError(f"standard frame ids are 0..0x7FF, got {text!r}")
    return value


def _probability(text: str) -> float:
    return number(text, lambda value: 0.0 <= value <= 1.0, "must be between 0 and 1")


def _garbage_kinds(text: str) -> object:
    try:
        return parse_garbage_kinds(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scenario", required=True, help="scenario name (see: list)")
    parser.add_argument(
        "--seconds", type=_rate, help="run this long instead of the scenario's duration"
    )
    parser.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    faults = parser.add_argument_group("fault injection (added to the scenario's own)")
    faults.add_argument("--flood", type=_rate, metavar="FPS", help="extra frames per second")
    faults.add_argument("--flood-id", type=_frame_id, metavar="ID", help="id of flood frames")
    faults.add_argument("--garbage", type=_rate, metavar="FPS", help="malformed frames per second")
    faults.add_argument(
        "--garbage-kinds",
        type=_garbage_kinds,
        metavar="KINDS",
        help="comma list of wrong-dlc, unknown-id, error, remote (default all)",
    )
    faults.add_argument(
        "--bus-off",
        type=_window,
        action="append",
        metavar="START:END",
        help="seconds with no vehicle frames (repeatable; END may be empty)",
    )
    faults.add_argument(
        "--bus-off-error-fps",
        type=_rate,
        metavar="FPS",
        help="error frames per second while bus-off (default none)",
    )
    faults.add_argument(
        "--radar-dropout",
        type=_window,
        action="append",
        metavar="START:END",
        help="seconds without radar frames (repeatable; END may be empty)",
    )
    faults.add_argument(
        "--radar-drop-probability",
        type=_probability,
        metavar="P",
        help="chance of losing each radar frame",
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``edge-agent-sim`` argument parser."""
    parser = OneLineParser(
        prog=PROG, description="Vehicle simulator: scenarios on a CAN bus, closed loop."
    )
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=OneLineParser
    )

    listing = sub.add_parser("list", help="list the scenarios")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")

    run = sub.add_parser("run", help="run a scenario on a CAN bus (reacts to AebBrakeRequest)")
    _add_common(run)
    run.add_argument(
        "--interface",
        type=can_interface,
        default="virtual",
        help="python-can interface: virtual, socketcan, udp_multicast, ...",
    )
    run.add_argument("--channel", help="channel (default vcan0; udp_multicast: 239.74.163.2)")
    run.add_argument(
        "--speed",
        type=_positive,
        default=1.0,
        help="times faster than real time (default 1; inf: as fast as possible)",
    )
    run.add_argument("--record", metavar="FILE.log", help="also write the frames as candump log")
    run.add_argument(
        "--labels",
        metavar="FILE.json",
        help="attack-* scenarios: write the attack windows as they happened (JSON)",
    )
    run.add_argument(
        "--ecus",
        action="store_true",
        help="also serve the simulated engine and brake ECUs; faults set their DTCs",
    )
    run.add_argument("--json", action="store_true", help="print the result as one JSON line")

    ecus = sub.add_parser(
        "ecus", help="serve the simulated engine and brake ECUs (UDS, OBD-II over ISO-TP)"
    )
    ecus.add_argument(
        "--interface", type=can_interface, default="virtual", help="python-can interface"
    )
    ecus.add_argument("--channel", default="vcan0", help="channel (default vcan0)")
    ecus.add_argument(
        "--dtc",
        action="append",
        default=[],
        metavar="[ECU:]CODE",
        help="set a DTC (P codes on the engine, others on the brake ECU unless ECU: names one)",
    )
    ecus.add_argument(
        "--seconds", type=_positive, help="serve this long, then exit (default: until Ctrl-C)"
    )

    record = sub.add_parser("record", help="write a scenario (no brake input) to a candump .log")
    _add_common(record)
    record.add_argument("--out", required=True, metavar="FILE.log", help="output file")
    record.add_argument("--channel", default="vcan0", help="channel name in the log (vcan0)")
    record.add_argument(
        "--epoch",
        type=float,
        default=RECORDING_EPOCH,
        help=f"Unix time of the first frame (default {RECORDING_EPOCH:.0f})",
    )
    record.add_argument(
        "--receive-jitter-ms",
        type=_jitter,
        default=0.0,
        metavar="MS",
        help="Gaussian jitter (standard deviation) added to each logged timestamp, as a real "
        "receiver's stamps have (default 0: the senders' exact grid)",
    )
    add_suite_parser(sub)
    add_attack_parser(sub)
    return parser


def _fault_plan(args: argparse.Namespace) -> FaultPlan:
    plan = FaultPlan()
    changes: dict[str, object] = {}
    if args.flood is not None:
        changes["flood_fps"] = args.flood
    if args.flood_id is not None:
        changes["flood_id"] = args.flood_id
    if args.garbage is not None:
        changes["garbage_fps"] = args.garbage
    if args.garbage_kinds is not None:
        changes["garbage_kinds"] = args.garbage_kinds
    if args.bus_off:
        changes["bus_off"] = TimeWindows.of(*args.bus_off)
    if args.bus_off_error_fps is not None:
        changes["bus_off_error_fps"] = args.bus_off_error_fps
    return dataclasses.replace(plan, **changes)  # type: ignore[arg-type]


def _scenario(args: argparse.Namespace) -> Scenario:
    scenario = get_scenario(args.scenario)
    radar = scenario.radar
    if args.radar_dropout:
        radar = dataclasses.replace(radar, dropouts=radar.dropouts.merged(args.radar_dropout))
    if args.radar_drop_probability is not None:
        radar = dataclasses.replace(radar, drop_probability=args.radar_drop_probability)
    return dataclasses.replace(scenario, radar=radar)


def _list(args: argparse.Namespace) -> int:
    forms = ", ".join(FORMS)
    print(f"{PROG}: and any car-to-car cell by name: {forms} (docs/simulator.md)", file=sys.stderr)
    for scenario in SCENARIOS.values():
        summary = scenario.summary()
        if args.json:
            print(json.dumps(summary))
        else:
            print(
                f"{scenario.name:<26} {scenario.category.value:<9} "
                f"{scenario.duration_s:6.1f} s  {scenario.description}"
            )
    return int(Exit.OK)


def _print_result(result: ScenarioResult, as_json: bool) -> None:
    values = result.as_dict()
    if as_json:
        print(json.dumps(values))
        return
    for key, value in values.items():
        print(f"{key:<22} {'-' if value is None else value}")


def _run(args: argparse.Namespace) -> int:
    scenario = _scenario(args)
    channel = args.channel or DEFAULT_CHANNELS.get(args.interface, "vcan0")
    with open_bus(args.interface, channel) as bus, contextlib.ExitStack() as extras:
        recorder = CandumpRecorder(args.record, channel) if args.record else None
        session: SimulatorSession | None = None
        try:
            session = SimulatorSession(
                scenario,
                bus,
                seed=args.seed,
                faults=_fault_plan(args),
                duration_s=args.seconds,
                frame_sink=recorder,
            )
            if args.ecus:
                _serve_ecus(session, args.interface, channel, extras)
            try:
                result = run_paced(session, args.speed)
            except KeyboardInterrupt:
                _print_result(session.result(), args.json)
                return int(Exit.INTERRUPTED)
        finally:
            if recorder is not None:
                recorder.close()
            if args.labels and session is not None:
                write_labels(args.labels, session.attack, session.epoch)
    _print_result(result, args.json)
    return int(Exit.OK)


def _serve_ecus(
    session: SimulatorSession, interface: str, channel: str, extras: contextlib.ExitStack
) -> None:
    """Serve the simulated ECUs beside the scenario; its faults set their DTCs."""
    # A bus of their own on the same channel: the session reads its bus itself.
    ecu_bus = extras.enter_context(open_bus(interface, channel))
    engine, brake = engine_ecu(), brake_ecu()
    extras.enter_context(EcuServer(ecu_bus, [engine, brake]))
    monitor = EcuFaultMonitor(engine=engine, brake=brake)
    session.step_observers.append(
        lambda time_s, radar, body: monitor.observe(time_s, radar_sending=radar, body=body)
    )


def _record(args: argparse.Namespace) -> int:
    scenario = _scenario(args)
    result, frames = record_scenario(
        scenario,
        args.out,
        seconds=args.seconds,
        channel=args.channel,
        seed=args.seed,
        faults=_fault_plan(args),
        epoch=args.epoch,
        jitter_ms=args.receive_jitter_ms,
    )
    print(
        f"{PROG}: wrote {frames} frames ({result.duration_s:.1f} s of {scenario.name}) "
        f"to {args.out}",
        file=sys.stderr,
    )
    return int(Exit.OK)


def _ecus(args: argparse.Namespace) -> int:
    ecus = [engine_ecu(), brake_ecu()]
    try:
        place_dtcs(ecus, args.dtc)
    except ValueError as error:
        print(f"{PROG}: ecus: {error}", file=sys.stderr)
        return int(Exit.BAD_INPUT)
    bus = open_bus(args.interface, args.channel)
    try:
        with EcuServer(bus, ecus):
            print(
                f"serving ECUs {', '.join(e.name for e in ecus)} on {args.interface} "
                f"{args.channel}",
                flush=True,
            )
            # Nothing to do but serve: the ECUs answer from their own threads.
            threading.Event().wait(args.seconds)
    finally:
        bus.shutdown()
    return int(Exit.OK)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``edge-agent-sim``; return the exit status (see :class:`Exit`)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # --help, or a bad argument already reported in one line
        return stop.code if isinstance(stop.code, int) else int(Exit.BAD_INPUT)
    handlers = {
        "list": _list,
        "run": _run,
        "record": _record,
        "suite": run_suite,
        "attack": run_attack,
        "ecus": _ecus,
    }
    try:
        return handlers[args.command](args)
    except UnknownScenarioError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return int(Exit.BAD_INPUT)
    except BusSetupError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return int(Exit.BUS_UNAVAILABLE)
    except OSError as error:
        where = f"cannot write {error.filename}: " if error.filename else ""
        print(f"{PROG}: {where}{error.strerror or error}", file=sys.stderr)
        return int(Exit.BAD_INPUT)
    except can.CanError as error:
        print(f"{PROG}: CAN error: {error}", file=sys.stderr)
        return int(Exit.BUS_UNAVAILABLE)
    except KeyboardInterrupt:
        return int(Exit.INTERRUPTED)


if __name__ == "__main__":
    sys.exit(main())
