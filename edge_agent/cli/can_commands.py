"""``edge-agent db inspect`` (old name ``dbc inspect``) and ``edge-agent replay``: CAN tools."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_agent.cli.exit_codes import Exit, UserError

if TYPE_CHECKING:
    from edge_agent.can.dbc import DbcLoadResult

# cantools and python-can load only when one of these commands runs: every other edge-agent
# command starts without paying for them.


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``db`` (and its old name ``dbc``) and ``replay`` commands to the parser."""
    # ``dbc`` came first and scripts use it; ``db`` says what it is now (any CAN database).
    for name, help_text in (
        ("db", "CAN database tools (DBC, KCD, SYM, ARXML)"),
        ("dbc", "the same as 'db' (its old name)"),
    ):
        database = sub.add_parser(name, help=help_text)
        database_sub = database.add_subparsers(dest="dbc_command", required=True, metavar="COMMAND")
        inspect = database_sub.add_parser(
            "inspect",
            help="load a CAN database (a DBC leniently); list what is usable and what was skipped",
        )
        inspect.add_argument("file", help="CAN database: .dbc, .kcd, .sym, .arxml (or package:)")
        inspect.add_argument("--json", action="store_true", help="one JSON object")
        inspect.set_defaults(handler=inspect_dbc)

    replay_parser = sub.add_parser(
        "replay", help="decode a recorded log (every format python-can reads) with a database"
    )
    replay_parser.add_argument("log", help="the recorded log")
    replay_parser.add_argument(
        "--dbc", required=True, help="CAN database to decode with (.dbc, .kcd, .sym, .arxml)"
    )
    replay_parser.add_argument("--json", action="store_true", help="one JSON object")
    replay_parser.add_argument(
        "--speed",
        type=float,
        default=0.0,
        help="replay at SPEED x recorded pace (0 or absent: as fast as possible)",
    )
    replay_parser.set_defaults(handler=replay_log)


def _load(file: str) -> DbcLoadResult:
    from edge_agent.can.databases import load_database
    from edge_agent.can.dbc import DbcError
    from edge_agent.can.resources import resolve_data_path

    try:
        return load_database(resolve_data_path(file))
    except ValueError as error:  # a malformed package: reference
        raise UserError(str(error)) from None
    except DbcError as error:
        raise UserError(f"CAN database unusable: {error}") from None


def inspect_dbc(args: argparse.Namespace) -> int:
    """``edge-agent db inspect FILE``: exit 0 when a message is usable, 2 otherwise."""
    result = _load(args.file)
    report: dict[str, Any] = {
        "file": args.file,
        "messages": result.message_count,
        "signals": result.signal_count,
        "skipped": [{"message": s.message, "reason": s.reason} for s in result.skipped],
    }
    if args.json:
        print(json.dumps(report))
        return Exit.OK
    print(f"{args.file}: {result.message_count} messages, {result.signal_count} signals usable")
    if not result.strict:
        print(f"  strict load failed: {result.strict_error}")
    for item in result.skipped:
        print(f"  skipped {item.message}: {item.reason}")
    for item in result.notes:
        print(f"  note {item.message}: {item.reason}")
    return Exit.OK


def replay_log(args: argparse.Namespace) -> int:
    """``edge-agent replay LOG --dbc FILE``: decode every frame; print counts.

    Exit 2 when the log is unusable or yields no frame at all, saying why.
    """
    from edge_agent.can.decode import FrameDecoder
    from edge_agent.can.logs import LogFormatError, LogStats, open_log, why_no_frames
    from edge_agent.can.replay import replay

    if args.speed < 0:
        raise UserError(f"--speed must be 0 or more (got {args.speed:g})")
    loaded = _load(args.dbc)
    stats = LogStats()
    try:
        frames = open_log(Path(args.log), stats)
    except LogFormatError as error:
        raise UserError(str(error)) from None
    result = replay(frames, FrameDecoder(loaded.database), stats, speed=args.speed)
    if result.frames == 0:  # nothing replayed is never a success
        raise UserError(f"{args.log}: no frames: {why_no_frames(args.log, stats)}")
    if args.json:
        print(json.dumps(result.summary()))
        return Exit.OK
    summary = result.summary()
    print(
        f"{args.log}: {summary['frames']} frames in {summary['duration_s']:.3f} s "
        f"({summary['frames_per_s']:.0f} frames/s)"
    )
    print(f"  decoded: {result.decoded}")
    print(f"  unknown ids: {result.unknown_ids} frames, {len(result.unknown_id_set)} distinct")
    print(
        f"  errors: {result.errors} (malformed records {result.malformed}, undecodable "
        f"{result.decode_failures}, error frames {result.error_frames})"
    )
    if result.remote_frames:
        print(f"  remote frames: {result.remote_frames}")
    for example in result.examples:
        print(f"  e.g. {example}")
    return Exit.OK
