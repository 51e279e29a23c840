"""How old a record is, measured so that a stepped wall clock cannot age it.

An RTC-less ECU may boot with its wall clock months behind and step forward on its first
time sync; a record's age by the wall clock would then jump by months. So every record is
stamped with the boot it was written in, the time since that boot on ``CLOCK_BOOTTIME``
(which never steps, and counts suspended time), the wall time, and whether the wall clock
was trusted then. The rules (docs/spool.md, "Expiry"):

* written in this boot: age is the boot-clock time since it was written;
* written in an earlier boot, with the wall clock trusted then and trusted now: age is the
  wall-clock difference;
* otherwise (an earlier boot whose time cannot be bridged): age counts from this boot's
  start, i.e. the time the vehicle was off is not counted.

A boot clock reading smaller than a record's means a reboot even when the boot id cannot be
read (``ProcSubset=pid`` hides it from the service).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


def since_boot() -> float:
    """Seconds since this boot on ``CLOCK_BOOTTIME`` (includes suspend; never steps)."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def wall_never_trusted() -> bool:
    """The default trust: the spool never bridges a reboot with the wall clock."""
    return False


@dataclass(frozen=True, slots=True)
class AgeStamp:
    """One reading of the clocks a record's age is measured on."""

    boot_id: str
    since_boot: float
    wall: float
    wall_trusted: bool


@dataclass(frozen=True, slots=True)
class AgeClock:
    """Where record ages come from; the agent passes the kernel's boot id and its clock trust.

    The defaults (an unknown boot id, the wall clock never trusted) suit tools and tests:
    ages then count on the boot clock, and a reboot is noticed by the boot clock going back.
    """

    boot_id: str = ""
    since_boot: Callable[[], float] = field(default=since_boot)
    wall_trusted: Callable[[], bool] = field(default=wall_never_trusted)

    def stamp(self, wall: float) -> AgeStamp:
        """Read the clocks now (``wall`` is the spool's wall clock reading)."""
        return AgeStamp(self.boot_id, self.since_boot(), wall, bool(self.wall_trusted()))
