"""Faults in a running scenario set DTCs on the simulated ECUs, as a car's ECUs would.

* the radar silent for longer than ``RADAR_LOST_S`` (a dropout): the brake ECU, which takes
  the radar's objects for AEB, sets U0235 (lost communication with the front distance
  sensor) as failing; when frames come back the code stays, confirmed, no longer failing;
* the battery's state of charge under ``LOW_SOC_PCT``: the engine ECU sets P0562 (system
  voltage low), likewise kept as confirmed when it recovers.

Attach :meth:`EcuFaultMonitor.observe` to a :class:`SimulatorSession` step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edge_agent.simulator.body import BodySignals
from edge_agent.simulator.ecus import (
    ACTIVE_STATUS,
    RADAR_DTC,
    VOLTAGE_DTC,
    SimulatedEcu,
)

RADAR_LOST_S = 0.5
LOW_SOC_PCT = 10.0
# Confirmed (bit 3) and failed since last clear (bit 5): the fault was there, it is gone now.
HISTORY_STATUS = 0x28


@dataclass
class EcuFaultMonitor:
    """Watches the scenario's radar and battery; sets and ages DTCs on ``brake``/``engine``."""

    engine: SimulatedEcu
    brake: SimulatedEcu
    _radar_silent_since: float | None = field(default=None, init=False)
    _active: set[str] = field(default_factory=set, init=False)

    def observe(self, time_s: float, *, radar_sending: bool, body: BodySignals) -> None:
        """One simulation step: ``radar_sending`` says whether the radar sends at ``time_s``."""
        if radar_sending:
            self._radar_silent_since = None
        elif self._radar_silent_since is None:
            self._radar_silent_since = time_s
        lost = (
            self._radar_silent_since is not None
            and time_s - self._radar_silent_since >= RADAR_LOST_S
        )
        self._fault(self.brake, RADAR_DTC, failing=lost)
        self._fault(self.engine, VOLTAGE_DTC, failing=0 < body.soc_pct < LOW_SOC_PCT)

    def _fault(self, ecu: SimulatedEcu, code: str, *, failing: bool) -> None:
        if failing and code not in self._active:
            self._active.add(code)
            ecu.set_dtc(code, ACTIVE_STATUS)
        elif not failing and code in self._active:
            self._active.discard(code)
            ecu.set_dtc(code, HISTORY_STATUS)
