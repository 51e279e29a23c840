"""The reported state's rate limit runs on the module's clock: it holds, then releases.

Real parts: the in-process bus carries the health snapshots, the outbox appends to a real
SQLite spool. Time moves only when the test advances the manual clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from edge_agent.agent_topics import HEALTH_TOPIC
from edge_agent.bus import Bus
from edge_agent.clock import ManualClock
from edge_agent.modules.cloud_link.outbox import Outbox
from edge_agent.modules.cloud_link.state import StateReporter
from edge_agent.modules.cloud_link.topics import STATE_REPORTED
from edge_agent.spool import AsyncSpool
from fixtures.waiting import wait_until

MIN_INTERVAL_S = 30.0


def snapshot(state: str) -> dict[str, Any]:
    """A supervisor health snapshot with one module in ``state``."""
    return {
        "agent": {"state": "running", "ready": True},
        "modules": {"heartbeat": {"version": "1", "state": state, "ok": True}},
    }


@pytest.fixture
async def spool(tmp_path: Path) -> AsyncIterator[AsyncSpool]:
    opened = await AsyncSpool.open(tmp_path / "spool.db")
    yield opened
    await opened.close()


async def reports_spooled(spool: AsyncSpool) -> int:
    lease = await spool.lease(100)
    await spool.release(record.id for record in lease)
    return sum(record.stream == STATE_REPORTED for record in lease)


async def test_health_changes_are_reported_at_most_once_per_interval(
    spool: AsyncSpool, tmp_path: Path, manual_clock: ManualClock
) -> None:
    bus = Bus()
    reporter = StateReporter(
        bus=bus,
        outbox=Outbox(spool),
        clock=manual_clock,
        vehicle_id="veh-1",
        module_name="cloud-link",
        state_dir=tmp_path,
        link_summary=dict,
        apply_timeout_s=1.0,
        min_interval_s=MIN_INTERVAL_S,
    )
    stop = reporter.listen()
    try:

        async def health(state: str) -> None:
            """Publish a snapshot and wait until the reporter has taken it in."""
            await bus.publish(HEALTH_TOPIC, snapshot(state))
            await wait_until(
                lambda: reporter.document()["modules"].get("heartbeat", {}).get("state") == state,
                what=f"the reporter to see heartbeat {state}",
            )

        await reporter.report()  # as on connect: the interval starts now
        assert reporter.published == 1

        await health("stopped")  # a change inside the interval: held back
        manual_clock.advance(MIN_INTERVAL_S - 1.0)
        await health("failed")  # still inside the interval
        assert reporter.published == 1

        manual_clock.advance(1.0)  # the interval is over: the next change goes out
        await health("running")
        await wait_until(lambda: reporter.published == 2, what="the second reported state")
        assert reporter.document()["reported_at"] == manual_clock.wall()

        await health("stopped")  # the interval started again with that report
        assert reporter.published == 2
        assert await reports_spooled(spool) == 2
    finally:
        for unsubscribe in stop:
            unsubscribe()
        await bus.close()
