"""The named scenarios: Euro NCAP style AEB approaches, benign traffic, faults and long drives.

Speeds in scenario names are km/h. ``ccrs-V``: ego at V km/h towards a stationary target;
``ccrm-V``: towards a target moving at 20 km/h; ``ccrb-G-D``: both at 50 km/h, G m apart, the
target brakes at D m/s2 after 2 s. The approaches start at a time to collision of 6 s (at least
20 m away), so there is time to warn and brake.
"""

from __future__ import annotations

import math

from edge_agent.simulator.drives import demo_route, standard_drive
from edge_agent.simulator.faults import FaultPlan
from edge_agent.simulator.profiles import Profile, TimeWindows, ramps
from edge_agent.simulator.radar import RadarConfig
from edge_agent.simulator.scenario import Category, Scenario
from edge_agent.simulator.vehicle import KMH, DriveScript

START_TTC_S = 6.0
MIN_START_GAP_M = 20.0
TAIL_S = 2.0
"""Time a scenario keeps running after the moment a collision would happen without braking."""
CCRB_BRAKE_AT_S = 2.0
LANE_WIDTH_M = 3.5
MS2_AS_KMH_PER_S = 3.6


class UnknownScenarioError(KeyError):
    """A scenario name that is not in the catalogue; the message lists the known ones."""

    def __str__(self) -> str:
        return str(self.args[0])


def _approach(
    ego_kmh: float, target_kmh: float, gap_m: float | None = None
) -> tuple[DriveScript, float]:
    """A constant-speed approach to a constant-speed target: the script and its duration."""
    closing = (ego_kmh - target_kmh) * KMH
    gap = gap_m if gap_m is not None else max(closing * START_TTC_S, MIN_START_GAP_M)
    script = DriveScript(
        ego_speed_kmh=Profile.constant(ego_kmh),
        lead_speed_kmh=Profile.constant(target_kmh),
        lead_initial_gap_m=gap,
    )
    return script, gap / closing + TAIL_S


def ccrs(speed_kmh: int) -> Scenario:
    """Car-to-car rear stationary: ego at ``speed_kmh`` towards a stopped car."""
    name = f"ccrs-{speed_kmh}"
    script, duration = _approach(speed_kmh, 0.0)
    return Scenario(
        name=name,
        description=f"ego at {speed_kmh} km/h towards a stationary car "
        f"{script.lead_initial_gap_m:.0f} m ahead",
        category=Category.AEB,
        duration_s=duration,
        script=script,
        expects_obstacle=True,
    )


def ccrm(speed_kmh: int) -> Scenario:
    """Car-to-car rear moving: ego at ``speed_kmh`` towards a car driving at 20 km/h."""
    name = f"ccrm-{speed_kmh}"
    script, duration = _approach(speed_kmh, 20.0)
    return Scenario(
        name=name,
        description=f"ego at {speed_kmh} km/h towards a car at 20 km/h "
        f"{script.lead_initial_gap_m:.0f} m ahead",
        category=Category.AEB,
        duration_s=duration,
        script=script,
        expects_obstacle=True,
    )


def ccrb_collision_time(speed_kmh: float, gap_m: float, decel_mps2: float) -> float:
    """Seconds after the target starts braking until the unbraked ego hits it."""
    speed = speed_kmh * KMH
    stop_s = speed / decel_mps2
    contact_s = math.sqrt(2 * gap_m / decel_mps2)
    if contact_s <= stop_s:
        return contact_s
    gap_at_stop = gap_m - decel_mps2 * stop_s**2 / 2
    return stop_s + gap_at_stop / speed


def ccrb(gap_m: int, decel_mps2: int) -> Scenario:
    """Car-to-car rear braking: both at 50 km/h, ``gap_m`` apart, the target brakes to a stop."""
    speed = 50.0
    stop_s = speed * KMH / decel_mps2
    script = DriveScript(
        ego_speed_kmh=Profile.constant(speed),
        lead_speed_kmh=Profile.of(
            (0.0, speed), (CCRB_BRAKE_AT_S, speed), (CCRB_BRAKE_AT_S + stop_s, 0.0)
        ),
        lead_initial_gap_m=float(gap_m),
    )
    return Scenario(
        name=f"ccrb-{gap_m}-{decel_mps2}",
        description=f"both at 50 km/h {gap_m} m apart; after {CCRB_BRAKE_AT_S:.0f} s the car "
        f"ahead brakes at {decel_mps2} m/s2 to a stop",
        category=Category.AEB,
        duration_s=CCRB_BRAKE_AT_S + ccrb_collision_time(speed, gap_m, decel_mps2) + TAIL_S,
        script=script,
        expects_obstacle=True,
    )


def following() -> Scenario:
    """Following a car at a 2 s headway through gentle speed changes."""
    lead = ramps(70.0, (8.0, 60.0, 2.2), (6.0, 80.0, 1.8), (8.0, 70.0, 1.4))
    headway_s = 2.0
    return Scenario(
        name="following-2s",
        description="following a car at a 2 s headway while it slows to 60 and speeds up to 80",
        category=Category.BENIGN,
        duration_s=lead.end_s + 10.0,
        script=DriveScript(
            ego_speed_kmh=lead.shifted(headway_s),
            lead_speed_kmh=lead,
            lead_initial_gap_m=headway_s * 70.0 * KMH,
        ),
        expects_obstacle=False,
    )


def cut_in_safe() -> Scenario:
    """A faster car cuts in from the next lane with a safe gap and settles at the ego's speed."""
    return Scenario(
        name="cut-in-safe",
        description="ego at 80 km/h; a car at 90 km/h cuts in from the left lane 20 m ahead",
        category=Category.BENIGN,
        duration_s=20.0,
        script=DriveScript(
            ego_speed_kmh=Profile.constant(80.0),
            lead_speed_kmh=ramps(90.0, (8.0, 80.0, 1.8)),
            lead_initial_gap_m=8.0,
            lead_lateral_m=Profile.of((0.0, LANE_WIDTH_M), (4.0, LANE_WIDTH_M), (7.0, 0.0)),
        ),
        expects_obstacle=False,
    )


def passing() -> Scenario:
    """The ego passes a slower truck in the next lane."""
    return Scenario(
        name="passing-next-lane",
        description="ego at 100 km/h passes a truck at 80 km/h in the right lane",
        category=Category.BENIGN,
        duration_s=16.0,
        script=DriveScript(
            ego_speed_kmh=Profile.constant(100.0),
            lead_speed_kmh=Profile.constant(80.0),
            lead_initial_gap_m=40.0,
            lead_lateral_m=Profile.constant(-LANE_WIDTH_M),
        ),
        expects_obstacle=False,
    )


def stop_and_go() -> Scenario:
    """A traffic jam: the car ahead goes to 30 km/h and stops, three times; the ego follows."""
    go = (4.0, 30.0, 1.5 * MS2_AS_KMH_PER_S)
    stop = (5.0, 0.0, 2.0 * MS2_AS_KMH_PER_S)
    lead = ramps(0.0, (2.0, 30.0, 1.5 * MS2_AS_KMH_PER_S), stop, go, stop, go, stop)
    return Scenario(
        name="stop-and-go",
        description="queue traffic up to 30 km/h with three stops, 8 m apart at standstill",
        category=Category.BENIGN,
        duration_s=lead.end_s + 5.0,
        script=DriveScript(
            ego_speed_kmh=lead.shifted(1.2),
            lead_speed_kmh=lead,
            lead_initial_gap_m=8.0,
        ),
        expects_obstacle=False,
    )


def radar_dropout() -> Scenario:
    """The radar goes silent for 1.5 s while approaching a stationary car, then recovers."""
    script, duration = _approach(50.0, 0.0, gap_m=120.0)
    return Scenario(
        name="radar-dropout",
        description="ego at 50 km/h towards a stationary car 120 m ahead; no radar frames "
        "from 3.0 to 4.5 s (report the stale radar, then brake once it is back)",
        category=Category.FAULT,
        duration_s=duration,
        script=script,
        expects_obstacle=True,
        expects_sensor_fault=True,
        radar=RadarConfig(dropouts=TimeWindows.of((3.0, 4.5))),
    )


def bus_flood() -> Scenario:
    """A stationary-target approach while an ECU floods the bus with 3000 frames/s."""
    script, duration = _approach(50.0, 0.0, gap_m=80.0)
    return Scenario(
        name="bus-flood",
        description="ego at 50 km/h towards a stationary car 80 m ahead while 3000 extra "
        "frames/s flood the bus (the fast path must still brake in time)",
        category=Category.FAULT,
        duration_s=duration,
        script=script,
        expects_obstacle=True,
        faults=FaultPlan(flood_fps=3000.0),
    )


def garbage_frames() -> Scenario:
    """Following traffic while malformed frames (all kinds) arrive at 200 frames/s."""
    base = following()
    return Scenario(
        name="garbage-frames",
        description="following-2s with 200 malformed frames/s: wrong DLC, unknown ids, "
        "error and remote frames (nothing may brake or crash)",
        category=Category.FAULT,
        duration_s=20.0,
        script=base.script,
        expects_obstacle=False,
        faults=FaultPlan(garbage_fps=200.0),
    )


def bus_off() -> Scenario:
    """The vehicle's ECUs go bus-off for a second during an approach, then recover."""
    script, duration = _approach(40.0, 0.0, gap_m=70.0)
    return Scenario(
        name="bus-off",
        description="ego at 40 km/h towards a stationary car 70 m ahead; from 1.5 to 2.5 s "
        "only error frames are on the bus (report it, then brake once frames are back)",
        category=Category.FAULT,
        duration_s=duration,
        script=script,
        expects_obstacle=True,
        expects_sensor_fault=True,
        faults=FaultPlan(bus_off=TimeWindows.of((1.5, 2.5)), bus_off_error_fps=200.0),
    )


def _catalogue() -> dict[str, Scenario]:
    scenarios = [
        *(ccrs(speed) for speed in range(10, 90, 10)),
        *(ccrm(speed) for speed in range(30, 90, 10)),
        *(ccrb(gap, decel) for gap in (12, 40) for decel in (2, 6)),
        following(),
        cut_in_safe(),
        passing(),
        stop_and_go(),
        radar_dropout(),
        bus_flood(),
        garbage_frames(),
        bus_off(),
        standard_drive(),
        demo_route(),
    ]
    return {scenario.name: scenario for scenario in scenarios}


SCENARIOS: dict[str, Scenario] = _catalogue()
"""Every named scenario, in catalogue order."""


def get_scenario(name: str) -> Scenario:
    """The scenario called ``name``; :class:`UnknownScenarioError` lists the known names."""
    try:
        return SCENARIOS[name]
    except KeyError:
        known = ", ".join(SCENARIOS)
        raise UnknownScenarioError(f"unknown scenario {name!r} (known: {known})") from None
