"""The manual clock: time moves only when advanced, and sleepers wake in deadline order."""

from __future__ import annotations

import asyncio

import pytest

from edge_agent.clock import Clock, ManualClock, SystemClock
from fixtures.clock import wake_next_sleeper
from fixtures.waiting import wait_until


def test_both_clocks_satisfy_the_clock_protocol() -> None:
    clocks: list[Clock] = [SystemClock(), ManualClock()]
    assert all(clock.monotonic() > 0 and clock.wall() > 0 for clock in clocks)


def test_time_moves_only_when_advanced() -> None:
    clock = ManualClock(monotonic=50.0, wall=1_000.0)
    assert (clock.monotonic(), clock.wall()) == (50.0, 1_000.0)
    clock.advance(2.5)
    assert (clock.monotonic(), clock.wall()) == (52.5, 1_002.5)
    clock.set_wall(900.0)  # NTP stepped the wall clock back
    assert (clock.monotonic(), clock.wall()) == (52.5, 900.0)
    with pytest.raises(ValueError, match="cannot go back"):
        clock.advance(-1.0)
    with pytest.raises(ValueError, match="cannot go back"):
        clock.advance_to(10.0)


async def test_a_sleeper_wakes_only_once_its_time_has_come(manual_clock: ManualClock) -> None:
    sleeper = asyncio.create_task(manual_clock.sleep(5.0))
    await wait_until(lambda: manual_clock.sleepers == 1, what="the task asleep")
    assert manual_clock.advance(4.999) == 0
    assert not sleeper.done()
    assert manual_clock.advance(0.001) == 1
    await asyncio.wait_for(sleeper, 5)
    assert manual_clock.sleepers == 0
    assert manual_clock.next_wake() is None


async def test_sleepers_wake_in_deadline_order(manual_clock: ManualClock) -> None:
    woke: list[str] = []

    async def nap(name: str, seconds: float) -> None:
        await manual_clock.sleep(seconds)
        woke.append(name)

    naps = [asyncio.create_task(nap(n, s)) for n, s in [("long", 3.0), ("short", 1.0)]]
    await wait_until(lambda: manual_clock.sleepers == 2, what="both tasks asleep")
    assert await wake_next_sleeper(manual_clock, what="the short nap") == 1.0
    await wait_until(lambda: woke == ["short"], what="the short nap to end")
    assert manual_clock.next_wake() == manual_clock.monotonic() + 2.0
    assert manual_clock.advance(10.0) == 1
    await asyncio.gather(*naps)
    assert woke == ["short", "long"]


async def test_a_cancelled_sleep_is_forgotten(manual_clock: ManualClock) -> None:
    sleeper = asyncio.create_task(manual_clock.sleep(1.0))
    await wait_until(lambda: manual_clock.sleepers == 1, what="the task asleep")
    sleeper.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sleeper
    assert manual_clock.sleepers == 0
    assert manual_clock.next_wake() is None
    assert manual_clock.advance(5.0) == 0


async def test_a_zero_sleep_only_yields(manual_clock: ManualClock) -> None:
    await asyncio.wait_for(manual_clock.sleep(0), 5)
    await asyncio.wait_for(manual_clock.sleep(-1.0), 5)
    assert manual_clock.monotonic() == 1000.0
