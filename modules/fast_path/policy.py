"""The obstacle/brake decision: a pure function of radar, ego speed and the previous state.

Nothing here does I/O or reads a clock: the caller passes ``now`` (monotonic seconds) and the
latest samples, and gets back the new state and a :class:`Decision`. That makes every rule
below testable one by one and replayable from recorded data.

Rules, in order:

1. **Staleness**: no radar sample within ``radar_timeout_s`` or no ego speed within
   ``ego_timeout_s`` puts the policy in a fault state.
2. **Plausibility**: a distance outside ``[0, max_range_m]`` or not finite, a relative speed
   beyond ``max_relative_speed_mps``, or a jump from the predicted distance larger than
   ``max_jump_m`` that the next sample does not confirm, is implausible: fault state.
3. **Fault state**: no brake request at all (no phantom braking) until
   ``recovery_samples`` good samples in a row.
4. **Staging**: time to collision (distance / closing speed) and the deceleration needed to
   stop ``stop_margin_m`` short of the object pick the stage; escalation is immediate,
   de-escalation waits ``min_hold_s`` and needs the threat to fall clearly below the stage's
   threshold (``release_margin_s``) for a warning, and for a brake stage the conflict to be
   resolved (no longer closing in): hysteresis. A full brake is never relaxed to partial.
5. **Standstill hold**: stopped behind a close object after braking, the brake is held.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, replace


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
    stop_margin_m: float = 2.0
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


@dataclass(frozen=True, slots=True)
class RadarSample:
    """The in-path object as the radar reports it.

    ``relative_speed_mps`` is object speed minus ego speed: negative while closing in.
    """

    time: float
    distance_m: float
    relative_speed_mps: float
    valid: bool = True


@dataclass(frozen=True, slots=True)
class EgoSample:
    """The ego vehicle's speed over ground."""

    time: float
    speed_mps: float


@dataclass(frozen=True, slots=True)
class PolicyState:
    """What the policy remembers between calls. Start with ``PolicyState()``."""

    stage: Stage = Stage.NONE
    stage_since: float = 0.0
    last_radar: RadarSample | None = None
    unconfirmed_jump: RadarSample | None = None
    fault: str = "no radar data yet"
    good_samples: int = 0


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


def _implausible(sample: RadarSample, config: PolicyConfig) -> str:
    if not (math.isfinite(sample.distance_m) and math.isfinite(sample.relative_speed_mps)):
        return "radar value not finite"
    if sample.distance_m < 0 or sample.distance_m > config.max_range_m:
        return f"radar distance {sample.distance_m:.2f} m out of range"
    if abs(sample.relative_speed_mps) > config.max_relative_speed_mps:
        return f"radar relative speed {sample.relative_speed_mps:.1f} m/s out of range"
    return ""


def _jumped(previous: RadarSample, sample: RadarSample, config: PolicyConfig) -> bool:
    predicted = previous.distance_m + previous.relative_speed_mps * (sample.time - previous.time)
    return abs(sample.distance_m - predicted) > config.max_jump_m


def _accept_radar(
    state: PolicyState, sample: RadarSample, config: PolicyConfig
) -> tuple[PolicyState, str]:
    """Check a new radar sample; return the updated state and a fault reason ('' if good)."""
    if not sample.valid:
        return replace(state, last_radar=sample, unconfirmed_jump=None), ""
    reason = _implausible(sample, config)
    if reason:
        return replace(state, unconfirmed_jump=None), reason
    previous = state.last_radar
    if previous is not None and previous.valid and _jumped(previous, sample, config):
        pending = state.unconfirmed_jump
        if pending is not None and not _jumped(pending, sample, config):
            return replace(state, last_radar=sample, unconfirmed_jump=None), ""  # a new object
        jump = sample.distance_m - previous.distance_m
        return replace(state, unconfirmed_jump=sample), f"radar distance jumped {jump:+.1f} m"
    return replace(state, last_radar=sample, unconfirmed_jump=None), ""


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
    if fault:
        stage = Stage.NONE
    else:
        assert last is not None
        assert ego is not None
        if last.valid:
            ttc = time_to_collision(
                last.distance_m, last.relative_speed_mps, config.min_closing_mps
            )
            needed = required_deceleration(
                last.distance_m, last.relative_speed_mps, config.stop_margin_m
            )
        stage = _target_stage(ttc, needed, config)
        holding = (
            previous_stage >= Stage.PARTIAL
            and ego.speed_mps <= config.standstill_mps
            and last.valid
            and last.distance_m <= config.hold_distance_m
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
    )
    return new_state, decision
