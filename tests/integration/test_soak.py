"""The soak run's CI variant: scripts/soak for a minute and a bit, figures and verdicts.

Asserted: the run reports its figures (RSS of the agent and of its children, descriptors,
queues, spool, fast-path p99), no descriptor growth, no bus queue growth, the fast path
decided throughout. RSS growth over about a minute is mostly warm-up noise, so it is held
only to a loose bound (25 %) here; the 5 % verdict belongs to the long run
(``scripts/soak --minutes 60``, docs/reliability.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SOAK = Path(__file__).resolve().parents[2] / "scripts" / "soak"


@pytest.mark.slow
def test_short_soak_reports_figures_without_fd_or_queue_growth() -> None:
    result = subprocess.run(
        [sys.executable, "-P", str(SOAK), "--minutes", "0.9", "--interval", "2", "--warmup", "15"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode == 2:
        pytest.skip(f"SKIPPED: {result.stderr.strip()}")
    summary = json.loads(result.stdout)
    figures = summary["figures"]
    for name in ("main_rss_mb", "children_rss_mb", "total_rss_mb", "main_fds", "spool_records"):
        assert {"start", "baseline", "end", "max"} <= set(figures[name]), name
    assert figures["children_rss_mb"]["end"] > 0, "the fast path's own process was not seen"
    assert summary["samples"] >= 20
    verdicts = summary["verdicts"]
    assert verdicts["no_fd_growth"]["ok"], verdicts["no_fd_growth"]
    assert verdicts["no_queue_growth"]["ok"], summary["queues"]
    assert verdicts["fast_path_p99_stable"]["end"] > 0
    assert summary["decisions"] > 1000
    assert verdicts["rss_growth_under_5_percent"]["total_growth"] < 0.25, verdicts
    assert summary["agent_exit_status"] == 0
