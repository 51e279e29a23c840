"""Command-line pieces shared by the simulator's commands (edge-agent-sim, edge-agent-cloud).

Errors are one line, ``PROG: error: what (see PROG --help)``, with exit status 2, as the
project's other commands do; argument types say what was wrong with the value they got.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import NoReturn

import can

BAD_INPUT = 2
"""The exit status of a bad argument (argparse's, and every edge-agent command's)."""


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line: ``PROG: error: ... (see PROG --help)``."""

    def error(self, message: str) -> NoReturn:
        """Print ``message`` as one line and exit with ``BAD_INPUT`` (argparse prints two)."""
        command = self.prog.split()[0]
        self.exit(BAD_INPUT, f"{command}: error: {message} (see {self.prog} --help)\n")


def number(text: str, accept: Callable[[float], bool], requirement: str) -> float:
    """``text`` as a float that ``accept`` takes, else an argparse error naming ``requirement``.

    ``accept`` sees NaN too: compare so that NaN fails (``0 <= value``, not ``not value < 0``).
    """
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not accept(value):
        raise argparse.ArgumentTypeError(f"{requirement}, got {text!r}")
    return value


def can_interface(text: str) -> str:
    """``text`` if python-can knows an interface of that name."""
    if text not in can.interfaces.VALID_INTERFACES:
        known = ", ".join(sorted(can.interfaces.VALID_INTERFACES))
        raise argparse.ArgumentTypeError(f"unknown python-can interface {text!r} (known: {known})")
    return text
