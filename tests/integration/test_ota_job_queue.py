"""OTA jobs under a flood: a job the full queue turns away is refused by id, never lost.

A running agent with the real OTA module. The jobs are published on its jobs topic in one go,
without yielding to the event loop (what the cloud link does with a burst that arrived
together), so the installer's queue of ``JOB_QUEUE`` fills and the rest overflow: each of
those must get a ``queue-full`` refusal on ``ota/status`` and a line in the install log.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from edge_agent.config import validate_config
from edge_agent.modules.ota.module import JOB_QUEUE, OtaInstallerModule
from edge_agent.ota.state import InstallLog
from edge_agent.supervisor import Supervisor
from fixtures.supervised import running_supervisor
from fixtures.waiting import wait_until

EXTRA = 4


@pytest.fixture
async def agent(tmp_path: Path) -> AsyncIterator[Supervisor]:
    config = validate_config(
        {
            "agent": {"vehicle_id": "v-flood", "state_dir": str(tmp_path / "state")},
            "modules": {
                "ota": {
                    "config": {
                        "metadata_url": "http://127.0.0.1:9/metadata/",
                        "targets_url": "http://127.0.0.1:9/targets/",
                        "hardware_id": "bench-ecu",
                    }
                }
            },
        }
    )
    async with running_supervisor(config, ["ota"]) as supervisor:
        yield supervisor


async def test_jobs_beyond_the_queue_are_refused_queue_full_by_id(
    agent: Supervisor, tmp_path: Path
) -> None:
    supervisor = agent
    module = supervisor.runners["ota"].module
    assert isinstance(module, OtaInstallerModule)
    statuses = supervisor.bus.subscribe(module.config.status_topic, maxsize=1000)
    jobs = [f"flood-{n}" for n in range(JOB_QUEUE + EXTRA)]
    for job_id in jobs:  # no await in between: the installer takes none of them yet
        supervisor.bus.publish_nowait(
            module.config.jobs_topic,
            json.dumps({"id": job_id, "version": "9.9.9"}).encode(),
        )

    seen: dict[str, dict[str, Any]] = {}
    async with asyncio.timeout(30):
        while set(seen) != set(jobs):
            status = (await statuses.get()).payload
            if status.get("job_id") in jobs:
                seen.setdefault(status["job_id"], status)

    overflowed = [job_id for job_id in jobs if seen[job_id].get("code") == "queue-full"]
    assert overflowed == jobs[JOB_QUEUE:]  # the newest were dropped, each answered
    for job_id in overflowed:
        assert seen[job_id]["phase"] == "refused"
        assert repr(job_id) in seen[job_id]["reason"]
    assert module.dropped_jobs == EXTRA

    log = InstallLog(tmp_path / "state" / "ota" / "install.log")
    await wait_until(
        lambda: any(r.get("code") == "queue-full" for r in log.records()),
        timeout=10,
        what="a queue-full refusal in the install log",
    )
