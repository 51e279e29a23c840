"""``edge-agent ids train`` and ``edge-agent ids scan``: the IDS on recorded drives.

Contributed to the runtime's command line through the ``edge_agent.commands`` entry-point
group; nothing heavy is imported until one of the commands runs.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from edge_agent.cli.exit_codes import Exit, UserError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``ids train`` and ``ids scan`` to the ``edge-agent`` parser."""
    ids = sub.add_parser("ids", help="CAN intrusion detection: learn a bus, scan a recording")
    ids_sub = ids.add_subparsers(dest="ids_command", required=True, metavar="COMMAND")
    train = ids_sub.add_parser("train", help="learn a bus profile from a clean recorded drive")
    train.add_argument("log", help="recorded drive (candump .log, .asc, .blf)")
    train.add_argument("--dbc", help="DBC: its rolling counters and signal value ranges")
    train.add_argument("--out", required=True, metavar="PROFILE.json", help="profile to write")
    train.set_defaults(handler=train_command)
    scan = ids_sub.add_parser("scan", help="print the alerts the IDS raises on a recording")
    scan.add_argument("log", help="recorded drive (candump .log, .asc, .blf)")
    scan.add_argument("--profile", required=True, help="profile from 'edge-agent ids train'")
    scan.add_argument("--json", action="store_true", help="one JSON object")
    scan.set_defaults(handler=scan_command)


def train_command(args: argparse.Namespace) -> int:
    """``edge-agent ids train LOG [--dbc F] --out PROFILE.json``."""
    from edge_agent.can.logs import LogFormatError, LogStats
    from edge_agent.modules.can_ids.offline import log_frames, train
    from edge_agent.modules.can_ids.profile import save_profile

    rules = None
    if args.dbc:
        from edge_agent.modules.can_ids.dbc_rules import load_dbc_rules

        try:
            rules = load_dbc_rules(args.dbc)
        except ValueError as error:
            raise UserError(f"ids train: {error}") from None
    stats = LogStats()
    try:
        profile, gaps = train(log_frames(args.log, stats), source=str(args.log), rules=rules)
    except LogFormatError as error:
        raise UserError(f"ids train: {error}") from None
    if profile.frames == 0:
        raise UserError(f"ids train: {args.log}: no frames to learn from")
    learned = profile.ids.values()
    counters = sum(1 for item in learned if item.counter is not None)
    checksums = [item.checksum for item in learned if item.checksum is not None]
    degraded = sum(1 for checksum in checksums if checksum[2] == "consistent")
    ranges = sum(len(item.ranges) for item in learned)
    summary = f", {counters} counters, {len(checksums)} checksums ({degraded} degraded)"
    if rules is not None:
        summary += f", {ranges} DBC signal ranges"
    try:
        save_profile(profile, args.out)
    except OSError as error:
        raise UserError(f"ids train: cannot write {args.out}: {error.strerror or error}") from None
    periodic = len(profile.periodic_ids)
    print(
        f"ids train: {profile.frames} frames, {len(profile.ids)} ids ({periodic} periodic), "
        f"{profile.duration_s:.1f} s, {gaps} gaps, {stats.malformed} malformed lines{summary} "
        f"-> {args.out}"
    )
    if not periodic:
        print("ids train: no periodic traffic: timing checks (injection, suspension) stay off")
    if degraded:
        print(
            f"ids train: {degraded} checksums of an unknown algorithm: degraded check "
            "(a payload seen again must carry the same checksum byte)"
        )
    return Exit.OK


def scan_command(args: argparse.Namespace) -> int:
    """``edge-agent ids scan LOG --profile PROFILE.json [--json]``."""
    from edge_agent.can.logs import LogFormatError, LogStats
    from edge_agent.modules.can_ids.offline import log_frames, scan
    from edge_agent.modules.can_ids.profile import ProfileError, load_profile

    try:
        profile = load_profile(args.profile)
    except ProfileError as error:
        raise UserError(f"ids scan: {error}") from None
    stats = LogStats()
    try:
        result = scan(log_frames(args.log, stats), profile)
    except LogFormatError as error:
        raise UserError(f"ids scan: {error}") from None
    values: dict[str, Any] = result.as_dict()
    values["malformed"] = stats.malformed
    if args.json:
        print(json.dumps(values))
        return Exit.OK
    for alert in values["alerts"]:
        print(
            f"{alert['t']:.6f} {alert['severity']:<6} {alert['kind']:<13} "
            f"{alert['can_id'] or '-':<12} {alert['detail']}"
        )
    print(
        f"{values['frames']} frames, {values['alerts_total']} alerts, {values['incidents']} "
        f"incidents, {values['suppressed']} repeats held off, {values['gaps']} gaps"
        + (f"; degraded: {result.degraded}" if result.degraded else "")
    )
    return Exit.OK
