"""``edge-agent diag scan``: contributed to the command line through ``edge_agent.commands``.

Only argparse is imported here; the scan and its libraries load when the command runs.
"""

from __future__ import annotations

import argparse
import json

from edge_agent.cli.exit_codes import UserError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``diag`` (with ``scan``) to the ``edge-agent`` parser."""
    diag = sub.add_parser("diag", help="vehicle diagnostics over ISO-TP (UDS, OBD-II)")
    diag_sub = diag.add_subparsers(dest="diag_command", required=True, metavar="COMMAND")
    scan = diag_sub.add_parser(
        "scan", help="list the ECUs that answer, their DTCs and supported OBD PIDs"
    )
    scan.add_argument("--interface", required=True, help="python-can interface (socketcan, ...)")
    scan.add_argument("--channel", required=True, help="python-can channel (can0, vcan0, ...)")
    scan.add_argument("--json", action="store_true", help="one JSON object")
    scan.add_argument("--bitrate", type=int, default=500_000, help="bus bitrate for pacing")
    scan.add_argument(
        "--share", type=float, default=0.05, help="largest share of the bus to take (0.05)"
    )
    scan.add_argument("--timeout", type=float, default=0.5, help="seconds to wait per answer")
    scan.add_argument(
        "--physical",
        action="store_true",
        help="also probe 0x7E0-0x7E7 one by one (ECUs that ignore the functional id 0x7DF)",
    )
    scan.set_defaults(handler=run_scan)


def run_scan(args: argparse.Namespace) -> int:
    """Scan the bus and print the result; exit 2 when the bus cannot be opened."""
    import can

    from edge_agent.modules.diagnostics.scan import render_text, scan_bus

    if not 0 < args.share <= 1 or args.timeout <= 0 or args.bitrate <= 0:
        raise UserError("diag scan: --share must be in (0, 1], --timeout and --bitrate > 0")
    try:
        result = scan_bus(
            args.interface,
            args.channel,
            bitrate=args.bitrate,
            share=args.share,
            timeout_s=args.timeout,
            physical=args.physical,
        )
    except (OSError, can.CanError, ValueError, ImportError) as error:
        raise UserError(
            f"diag scan: cannot open {args.interface} channel {args.channel}: {error}"
        ) from None
    print(json.dumps(result) if args.json else render_text(result))
    return 0
