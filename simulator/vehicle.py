"""Vehicle physics: ego longitudinal dynamics, driver, brake actuator, lead object, collision.

Everything here is pure: :func:`step` maps a :class:`VehicleState` to the next one, so tests can
run the physics without CAN. Positions are along the road: the ego's is its front bumper, the
lead object's its rear bumper, both in metres from the ego's starting point.
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
"""Objects whose centres are closer than this laterally overlap the ego (same lane)."""
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
    """The lead object: rear bumper position, speed, acceleration and lateral offset (left +)."""

    position_m: float
    speed_mps: float
    acceleration_mps2: float = 0.0
    lateral_m: float = 0.0


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

    @property
    def gap_m(self) -> float:
        """Distance from the ego's front bumper to the lead object's rear bumper."""
        return self.lead.position_m - self.ego.position_m

    @property
    def in_same_lane(self) -> bool:
        """Whether the lead object overlaps the ego's path laterally."""
        return abs(self.lead.lateral_m) < VEHICLE_WIDTH_M

    @property
    def closing_speed_mps(self) -> float:
        """Ego speed minus lead speed: positive while the gap shrinks."""
        return self.ego.speed_mps - self.lead.speed_mps

    @property
    def time_to_collision_s(self) -> float | None:
        """Gap over closing speed, when the lead is ahead in the same lane and closing."""
        if self.collision is not None:
            return 0.0
        if not self.in_same_lane or self.gap_m <= 0 or self.closing_speed_mps <= 0:
            return None
        return self.gap_m / self.closing_speed_mps


def initial_state(script: DriveScript) -> VehicleState:
    """The state at time zero: both vehicles at their scripted speeds, the lead at its gap."""
    return VehicleState(
        time_s=0.0,
        script=script,
        ego=Ego(position_m=0.0, speed_mps=script.ego_speed_kmh.at(0.0) * KMH),
        lead=Lead(
            position_m=script.lead_initial_gap_m,
            speed_mps=max(0.0, script.lead_speed_kmh.at(0.0) * KMH),
            lateral_m=script.lead_lateral_m.at(0.0),
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
    lead_speed_now = max(0.0, script.lead_speed_kmh.at(state.time_s) * KMH)
    lead_speed_next = max(0.0, script.lead_speed_kmh.at(time_s) * KMH)
    lead = Lead(
        position_m=state.lead.position_m + (lead_speed_now + lead_speed_next) / 2 * dt,
        speed_mps=lead_speed_next,
        acceleration_mps2=(lead_speed_next - lead_speed_now) / dt,
        lateral_m=script.lead_lateral_m.at(time_s),
    )
    moved = VehicleState(time_s, script, ego, lead, brake, driver)
    return replace(moved, collision=_contact(state, moved))


def _overlaps(state: VehicleState) -> bool:
    gap = state.gap_m
    return state.in_same_lane and -2 * VEHICLE_LENGTH_M < gap <= 0.0


def _contact(before: VehicleState, after: VehicleState) -> Collision | None:
    """A collision when the vehicles overlap now but did not before, at the interpolated speed."""
    if not _overlaps(after) or _overlaps(before):
        return None
    gap_before, gap_after = before.gap_m, after.gap_m
    fraction = 1.0
    if gap_before > 0.0 and gap_before != gap_after:
        fraction = gap_before / (gap_before - gap_after)
    closing = before.closing_speed_mps + fraction * (
        after.closing_speed_mps - before.closing_speed_mps
    )
    return Collision(
        time_s=before.time_s + fraction * (after.time_s - before.time_s),
        impact_speed_kmh=max(0.0, closing) / KMH,
    )
