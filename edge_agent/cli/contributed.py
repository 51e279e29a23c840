"""Command groups that installed packages add to ``edge-agent`` (entry-point group below).

A module that brings its own tools (the cloud link's ``edge-agent cloud check``) registers a
function ``register(sub)`` in the entry-point group ``edge_agent.commands``; it adds one
sub-command group to the parser the way the built-in groups do, and sets a ``handler`` that
takes the parsed arguments and returns the exit status (``edge_agent.cli.exit_codes.Exit``;
raise ``UserError`` for an expected failure). The runtime names no such module: it only reads
the group. A group that fails to load or clashes with another is left out with a one-line
warning, so one broken package never takes the whole command line down.

Loading a group imports its package (a module's ``__init__`` and what it imports: the
diagnostics module brings udsoncan and can-isotp), so ``edge-agent run`` and the other
built-in commands load no group at all, a contributed command loads only its own, and help or
an unknown command loads every group (:func:`groups_needed`). Loading them all cost the
running agent about 4 MB of resident memory.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Collection, Sequence
from importlib.metadata import entry_points
from typing import TextIO

COMMAND_GROUP = "edge_agent.commands"

Registrar = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]


def group_names() -> set[str]:
    """Names of the installed command groups (nothing imported)."""
    return {point.name for point in entry_points(group=COMMAND_GROUP)}


def groups_needed(
    arguments: Sequence[str], built_in: Collection[str], options_with_values: Collection[str]
) -> set[str] | None:
    """The command groups to load for ``arguments`` (``None``: all of them).

    None for a built-in command, its own for a contributed one, all for help, no command or
    an unknown one (so the usage lists everything).

    ``options_with_values`` are the top-level options that take a value (skipped with it).
    """
    words = iter(arguments)
    for word in words:
        if word in options_with_values:
            next(words, None)
        elif word.startswith("-"):
            if word in {"-h", "--help"}:
                return None
        elif word in built_in:
            return set()
        else:
            return {word} if word in group_names() else None
    return None


def add_contributed_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    *,
    warn: TextIO | None = None,
    only: Collection[str] | None = None,
) -> list[str]:
    """Let installed command groups add themselves to ``sub``; returns the names added.

    All of them, or only those named in ``only``.
    """
    added: list[str] = []
    for point in sorted(entry_points(group=COMMAND_GROUP), key=lambda p: p.name):
        if only is not None and point.name not in only:
            continue
        try:
            register: Registrar = point.load()
            register(sub)
        except Exception as error:  # a broken plugin: say so, keep the rest of the CLI working
            origin = point.dist.name if point.dist is not None else "?"
            print(
                f"edge-agent: command group {point.name!r} ({point.value}, from {origin}) "
                f"left out: {type(error).__name__}: {error}",
                file=warn or sys.stderr,
            )
            continue
        added.append(point.name)
    return added
