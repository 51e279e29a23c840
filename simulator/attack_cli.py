"""``edge-agent-sim attack``: a scenario or a recorded log with attacks added, and their labels."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import can

from edge_agent.can.logs import LogFormatError, LogStats, open_log
from edge_agent.modules.can_ids.offline import frame_of
from edge_agent.modules.can_ids.profile import EXTENDED_FLAG
from edge_agent.simulator.attack_plan import LiveAttack
from edge_agent.simulator.attacks import AttackKind, Frame, mutate
from edge_agent.simulator.can_io import SimulatorSession
from edge_agent.simulator.recorder import candump_line
from edge_agent.simulator.runner import RECORDING_EPOCH
from edge_agent.simulator.scenarios import get_scenario

PROG = "edge-agent-sim"


def add_attack_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``attack`` on the ``edge-agent-sim`` sub-command parser."""
    attack = sub.add_parser(
        "attack",
        help="write a drive with attacks added (candump .log) and their labels (JSON)",
        description="Add one kind of attack, in several labelled windows, to a scenario's "
        "drive or to a recorded log (docs/ids.md). The labels say what happened when.",
    )
    source = attack.add_mutually_exclusive_group(required=True)
    source.add_argument("--scenario", help="a scenario to drive (e.g. standard-drive)")
    source.add_argument("--log", metavar="FILE", help="a recorded log (.log, .asc, .blf)")
    attack.add_argument(
        "--kind", required=True, choices=[kind.value for kind in AttackKind], help="attack kind"
    )
    attack.add_argument("--windows", type=int, default=10, help="attack windows (default 10)")
    attack.add_argument("--seed", type=int, default=0, help="seed of drive and attack")
    attack.add_argument("--out", required=True, metavar="FILE.log", help="attacked drive")
    attack.add_argument("--labels", required=True, metavar="FILE.json", help="the windows")
    attack.add_argument("--channel", default="vcan0", help="channel name in the log (vcan0)")


def _scenario_frames(name: str, seed: int) -> list[Frame]:
    frames: list[Frame] = []

    def take(message: can.Message) -> None:
        frames.append(
            (float(message.timestamp), message.arbitration_id, bytes(message.data), False)
        )

    SimulatorSession(
        get_scenario(name), None, seed=seed, frame_sink=take, epoch=RECORDING_EPOCH
    ).run()
    return frames


def _log_frames(path: str) -> list[Frame]:
    return [frame_of(message) for message in open_log(path, LogStats())]


def message_of(frame: Frame) -> can.Message:
    """A frame of the mutator as a python-can message (extended ids as extended frames)."""
    t, key, data, is_error = frame
    return can.Message(
        timestamp=t,
        arbitration_id=key & ~EXTENDED_FLAG,
        data=data,
        is_extended_id=bool(key & EXTENDED_FLAG),
        is_error_frame=is_error,
        check=False,
    )


def write_labels(path: str, attack: LiveAttack | None, epoch: float) -> None:
    """The labels of a live run's attack (none if the scenario has no attacker) to ``path``.

    Times are seconds into the run; ``epoch`` is the frame timestamp of second 0.
    """
    kind = None if attack is None else attack.plan.kind.value
    labels = [] if attack is None else attack.labels
    windows = [label.as_dict() for label in labels]
    document = {"kind": kind, "epoch": epoch, "windows": windows}
    Path(path).write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")


def run_attack(args: argparse.Namespace) -> int:
    """``edge-agent-sim attack``: exit 0, or 2 with one line on bad input."""
    try:
        frames = (
            _scenario_frames(args.scenario, args.seed) if args.scenario else _log_frames(args.log)
        )
        attacked, labels = mutate(
            frames, AttackKind(args.kind), windows=args.windows, seed=args.seed
        )
    except (ValueError, LogFormatError) as error:
        print(f"{PROG}: attack: {error}", file=sys.stderr)
        return 2
    with Path(args.out).open("w", encoding="ascii") as out:
        for frame in attacked:
            out.write(candump_line(message_of(frame), args.channel) + "\n")
    Path(args.labels).write_text(
        json.dumps({"kind": args.kind, "windows": [label.as_dict() for label in labels]}, indent=1)
        + "\n",
        encoding="utf-8",
    )
    print(
        f"{PROG}: wrote {len(attacked)} frames with {len(labels)} {args.kind} windows to "
        f"{args.out}, labels to {args.labels}",
        file=sys.stderr,
    )
    return 0
