"""``edge-agent bench reconnect`` runs to the end against its private broker and ACL.

The figures are timings and are not asserted; what is: every run got its record through
(the PUBACK came), each variant ran, and the probe variant reconnected on a probe.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.modules.cloud_link.reconnect_bench import VARIANTS, measure
from fixtures.cloud import needs_mosquitto

pytestmark = needs_mosquitto


@pytest.mark.slow
async def test_the_reconnect_bench_gets_its_record_through_both_ways(tmp_path: Path) -> None:
    result = await measure(outage_s=1.0, runs=1, directory=tmp_path)
    for name in VARIANTS:
        assert len(result[name]["runs_s"]) == 1
        assert result[name]["runs_s"][0] > 0
    assert result["probe"]["probe_reconnects"] >= 1
    assert result["backoff_only"]["probes"] == 0
