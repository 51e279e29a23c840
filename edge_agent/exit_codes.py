"""Exit statuses of the ``edge-agent`` process, one table for the CLI, the supervisor and modules.

The README and ``systemd/edge-agent.service`` document these numbers; scripts and service
managers tell failures apart by them, so a number never changes meaning.
"""

from __future__ import annotations

import enum


@enum.unique
class Exit(enum.IntEnum):
    """Exit statuses of ``edge-agent``: each failure a script can meet has its own."""

    OK = 0
    INTERNAL_ERROR = 1
    BAD_INPUT = 2
    NO_AGENT = 3
    REQUIRED_MODULE_FAILED = 4
    BROKER_UNREACHABLE = 5
    # EX_TEMPFAIL from sysexits.h: "start me again". The OTA installer exits with it to be
    # started from the new slot; the unit's RestartForceExitStatus and SuccessExitStatus name it.
    RESTART_REQUESTED = 75
    INTERRUPTED = 130
