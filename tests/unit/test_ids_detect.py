"""The IDS detectors on synthetic traffic: clean stays quiet, each attack kind is flagged."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.modules.can_ids.alerts import AlertKind
from edge_agent.modules.can_ids.detect import Detector
from edge_agent.modules.can_ids.offline import scan, train
from edge_agent.modules.can_ids.profile import BusProfile
from fixtures.ids_traffic import PERIODS, Frame, clean_traffic


@pytest.fixture(scope="module")
def profile() -> BusProfile:
    learned, gaps = train(clean_traffic(60.0, seed=1))
    assert gaps == 0
    return learned


def kinds_after(frames: list[Frame], profile: BusProfile, start: float) -> list[AlertKind]:
    return [a.kind for a in scan(frames, profile).alerts if a.t >= start]


def first_alert(frames: list[Frame], profile: BusProfile, kind: AlertKind) -> float:
    return min(a.t for a in scan(frames, profile).alerts if a.kind is kind)


def test_profile_learns_periods_counter_and_constant_bits(profile: BusProfile) -> None:
    assert sorted(profile.periodic_ids) == sorted(PERIODS)
    for key, period in PERIODS.items():
        assert profile.ids[key].period_s == pytest.approx(period, rel=0.01)
        assert profile.ids[key].dlcs == [8]
        assert (profile.ids[key].constant_mask >> 8) & 0xFF == 0xFF  # byte 1 never moved
    assert profile.ids[0x100].counter == [56, 4, 16]  # low nibble of byte 7


def test_clean_traffic_of_another_drive_raises_nothing(profile: BusProfile) -> None:
    result = scan(clean_traffic(60.0, seed=2), profile)
    assert result.alerts == []
    assert result.frames > 0


def test_injection_at_twice_the_rate_is_flagged_at_once(profile: BusProfile) -> None:
    frames = clean_traffic(20.0, seed=3)
    start = 1010.0
    injected = [
        (t + 0.004, key, data, False) for t, key, data, _ in frames if key == 0x180 and t > start
    ]
    attacked = sorted(frames + injected, key=lambda f: f[0])
    first = min(f[0] for f in injected)
    assert first_alert(attacked, profile, AlertKind.INJECTION) - first < 0.1


def test_flooding_with_a_high_priority_id(profile: BusProfile) -> None:
    frames = clean_traffic(10.0, seed=4)
    flood = [(1005.0 + n / 4000, 0x000, bytes(8), False) for n in range(400)]
    attacked = sorted(frames + flood, key=lambda f: f[0])
    kinds = kinds_after(attacked, profile, 1005.0)
    assert AlertKind.FLOODING in kinds
    assert AlertKind.BUS_LOAD in kinds
    assert first_alert(attacked, profile, AlertKind.FLOODING) - 1005.0 < 0.1


def test_fuzzing_unknown_ids_and_moved_bits(profile: BusProfile) -> None:
    frames = clean_traffic(10.0, seed=5)
    fuzz = [(1005.0, 0x555, b"\x01\x02", False), (1005.5, 0x300, bytes([0, 0xA5] + [0] * 6), False)]
    attacked = sorted(frames + fuzz, key=lambda f: f[0])
    kinds = kinds_after(attacked, profile, 1005.0)
    assert AlertKind.UNKNOWN_ID in kinds
    assert AlertKind.PAYLOAD_BITS in kinds


def test_dlc_change(profile: BusProfile) -> None:
    frames = [
        (t, key, data[:4] if key == 0x300 and t > 1005.0 else data, error)
        for t, key, data, error in clean_traffic(10.0, seed=6)
    ]
    assert AlertKind.DLC_CHANGE in kinds_after(frames, profile, 1005.0)


def test_suspension_of_a_periodic_id(profile: BusProfile) -> None:
    frames = [f for f in clean_traffic(10.0, seed=7) if not (f[1] == 0x100 and 1004 < f[0] < 1006)]
    first = first_alert(frames, profile, AlertKind.SUSPENSION)
    assert 1004.0 < first < 1004.1


def test_masquerade_by_another_sender_clock(profile: BusProfile) -> None:
    frames = [f for f in clean_traffic(20.0, seed=8) if not (f[1] == 0x180 and f[0] > 1005.0)]
    # The impostor keeps the payload right but runs 2 % slow.
    impostor = [(1005.01 + n * 0.0204, 0x180, frames[1][2], False) for n in range(600)]
    attacked = sorted(frames + impostor, key=lambda f: f[0])
    assert AlertKind.MASQUERADE in kinds_after(attacked, profile, 1005.0)


def test_counter_that_repeats_is_flagged(profile: BusProfile) -> None:
    frames = clean_traffic(10.0, seed=9)
    replayed = [
        (t, key, bytes(data[:7]) + bytes([(data[7] + 5) & 0xF]), e)
        if key == 0x100 and 1005.0 < t < 1005.011
        else (t, key, data, e)
        for t, key, data, e in frames
    ]
    assert AlertKind.COUNTER in kinds_after(replayed, profile, 1005.0)


def test_time_going_backwards_and_gaps_rearm_instead_of_alerting(profile: BusProfile) -> None:
    first = clean_traffic(5.0, seed=10, start=1000.0)
    back = clean_traffic(5.0, seed=11, start=900.0)  # the log's clock jumped back
    later = clean_traffic(5.0, seed=12, start=2000.0)  # a gap of 1000 s
    result = scan(first + back + later, profile)
    assert result.alerts == []
    assert result.gaps == 2


def test_a_bus_without_periodic_traffic_runs_degraded() -> None:
    sparse = [(float(n), 0x200 + n % 3, bytes([n % 256]), False) for n in range(10)]
    learned, _ = train(sparse)
    assert learned.periodic_ids == []
    detector = Detector(learned)
    assert "timing checks off" in detector.degraded
    assert list(detector.observe(20.0, 0x201, b"\x01")) == []


def test_repeats_are_held_off(profile: BusProfile) -> None:
    detector = Detector(profile)
    raised = [detector.observe(1000.0 + n * 0.009, 0x777, b"", error=False) for n in range(100)]
    assert sum(len(r) for r in raised) == 1
    assert detector.suppressed > 0


frames_strategy = st.lists(
    st.tuples(
        st.floats(min_value=-1e6, max_value=1e9, allow_nan=False),
        st.sampled_from([0x000, 0x100, 0x180, 0x300, 0x7FF, 0x1FFFFFFF | (1 << 31)]),
        st.binary(max_size=64),
        st.booleans(),
    ),
    max_size=200,
)


@settings(max_examples=150, deadline=None)
@given(frames=frames_strategy)
def test_any_frame_sequence_is_taken_without_crashing(
    profile: BusProfile, frames: list[Frame]
) -> None:
    # Structural seed: start from real clean traffic, then anything at all.
    result = scan(clean_traffic(1.0, seed=13) + frames, profile)
    assert result.frames == len(frames) + len(clean_traffic(1.0, seed=13))


@settings(max_examples=50, deadline=None)
@given(frames=frames_strategy)
def test_learning_any_sequence_gives_a_profile_that_round_trips(frames: list[Frame]) -> None:
    from edge_agent.modules.can_ids.profile import dump_profile, parse_profile

    learned, _ = train(frames)
    assert parse_profile(dump_profile(learned)) == learned


def test_dbc_ranges_flag_values_outside_the_dbc_range(profile: BusProfile) -> None:
    from edge_agent.modules.can_ids.dbc_rules import load_dbc_rules
    from edge_agent.modules.can_ids.profile import dump_profile, parse_profile

    rules = load_dbc_rules("package:edge_agent.simulator/data/vehicle.dbc")
    with_dbc, _ = train(clean_traffic(60.0, seed=1), rules=rules)
    # The DBC's EgoMotionCounter (byte 6) does not count in this traffic: the nibble that does
    # (byte 7) is kept.
    assert with_dbc.ids[0x100].counter == [56, 4, 16]
    assert sum(len(item.ranges) for item in with_dbc.ids.values()) > 0
    assert parse_profile(dump_profile(with_dbc)) == with_dbc
    # The synthetic 0x180 carries 0x5Axx in bits 0..15: MotorSpeed 23,040 rpm and up, beyond
    # the DBC's 20,000.
    alerts = scan(clean_traffic(2.0, seed=14), with_dbc).alerts
    ranged = [a for a in alerts if a.kind is AlertKind.SIGNAL_RANGE]
    assert {a.can_id for a in ranged} == {0x180}
    assert "outside the DBC's -20000..20000" in ranged[0].detail
    assert scan(clean_traffic(2.0, seed=14), profile).alerts == []
