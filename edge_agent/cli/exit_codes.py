"""Distinct exit statuses of the ``edge-agent`` command, documented in the README."""

from __future__ import annotations

import enum


class Exit(enum.IntEnum):
    """Exit statuses: scripts and service managers can tell failures apart."""

    OK = 0
    INTERNAL_ERROR = 1
    BAD_INPUT = 2
    NO_AGENT = 3
    REQUIRED_MODULE_FAILED = 4
    BROKER_UNREACHABLE = 5
    INTERRUPTED = 130


class UserError(Exception):
    """An expected failure: printed as one line, exits with ``code``, no traceback."""

    def __init__(self, message: str, code: Exit = Exit.BAD_INPUT) -> None:
        super().__init__(message)
        self.code = code
