"""The look-alike zoo: traffic and structures that resemble an obstacle but are none.

Each of these fools an AEB that judges by range and closing speed alone, or by a straight
path ahead: a car in the next lane that sits straight ahead of the bumper in a curve, a guard
rail that the road bends towards, a gantry over the road, a car turning off, a gap to a slower
car opened by a cut-out, queue traffic stopping 2 m apart. None needs a brake: every brake
activation in them is a false one. The driver follows the scripted speed (slowing down where
any driver would) and never brakes for an obstacle.
"""

from __future__ import annotations

from edge_agent.simulator.profiles import Profile, ramps
from edge_agent.simulator.scenario import Category, Scenario
from edge_agent.simulator.vehicle import DriveScript, ObjectScript

LANE_WIDTH_M = 3.5
FAR_AWAY_M = 1000.0
"""A lateral offset that takes an object out of every sensor's view (it has left the road)."""
MS2_AS_KMH_PER_S = 3.6


def _nobody_ahead(
    ego_speed_kmh: Profile, road: Profile, traffic: list[ObjectScript]
) -> DriveScript:
    """A script whose lead object is off the road: only ``traffic`` is there to be seen."""
    return DriveScript(
        ego_speed_kmh=ego_speed_kmh,
        lead_speed_kmh=Profile.constant(0.0),
        lead_initial_gap_m=0.0,
        lead_lateral_m=Profile.constant(FAR_AWAY_M),
        road_curvature_per_m=road,
        traffic=tuple(traffic),
    )


def _parked(gap_m: float, lateral_m: float, width_m: float = 1.8) -> ObjectScript:
    return ObjectScript(
        speed_kmh=Profile.constant(0.0),
        initial_gap_m=gap_m,
        lateral_m=Profile.constant(lateral_m),
        width_m=width_m,
    )


def _driving(kmh: float, gap_m: float, lateral_m: float) -> ObjectScript:
    return ObjectScript(
        speed_kmh=Profile.constant(kmh),
        initial_gap_m=gap_m,
        lateral_m=Profile.constant(lateral_m),
    )


def curve_next_lanes() -> Scenario:
    """A left then a right curve at 70 km/h past queues crawling in both adjacent lanes."""
    curvature = 1 / 180
    road = Profile.of((0.0, curvature), (9.0, curvature), (11.0, -curvature), (22.0, -curvature))
    queues = [_driving(10.0, gap, -LANE_WIDTH_M) for gap in (45.0, 70.0, 95.0)]
    queues += [_driving(10.0, gap, LANE_WIDTH_M) for gap in (150.0, 175.0, 200.0, 225.0)]
    return Scenario(
        name="lookalike-curve-next-lanes",
        description="ego at 70 km/h through a left then a right curve (radius 180 m) past "
        "cars crawling at 10 km/h in both adjacent lanes; in each curve the outer lane's "
        "cars sit straight ahead of the bumper",
        category=Category.LOOKALIKE,
        duration_s=22.0,
        script=DriveScript(
            ego_speed_kmh=Profile.constant(70.0),
            lead_speed_kmh=Profile.constant(10.0),
            lead_initial_gap_m=20.0,
            lead_lateral_m=Profile.constant(-LANE_WIDTH_M),
            road_curvature_per_m=road,
            traffic=tuple(queues),
        ),
        expects_obstacle=False,
    )


def parked_cars() -> Scenario:
    """A city street at 50 km/h with cars parked on both shoulders, through two bends."""
    bend = 1 / 120
    road = Profile.of(
        (0.0, 0.0), (5.0, 0.0), (6.0, -bend), (11.0, -bend), (12.0, 0.0),
        (15.0, 0.0), (16.0, bend), (21.0, bend), (22.0, 0.0),
    )  # fmt: skip
    right = [_parked(gap, -2.6) for gap in range(25, 400, 11) if gap % 4 != 1]
    left = [_parked(gap, 2.7) for gap in range(30, 400, 13) if gap % 5 != 2]
    van = _parked(150.0, -2.75, width_m=2.1)
    return Scenario(
        name="lookalike-parked-cars",
        description="ego at 50 km/h down a street with cars parked on both shoulders (0.8 m "
        "from the ego's side), a van among them, through a right and a left bend",
        category=Category.LOOKALIKE,
        duration_s=26.0,
        script=_nobody_ahead(Profile.constant(50.0), road, [*right, *left, van]),
        expects_obstacle=False,
    )


def guard_rail() -> Scenario:
    """A motorway at 100 km/h through a left curve with a guard rail on the outside."""
    curvature = 1 / 300
    road = Profile.of((0.0, 0.0), (2.0, 0.0), (4.0, curvature), (14.0, curvature), (16.0, 0.0))
    posts = [
        ObjectScript(
            speed_kmh=Profile.constant(0.0),
            initial_gap_m=float(gap),
            lateral_m=Profile.constant(-3.8),
            width_m=0.2,
        )
        for gap in range(20, 560, 10)
    ]
    return Scenario(
        name="lookalike-guard-rail",
        description="ego at 100 km/h through a left curve (radius 300 m) along a guard rail "
        "on the right, 2.9 m from the ego's side; from about 50 m on the rail lies straight "
        "ahead of the bumper",
        category=Category.LOOKALIKE,
        duration_s=18.0,
        script=_nobody_ahead(Profile.constant(100.0), road, posts),
        expects_obstacle=False,
    )


def gantry() -> Scenario:
    """A motorway at 100 km/h under a sign gantry and a bridge."""
    return Scenario(
        name="lookalike-gantry",
        description="ego at 100 km/h under an overhead sign gantry (5.5 m clearance) and then "
        "a bridge (5.2 m): the radar sees both, straight ahead and stationary, until about "
        "30 m before them",
        category=Category.LOOKALIKE,
        duration_s=20.0,
        script=_nobody_ahead(
            Profile.constant(100.0),
            Profile.constant(0.0),
            [
                ObjectScript(Profile.constant(0.0), 180.0, width_m=16.0, clearance_m=5.5),
                ObjectScript(Profile.constant(0.0), 450.0, width_m=30.0, clearance_m=5.2),
            ],
        ),
        expects_obstacle=False,
    )


def turn_off() -> Scenario:
    """The car ahead slows down and turns right into a side street; the ego slows a little."""
    lead_speed = Profile.of((0.0, 50.0), (1.0, 50.0), (5.0, 20.0), (6.0, 10.0), (7.5, 10.0))
    lead_lateral = Profile.of(
        (0.0, 0.0), (5.0, 0.0), (6.0, -1.5), (7.0, -4.5), (7.5, -8.0), (7.5, -FAR_AWAY_M)
    )
    ego = ramps(50.0, (1.8, 35.0, 1.5 * MS2_AS_KMH_PER_S), (4.0, 50.0, 1.2 * MS2_AS_KMH_PER_S))
    return Scenario(
        name="lookalike-turn-off",
        description="both at 50 km/h, 25 m apart; the car ahead slows to 10 km/h and turns "
        "right into a side street while the ego eases off to 35 km/h and passes behind it "
        "(about 10 m behind it at the closest)",
        category=Category.LOOKALIKE,
        duration_s=14.0,
        script=DriveScript(
            ego_speed_kmh=ego,
            lead_speed_kmh=lead_speed,
            lead_initial_gap_m=25.0,
            lead_lateral_m=lead_lateral,
        ),
        expects_obstacle=False,
    )


def cut_out() -> Scenario:
    """The car ahead changes lanes and reveals a slower car ahead; the ego slows down for it."""
    ego = ramps(80.0, (6.0, 40.0, 1.5 * MS2_AS_KMH_PER_S))
    return Scenario(
        name="lookalike-cut-out",
        description="ego at 80 km/h 44 m behind a car that changes to the left lane at 3 s, "
        "revealing a car at 40 km/h about 100 m ahead; the ego slows down to its speed",
        category=Category.LOOKALIKE,
        duration_s=22.0,
        script=DriveScript(
            ego_speed_kmh=ego,
            lead_speed_kmh=Profile.constant(80.0),
            lead_initial_gap_m=44.0,
            lead_lateral_m=Profile.of((0.0, 0.0), (3.0, 0.0), (6.0, LANE_WIDTH_M)),
            traffic=(_driving(40.0, 150.0, 0.0),),
        ),
        expects_obstacle=False,
    )


def stop_and_go_2m() -> Scenario:
    """Queue traffic that stops 2 m behind the car ahead, three times."""
    go = (4.0, 20.0, 1.5 * MS2_AS_KMH_PER_S)
    stop = (4.0, 0.0, 2.0 * MS2_AS_KMH_PER_S)
    lead = ramps(0.0, (2.0, 20.0, 1.5 * MS2_AS_KMH_PER_S), stop, go, stop, go, stop)
    return Scenario(
        name="lookalike-stop-and-go-2m",
        description="queue traffic up to 20 km/h with three stops, 2 m apart at standstill "
        "(the ego's driver brakes 1 s after the car ahead)",
        category=Category.LOOKALIKE,
        duration_s=lead.end_s + 5.0,
        script=DriveScript(
            ego_speed_kmh=lead.shifted(1.0),
            lead_speed_kmh=lead,
            lead_initial_gap_m=2.0,
        ),
        expects_obstacle=False,
    )


def lookalikes() -> list[Scenario]:
    """The zoo, in catalogue order."""
    return [
        curve_next_lanes(),
        parked_cars(),
        guard_rail(),
        gantry(),
        turn_off(),
        cut_out(),
        stop_and_go_2m(),
    ]
