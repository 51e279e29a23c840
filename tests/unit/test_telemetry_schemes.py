"""Collection schemes and condition captures, driven by sample timestamps (no clock)."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from edge_agent.modules.telemetry.batch import Sample
from edge_agent.modules.telemetry.capture import Capture
from edge_agent.modules.telemetry.config import CaptureRule, Condition, SignalRule
from edge_agent.modules.telemetry.schemes import Collector


def kept(rule: SignalRule, readings: list[tuple[float, float]]) -> list[tuple[float, float]]:
    collector = Collector(rule)
    return [(t, v) for t, v in readings if collector.offer(t, v)]


def test_all_keeps_everything() -> None:
    readings = [(i * 0.01, float(i)) for i in range(50)]
    assert kept(SignalRule(signal="s"), readings) == readings


def test_periodic_keeps_one_value_per_period() -> None:
    readings = [(i * 0.01, float(i)) for i in range(100)]  # 100 Hz for 1 s
    result = kept(SignalRule(signal="s", scheme="periodic", period_s=0.1), readings)
    assert len(result) == 10
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(result)]
    assert all(gap >= 0.1 - 1e-9 for gap in gaps)


def test_on_change_respects_the_deadband() -> None:
    values = [10.0, 10.2, 10.4, 10.6, 9.9, 9.9, 12.0]
    readings = [(float(i), v) for i, v in enumerate(values)]
    result = kept(SignalRule(signal="s", scheme="on-change", deadband=0.5), readings)
    assert [v for _, v in result] == [10.0, 10.6, 9.9, 12.0]


def test_on_change_heartbeat_keeps_a_steady_signal_alive() -> None:
    readings = [(i * 1.0, 5.0) for i in range(31)]
    rule = SignalRule(signal="s", scheme="on-change", deadband=0.1, max_interval_s=10.0)
    assert [t for t, _ in kept(rule, readings)] == [0.0, 10.0, 20.0, 30.0]


def test_on_change_for_text_is_any_change() -> None:
    collector = Collector(SignalRule(signal="gear", scheme="on-change", deadband=100))
    assert [collector.offer(float(i), v) for i, v in enumerate("PPRRDDP")] == [
        True,
        False,
        True,
        False,
        True,
        False,
        True,
    ]


@given(
    st.lists(st.floats(min_value=-1e6, max_value=1e6), min_size=1, max_size=200),
    st.floats(min_value=0, max_value=100),
)
def test_on_change_never_keeps_a_value_within_the_deadband_of_the_last_kept(
    values: list[float], deadband: float
) -> None:
    result = kept(
        SignalRule(signal="s", scheme="on-change", deadband=deadband),
        [(float(i), v) for i, v in enumerate(values)],
    )
    assert result[0][1] == values[0]
    for (_, previous), (_, current) in itertools.pairwise(result):
        assert abs(current - previous) > deadband


def hard_braking(pre: float = 10.0, post: float = 5.0) -> Capture:
    return Capture(
        CaptureRule(
            name="hard-braking",
            stream="events-capture",
            when=Condition(signal="accel", op="<", value=-4.0),
            signals=["speed", "accel"],
            pre_s=pre,
            post_s=post,
        )
    )


def drive(capture: Capture, brake_at: float, until: float) -> list[list[Sample]]:
    finished = []
    t = 0.0
    while t <= until:
        accel = -6.0 if brake_at <= t < brake_at + 1.0 else 0.5
        for sample in (Sample("speed", t, 1e9 + t, 20.0), Sample("accel", t, 1e9 + t, accel)):
            done = capture.observe(sample)
            if done:
                finished.append(done)
        t = round(t + 0.1, 6)
    return finished


def test_capture_keeps_pre_and_post_trigger_windows() -> None:
    capture = hard_braking(pre=10.0, post=5.0)
    finished = drive(capture, brake_at=30.0, until=60.0)
    assert len(finished) == 1
    times = [s.monotonic for s in finished[0]]
    assert min(times) >= 20.0 - 1e-9
    assert min(times) <= 20.1
    assert max(times) <= 35.0 + 1e-9
    assert max(times) >= 34.9
    assert {s.signal for s in finished[0]} == {"speed", "accel"}


def test_capture_triggers_on_the_edge_not_while_the_condition_holds() -> None:
    capture = hard_braking(pre=1.0, post=0.5)
    finished = drive(capture, brake_at=5.0, until=20.0)
    assert len(finished) == 1
    assert capture.triggered == 1


def test_overlapping_trigger_is_counted_not_nested() -> None:
    capture = hard_braking(pre=1.0, post=5.0)
    assert capture.trigger(10.0)
    assert not capture.trigger(11.0)
    assert capture.overlapped == 1


def test_ring_holds_only_the_pre_trigger_window() -> None:
    # Regression (soak run): the ring used to keep max_samples (50,000) samples whatever
    # pre_s was, ~8 MB of samples no capture could ever use.
    rule = CaptureRule(name="c", stream="s", signals=["x"], pre_s=2.0)
    capture = Capture(rule)
    for i in range(10_000):
        capture.observe(Sample("x", i / 100, i / 100, i))
    times = [s.monotonic for s in capture.ring]
    assert len(times) == 201
    assert times[0] == 97.99
    assert times[-1] == 99.99
    capture.trigger(99.99)
    assert capture.recording is not None
    assert len(capture.recording) == 201


def test_ring_buffer_is_bounded() -> None:
    rule = CaptureRule(name="c", stream="s", signals=["x"], pre_s=600, max_samples=100)
    capture = Capture(rule)
    for i in range(1000):
        capture.observe(Sample("x", float(i), float(i), i))
    assert len(capture.ring) == 100
