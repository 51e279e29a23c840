"""Vehicle physics: ego longitudinal dynamics, driver, brake actuator, lead object, collision.

Everything here is pure: :func:`step` maps a :class:`VehicleState` to the next one, so tests can
run the physics without CAN. Positions are along the road: the ego's is its front bumper, the
lead object's its rear bumper, both in metres from the ego's starting point. Lateral offsets
are from the centre of the ego's lane (left +); the ego keeps to the centre of its lane. Besides
the lead object a scenario may script more traffic and structures (:class:`ObjectScript`):
cars in other lanes, parked cars, guard-rail posts, a gantry over the road.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from edge_agent.simulator.profiles import Profile

MAX_DECELERATION_MPS2 = 9.0
"""The brake actuator's limit: requests above it are capped."""
BRAKE_LAG_S = 0.2
"""Time constant of the first-order lag between the brake request and the deceleration."""
VEHICLE_WIDTH_M = 1.8
"""Width of the ego and of a car; two cars whose centres are closer than this overlap."""
EGO_HEIGHT_M = 1.5
"""An object with more free height under it than this (a gantry, a bridge) passes overhead."""
VEHICLE_LENGTH_M = 4.5
"""Length of the ego and of the lead object (for overlap once the gap turns negative)."""
DRIVER_MAX_ACCEL_MPS2 = 3.0
DRIVER_MAX_BRAKE_MPS2 = 4.0
DRIVER_SPEED_GAIN_PER_S = 0.8
AEB_ACTIVE_MPS2 = 0.05
"""Above this applied or requested deceleration the AEB counts as braking (throttle cut)."""

KMH = 1 / 3.6
ZERO = Profile.constant(0.0)
"""A profile that stays at zero (straight road, object centred in the lane)."""


@dataclass(frozen=True, slots=True)
class ObjectScript:
    """Another object on or over the road: its speed, start, lateral offset and size.

    ``clearance_m`` is the free height under the object: zero for a car, a post or a rail;
    above :data:`EGO_HEIGHT_M` (a gantry, a bridge) the ego passes under it.
    """

    speed_kmh: Profile
    initial_gap_m: float
    lateral_m: Profile = ZERO
    width_m: float = VEHICLE_WIDTH_M
    clearance_m: float = 0.0


@dataclass(frozen=True, slots=True)
class DriveScript:
    """What the scenario scripts: the driver's target speed, the road and the lead object's motion.

    The driver follows ``ego_speed_kmh`` (with feed-forward of its slope) and never brakes for an
    obstacle. After an AEB intervention the driver keeps the speed the AEB left; with
    ``resume_after_aeb_s`` set, the driver returns to the profile that long after the AEB released.
    """

    ego_speed_kmh: Profile
    lead_speed_kmh: Profile
    lead_initial_gap_m: float
    lead_lateral_m: Profile = ZERO
    road_curvature_per_m: Profile = ZERO
    resume_after_aeb_s: float | None = None
    lead_width_m: float = VEHICLE_WIDTH_M
    traffic: tuple[ObjectScript, ...] = ()
    """Objects besides the lead: they move as scripted and can be hit like the lead."""


@dataclass(frozen=True, slots=True)
class Ego:
    """The ego vehicle: front bumper position, speed, acceleration and what the driver commands."""

    position_m: float
    speed_mps: float
    acceleration_mps2: float = 0.0
    yaw_rate_dps: float = 0.0
    driver_command_mps2: float = 0.0
    """Acceleration the driver asks for: positive means throttle, negative the brake pedal."""


@dataclass(frozen=True, slots=True)
class BrakeActuator:
    """The AEB brake path: the latest request and the deceleration it has built up so far."""

    request_mps2: float = 0.0
    deceleration_mps2: float = 0.0


@dataclass(frozen=True, slots=True)
class Driver:
    """The driver's memory of an AEB intervention (speed cap while startled)."""

    speed_cap_mps: float | None = None
    aeb_released_at_s: float | None = None


@dataclass(frozen=True, slots=True)
class Lead:
    """An object ahead (the lead, or traffic): rear position, speed, acceleration, lateral offset.

    ``width_m`` and ``clearance_m`` are its size as in :class:`ObjectScript`.
    """

    position_m: float
    speed_mps: float
    acceleration_mps2: float = 0.0
    lateral_m: float = 0.0
    width_m: float = VEHICLE_WIDTH_M
    clearance_m: float = 0.0

    @property
    def overhead(self) -> bool:
        """Whether the ego passes under the object (a gantry, a bridge)."""
        return self.clearance_m > EGO_HEIGHT_M

    @property
    def overlaps_ego_lane(self) -> bool:
        """Whether the object overlaps the ego laterally (and is low enough to hit)."""
        reach = (VEHICLE_WIDTH_M + self.width_m) / 2
        return not self.overhead and abs(self.lateral_m) < reach


@dataclass(frozen=True, slots=True)
class Collision:
    """A contact between the ego and the lead object."""

    time_s: float
    impact_speed_kmh: float


@dataclass(frozen=True, slots=True)
class VehicleState:
    """The whole physical world at one instant."""

    time_s: float
    script: DriveScript
    ego: Ego
    lead: Lead
    brake: BrakeActuator = BrakeActuator()
    driver: Driver = Driver()
    collision: Collision | None = None
    traffic: tuple[Lead, ...] = ()

    @property
    def objects(self) -> tuple[Lead, ...]:
        """The lead object first, then the rest of the traffic."""
        return (self.lead, *self.traffic)

    @property
    def gap_m(self) -> float:
        """Distance from the ego's front bumper to the lead object's rear bumper."""
        return self.lead.position_m - self.ego.position_m

    @property
    def in_same_lane(self) -> bool:
        """Whether the lead object overlaps the ego's path laterally."""
        return self.lead.overlaps_ego_lane

    @property
    def closing_speed_mps(self) -> float:
        """Ego speed minus lead speed: positive while the gap shrinks."""
        return self.ego.speed_mps - self.lead.speed_mps

    def gap_to(self, thing: Lead) -> float:
        """Distance from the ego's front bumper to ``thing``'s rear."""
        return thing.position_m - self.ego.position_m

    @property
    def time_to_collision_s(self) -> float | None:
        """The smallest gap over closing speed among objects ahead in the lane and closing."""
        if self.collision is not None:
            return 0.0
        smallest: float | None = None
        for thing in self.objects:
            gap, closing = self.gap_to(thing), self.ego.speed_mps - thing.speed_mps
            if not thing.overlaps_ego_lane or gap <= 0 or closing <= 0:
                continue
            if smallest is None or gap / closing < smallest:
                smallest = gap / closing
        return smallest

    @property
    def in_lane_gap_m(self) -> float | None:
        """The gap to the nearest object ahead that overlaps the ego's lane, if any."""
        gaps = [
            self.gap_to(thing)
            for thing in self.objects
            if thing.overlaps_ego_lane and self.gap_to(thing) > 0
        ]
        return min(gaps) if gaps else None


def initial_state(script: DriveScript) -> VehicleState:
    """The state at time zero: everything at its scripted speed, the objects at their gaps."""
    return VehicleState(
        time_s=0.0,
        script=script,
        ego=Ego(position_m=0.0, speed_mps=script.ego_speed_kmh.at(0.0) * KMH),
        lead=Lead(
            position_m=script.lead_initial_gap_m,
            speed_mps=max(0.0, script.lead_speed_kmh.at(0.0) * KMH),
            lateral_m=script.lead_lateral_m.at(0.0),
            width_m=script.lead_width_m,
        ),
        traffic=tuple(
            Lead(
                position_m=thing.initial_gap_m,
                speed_mps=max(0.0, thing.speed_kmh.at(0.0) * KMH),
                lateral_m=thing.lateral_m.at(0.0),
                width_m=thing.width_m,
                clearance_m=thing.clearance_m,
            )
            for thing in script.traffic
        ),
    )


def brake_lag_step(brake: BrakeActuator, request_mps2: float, dt: float) -> BrakeActuator:
    """Advance the actuator ``dt`` towards ``request_mps2`` (capped, first-order lag, exact)."""
    target = min(max(request_mps2, 0.0), MAX_DECELERATION_MPS2)
    blend = 1.0 - math.exp(-dt / BRAKE_LAG_S)
    deceleration = brake.deceleration_mps2 + (target - brake.deceleration_mps2) * blend
    return BrakeActuator(request_mps2=max(request_mps2, 0.0), deceleration_mps2=deceleration)


def driver_command(script: DriveScript, driver: Driver, time_s: float, speed_mps: float) -> float:
    """The acceleration the driver asks for to follow the scripted speed (obstacle-blind)."""
    target = script.ego_speed_kmh.at(time_s) * KMH
    feed_forward = script.ego_speed_kmh.slope(time_s) * KMH
    if driver.speed_cap_mps is not None and target >= driver.speed_cap_mps:
        target, feed_forward = driver.speed_cap_mps, 0.0
    command = feed_forward + DRIVER_SPEED_GAIN_PER_S * (target - speed_mps)
    if target <= 0.0 and speed_mps <= 0.0:
        command = 0.0
    return min(max(command, -DRIVER_MAX_BRAKE_MPS2), DRIVER_MAX_ACCEL_MPS2)


def _advance(position: float, speed: float, accel: float, dt: float) -> tuple[float, float]:
    """Constant-acceleration motion that stops at zero speed instead of reversing."""
    new_speed = speed + accel * dt
    if new_speed >= 0.0:
        return position + (speed + new_speed) / 2 * dt, new_speed
    stop_s = speed / -accel
    return position + speed * stop_s / 2, 0.0


def _update_driver(state: VehicleState, brake: BrakeActuator, time_s: float) -> Driver:
    driver = state.driver
    aeb_braking = max(brake.request_mps2, brake.deceleration_mps2) > AEB_ACTIVE_MPS2
    if aeb_braking:
        cap = state.ego.speed_mps
        if driver.speed_cap_mps is not None:
            cap = min(cap, driver.speed_cap_mps)
        return Driver(speed_cap_mps=cap, aeb_released_at_s=None)
    if driver.speed_cap_mps is None:
        return driver
    released_at = driver.aeb_released_at_s if driver.aeb_released_at_s is not None else time_s
    resume = state.script.resume_after_aeb_s
    if resume is not None and time_s - released_at >= resume:
        return Driver()
    return Driver(speed_cap_mps=driver.speed_cap_mps, aeb_released_at_s=released_at)


def step(state: VehicleState, dt: float, brake_request_mps2: float) -> VehicleState:
    """The world ``dt`` seconds later, with the AEB asking for ``brake_request_mps2``.

    After a collision the vehicles stay where they hit; only the time advances.
    """
    time_s = round(state.time_s + dt, 9)  # no drift over thousands of steps
    if state.collision is not None:
        return replace(state, time_s=time_s)
    script = state.script
    brake = brake_lag_step(state.brake, brake_request_mps2, dt)
    driver = _update_driver(state, brake, state.time_s)
    command = driver_command(script, driver, state.time_s, state.ego.speed_mps)
    if max(brake.request_mps2, brake.deceleration_mps2) > AEB_ACTIVE_MPS2:
        # The AEB cuts the throttle; the stronger of driver brake and AEB wins.
        accel = -max(-min(command, 0.0), brake.deceleration_mps2)
    else:
        accel = command
    accel = max(accel, -MAX_DECELERATION_MPS2)
    ego_position, ego_speed = _advance(state.ego.position_m, state.ego.speed_mps, accel, dt)
    if ego_speed == 0.0 and accel < 0.0:
        accel = 0.0
    ego = Ego(
        position_m=ego_position,
        speed_mps=ego_speed,
        acceleration_mps2=accel,
        yaw_rate_dps=math.degrees(ego_speed * script.road_curvature_per_m.at(time_s)),
        driver_command_mps2=command,
    )
    lead = _moved(state.lead, (script.lead_speed_kmh, script.lead_lateral_m), state.time_s, dt)
    traffic = tuple(
        _moved(thing, (scripted.speed_kmh, scripted.lateral_m), state.time_s, dt)
        for thing, scripted in zip(state.traffic, script.traffic, strict=True)
    )
    moved = VehicleState(time_s, script, ego, lead, brake, driver, traffic=traffic)
    return replace(moved, collision=_contact(state, moved))


def _moved(thing: Lead, scripted: tuple[Profile, Profile], now_s: float, dt: float) -> Lead:
    """``thing`` ``dt`` later, following its scripted (speed in km/h, lateral offset)."""
    speed_kmh, lateral_m = scripted
    next_s = round(now_s + dt, 9)
    if len(speed_kmh.times) == 1 and len(lateral_m.times) == 1 and thing.speed_mps == 0.0:
        return thing  # parked, posts, gantries: nothing moves (and scenes have many of them)
    speed_now = max(0.0, speed_kmh.at(now_s) * KMH)
    speed_next = max(0.0, speed_kmh.at(next_s) * KMH)
    return replace(
        thing,
        position_m=thing.position_m + (speed_now + speed_next) / 2 * dt,
        speed_mps=speed_next,
        acceleration_mps2=(speed_next - speed_now) / dt,
        lateral_m=lateral_m.at(next_s),
    )


def _overlaps(ego: Ego, thing: Lead) -> bool:
    gap = thing.position_m - ego.position_m
    return thing.overlaps_ego_lane and -2 * VEHICLE_LENGTH_M < gap <= 0.0


def _contact(before: VehicleState, after: VehicleState) -> Collision | None:
    """The first object the ego overlaps now but did not before, at the interpolated speed."""
    first: Collision | None = None
    for old, new in zip(before.objects, after.objects, strict=True):
        if not _overlaps(after.ego, new) or _overlaps(before.ego, old):
            continue
        gap_before, gap_after = before.gap_to(old), after.gap_to(new)
        fraction = 1.0
        if gap_before > 0.0 and gap_before != gap_after:
            fraction = gap_before / (gap_before - gap_after)
        closing_before = before.ego.speed_mps - old.speed_mps
        closing_after = after.ego.speed_mps - new.speed_mps
        closing = closing_before + fraction * (closing_after - closing_before)
        contact = Collision(
            time_s=before.time_s + fraction * (after.time_s - before.time_s),
            impact_speed_kmh=max(0.0, closing) / KMH,
        )
        if first is None or contact.time_s < first.time_s:
            first = contact
    return first
