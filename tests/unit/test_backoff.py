"""Retry pacing: capped exponential backoff with jitter, and the sliding failure window."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.backoff import Backoff, FailureWindow


def test_ceiling_doubles_from_initial_and_caps_at_maximum() -> None:
    backoff = Backoff(initial=0.5, maximum=10.0)
    assert [backoff.ceiling(n) for n in range(1, 8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_attempts_below_one_count_as_the_first() -> None:
    backoff = Backoff(initial=0.5, maximum=10.0)
    assert backoff.ceiling(0) == backoff.ceiling(-3) == 0.5


def test_huge_attempt_numbers_stay_at_the_cap_without_overflow() -> None:
    backoff = Backoff(initial=0.01, maximum=30.0)
    assert backoff.ceiling(10**9) == 30.0


def test_without_jitter_the_delay_is_the_ceiling() -> None:
    backoff = Backoff(initial=1.0, maximum=60.0, jitter=0.0)
    assert [backoff.delay(n) for n in (1, 2, 3)] == [1.0, 2.0, 4.0]


@given(
    initial=st.floats(0.001, 10.0),
    factor=st.floats(1.0, 100.0),
    attempt=st.integers(1, 200),
    jitter=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**32),
)
def test_jittered_delay_stays_within_its_band(
    initial: float, factor: float, attempt: int, jitter: float, seed: int
) -> None:
    backoff = Backoff(initial, initial * factor, jitter=jitter, rng=random.Random(seed))
    ceiling = backoff.ceiling(attempt)
    assert ceiling <= backoff.maximum
    delay = backoff.delay(attempt)
    assert ceiling * (1 - jitter) - 1e-12 <= delay <= ceiling


@given(initial=st.floats(0.001, 10.0), factor=st.floats(1.0, 1000.0), attempt=st.integers(1, 100))
def test_ceiling_never_shrinks_with_more_attempts(
    initial: float, factor: float, attempt: int
) -> None:
    backoff = Backoff(initial, initial * factor)
    assert backoff.ceiling(attempt) <= backoff.ceiling(attempt + 1) <= backoff.maximum


def test_jitter_actually_spreads_delays() -> None:
    backoff = Backoff(initial=1.0, maximum=1.0, jitter=0.5, rng=random.Random(7))
    delays = {backoff.delay(1) for _ in range(50)}
    assert len(delays) > 40
    assert min(delays) < 0.6
    assert max(delays) > 0.9


def test_a_seeded_rng_reproduces_the_same_delays() -> None:
    first = Backoff(0.1, 5.0, rng=random.Random(1234))
    second = Backoff(0.1, 5.0, rng=random.Random(1234))
    other = Backoff(0.1, 5.0, rng=random.Random(4321))
    sequence = [first.delay(n) for n in range(1, 12)]
    assert sequence == [second.delay(n) for n in range(1, 12)]
    assert sequence != [other.delay(n) for n in range(1, 12)]


def test_failure_window_counts_only_failures_inside_the_window() -> None:
    window = FailureWindow(window_s=10.0, limit=3)
    assert window.record(100.0) == 1
    assert window.record(105.0) == 2
    assert not window.exceeded()
    # 100.0 is 10.5 s old now: it has left the window.
    assert window.record(110.5) == 2
    assert not window.exceeded()
    assert window.record(111.0) == 3
    assert window.exceeded()


def test_failure_window_edge_is_inclusive() -> None:
    window = FailureWindow(window_s=10.0, limit=5)
    window.record(0.0)
    assert window.record(10.0) == 2  # exactly window_s old still counts


def test_failures_spread_wider_than_the_window_never_exceed_it() -> None:
    window = FailureWindow(window_s=1.0, limit=2)
    for second in range(20):
        assert window.record(float(second * 2)) == 1
    assert not window.exceeded()


@pytest.mark.parametrize("limit", [1, 2, 5])
def test_failure_window_holds_at_most_limit_entries(limit: int) -> None:
    window = FailureWindow(window_s=1000.0, limit=limit)
    counts = [window.record(float(n)) for n in range(limit + 3)]
    assert counts == [*range(1, limit + 1), limit, limit, limit]
    assert window.exceeded()
