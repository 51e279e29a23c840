"""Euro NCAP style car-to-car rear scenarios at any speed and overlap, by name.

Names (speeds in km/h; the canonical name leaves out defaults):

* ``ccrs-<kmh>[-o<overlap>]``: ego at ``kmh`` towards a stationary car;
* ``ccrm-<kmh>[-o<overlap>]``: towards a car driving at 20 km/h;
* ``ccrb-<gap_m>-<decel>[-<kmh>]``: both at ``kmh`` (default 50), ``gap_m`` apart; after 2 s
  the car ahead brakes at ``decel`` m/s² to a stop.

``overlap`` is the share of the ego's width that overlaps the target, in percent (default
100). Positive: the target sits to the right of the ego's centre line; negative: to the left
(``ccrs-35-o-50``: half the ego's width overlaps a target offset to the left). The approaches
start at a time to collision of 6 s (at least 20 m away), so there is time to warn and brake.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from edge_agent.simulator.profiles import Profile
from edge_agent.simulator.scenario import Category, Scenario
from edge_agent.simulator.vehicle import KMH, VEHICLE_WIDTH_M, DriveScript

START_TTC_S = 6.0
MIN_START_GAP_M = 20.0
TAIL_S = 2.0
"""Time a scenario keeps running after the moment a collision would happen without braking."""
CCRB_BRAKE_AT_S = 2.0
CCRM_TARGET_KMH = 20.0


@dataclass(frozen=True, slots=True)
class Span:
    """An inclusive range of whole numbers a name accepts, with what it measures."""

    what: str
    low: int
    high: int
    unit: str

    def check(self, value: int, name: str, form: str) -> None:
        """Raise :class:`ScenarioRangeError` unless ``low <= value <= high``."""
        if not self.low <= value <= self.high:
            raise ScenarioRangeError(
                f"scenario {name!r}: {self.what} {value}{self.unit} is outside "
                f"{self.low}..{self.high}{self.unit} ({form})"
            )


CCRS_SPEED = Span("speed", 10, 80, " km/h")
CCRM_SPEED = Span("speed", 30, 80, " km/h")
CCRB_GAP = Span("gap", 12, 40, " m")
CCRB_DECEL = Span("deceleration", 2, 6, " m/s2")
CCRB_SPEED = Span("speed", 30, 80, " km/h")
OVERLAP = Span("overlap", -100, 100, " %")
MIN_OVERLAP_PCT = 5
"""Below this share of the ego's width a target is a near miss, not a Euro NCAP overlap."""
CCRS_FORM = "ccrs-<kmh>[-o<overlap>]"
CCRM_FORM = "ccrm-<kmh>[-o<overlap>]"
CCRB_FORM = "ccrb-<gap_m>-<decel>[-<kmh>]"
FORMS = (CCRS_FORM, CCRM_FORM, CCRB_FORM)


class UnknownScenarioError(KeyError):
    """A scenario name that is not in the catalogue; the message lists the known ones."""

    def __str__(self) -> str:
        return str(self.args[0])


class ScenarioRangeError(UnknownScenarioError):
    """A parameterised name whose value lies outside the protocol's range, or does not parse."""


def lateral_offset(overlap_pct: int) -> float:
    """The target's lateral offset (m, left +) for an overlap in percent of the ego's width."""
    if abs(overlap_pct) == 100:
        return 0.0
    side = -1.0 if overlap_pct > 0 else 1.0  # positive overlap: the target sits to the right
    return side * (1.0 - abs(overlap_pct) / 100.0) * VEHICLE_WIDTH_M


def _overlap_suffix(overlap_pct: int) -> str:
    return "" if overlap_pct == 100 else f"-o{overlap_pct}"


def _overlap_text(overlap_pct: int) -> str:
    if overlap_pct == 100:
        return ""
    side = "right" if overlap_pct > 0 else "left"
    return f", {abs(overlap_pct)} % overlap (offset to the {side})"


def _approach(
    ego_kmh: float, target_kmh: float, overlap_pct: int = 100
) -> tuple[DriveScript, float]:
    """A constant-speed approach to a constant-speed target: the script and its duration."""
    closing = (ego_kmh - target_kmh) * KMH
    gap = max(closing * START_TTC_S, MIN_START_GAP_M)
    script = DriveScript(
        ego_speed_kmh=Profile.constant(ego_kmh),
        lead_speed_kmh=Profile.constant(target_kmh),
        lead_initial_gap_m=gap,
        lead_lateral_m=Profile.constant(lateral_offset(overlap_pct)),
    )
    return script, gap / closing + TAIL_S


def ccrs(speed_kmh: int, overlap_pct: int = 100) -> Scenario:
    """Car-to-car rear stationary: ego at ``speed_kmh`` towards a stopped car."""
    script, duration = _approach(speed_kmh, 0.0, overlap_pct)
    return Scenario(
        name=f"ccrs-{speed_kmh}{_overlap_suffix(overlap_pct)}",
        description=f"ego at {speed_kmh} km/h towards a stationary car "
        f"{script.lead_initial_gap_m:.0f} m ahead{_overlap_text(overlap_pct)}",
        category=Category.AEB,
        duration_s=duration,
        script=script,
        expects_obstacle=True,
    )


def ccrm(speed_kmh: int, overlap_pct: int = 100) -> Scenario:
    """Car-to-car rear moving: ego at ``speed_kmh`` towards a car driving at 20 km/h."""
    script, duration = _approach(speed_kmh, CCRM_TARGET_KMH, overlap_pct)
    return Scenario(
        name=f"ccrm-{speed_kmh}{_overlap_suffix(overlap_pct)}",
        description=f"ego at {speed_kmh} km/h towards a car at 20 km/h "
        f"{script.lead_initial_gap_m:.0f} m ahead{_overlap_text(overlap_pct)}",
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


def ccrb(gap_m: int, decel_mps2: int, speed_kmh: int = 50) -> Scenario:
    """Car-to-car rear braking: both at ``speed_kmh``, ``gap_m`` apart; the target brakes."""
    speed = float(speed_kmh)
    stop_s = speed * KMH / decel_mps2
    script = DriveScript(
        ego_speed_kmh=Profile.constant(speed),
        lead_speed_kmh=Profile.of(
            (0.0, speed), (CCRB_BRAKE_AT_S, speed), (CCRB_BRAKE_AT_S + stop_s, 0.0)
        ),
        lead_initial_gap_m=float(gap_m),
    )
    suffix = "" if speed_kmh == 50 else f"-{speed_kmh}"
    return Scenario(
        name=f"ccrb-{gap_m}-{decel_mps2}{suffix}",
        description=f"both at {speed_kmh} km/h {gap_m} m apart; after {CCRB_BRAKE_AT_S:.0f} s "
        f"the car ahead brakes at {decel_mps2} m/s2 to a stop",
        category=Category.AEB,
        duration_s=CCRB_BRAKE_AT_S + ccrb_collision_time(speed, gap_m, decel_mps2) + TAIL_S,
        script=script,
        expects_obstacle=True,
    )


_NUMBER = r"(-?\d{1,6})"
_PATTERNS: list[tuple[str, re.Pattern[str], str]] = [
    ("ccrs-", re.compile(rf"ccrs-{_NUMBER}(?:-o{_NUMBER})?"), CCRS_FORM),
    ("ccrm-", re.compile(rf"ccrm-{_NUMBER}(?:-o{_NUMBER})?"), CCRM_FORM),
    ("ccrb-", re.compile(rf"ccrb-{_NUMBER}-{_NUMBER}(?:-{_NUMBER})?"), CCRB_FORM),
]


def _check_overlap(overlap: int, name: str, form: str) -> None:
    OVERLAP.check(overlap, name, form)
    if abs(overlap) < MIN_OVERLAP_PCT:
        raise ScenarioRangeError(
            f"scenario {name!r}: overlap {overlap} % is less than {MIN_OVERLAP_PCT} % either "
            f"way: the cars would miss each other ({form})"
        )


def _speed_and_overlap(
    speed_span: Span, form: str, build: Callable[[int, int], Scenario]
) -> Callable[[list[int | None], str], Scenario]:
    """The builder of a ``<family>-<kmh>[-o<overlap>]`` name (CCRs, CCRm)."""

    def build_named(values: list[int | None], name: str) -> Scenario:
        speed, overlap = values[0], values[1]
        assert speed is not None
        speed_span.check(speed, name, form)
        overlap = 100 if overlap is None else overlap
        _check_overlap(overlap, name, form)
        return build(speed, overlap)

    return build_named


def _build_ccrb(values: list[int | None], name: str) -> Scenario:
    gap, decel, speed = values[0], values[1], values[2]
    assert gap is not None
    assert decel is not None
    CCRB_GAP.check(gap, name, CCRB_FORM)
    CCRB_DECEL.check(decel, name, CCRB_FORM)
    speed = 50 if speed is None else speed
    CCRB_SPEED.check(speed, name, CCRB_FORM)
    return ccrb(gap, decel, speed)


_BUILDERS: dict[str, Callable[[list[int | None], str], Scenario]] = {
    CCRS_FORM: _speed_and_overlap(CCRS_SPEED, CCRS_FORM, ccrs),
    CCRM_FORM: _speed_and_overlap(CCRM_SPEED, CCRM_FORM, ccrm),
    CCRB_FORM: _build_ccrb,
}


def parse_car_to_car(name: str) -> Scenario | None:
    """The scenario a ``ccrs-``/``ccrm-``/``ccrb-`` name describes; ``None`` for other names.

    A name of one of these families that does not parse, or whose values lie outside the
    ranges above, raises :class:`ScenarioRangeError` saying which value and which range.
    """
    for prefix, pattern, form in _PATTERNS:
        if not name.startswith(prefix):
            continue
        match = pattern.fullmatch(name)
        if match is None:
            raise ScenarioRangeError(f"scenario {name!r} does not parse: expected {form}")
        values = [None if group is None else int(group) for group in match.groups()]
        return _BUILDERS[form](values, name)
    return None
