"""``edge-agent bench ids``: detection rate per attack kind, time to detect, false alerts, speed.

Figures are measured, not claimed: the IDS learns the simulator's standard drive (one seed),
then scans other seeds of it, clean (false alerts per hour) and with each attack kind added
by the log mutator with labels (:mod:`edge_agent.simulator.attacks`). Every recorded drive
found under ``--log`` (a file or a folder of candump ``.log``/``.asc``/``.blf``; default the
shared data folder, ``$EDGE_AGENT_SHARED_DATA``) is split in two: trained on its first half,
scanned on its second. Throughput is the detectors' frames/s
next to the CAN reader's own ingest rate (``bench ingest``), measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from pathlib import Path
from typing import Any

import can

from edge_agent.bench.report import machine
from edge_agent.can.logs import LogFormatError, LogStats, log_kind
from edge_agent.modules.can_ids.alerts import Alert, AlertKind
from edge_agent.modules.can_ids.detect import Detector
from edge_agent.modules.can_ids.offline import frame_of, log_frames, scan, train
from edge_agent.modules.can_ids.profile import BusProfile, id_text
from edge_agent.simulator.attacks import (
    DURATION_S,
    MARGIN_S,
    AttackKind,
    AttackLabel,
    Frame,
    mutate,
)
from edge_agent.simulator.can_io import SimulatorSession
from edge_agent.simulator.runner import RECORDING_EPOCH
from edge_agent.simulator.scenarios import get_scenario

TARGET_S = 0.1
GRACE_S = 1.0
"""An alert up to this long after a window's end still counts for it (silence is seen late)."""
TAIL_S = 4.0
"""Alerts on the attacked id this long after a window are its tail, not false alerts: the
sender-clock check spans 32 frames, so a window of them can straddle the attack's end."""
RECEIVE_JITTER_S = 0.0001
RECORDING_WINDOWS = 10
"""Attack windows per kind on the scanned half of a recording (fewer if it is short)."""
VEHICLE_DBC = "package:edge_agent.simulator/data/vehicle.dbc"
SHARED_DATA_ENV = "EDGE_AGENT_SHARED_DATA"
"""Where the project's shared recordings are (never copied into the repository)."""

# Which alert kinds count as catching which attack (docs/ids.md explains the choice).
ACCEPTED: dict[AttackKind, frozenset[AlertKind]] = {
    AttackKind.INJECTION: frozenset({AlertKind.INJECTION, AlertKind.COUNTER}),
    AttackKind.FLOODING: frozenset({AlertKind.FLOODING, AlertKind.BUS_LOAD}),
    AttackKind.FUZZING: frozenset(
        {AlertKind.UNKNOWN_ID, AlertKind.PAYLOAD_BITS, AlertKind.DLC_CHANGE}
    ),
    AttackKind.DLC_CHANGE: frozenset({AlertKind.DLC_CHANGE}),
    AttackKind.SUSPENSION: frozenset({AlertKind.SUSPENSION}),
    AttackKind.MASQUERADE: frozenset(
        {AlertKind.MASQUERADE, AlertKind.INJECTION, AlertKind.COUNTER, AlertKind.SUSPENSION}
    ),
    AttackKind.SPOOFING: frozenset(
        {AlertKind.COUNTER, AlertKind.CHECKSUM, AlertKind.PAYLOAD_BITS, AlertKind.SIGNAL_RANGE}
    ),
}


def simulated_drive(seed: int, jitter_s: float = RECEIVE_JITTER_S) -> list[Frame]:
    """The standard drive of ``seed`` as a receiver would stamp it (Gaussian receive jitter)."""
    frames: list[Frame] = []
    rng = random.Random(f"{seed}-receive")

    def take(message: Any) -> None:
        stamp = float(message.timestamp) + (rng.gauss(0.0, jitter_s) if jitter_s else 0.0)
        frames.append((stamp, message.arbitration_id, bytes(message.data), False))

    SimulatorSession(
        get_scenario("standard-drive"), None, seed=seed, frame_sink=take, epoch=RECORDING_EPOCH
    ).run()
    return frames


def score(
    alerts: list[Alert],
    labels: list[AttackLabel],
    accepted: frozenset[AlertKind],
    caught_by: dict[str, int] | None = None,
) -> tuple[list[float | None], int]:
    """Time to detect per window (None: missed) and the alerts that match no window.

    ``caught_by`` counts, per alert kind, the windows whose first accepted alert it was.
    """
    delays: list[float | None] = []
    claimed: set[int] = set()
    for label in labels:
        delay: float | None = None
        for index, alert in enumerate(alerts):
            # An alert on another id than the attacked one is false even inside a window.
            same_id = label.can_id is None or alert.can_id in (None, label.can_id)
            if not same_id:
                continue
            if label.start_s <= alert.t <= label.end_s + TAIL_S:
                claimed.add(index)
            inside = label.start_s <= alert.t <= label.end_s + GRACE_S
            if inside and alert.kind in accepted and delay is None:
                delay = alert.t - label.start_s
                if caught_by is not None:
                    caught_by[alert.kind.value] = caught_by.get(alert.kind.value, 0) + 1
        delays.append(delay)
    return delays, len(alerts) - len(claimed)


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def margin_for(drive: list[Frame]) -> float:
    """Clean traffic kept before the first and after the last window (seconds).

    5 s, less on a short drive: a tenth of it, at least 0.5 s, so a recording of some ten
    seconds still takes a window.
    """
    span = drive[-1][0] - drive[0][0] if drive else 0.0
    return min(MARGIN_S, max(0.5, 0.1 * span))


def windows_that_fit(drive: list[Frame], kind: AttackKind, wanted: int) -> int:
    """How many of ``wanted`` windows of ``kind`` the mutator can place on ``drive``."""
    room = drive[-1][0] - drive[0][0] - 2 * margin_for(drive) if drive else 0.0
    return max(1, min(wanted, int((room - 1e-3) / (DURATION_S[kind] + 2.0))))


def protected_ids(profile: BusProfile) -> list[int]:
    """Periodic ids with a learned counter or checksum: what a spoofing attack is scored on."""
    return sorted(
        key
        for key, item in profile.ids.items()
        if item.periodic and (item.counter is not None or item.checksum is not None)
    )


def attack_figures(
    profile: BusProfile, drives: list[list[Frame]], windows: int, *, fit: bool = False
) -> dict[str, Any]:
    """Per attack kind: windows, detection rate, share within 100 ms, delays, stray alerts.

    Spoofing is scored on the ids with a counter or checksum only (timing and content are
    otherwise the genuine ECU's: nothing can tell); a kind that cannot be applied (a drive too
    short for the windows, no periodic id) is reported with the reason.
    """
    figures: dict[str, Any] = {}
    for kind in AttackKind:
        delays: list[float | None] = []
        stray = 0
        caught_by: dict[str, int] = {}
        targets = protected_ids(profile) if kind is AttackKind.SPOOFING else None
        try:
            for number, drive in enumerate(drives):
                count = windows_that_fit(drive, kind, windows) if fit else windows
                margin = margin_for(drive) if fit else MARGIN_S
                attacked, labels = mutate(
                    drive, kind, windows=count, seed=number, targets=targets, margin_s=margin
                )
                result = scan(attacked, profile)
                found, unmatched = score(result.alerts, labels, ACCEPTED[kind], caught_by)
                delays += found
                stray += unmatched
        except ValueError as error:
            figures[kind.value] = {"windows": 0, "not_applied": str(error)}
            continue
        caught = [d for d in delays if d is not None]
        if not delays:
            figures[kind.value] = {"windows": 0, "not_applied": "no window could be placed"}
            continue
        figures[kind.value] = {
            "windows": len(delays),
            "detected": len(caught),
            "detection_rate": round(len(caught) / len(delays), 4),
            "within_100ms_rate": round(sum(d <= TARGET_S for d in caught) / len(delays), 4),
            "time_to_detect_ms_median": round(statistics.median(caught) * 1000, 2)
            if caught
            else None,
            "time_to_detect_ms_p95": round(_percentile(caught, 0.95) * 1000, 2) if caught else None,
            "alerts_outside_windows": stray,
            "accepted_alert_kinds": sorted(k.value for k in ACCEPTED[kind]),
            "first_caught_by": caught_by,
        }
        if targets is not None:
            figures[kind.value]["targets"] = [id_text(key) for key in targets]
    return figures


def clean_figures(profile: BusProfile, drives: list[list[Frame]]) -> dict[str, Any]:
    """False alerts over clean drives, per hour of driving, by kind."""
    alerts = 0
    seconds = 0.0
    kinds: dict[str, int] = {}
    for drive in drives:
        result = scan(drive, profile)
        alerts += len(result.alerts)
        seconds += drive[-1][0] - drive[0][0]
        for alert in result.alerts:
            kinds[alert.kind.value] = kinds.get(alert.kind.value, 0) + 1
    return {
        "drives": len(drives),
        "hours": round(seconds / 3600, 4),
        "false_alerts": alerts,
        "false_alerts_per_hour": round(alerts / (seconds / 3600), 2) if seconds else None,
        "by_kind": kinds,
    }


def shared_data() -> str:
    """The shared data folder, or an empty string if there is none.

    ``$EDGE_AGENT_SHARED_DATA``, else ``shared/data`` beside the checkout (where the tests
    find the real DBCs).
    """
    configured = os.environ.get(SHARED_DATA_ENV)
    if configured:
        return configured
    beside = Path(__file__).resolve().parents[2].parent / "shared" / "data"
    return str(beside) if beside.is_dir() else ""


def recordings(where: str) -> list[Path]:
    """Recorded drives at ``where``: the file itself, or every log under the folder."""
    if not where:
        return []
    root = Path(where)
    if root.is_file():
        return [root]
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*") if p.is_file() and _is_log(p))


def _is_log(path: Path) -> bool:
    try:
        log_kind(path)
    except LogFormatError:
        return False
    return True


def recording_figures(path: Path, windows: int = RECORDING_WINDOWS) -> dict[str, Any]:
    """Train on the first half of a recorded drive and scan the second: false alerts per hour.

    Then the second half again with each attack kind added by the mutator: detection rates.
    """
    stats = LogStats()
    try:
        frames = list(log_frames(path, stats))
    except LogFormatError as error:
        return {"log": str(path), "error": str(error)}
    if len(frames) < 1000:
        return {"log": str(path), "error": f"only {len(frames)} frames"}
    half = len(frames) // 2
    profile, _ = train(frames[:half], str(path))
    second = frames[half:]
    result = scan(second, profile)
    hours = (frames[-1][0] - frames[half][0]) / 3600
    kinds: dict[str, int] = {}
    for alert in result.alerts:
        kinds[alert.kind.value] = kinds.get(alert.kind.value, 0) + 1
    return {
        "log": str(path),
        "frames": len(frames),
        "malformed": stats.malformed,
        "ids": len(profile.ids),
        "periodic_ids": len(profile.periodic_ids),
        "counters": sum(1 for item in profile.ids.values() if item.counter is not None),
        "checksums": sum(1 for item in profile.ids.values() if item.checksum is not None),
        "scanned_hours": round(hours, 4),
        "false_alerts": len(result.alerts),
        "false_alerts_per_hour": round(len(result.alerts) / hours, 2) if hours > 0 else None,
        "false_alerts_by_kind": kinds,
        "gaps": result.gaps,
        "degraded": result.degraded,
        "attacks": attack_figures(profile, [second], windows, fit=True),
    }


def detector_rate(profile: BusProfile, frames: list[Frame], runs: int) -> float:
    """Median frames/s of the detectors over ``frames`` (one core, nothing else in the loop)."""
    rates: list[float] = []
    for _ in range(runs):
        detector = Detector(profile)
        observe = detector.observe
        started = time.perf_counter()
        for t, key, data, error in frames:
            observe(t, key, data, error=error)
        rates.append(len(frames) / (time.perf_counter() - started))
    return statistics.median(rates)


def module_path_rate(profile: BusProfile, frames: list[Frame], runs: int) -> float:
    """Median frames/s from python-can messages, as the module takes them off its subscription."""
    messages = [
        can.Message(timestamp=t, arbitration_id=key, data=data, is_extended_id=False)
        for t, key, data, _ in frames
    ]
    rates: list[float] = []
    for _ in range(runs):
        observe = Detector(profile).observe
        started = time.perf_counter()
        for message in messages:
            t, key, data, error = frame_of(message)
            observe(t, key, data, error=error)
        rates.append(len(messages) / (time.perf_counter() - started))
    return statistics.median(rates)


def run_ids_benchmark(
    *, drives: int = 3, windows: int = 20, runs: int = 3, log: str | None = None
) -> dict[str, Any]:
    """Every figure of docs/ids.md in one JSON-ready result."""
    from edge_agent.modules.can_ids.dbc_rules import load_dbc_rules
    from edge_agent.modules.can_reader.ingest_bench import run_ingest_benchmark

    training = simulated_drive(seed=1)
    rules = load_dbc_rules(VEHICLE_DBC)
    profile, _ = train(training, "standard-drive seed 1", rules)
    scanned = [simulated_drive(seed=1 + n) for n in range(1, drives + 1)]
    detectors = detector_rate(profile, scanned[0], runs)
    from_messages = module_path_rate(profile, scanned[0], runs)
    ingest = run_ingest_benchmark(frames=len(scanned[0]) // 2, runs=1, seconds=0)
    where = log or shared_data()
    return {
        "training": {
            "drive": "standard-drive seed 1",
            "dbc": VEHICLE_DBC,
            "counters": sum(1 for item in profile.ids.values() if item.counter is not None),
            "checksums": sum(1 for item in profile.ids.values() if item.checksum is not None),
            "signal_ranges": sum(len(item.ranges) for item in profile.ids.values()),
            "frames": profile.frames,
            "ids": len(profile.ids),
            "periodic_ids": len(profile.periodic_ids),
        },
        "attacks": attack_figures(profile, scanned, windows),
        "clean": clean_figures(profile, scanned),
        "recordings_searched": where,
        "recordings": [recording_figures(path) for path in recordings(where)],
        "throughput": {
            "detector_frames_per_s": round(detectors),
            "detector_from_can_messages_frames_per_s": round(from_messages),
            "can_reader_ingest_frames_per_s": ingest["agent_frames_per_s"],
            "detector_to_ingest_ratio": round(detectors / ingest["agent_frames_per_s"], 2),
            "from_can_messages_to_ingest_ratio": round(
                from_messages / ingest["agent_frames_per_s"], 2
            ),
        },
        "receive_jitter_ms": RECEIVE_JITTER_S * 1000,
        "machine": machine(),
    }


def bench_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Entry for ``edge-agent bench ids``: ``--runs`` clean drives scanned, ``--log`` recordings."""
    return run_ids_benchmark(drives=args.runs or 3, log=args.log)


def render_text(result: dict[str, Any]) -> str:
    """The figures as a table for people."""
    lines = [
        f"{'attack':<12} {'windows':>7} {'detected':>9} {'<=100ms':>8} {'median ms':>10} "
        f"{'p95 ms':>8} {'stray':>6}"
    ]
    for kind, row in result["attacks"].items():
        lines.append(
            f"{kind:<12} {row['windows']:>7} {row['detection_rate']:>9.1%} "
            f"{row['within_100ms_rate']:>8.1%} {row['time_to_detect_ms_median']!s:>10} "
            f"{row['time_to_detect_ms_p95']!s:>8} {row['alerts_outside_windows']:>6}"
        )
    clean = result["clean"]
    lines.append(
        f"clean: {clean['false_alerts']} false alerts in {clean['hours']} h "
        f"({clean['false_alerts_per_hour']} per hour)"
    )
    for item in result["recordings"]:
        lines.append(f"recording {item}")
    if not result["recordings"]:
        lines.append(f"recordings: none found under {result['recordings_searched']}")
    speed = result["throughput"]
    lines.append(
        f"throughput: detectors {speed['detector_frames_per_s']} frames/s "
        f"({speed['detector_from_can_messages_frames_per_s']} from python-can messages), "
        f"CAN reader ingest {speed['can_reader_ingest_frames_per_s']} frames/s"
    )
    return "\n".join(lines)
