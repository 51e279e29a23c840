"""Entry point of the ``edge-agent`` command: parse arguments, dispatch, map errors to exits."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Collection, Sequence

from edge_agent.cli import commands
from edge_agent.cli.bench import register as register_bench
from edge_agent.cli.can_commands import register as register_can
from edge_agent.cli.config_classes import register as register_config
from edge_agent.cli.contributed import Registrar, add_contributed_commands, groups_needed
from edge_agent.cli.exit_codes import Exit, UserError
from edge_agent.cli.ota import register as register_ota
from edge_agent.version import __version__

# Each entry adds one group of sub-commands (e.g. ``dbc``, ``replay``, ``ota``) to the parser.
COMMAND_GROUPS: list[Registrar] = []
COMMAND_GROUPS.append(register_ota)
COMMAND_GROUPS.append(register_can)
COMMAND_GROUPS.append(register_bench)
COMMAND_GROUPS.append(register_config)


# Top-level options that take a value (the contributed-group choice skips them with it).
_OPTIONS_WITH_VALUES = ("--log-format",)


def build_parser(contributed: Collection[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser (also used to render the README's command list).

    Every contributed command group is added unless ``contributed`` names which (see
    ``edge_agent.cli.contributed.groups_needed``).
    """
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

    # Command groups of other capabilities register here, one line each.
    for register in COMMAND_GROUPS:
        register(sub)
    # Then the groups installed packages contribute (e.g. ``cloud`` from the cloud link).
    add_contributed_commands(sub, only=contributed)
    return parser


def _built_in_commands() -> set[str]:
    """The command names the runtime itself registers (no contributed group loaded)."""
    parser = build_parser(contributed=())
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    return set()  # pragma: no cover - the parser always has sub-commands


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (see ``Exit``)."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    needed = groups_needed(arguments, _built_in_commands(), _OPTIONS_WITH_VALUES)
    parser = build_parser(contributed=needed)
    args = parser.parse_args(arguments)
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
