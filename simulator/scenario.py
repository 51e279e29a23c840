"""What a scenario is: a scripted drive, its sensor and bus faults, and what counts as success."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

from edge_agent.simulator.attack_plan import AttackPlan
from edge_agent.simulator.body import BodyScript
from edge_agent.simulator.faults import FaultPlan
from edge_agent.simulator.radar import RadarConfig
from edge_agent.simulator.vehicle import DriveScript, VehicleState, initial_state


class Category(enum.Enum):
    """What a scenario exercises."""

    AEB = "aeb"
    """Euro NCAP style car-to-car rear approach: braking is needed to avoid a collision."""
    BENIGN = "benign"
    """Ordinary traffic: any brake activation is a false activation."""
    LOOKALIKE = "lookalike"
    """Traffic and structures that look like an obstacle to a range-only AEB but are none:
    any brake activation is a false activation."""
    FAULT = "fault"
    """Sensor or bus faults."""
    DRIVE = "drive"
    """Long mixed driving for telemetry, uplink figures and demos."""
    ATTACK = "attack"
    """A drive with an attacker on the bus (docs/ids.md): any brake activation is false."""


@dataclass(frozen=True, slots=True)
class Scenario:
    """A named, reproducible drive.

    ``expects_obstacle``: an in-path obstacle needs the AEB; without it the ego collides, and
    braking is not a false activation. ``expects_sensor_fault``: the agent should report a
    stale sensor (and not brake on stale data).
    """

    name: str
    description: str
    category: Category
    duration_s: float
    script: DriveScript
    expects_obstacle: bool
    expects_sensor_fault: bool = False
    radar: RadarConfig = field(default_factory=RadarConfig)
    faults: FaultPlan = field(default_factory=FaultPlan)
    body: BodyScript = field(default_factory=BodyScript)
    attack: AttackPlan | None = None

    def __post_init__(self) -> None:
        # Whole tenths of a second: readable in listings, a whole number of physics ticks.
        object.__setattr__(self, "duration_s", math.ceil(round(self.duration_s * 10, 6)) / 10)

    def initial_state(self) -> VehicleState:
        """The physical world when the scenario starts."""
        return initial_state(self.script)

    def summary(self) -> dict[str, object]:
        """The scenario's metadata as JSON-ready values (for ``edge-agent-sim list --json``)."""
        return {
            "name": self.name,
            "category": self.category.value,
            "duration_s": round(self.duration_s, 3),
            "expects_obstacle": self.expects_obstacle,
            "expects_sensor_fault": self.expects_sensor_fault,
            "description": self.description,
        }
