"""The obstacle/brake decision: a pure function of radar objects, ego motion and the last state.

Nothing here does I/O or reads a clock: the caller passes ``now`` (monotonic seconds) and the
latest samples, and gets back the new state and a :class:`Decision`. That makes every rule
below testable one by one and replayable from recorded data. A radar may report one object or
several (one frame each, told apart by a track id); the policy keeps the latest sample of each.

Rules, in order:

1. **Staleness**: no radar sample within ``radar_timeout_s`` or no ego speed within
   ``ego_timeout_s`` puts the policy in a fault state.
2. **Plausibility**: a distance outside ``[0, max_range_m]`` or not finite, a relative speed
   beyond ``max_relative_speed_mps``, or a jump from the distance the same object's last
   sample predicted larger than ``max_jump_m`` that the next sample does not confirm, is
   implausible: fault state. (A track id not seen for ``object_timeout_s`` is a new object.)
3. **Fault state**: no brake request at all (no phantom braking) until
   ``recovery_samples`` good samples in a row.
4. **In path**: an object counts only when it is in the path the ego is predicted to drive
   (:mod:`edge_agent.modules.fast_path.ego_path`): on the circle its speed and yaw rate
   describe, the object's reported extent comes within ``path_margin_m`` of the ego's sides.
   An object wider than ``max_obstacle_width_m`` is a structure (a gantry, a bridge), not an
   obstacle. A radar that reports no lateral position leaves this to its own in-path flag.
5. **Staging**: on the most threatening object in path, time to collision (distance /
   closing speed) and the deceleration needed to stop ``stop_margin_m`` short of it pick the
   stage. Until the AEB brakes, the time to collision credits the driver's own braking (the
   measured deceleration): a driver already stopping short is not overruled. Escalation is
   immediate; de-escalation waits ``min_hold_s`` and needs the threat to fall clearly below
   the stage's threshold (``release_margin_s``) for a warning, and for a brake stage the
   conflict to be resolved (no longer closing in): hysteresis. A full brake is never relaxed
   to partial.
6. **Standstill hold**: stopped behind a close object after braking, the brake is held.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, replace

from edge_agent.modules.fast_path.ego_path import lateral_clearance, path_curvature


class Stage(enum.IntEnum):
    """The brake stage requested from the vehicle (the value goes in the CAN frame)."""

    NONE = 0
    WARN = 1
    PARTIAL = 2
    FULL = 3


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    """Thresholds of the decision; defaults suit a passenger car with 9 m/s2 of braking."""

    warn_ttc_s: float = 2.6
    partial_ttc_s: float = 1.8
    full_ttc_s: float = 1.4
    partial_required_decel: float = 3.0
    full_required_decel: float = 6.0
    partial_decel: float = 4.0
    full_decel: float = 9.0
    hold_decel: float = 3.0
    stop_margin_m: float = 1.0
    release_margin_s: float = 0.6
    min_hold_s: float = 0.5
    standstill_mps: float = 0.3
    hold_distance_m: float = 10.0
    min_closing_mps: float = 0.3
    radar_timeout_s: float = 0.1
    ego_timeout_s: float = 0.1
    max_range_m: float = 250.0
    max_relative_speed_mps: float = 70.0
    max_jump_m: float = 6.0
    recovery_samples: int = 5
    ego_width_m: float = 1.8
    path_margin_m: float = 0.3
    path_uncertainty_mps2: float = 1.0
    max_path_curvature_per_m: float = 0.1
    max_obstacle_width_m: float = 3.0
    object_timeout_s: float = 0.1


@dataclass(frozen=True, slots=True)
class RadarSample:
    """One object as the radar reports it (or, with ``valid`` false, that it tracks none).

    ``relative_speed_mps`` is object speed minus ego speed: negative while closing in.
    ``lateral_m`` (left +) and ``width_m`` are ``None`` from a radar that does not report
    them; ``object_id`` is ``None`` from a radar that reports one object without a track id.
    """

    time: float
    distance_m: float
    relative_speed_mps: float
    valid: bool = True
    lateral_m: float | None = None
    width_m: float | None = None
    object_id: int | None = None


@dataclass(frozen=True, slots=True)
class EgoSample:
    """The ego vehicle's motion: speed over ground, yaw rate (left +), acceleration if known."""

    time: float
    speed_mps: float
    yaw_rate_dps: float = 0.0
    acceleration_mps2: float | None = None


@dataclass(frozen=True, slots=True)
class PolicyState:
    """What the policy remembers between calls. Start with ``PolicyState()``."""

    stage: Stage = Stage.NONE
    stage_since: float = 0.0
    last_radar: RadarSample | None = None
    unconfirmed_jump: RadarSample | None = None
    fault: str = "no radar data yet"
    good_samples: int = 0
    tracks: tuple[RadarSample, ...] = ()
    """The latest sample of each object the radar reports, one per track id."""


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one call: what to request and why."""

    stage: Stage
    decel_request_mps2: float
    ttc_s: float | None
    required_decel_mps2: float
    fault: str
    stage_changed: bool
    fault_changed: bool
    object_id: int | None = None
    """Track id of the object the stage is about (``None``: none, or a radar without ids)."""


def time_to_collision(
    distance_m: float, relative_speed_mps: float, min_closing: float
) -> float | None:
    """Seconds until contact at the current closing speed; None when not closing in."""
    closing = -relative_speed_mps
    if closing < min_closing:
        return None
    return max(distance_m, 0.0) / closing


def required_deceleration(distance_m: float, relative_speed_mps: float, margin_m: float) -> float:
    """Constant deceleration (m/s2) cancelling the closing speed ``margin_m`` before the object."""
    closing = -relative_speed_mps
    if closing <= 0:
        return 0.0
    return closing * closing / (2.0 * max(distance_m - margin_m, 0.1))


def time_to_contact(
    distance_m: float, closing_mps: float, closing_decel_mps2: float
) -> float | None:
    """Seconds until contact if the closing speed keeps falling at ``closing_decel_mps2``.

    ``None`` when the closing speed reaches zero first (the ego stops short).
    """
    if closing_decel_mps2 <= 0.0:
        return max(distance_m, 0.0) / closing_mps
    discriminant = closing_mps * closing_mps - 2.0 * closing_decel_mps2 * max(distance_m, 0.0)
    if discriminant < 0.0:
        return None
    return (closing_mps - math.sqrt(discriminant)) / closing_decel_mps2


def _implausible(sample: RadarSample, config: PolicyConfig) -> str:
    extras = (sample.lateral_m, sample.width_m)
    if not (math.isfinite(sample.distance_m) and math.isfinite(sample.relative_speed_mps)):
        return "radar value not finite"
    if any(value is not None and not math.isfinite(value) for value in extras):
        return "radar value not finite"
    if sample.distance_m < 0 or sample.distance_m > config.max_range_m:
        return f"radar distance {sample.distance_m:.2f} m out of range"
    if abs(sample.relative_speed_mps) > config.max_relative_speed_mps:
        return f"radar relative speed {sample.relative_speed_mps:.1f} m/s out of range"
    return ""


def _jumped(previous: RadarSample, sample: RadarSample, config: PolicyConfig) -> bool:
    predicted = previous.distance_m + previous.relative_speed_mps * (sample.time - previous.time)
    return abs(sample.distance_m - predicted) > config.max_jump_m


def _same_object(track: RadarSample, sample: RadarSample, config: PolicyConfig) -> bool:
    """Whether ``track`` is the earlier sample of ``sample``'s object.

    Without track ids every sample is the one object. With them, an id not seen for
    ``object_timeout_s`` may have been handed to a new object by the radar.
    """
    if track.object_id != sample.object_id:
        return False
    return sample.object_id is None or sample.time - track.time <= config.object_timeout_s


def _accept_radar(
    state: PolicyState, sample: RadarSample, config: PolicyConfig
) -> tuple[PolicyState, str]:
    """Check a new radar sample; return the updated state and a fault reason ('' if good)."""
    if not sample.valid:
        return replace(state, last_radar=sample, unconfirmed_jump=None, tracks=()), ""
    reason = _implausible(sample, config)
    if reason:
        return replace(state, unconfirmed_jump=None), reason
    pending = state.unconfirmed_jump
    mine = pending if pending is not None and pending.object_id == sample.object_id else None
    previous = next((t for t in state.tracks if _same_object(t, sample, config)), None)
    if (
        previous is not None
        and _jumped(previous, sample, config)
        and (mine is None or _jumped(mine, sample, config))
    ):
        jump = sample.distance_m - previous.distance_m
        return replace(state, unconfirmed_jump=sample), f"radar distance jumped {jump:+.1f} m"
    if mine is not None:
        pending = None  # this object's pending jump is confirmed or undone
    others = tuple(t for t in state.tracks if t.object_id != sample.object_id)
    tracks = (*others, sample)
    return replace(state, last_radar=sample, unconfirmed_jump=pending, tracks=tracks), ""


def _target_stage(ttc: float | None, needed: float, config: PolicyConfig) -> Stage:
    if (ttc is not None and ttc <= config.full_ttc_s) or needed >= config.full_required_decel:
        return Stage.FULL
    if (ttc is not None and ttc <= config.partial_ttc_s) or needed >= config.partial_required_decel:
        return Stage.PARTIAL
    if ttc is not None and ttc <= config.warn_ttc_s:
        return Stage.WARN
    return Stage.NONE


def _released(stage: Stage, ttc: float | None, needed: float, config: PolicyConfig) -> bool:
    """Whether the threat that put the policy in ``stage`` is over.

    A warning ends when the time to collision is clearly above its threshold. A brake stage
    ends only when the conflict is resolved: no longer closing in (speed matched, or the
    object gone); slowing down raises the time to collision but is not a reason to let go.
    """
    if stage is Stage.WARN:
        return ttc is None or ttc > config.warn_ttc_s + config.release_margin_s
    return ttc is None and needed < config.partial_required_decel * 0.5


def in_path(
    sample: RadarSample, ego: EgoSample, config: PolicyConfig, ttc: float | None = None
) -> bool:
    """Whether the object is in the path the ego is predicted to drive (rule 4).

    With ``ttc`` (the object is closing in), the path may still deviate from the prediction
    by ``path_uncertainty_mps2`` of lateral acceleration until then (the driver steers, a
    bend begins): the object must overlap the corridor by that much more to count.
    """
    if sample.width_m is not None and sample.width_m > config.max_obstacle_width_m:
        return False  # wider than a lane: a gantry, a bridge, a sign, not a vehicle
    if sample.lateral_m is None:
        return True  # the radar judged it (its in-path flag), nothing to add
    curvature = path_curvature(ego.speed_mps, ego.yaw_rate_dps, config.max_path_curvature_per_m)
    width = config.ego_width_m if sample.width_m is None else sample.width_m
    clearance = lateral_clearance(
        sample.lateral_m, width, sample.distance_m, curvature, config.ego_width_m
    )
    deviation = 0.0 if ttc is None else config.path_uncertainty_mps2 * ttc * ttc / 2
    return clearance < config.path_margin_m - deviation


@dataclass(frozen=True, slots=True)
class _Threat:
    """One object in path, assessed: what stage it calls for and the figures behind it."""

    sample: RadarSample
    ttc: float | None
    needed: float
    stage: Stage

    def rank(self) -> tuple[Stage, float, float, float]:
        ttc = math.inf if self.ttc is None else self.ttc
        return self.stage, self.needed, -ttc, -self.sample.distance_m


def _assess(
    sample: RadarSample, ego: EgoSample, braking: bool, config: PolicyConfig
) -> _Threat | None:
    """The object's threat, or ``None`` when it is not in the ego's path."""
    ttc = time_to_collision(sample.distance_m, sample.relative_speed_mps, config.min_closing_mps)
    # Braking already: the plain corridor, so that slowing down (a longer time to collision,
    # a wider possible deviation) does not let go of the object it brakes for.
    if not in_path(sample, ego, config, None if braking else ttc):
        return None
    needed = required_deceleration(
        sample.distance_m, sample.relative_speed_mps, config.stop_margin_m
    )
    entry_ttc = ttc
    if not braking and ttc is not None and ego.acceleration_mps2 is not None:
        # Not braking yet: any deceleration is the driver's. Credit it.
        driver_decel = max(-ego.acceleration_mps2, 0.0)
        entry_ttc = time_to_contact(sample.distance_m, -sample.relative_speed_mps, driver_decel)
    return _Threat(sample, ttc, needed, _target_stage(entry_ttc, needed, config))


def _threat(
    state: PolicyState, now: float, ego: EgoSample, braking: bool, config: PolicyConfig
) -> _Threat | None:
    """The most threatening fresh object in path: highest stage, then need, then nearest."""
    assessed = [
        _assess(track, ego, braking, config)
        for track in state.tracks
        if now - track.time <= config.object_timeout_s
    ]
    return max((threat for threat in assessed if threat), key=_Threat.rank, default=None)


def _decel_for(stage: Stage, needed: float, config: PolicyConfig) -> float:
    if stage is Stage.FULL:
        return config.full_decel
    if stage is Stage.PARTIAL:
        return min(max(config.partial_decel, needed * 1.2), config.full_decel)
    return 0.0


def decide(
    state: PolicyState,
    now: float,
    radar: RadarSample | None,
    ego: EgoSample | None,
    config: PolicyConfig,
) -> tuple[PolicyState, Decision]:
    """Decide the brake stage at ``now`` given a new radar sample (or None on a timer tick)."""
    fault = ""
    if radar is not None:
        state, fault = _accept_radar(state, radar, config)
    last = state.last_radar
    if not fault:
        if last is None or now - last.time > config.radar_timeout_s:
            fault = "radar stale" if last is not None else "no radar data yet"
        elif ego is None or now - ego.time > config.ego_timeout_s:
            fault = "ego speed stale" if ego is not None else "no ego speed yet"
    good = 0 if fault else state.good_samples + (1 if radar is not None else 0)
    if state.fault and not fault and good < config.recovery_samples:
        fault = state.fault  # still recovering: keep the fault until enough good samples
    previous_stage, previous_fault = state.stage, state.fault
    ttc: float | None = None
    needed = 0.0
    threat: _Threat | None = None
    if fault:
        stage = Stage.NONE
    else:
        assert ego is not None
        threat = _threat(state, now, ego, previous_stage >= Stage.PARTIAL, config)
        stage = Stage.NONE
        if threat is not None:
            ttc, needed, stage = threat.ttc, threat.needed, threat.stage
        holding = (
            previous_stage >= Stage.PARTIAL
            and ego.speed_mps <= config.standstill_mps
            and threat is not None
            and threat.sample.distance_m <= config.hold_distance_m
        )
        if holding:
            stage = max(stage, previous_stage)
        elif stage < previous_stage and not (
            now - state.stage_since >= config.min_hold_s
            and _released(previous_stage, ttc, needed, config)
        ):
            stage = previous_stage
    decel = _decel_for(stage, needed, config)
    if stage >= Stage.PARTIAL and ego is not None and ego.speed_mps <= config.standstill_mps:
        decel = config.hold_decel  # stopped: hold the vehicle, no need for full pressure
    stage_changed = stage is not previous_stage
    new_state = replace(
        state,
        stage=stage,
        stage_since=now if stage_changed else state.stage_since,
        fault=fault,
        good_samples=good,
    )
    decision = Decision(
        stage=stage,
        decel_request_mps2=decel,
        ttc_s=ttc,
        required_decel_mps2=needed,
        fault=fault,
        stage_changed=stage_changed,
        fault_changed=fault != previous_fault,
        object_id=None if threat is None else threat.sample.object_id,
    )
    return new_state, decision
