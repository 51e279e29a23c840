"""Deciding when the wall clock may be believed, and what ties monotonic time to it.

Policies (``TrustPolicy``):

* ``auto`` (default): trusted once systemd-timesyncd says so
  (``/run/systemd/timesync/synchronized`` exists) or the kernel reports a synchronised clock
  (``adjtimex`` returns something other than ``TIME_ERROR``: chrony, ntpd and timesyncd all
  clear the kernel's unsynchronised flag), and in every case only if the wall clock is later
  than ``not_before`` (the release date of this build, so a clock reset to 1970 or to a
  stale RTC value never passes);
* ``always``: a disciplined clock (GNSS, a trusted RTC): trusted if later than ``not_before``;
* ``timesync`` / ``kernel``: only that one source;
* ``never``: every batch is untrusted (the back end restamps from other evidence).
"""

from __future__ import annotations

import ctypes
import enum
import functools
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

TIMESYNC_FLAG = Path("/run/systemd/timesync/synchronized")
BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")
# Where the shipped unit passes the boot id (systemd's %b), for when ProcSubset=pid hides /proc/sys.
BOOT_ID_ENV = "EDGE_AGENT_BOOT_ID"
# 2025-01-01T00:00:00Z: no real clock of a running vehicle can be earlier than this build.
NOT_BEFORE = 1_735_689_600.0
_TIME_ERROR = 5


class TrustPolicy(enum.StrEnum):
    """Where the agent learns that the wall clock is synchronised (see module docstring)."""

    AUTO = "auto"
    ALWAYS = "always"
    TIMESYNC = "timesync"
    KERNEL = "kernel"
    NEVER = "never"


@functools.cache
def _adjtimex() -> Callable[[Any], int] | None:
    # Loaded once: every ctypes.CDLL() builds new function-pointer classes, and the agent
    # checks the clock every few seconds (the soak saw them pile up between collections).
    try:
        function: Callable[[Any], int] = ctypes.CDLL(None, use_errno=True).adjtimex
    except (OSError, AttributeError):
        return None
    return function


def kernel_clock_state() -> int | None:
    """The kernel clock state ``adjtimex`` (read-only) returns, or None if the call is refused.

    None is what a sandbox that denies the call (a seccomp filter: EPERM) looks like.
    """
    adjtimex = _adjtimex()
    if adjtimex is None:
        return None
    timex = ctypes.create_string_buffer(512)  # larger than struct timex; modes = 0: read
    try:
        state = int(adjtimex(timex))
    except OSError:
        return None
    return None if state < 0 else state


def kernel_clock_synchronised() -> bool:
    """True when ``adjtimex`` (read-only) reports a synchronised system clock."""
    state = kernel_clock_state()
    return state is not None and state < _TIME_ERROR


def current_boot_id(path: Path = BOOT_ID_PATH) -> str:
    """The kernel's id of this boot (monotonic time is only comparable within one boot).

    Read from /proc; where the sandbox hides it, from ``EDGE_AGENT_BOOT_ID`` (the unit sets it
    to systemd's ``%b``, 32 hex digits), in /proc's form; "" when neither is there.
    """
    try:
        return path.read_text(encoding="ascii").strip()
    except OSError:
        pass
    try:
        return str(uuid.UUID(hex=os.environ.get(BOOT_ID_ENV, "")))
    except ValueError:
        return ""


class WallClockTrust:
    """Answers "may the wall clock be believed now?" and measures the monotonic-to-wall offset."""

    def __init__(
        self,
        policy: TrustPolicy = TrustPolicy.AUTO,
        *,
        timesync_flag: Path = TIMESYNC_FLAG,
        kernel_synchronised: Callable[[], bool] = kernel_clock_synchronised,
        not_before: float = NOT_BEFORE,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy
        self._timesync_flag = timesync_flag
        self._kernel_synchronised = kernel_synchronised
        self._not_before = not_before
        self._wall = wall
        self._monotonic = monotonic

    def trusted(self) -> bool:
        """Whether batches cut now may be marked ``trusted``."""
        if self.policy is TrustPolicy.NEVER or self._wall() < self._not_before:
            return False
        if self.policy is TrustPolicy.ALWAYS:
            return True
        timesync = self.policy in (TrustPolicy.AUTO, TrustPolicy.TIMESYNC)
        kernel = self.policy in (TrustPolicy.AUTO, TrustPolicy.KERNEL)
        return (timesync and self._timesync_flag.exists()) or (
            kernel and self._kernel_synchronised()
        )

    def monotonic_to_wall_offset(self) -> float | None:
        """``wall - monotonic`` in seconds now, or None while the wall clock is not trusted."""
        if not self.trusted():
            return None
        return self._wall() - self._monotonic()
