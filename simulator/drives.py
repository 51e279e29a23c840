"""Long scripted drives: ``standard-drive`` for telemetry figures and ``demo-route`` for demos."""

from __future__ import annotations

import math

from edge_agent.simulator.body import BodyScript
from edge_agent.simulator.profiles import Profile, TimeWindows, ramps
from edge_agent.simulator.radar import RadarConfig
from edge_agent.simulator.scenario import Category, Scenario
from edge_agent.simulator.vehicle import DriveScript

ACCEL_GENTLE = 5.4  # km/h per s = 1.5 m/s2
BRAKE_GENTLE = 7.2  # km/h per s = 2.0 m/s2
FAR_AWAY_M = 1000.0


def standard_drive() -> Scenario:
    """About five minutes of city, highway and parking with a car ahead for most of it."""
    ego = ramps(
        0.0,
        (12.0, 50.0, ACCEL_GENTLE),  # leave the parking space, city street
        (25.0, 0.0, BRAKE_GENTLE),  # red light
        (12.0, 50.0, ACCEL_GENTLE),
        (20.0, 70.0, 3.6),  # main road
        (20.0, 110.0, 3.0),  # highway on-ramp
        (60.0, 125.0, 1.8),
        (30.0, 100.0, 2.5),
        (25.0, 60.0, 3.6),  # exit
        (15.0, 0.0, ACCEL_GENTLE),  # park
    )
    end_s = ego.end_s + 10.0
    curves = Profile.of(
        (0.0, 0.0),
        (30.0, 0.0),
        (32.0, 1 / 60),
        (38.0, 1 / 60),
        (40.0, 0.0),  # city corner
        (110.0, 0.0),
        (115.0, -1 / 900),
        (140.0, -1 / 900),
        (150.0, 1 / 1200),  # highway bends
        (175.0, 1 / 1200),
        (180.0, 0.0),
        (262.0, 0.0),
        (266.0, -1 / 120),
        (280.0, -1 / 120),
        (284.0, 0.0),
    )
    lead_lateral = Profile.of(
        (0.0, 0.0), (200.0, 0.0), (204.0, 3.5), (250.0, 3.5), (262.0, 40.0), (262.0, FAR_AWAY_M)
    )
    return Scenario(
        name="standard-drive",
        description=f"{end_s / 60:.1f} minutes of mixed driving (city, red light, highway up to "
        "125 km/h, exit, parking) behind another car; battery and body signals change "
        "realistically with noise",
        category=Category.DRIVE,
        duration_s=end_s,
        script=DriveScript(
            ego_speed_kmh=ego,
            lead_speed_kmh=ego.shifted(-2.5),
            lead_initial_gap_m=15.0,
            lead_lateral_m=lead_lateral,
            road_curvature_per_m=curves,
        ),
        expects_obstacle=False,
        body=BodyScript(
            initial_soc_pct=81.5,
            outside_temperature_c=14.0,
            parked=TimeWindows.of((0.0, 9.0), (end_s - 8.0, math.inf)),
            driver_door_open=TimeWindows.of((2.0, 6.0), (end_s - 4.0, end_s - 1.0)),
            tailgate_open=TimeWindows.of((end_s - 3.0, math.inf)),
            low_beam=TimeWindows.of((130.0, 215.0)),
            high_beam=TimeWindows.of((150.0, 170.0)),
        ),
    )


def demo_route() -> Scenario:
    """Cruise, a stopped car that needs an automatic brake, then a radar dropout on open road.

    Without the agent the ego hits the stopped car after about 24 s. With it the ego stops, the
    stopped car pulls onto the shoulder at 25 s, and the driver drives on 5 s after the AEB lets go.
    """
    ego = Profile.of((0.0, 60.0), (50.0, 60.0), (55.6, 80.0))
    obstacle_speed = Profile.of((0.0, 0.0), (25.0, 0.0), (26.0, 10.0), (27.5, 0.0))
    obstacle_lateral = Profile.of((0.0, 0.0), (25.0, 0.0), (27.5, -3.5))
    return Scenario(
        name="demo-route",
        description="cruise at 60 km/h, a stopped car 400 m ahead (automatic brake needed), "
        "drive on at 80 km/h, radar frames missing from 65 to 68 s",
        category=Category.DRIVE,
        duration_s=90.0,
        script=DriveScript(
            ego_speed_kmh=ego,
            lead_speed_kmh=obstacle_speed,
            lead_initial_gap_m=400.0,
            lead_lateral_m=obstacle_lateral,
            road_curvature_per_m=Profile.of(
                (0.0, 0.0), (70.0, 0.0), (72.0, 1 / 500), (80.0, 1 / 500), (82.0, 0.0)
            ),
            resume_after_aeb_s=5.0,
        ),
        expects_obstacle=True,
        expects_sensor_fault=True,
        radar=RadarConfig(dropouts=TimeWindows.of((65.0, 68.0))),
        body=BodyScript(initial_soc_pct=64.0, outside_temperature_c=21.0),
    )
