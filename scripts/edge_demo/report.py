"""The end of the demo: a summary on the terminal and in summary.json, and a PNG of the drive."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edge_demo.cloud_watch import CloudView
from edge_demo.modes import CanMode
from edge_demo.timeline import Timeline

# start, end, peak spool records, drained after, cloud link online again after (seconds)
Outage = tuple[float, float, int, float | None, float | None]


def summarise(
    timeline: Timeline,
    cloud: CloudView,
    *,
    mode: CanMode,
    outage: Outage | None,
    agent_status: int | None,
    notes: list[str],
) -> dict[str, Any]:
    """The figures of the run, JSON-ready."""
    last = timeline.ticks[-1] if timeline.ticks else None
    fast = last.fast_path if last else {}
    latency = fast.get("latency_ms") if isinstance(fast.get("latency_ms"), dict) else {}
    samples = timeline.samples
    ttcs = [s["ttc_s"] for s in samples if s.get("ttc_s") is not None]
    return {
        "mode": mode.name,
        "can": {"interface": mode.interface, "channel": mode.channel},
        "fast_path_isolation": mode.fast_path_isolation,
        "seconds": round(last.wall - timeline.started, 1) if last else 0.0,
        "route_seconds": samples[-1]["t"] if samples else 0.0,
        "agent_exit_status": agent_status,
        "drive": timeline.result
        or {
            "partial": True,
            "collision": any(s["collision"] for s in samples),
            "min_ttc_s": min(ttcs) if ttcs else None,
            "max_speed_kmh": max((s["speed_kmh"] for s in samples), default=None),
        },
        "fast_path": {
            "decisions": fast.get("decisions"),
            "brake_frames": fast.get("brake_frames"),
            "latency_ms": latency,
            "fault": fast.get("fault"),
        },
        "spool_records_max": max((t.spool_records or 0 for t in timeline.ticks), default=0),
        "link_outage": None
        if outage is None
        else {
            "from_s": outage[0],
            "to_s": outage[1],
            "peak_spool_records": outage[2],
            "drained_after_s": outage[3],
            "online_after_s": outage[4],
        },
        "cloud": {
            "batches": cloud.batches,
            "samples": cloud.samples,
            "duplicates_dropped": cloud.duplicates,
            "events": cloud.events,
            "dtcs": [
                {k: dtc.get(k) for k in ("ecu", "code", "change", "description")}
                for dtc in cloud.dtcs
            ],
            "reported_states": cloud.reported,
            "standin": cloud.standin or None,
        },
        "moments": [{"at_s": round(at, 1), "what": text} for at, text in timeline.moments],
        "notes": notes,
    }


def _print(summary: dict[str, Any], files: list[Path]) -> None:
    drive = summary["drive"]
    fast = summary["fast_path"]
    latency = fast["latency_ms"] or {}
    print(
        f"demo summary ({summary['seconds']} s, mode {summary['mode']}, "
        f"fast path {summary['fast_path_isolation']}):"
    )
    if drive.get("partial"):
        print(
            f"  drive      stopped at route time {summary['route_seconds']} s; "
            f"collision: {'YES' if drive['collision'] else 'no'}"
        )
    else:
        print(
            f"  drive      collision: {'YES' if drive.get('collision') else 'no'}; "
            f"brake activations {drive.get('brake_activations')}; "
            f"minimum TTC {drive.get('min_ttc_s')} s; minimum gap {drive.get('min_gap_m')} m"
        )
    print(
        f"  fast path  {fast['decisions']} decisions, {fast['brake_frames']} brake frames; "
        f"latency p50 {latency.get('p50_ms')} ms, p99 {latency.get('p99_ms')} ms, "
        f"max {latency.get('max_ms')} ms"
    )
    outage = summary["link_outage"]
    if outage is None:
        print("  link       no link outage in this run (no cloud link, or the run ended before it)")
    else:
        drained = outage["drained_after_s"]
        print(
            f"  link       outage {outage['from_s']}-{outage['to_s']} s: spool peaked at "
            f"{outage['peak_spool_records']} records; "
            + (
                f"online again {outage['online_after_s']} s after the link came back; "
                if outage["online_after_s"] is not None
                else ""
            )
            + (
                f"drained {drained} s after the link came back"
                if drained is not None
                else "not drained by the end of the run"
            )
        )
    cloud = summary["cloud"]
    print(
        f"  cloud      {cloud['batches']} telemetry batches ({cloud['samples']} samples, "
        f"{cloud['duplicates_dropped']} duplicates dropped), {cloud['events']} events"
    )
    for dtc in cloud["dtcs"]:
        print(f"  dtc        {dtc['ecu']} {dtc['code']} {dtc['change']}: {dtc['description']}")
    standin = cloud["standin"]
    if standin:
        print(
            f"  stand-in   edge-agent-cloud stored {standin.get('batches')} batches, "
            f"{standin.get('events')} events, dropped {standin.get('duplicates')} duplicates, "
            f"rejected {standin.get('rejected')}; vehicle {standin.get('status')}"
        )
    print(f"  agent      exit status {summary['agent_exit_status']}")
    for note in summary["notes"]:
        print(f"  note       {note}")
    for path in files:
        print(f"  wrote      {path}")


def write_report(
    work: Path,
    timeline: Timeline,
    cloud: CloudView,
    *,
    mode: CanMode,
    outage: Outage | None,
    agent_status: int | None,
    notes: list[str],
) -> dict[str, Any]:
    """Print the summary, write summary.json and drive.png (when matplotlib is there)."""
    files = [work / "summary.json"]
    try:
        from edge_demo.plot import plot_drive
    except ImportError:
        notes.append("no plot: matplotlib is not installed (pip install -e '.[demo]')")
    else:
        files.append(plot_drive(work / "drive.png", timeline, outage))
    summary = summarise(
        timeline, cloud, mode=mode, outage=outage, agent_status=agent_status, notes=notes
    )
    (work / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    _print(summary, files)
    return summary
