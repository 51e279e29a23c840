"""The named scenarios: Euro NCAP style AEB approaches, benign traffic, look-alikes, faults, drives.

Speeds in scenario names are km/h. The car-to-car names are parameterised
(:mod:`edge_agent.simulator.euro_ncap`): ``ccrs-V[-oO]`` towards a stationary target, ``ccrm-V
[-oO]`` towards a target moving at 20 km/h, ``ccrb-G-D[-V]`` behind a car that brakes; the
catalogue lists the 10 km/h steps at full overlap. ``lookalike-*``
(:mod:`edge_agent.simulator.lookalikes`) resemble an obstacle but are none.
"""

from __future__ import annotations

from edge_agent.simulator.attack_plan import AttackPlan
from edge_agent.simulator.attacks import AttackKind
from edge_agent.simulator.body import BodyScript
from edge_agent.simulator.drives import demo_route, standard_drive
from edge_agent.simulator.euro_ncap import (
    FORMS,
    TAIL_S,
    UnknownScenarioError,
    ccrb,
    ccrb_collision_time,
    ccrm,
    ccrs,
    parse_car_to_car,
)
from edge_agent.simulator.faults import FaultPlan
from edge_agent.simulator.lookalikes import lookalikes
from edge_agent.simulator.profiles import Profile, TimeWindows, ramps
from edge_agent.simulator.radar import RadarConfig
from edge_agent.simulator.scenario import Category, Scenario
from edge_agent.simulator.vehicle import KMH, DriveScript

LANE_WIDTH_M = 3.5
MS2_AS_KMH_PER_S = 3.6

__all__ = [
    "SCENARIOS",
    "UnknownScenarioError",
    "ccrb",
    "ccrb_collision_time",
    "ccrm",
    "ccrs",
    "get_scenario",
]


def _approach(ego_kmh: float, gap_m: float) -> tuple[DriveScript, float]:
    """A constant-speed approach to a stationary car ``gap_m`` ahead: script and duration."""
    script = DriveScript(
        ego_speed_kmh=Profile.constant(ego_kmh),
        lead_speed_kmh=Profile.constant(0.0),
        lead_initial_gap_m=gap_m,
    )
    return script, gap_m / (ego_kmh * KMH) + TAIL_S


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
    script, duration = _approach(50.0, 120.0)
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


def low_battery() -> Scenario:
    """Following traffic on a nearly flat battery: its charge falls under 10 % after ~6 s."""
    base = following()
    return Scenario(
        name="low-battery",
        description="following-2s with the battery at 10.02 %: the drive takes it under 10 % "
        "after about 6 s, and the engine ECU sets P0562 (system voltage low); "
        "serve the ECUs with --ecus",
        category=Category.FAULT,
        duration_s=20.0,
        script=base.script,
        expects_obstacle=False,
        body=BodyScript(initial_soc_pct=10.02),
    )


def bus_flood() -> Scenario:
    """A stationary-target approach while an ECU floods the bus with 3000 frames/s."""
    script, duration = _approach(50.0, 80.0)
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
    script, duration = _approach(40.0, 70.0)
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


ATTACK_STARTS_S = (6.0, 14.0)
"""Where the attack windows of the ``attack-*`` scenarios start (seconds into the drive)."""


def attack_scenario(kind: AttackKind) -> Scenario:
    """``attack-<kind>``: following traffic for 24 s with two windows of ``kind`` on EgoMotion."""
    base = following()
    plan = AttackPlan.at(kind, *ATTACK_STARTS_S)
    windows = " and ".join(f"{s:g}-{e:g} s" for s, e in plan.windows.spans)
    return Scenario(
        name=f"attack-{kind.value}",
        description=f"following-2s with {kind.value} at {windows} "
        f"({ATTACK_TARGETS[kind]}; docs/ids.md)",
        category=Category.ATTACK,
        duration_s=24.0,
        script=base.script,
        expects_obstacle=False,
        attack=plan,
    )


ATTACK_TARGETS = {
    AttackKind.INJECTION: "EgoMotion at twice its rate",
    AttackKind.FLOODING: "id 0x000 at 4,000 frames/s",
    AttackKind.FUZZING: "random ids and payloads at 100 frames/s",
    AttackKind.DLC_CHANGE: "EgoMotion frames shortened",
    AttackKind.SUSPENSION: "EgoMotion silenced",
    AttackKind.MASQUERADE: "EgoMotion sent by a node whose clock runs 2 % slow",
    AttackKind.SPOOFING: "EgoMotion on time with replayed counters and a forged byte",
}


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
        low_battery(),
        bus_flood(),
        garbage_frames(),
        bus_off(),
        standard_drive(),
        demo_route(),
        *lookalikes(),
        *(attack_scenario(kind) for kind in AttackKind),
    ]
    return {scenario.name: scenario for scenario in scenarios}


SCENARIOS: dict[str, Scenario] = _catalogue()
"""Every named scenario, in catalogue order (car-to-car cells beyond these: by name)."""


def get_scenario(name: str) -> Scenario:
    """The scenario called ``name``: from the catalogue, or a parameterised car-to-car name.

    :class:`UnknownScenarioError` lists the known names and forms; a car-to-car name with a
    value out of range raises its subclass, which says which value and which range.
    """
    if name in SCENARIOS:
        return SCENARIOS[name]
    scenario = parse_car_to_car(name)
    if scenario is not None:
        return scenario
    known = ", ".join(SCENARIOS)
    raise UnknownScenarioError(
        f"unknown scenario {name!r} (known: {known}; and by parameter: {', '.join(FORMS)})"
    )
