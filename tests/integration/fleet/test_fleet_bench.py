"""``fleet-bench`` end to end, small: 20 vehicles, 2 workers, 3 NATS nodes, one node and one
worker SIGKILLed mid-run and restarted. Every batch a vehicle got a PUBACK for is a row
(compared by id), no row is there twice (by SQL), and the report says what was killed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.fleet.bench import BenchOptions, run_bench
from edge_agent.fleet.bench_cli import BAD_INPUT
from edge_agent.fleet.cluster import nats_server_binary
from edge_agent.simulator.cloud import main as cloud_main
from fixtures.fleet import ADMIN_DSN, NATS_PY_RECONNECT_LEAK
from fixtures.real_parts import missing

pytestmark = NATS_PY_RECONNECT_LEAK


@pytest.mark.slow
async def test_small_bench_loses_nothing_acked_and_doubles_no_row(tmp_path: Path) -> None:
    if nats_server_binary() is None:
        missing("nats-server is not installed (scripts/system-deps nats-server)")
    options = BenchOptions(
        vehicles=20,
        workers=2,
        nodes=3,
        minutes=0.3,
        profile_drive_s=60.0,
        processes=2,
        speedup=20.0,  # a batch per vehicle and stream every 1.5 to 3 s
        batch_format=3,  # catalogues first, as the telemetry module does
        admin_dsn=ADMIN_DSN,
        workdir=tmp_path,
        offline_share=0.2,
        drain_timeout_s=60.0,
    )
    result = await run_bench(options)
    assert result["nodes_killed"] == 1
    assert result["workers_killed"] == 1
    assert result["vehicles"] == 20
    assert result["acked"] > 0
    assert result["unacked"] == 0, result  # every vehicle drained its spool
    assert result["lost"] == 0, result["lost_examples"]
    assert result["duplicate_rows"] == 0
    assert result["written"] >= result["acked"]
    assert result["tables"]["parked"] == 0
    assert result["pipeline"]["drained"]
    assert result["p50_ms"] is not None
    assert result["p99_ms"] is not None
    assert result["offline_windows"] >= 1
    assert result["loop_reports"] == {}  # no unread link error, no failed loop callback


def test_impossible_options_are_one_line_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert cloud_main(["fleet-bench", "--vehicles", "0"]) == BAD_INPUT
    assert cloud_main(["fleet-bench", "--nats", "nats://127.0.0.1:1"]) == BAD_INPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == (
        "edge-agent-cloud fleet-bench: --vehicles, --nodes and --processes must be at least 1, "
        "--workers 0+"
    )
    assert err[1].startswith("edge-agent-cloud fleet-bench: --nats needs --mqtt")
