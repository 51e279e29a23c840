"""Entry point of the ``edge-agent`` command: parse arguments, dispatch, map errors to exits."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from edge_agent.bench.registry import BENCHMARKS
from edge_agent.cli import commands
from edge_agent.cli.can_commands import register as register_can
from edge_agent.cli.cloud import register as register_cloud
from edge_agent.cli.exit_codes import Exit, UserError
from edge_agent.cli.ota import register as register_ota
from edge_agent.version import __version__

Registrar = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]

# Each entry adds one group of sub-commands (e.g. ``dbc``, ``replay``, ``ota``) to the parser.
COMMAND_GROUPS: list[Registrar] = []
COMMAND_GROUPS.append(register_ota)
COMMAND_GROUPS.append(register_can)
COMMAND_GROUPS.append(register_cloud)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (also used to render the README's command list)."""
    parser = argparse.ArgumentParser(
        prog="edge-agent",
        description="In-vehicle edge runtime: module host, CAN, telemetry, cloud.",
    )
    parser.add_argument("--version", action="version", version=f"edge-agent {__version__}")
    parser.add_argument("--debug", action="store_true", help="debug logs and tracebacks")
    parser.add_argument(
        "--log-format", choices=["auto", "json", "console"], help="override agent.log_format"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the agent with a config file")
    run.add_argument("--config", required=True, help="path to agent.toml")
    run.set_defaults(handler=commands.run_agent)

    check = sub.add_parser("check-config", help="validate a config file")
    check.add_argument("path")
    check.set_defaults(handler=commands.check_config)

    modules = sub.add_parser("modules", help="list installed modules")
    modules.add_argument("--json", action="store_true")
    modules.set_defaults(handler=commands.list_modules)

    status = sub.add_parser("status", help="health of the running agent (exit 3 if none)")
    status.add_argument("--json", action="store_true")
    where = status.add_mutually_exclusive_group()
    where.add_argument("--state-dir", help="the agent's state directory")
    where.add_argument("--config", help="read the state directory from this config")
    status.set_defaults(handler=commands.show_status)

    bench = sub.add_parser("bench", help="run a benchmark (prints JSON)")
    bench.add_argument("name", choices=sorted(BENCHMARKS))
    bench.add_argument("--json", action="store_true", help="one JSON line")
    bench.add_argument("--messages", type=int, help="messages or frames per run")
    bench.add_argument("--runs", type=int, help="repetitions (the median is reported)")
    bench.add_argument("--seconds", type=float, help="duration of timed benchmarks")
    bench.add_argument("--log", help="recorded drive (candump .log/.asc/.blf)")
    bench.add_argument("--dbc", help="DBC file for --log")
    bench.add_argument("--config", help="agent.toml whose settings apply")
    bench.add_argument(
        "--hours-per-day", type=float, help="driving hours per day for monthly figures (uplink: 2)"
    )
    bench.set_defaults(handler=commands.run_bench)

    # Command groups of other capabilities register here, one line each.
    for register in COMMAND_GROUPS:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (see ``Exit``)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except UserError as error:
        print(f"edge-agent: {error}", file=sys.stderr)
        return int(error.code)
    except KeyboardInterrupt:
        return int(Exit.INTERRUPTED)
    except BrokenPipeError:
        # The reader went away (``edge-agent ... | head``): not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return int(Exit.OK)
    except Exception as error:
        if args.debug:
            raise
        print(
            f"edge-agent: internal error: {type(error).__name__}: {error} (rerun with --debug)",
            file=sys.stderr,
        )
        return int(Exit.INTERNAL_ERROR)


if __name__ == "__main__":
    sys.exit(main())
