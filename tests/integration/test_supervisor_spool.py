"""The supervisor's spool: a damaged file never holds the start; it is salvaged after READY.

In-process, as tests/integration/test_supervisor.py: a required module whose start the test
releases (``fixtures.misbehaving:Gated``) holds READY back for as long as the test needs.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from edge_agent.config import validate_config
from edge_agent.module_api import ModuleState
from edge_agent.spool import Spool, SpoolPolicy, SpoolPriority, SpoolStorage
from edge_agent.supervisor import Supervisor
from fixtures.waiting import wait_until


def wreck(path: Path, records: int) -> bytes:
    """A spool of ``records`` records with its last third cut off; its bytes."""
    with Spool(path, SpoolPolicy(reserve_bytes=0)) as spool:
        for _ in range(records):
            spool.append("old", bytes(1000), priority=SpoolPriority.TELEMETRY_HIGH)
    os.truncate(path, path.stat().st_size * 2 // 3)
    return path.read_bytes()


async def test_a_damaged_spool_is_salvaged_after_ready_not_before(tmp_path: Path) -> None:
    path = tmp_path / "spool" / "spool.db"
    damaged = wreck(path, 300)
    gated: dict[str, Any] = {"entry_point": "fixtures.misbehaving:Gated", "required": True}
    loaded = validate_config(
        {
            "agent": {
                "vehicle_id": "test-car",
                "state_dir": str(tmp_path),
                "health_interval_s": 0.05,
            },
            "modules": {"gated": gated},
        }
    )
    supervisor = Supervisor(loaded)
    task = asyncio.create_task(supervisor.run())
    try:
        await wait_until(
            lambda: supervisor.runners["gated"].state is ModuleState.STARTING,
            timeout=10,
            what="starting",
        )
        assert supervisor.spool is not None
        stats = await supervisor.spool.stats()
        # Opened at once, in memory; the salvage waits for READY.
        assert stats.storage is SpoolStorage.MEMORY
        assert stats.salvage_pending
        assert not supervisor.ready
        assert (await supervisor.spool.append("new", b"while starting")).stored
        assert path.read_bytes() == damaged
        assert not list(path.parent.glob("spool.db.damaged-*"))
        (tmp_path / "modules" / "gated" / "release").write_text("")
        await wait_until(lambda: supervisor.ready, timeout=10, what="READY")
        await wait_until(
            lambda: supervisor.spool_stats.get("storage") == "disk",
            timeout=30,
            what="salvaged, on disk",
        )
        stats = await supervisor.spool.stats()
        assert (stats.salvaged_files, stats.damaged_files, stats.salvage_pending) == (1, 1, False)
        streams = [record.stream for record in await supervisor.spool.lease(1000)]
        assert 150 < streams.count("old") < 300
        assert streams[-1] == "new"
    finally:
        supervisor.request_stop("test")
        await asyncio.wait_for(task, 10)
