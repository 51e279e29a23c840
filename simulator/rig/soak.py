"""Soak run: a real agent against the demo drive, looped, sampled for leaks and growth.

:func:`run_soak` starts a private network namespace with a plaintext mosquitto, the agent
with every module that makes sense on a development machine (CAN reader, fast path in its
own process, telemetry, heartbeat, cloud link; :func:`~edge_agent.simulator.rig.agent.agent_config`)
and the simulator's ``demo-route`` closed loop, restarted whenever it ends. Every
``interval_s`` it samples, from ``/proc`` and ``health.json``: RSS of the agent and of each
child process, open file descriptors, bus queue depths, spool depth and the fast path's p99.

Verdicts compare the *end* (the average of the last 20 % of samples) with the *baseline*
(the average of the first 20 % of the samples taken after the warm-up: by default 20 % of
the run, at most five minutes). See
docs/reliability.md for the thresholds and a recorded run.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import fmean
from typing import Any

from edge_agent.bench.report import machine
from edge_agent.simulator.rig.agent import Agent, agent_config, demo_drive, namespace_broker
from edge_agent.simulator.rig.netns import multicast_namespace

RSS_GROWTH_LIMIT = 0.05
MAIN_RSS_TARGET_MB = 60.0
FD_SLACK = 2


@dataclass(frozen=True, slots=True)
class Sample:
    """One observation of the running agent."""

    t_s: float
    main_rss_kb: int
    children_rss_kb: dict[str, int]
    main_fds: int
    children_fds: int
    queued: dict[str, int]
    dropped: dict[str, int]
    spool_records: int
    spool_bytes: int
    fast_path_p99_ms: float | None
    decisions: int

    @property
    def total_rss_kb(self) -> int:
        """Agent plus children."""
        return self.main_rss_kb + sum(self.children_rss_kb.values())


def _status_kb(pid: int, field: str = "VmRSS") -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _fd_count(pid: int) -> int:
    try:
        return len(list(Path(f"/proc/{pid}/fd").iterdir()))
    except OSError:
        return 0


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


def children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (from /proc/*/stat parent ids)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: split after it.
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: list[int] = []
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        kids = [child for child, ppid in parents.items() if ppid == parent]
        found += kids
        frontier += kids
    return sorted(found)


def take_sample(agent: Agent, started: float) -> Sample:
    """Read /proc and the health file once."""
    health = agent.health()
    kids = children(agent.pid)
    fast = health.get("modules", {}).get("fast-path", {}).get("details", {})
    latency = fast.get("latency_ms", {})
    spool = health.get("spool", {}) or {}
    bus = health.get("bus", [])
    return Sample(
        t_s=round(time.monotonic() - started, 1),
        main_rss_kb=_status_kb(agent.pid),
        children_rss_kb={f"{_comm(kid)}[{kid}]": _status_kb(kid) for kid in kids},
        main_fds=_fd_count(agent.pid),
        children_fds=sum(_fd_count(kid) for kid in kids),
        queued={f"{s['name']} {s['topic_filter']}": int(s["queued"]) for s in bus},
        dropped={f"{s['name']} {s['topic_filter']}": int(s["dropped"]) for s in bus},
        spool_records=int(spool.get("records", 0)),
        spool_bytes=int(spool.get("bytes", 0)),
        fast_path_p99_ms=latency.get("p99_ms"),
        decisions=int(fast.get("decisions") or 0),
    )


def _mean(values: Sequence[float]) -> float:
    return round(fmean(values), 3) if values else 0.0


def _windows(samples: list[Sample], warmup_s: float) -> tuple[list[Sample], list[Sample]]:
    """(baseline, end): first 20 % after the warm-up, and the last 20 % of all samples."""
    settled = [s for s in samples if s.t_s >= warmup_s] or samples
    share = max(1, len(settled) // 5)
    return settled[:share], samples[-max(1, len(samples) // 5) :]


def _figure(
    samples: list[Sample], base: list[Sample], end: list[Sample], value: Callable[[Sample], float]
) -> dict[str, float]:
    return {
        "start": round(value(samples[0]), 3),
        "baseline": _mean([value(s) for s in base]),
        "end": _mean([value(s) for s in end]),
        "max": round(max(value(s) for s in samples), 3),
    }


def summarise(samples: list[Sample], warmup_s: float) -> dict[str, Any]:
    """Start/baseline/end/max figures and the verdicts (each with its reason)."""
    base, end = _windows(samples, warmup_s)
    mb = 1024.0
    figures = {
        "main_rss_mb": _figure(samples, base, end, lambda s: s.main_rss_kb / mb),
        "children_rss_mb": _figure(
            samples, base, end, lambda s: sum(s.children_rss_kb.values()) / mb
        ),
        "total_rss_mb": _figure(samples, base, end, lambda s: s.total_rss_kb / mb),
        "main_fds": _figure(samples, base, end, lambda s: s.main_fds),
        "children_fds": _figure(samples, base, end, lambda s: s.children_fds),
        "spool_records": _figure(samples, base, end, lambda s: s.spool_records),
        "fast_path_p99_ms": _figure(samples, base, end, lambda s: s.fast_path_p99_ms or 0.0),
    }
    names = sorted({name for s in samples for name in s.queued})
    queues = {
        name: {
            "baseline": _mean([s.queued.get(name, 0) for s in base]),
            "end": _mean([s.queued.get(name, 0) for s in end]),
            "max": max(s.queued.get(name, 0) for s in samples),
            "dropped": samples[-1].dropped.get(name, 0) - samples[0].dropped.get(name, 0),
        }
        for name in names
    }
    per_child = {name: round(kb / mb, 1) for name, kb in samples[-1].children_rss_kb.items()}
    total = figures["total_rss_mb"]
    rss_growth = (total["end"] - total["baseline"]) / total["baseline"] if total["baseline"] else 0
    main = figures["main_rss_mb"]
    main_growth = (main["end"] - main["baseline"]) / main["baseline"] if main["baseline"] else 0
    fds_base = max(s.main_fds + s.children_fds for s in base)
    fds_end = max(s.main_fds + s.children_fds for s in end)
    queue_growth = {
        name: q
        for name, q in queues.items()
        if q["end"] > max(1.5 * q["baseline"], q["baseline"] + 10.0)
    }
    p99 = figures["fast_path_p99_ms"]
    p99_stable = p99["end"] <= max(2.0 * p99["baseline"], p99["baseline"] + 2.0)
    spool = figures["spool_records"]
    verdicts: dict[str, dict[str, Any]] = {
        "rss_growth_under_5_percent": {
            "ok": rss_growth < RSS_GROWTH_LIMIT and main_growth < RSS_GROWTH_LIMIT,
            "total_growth": round(rss_growth, 4),
            "main_growth": round(main_growth, 4),
        },
        "no_fd_growth": {
            "ok": fds_end <= fds_base + FD_SLACK,
            "baseline": fds_base,
            "end": fds_end,
        },
        "no_queue_growth": {"ok": not queue_growth, "growing": sorted(queue_growth)},
        "no_spool_growth": {
            "ok": spool["end"] <= spool["baseline"] + 50,
            "baseline": spool["baseline"],
            "end": spool["end"],
        },
        "fast_path_p99_stable": {"ok": p99_stable and p99["end"] > 0, **p99},
        "main_rss_under_60_mb": {
            "ok": main["end"] < MAIN_RSS_TARGET_MB,
            "main_mb": main["end"],
            "children_mb": figures["children_rss_mb"]["end"],
            "sum_mb": total["end"],
        },
    }
    return {
        "samples": len(samples),
        "seconds": samples[-1].t_s,
        "warmup_s": warmup_s,
        "figures": figures,
        "children_rss_mb_at_end": per_child,
        "queues": queues,
        "decisions": samples[-1].decisions - samples[0].decisions,
        "series": {
            "columns": ["t_s", "main_rss_mb", "total_rss_mb", "fds", "queued", "spool", "p99_ms"],
            "rows": [
                [
                    s.t_s,
                    round(s.main_rss_kb / mb, 1),
                    round(s.total_rss_kb / mb, 1),
                    s.main_fds + s.children_fds,
                    sum(s.queued.values()),
                    s.spool_records,
                    s.fast_path_p99_ms,
                ]
                for s in samples
            ],
        },
        "verdicts": verdicts,
        "ok": all(v["ok"] for v in verdicts.values()),
    }


def run_soak(
    seconds: float,
    interval_s: float = 5.0,
    warmup_s: float | None = None,
    progress: Callable[[Sample], None] | None = None,
) -> dict[str, Any]:
    """Run the agent for ``seconds`` against the looped demo drive; return the summary."""
    # Measured (docs/reliability.md): the agent's RSS rises for about four minutes (buffers,
    # latency windows, SQLite and allocator caches filling) and is flat after that.
    warmup = warmup_s if warmup_s is not None else min(300.0, max(15.0, seconds * 0.2))
    samples: list[Sample] = []
    drives = 0
    with (
        multicast_namespace("ea-soak") as namespace,
        namespace_broker(namespace) as port,
        tempfile.TemporaryDirectory(prefix="edge-agent-soak-") as scratch,
    ):
        work = Path(scratch)
        agent = Agent(namespace, work, agent_config(work / "state", broker_port=port))
        vehicle: subprocess.Popen[bytes] | None = None
        agent.start()
        try:
            started = time.monotonic()
            next_sample = started
            while (now := time.monotonic()) - started < seconds:
                if not agent.alive():
                    raise RuntimeError(f"the agent died during the soak: {agent.log()}")
                if vehicle is None or vehicle.poll() is not None:
                    vehicle = subprocess.Popen(
                        demo_drive(namespace),
                        stdout=subprocess.DEVNULL,
                        stderr=(work / "vehicle.log").open("ab"),
                    )
                    drives += 1
                if now >= next_sample:
                    sample = take_sample(agent, started)
                    samples.append(sample)
                    if progress is not None:
                        progress(sample)
                    next_sample += interval_s
                time.sleep(min(0.5, max(0.0, next_sample - time.monotonic())))
        finally:
            if vehicle is not None and vehicle.poll() is None:
                vehicle.terminate()
                vehicle.wait(timeout=10)
            status = agent.stop()
    summary = summarise(samples, warmup)
    summary.update(drives_started=drives, agent_exit_status=status, machine=machine())
    return summary
