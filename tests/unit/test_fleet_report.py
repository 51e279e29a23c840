"""Pure parts of the fleet bench: shares, offline windows, the plan's round trip, latency."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.fleet.generator import LoadPlan, count_loop_reports, split
from edge_agent.fleet.report import latency_figures, percentile
from edge_agent.fleet.traffic import StreamProfile, TrafficProfile
from edge_agent.spool import SpoolPriority

PROFILE = TrafficProfile(
    "test", 60.0, (StreamProfile("motion", SpoolPriority.TELEMETRY_HIGH, 30.0, (b"a", b"bc")),)
)


def plan(**options: object) -> LoadPlan:
    settings: dict[str, object] = {
        "addresses": [("127.0.0.1", 1883)],
        "ca_file": "ca.pem",
        "cert_dir": "certs",
        "spool_dir": "spools",
        "profile": PROFILE,
        "shares": split([f"v{i}" for i in range(10)], 3),
        "duration_s": 100.0,
    }
    settings.update(options)
    return LoadPlan(**settings)  # type: ignore[arg-type]


@given(st.lists(st.text(min_size=1, max_size=5), unique=True, max_size=50), st.integers(1, 9))
def test_split_keeps_every_vehicle_once_in_balanced_shares(ids: list[str], processes: int) -> None:
    shares = split(ids, processes)
    assert sorted(v for share in shares for v in share) == sorted(ids)
    assert len(shares) == max(1, min(processes, len(ids)))
    assert max(map(len, shares)) - min(map(len, shares)) <= 1


def test_plan_round_trips_through_json() -> None:
    original = plan(link={"keepalive_s": 2}, offline_share=0.3)
    again = LoadPlan.from_json(original.to_json())
    assert again == original
    assert again.profile.bytes_per_hour == pytest.approx(1.5 * 3600 / 30)


def test_offline_windows_are_drawn_by_seed_inside_the_run() -> None:
    everyone = plan(offline_share=1.0, offline_s=10.0)
    for vid in (v for share in everyone.shares for v in share):
        [(start, length)] = everyone.offline_windows(vid)
        assert length == 10.0
        assert start >= 0
        assert start + length <= everyone.duration_s
        assert everyone.offline_windows(vid) == [(start, length)]
    assert plan(offline_share=0.0).offline_windows("v1") == []


@given(st.lists(st.floats(-1e6, 1e6), min_size=2, max_size=200), st.sampled_from([0.5, 0.99]))
def test_percentile_lies_within_the_values(values: list[float], share: float) -> None:
    result = percentile(values, share)
    assert result is not None
    assert min(values) <= result <= max(values)


def test_percentile_of_nothing_and_of_one() -> None:
    assert percentile([], 0.5) is None
    assert percentile([3.0], 0.99) == 3.0
    assert percentile([1.0, 2.0, 3.0], 0.5) == 2.0


def test_latency_counts_batches_published_once_and_written() -> None:
    # (stream, seq, id, sends, first_sent, last_sent, acked_at)
    acked = {
        ("v", "a"): ["s", 1, "a", 1, 100.0, 100.0, 100.1],
        ("v", "b"): ["s", 2, "b", 2, 101.0, 105.0, 105.1],  # re-sent: no single send time
        ("v", "c"): ["s", 3, "c", 1, 102.0, 102.0, 102.1],
        ("v", "d"): ["s", 4, "d", 1, 103.0, 103.0, 103.1],  # acked, no row: not a latency
    }
    rows = {
        ("v", "a"): (100.010, 100.004),
        ("v", "b"): (101.5, 101.4),
        ("v", "c"): (102.030, 102.01),
    }
    figures = latency_figures(acked, rows)
    assert figures["batches"] == 2
    assert figures["resent"] == 1
    assert figures["max_ms"] == pytest.approx(30.0)
    window = latency_figures(acked, rows, window=(101.5, 200.0))
    assert window["batches"] == 1
    assert window["p50_ms"] == pytest.approx(30.0)


def test_cpu_meter_counts_our_own_process() -> None:
    import os

    from edge_agent.fleet.cpu import CpuMeter, pids_running, process_cpu_s

    meter = CpuMeter()
    me = [os.getpid()]
    meter.sample("me", me)
    meter.tick()
    before = process_cpu_s(os.getpid())
    assert before is not None
    while (now := process_cpu_s(os.getpid())) is not None and now[1] - before[1] < 0.05:
        sum(range(10_000))  # burn a little CPU
    meter.sample("me", me)
    meter.tick()
    assert meter.used_s("me") >= 0.05
    [point] = meter.series(every_s=0.0)
    assert float(point["me"]) > 0  # type: ignore[arg-type]
    report = meter.report()
    assert report["groups"]["me"]["cpu_s"] >= 0.05  # type: ignore[index]
    own = [a for a in Path("/proc/self/cmdline").read_bytes().split(b"\0") if a][-1]
    assert os.getpid() in pids_running(own.decode(errors="replace"))  # any runner's process


def test_a_generator_counts_what_reaches_its_loops_exception_handler() -> None:
    loop = asyncio.new_event_loop()
    try:
        reports = count_loop_reports(loop)
        for _ in range(2):
            unread = loop.create_future()
            unread.set_exception(ConnectionError("cut"))
            del unread
        gc.collect()
        loop.call_soon(lambda: 1 / 0)
        loop.run_until_complete(asyncio.sleep(0.01))
    finally:
        loop.close()
    assert dict(reports) == {
        "Future exception was never retrieved (ConnectionError)": 2,
        "Exception in callback (ZeroDivisionError)": 1,
    }
