"""The output of ``edge-agent bench uplink``: one JSON object, or a table an operator reads.

Sizes are totals over every batch; rates are per second (per hour) of driving: the time the
drive's frames span less any silence over 5 s (a log joined from sessions days apart is not
days of driving). MB are 10^6 bytes; a month is 30 days. Formats v2 (what the agent writes
until the cloud acknowledged its catalogue) and v3 (after) are reported side by side; the
top-level ``bytes`` and ``ratio_vs_json`` are those of the config's ``batch_format``, and
``catalogue_bytes`` (sent once per vehicle and catalogue version) is never inside a ratio.
"""

from __future__ import annotations

from typing import Any

from edge_agent.bench.report import machine
from edge_agent.can.dbc import DbcLoadResult
from edge_agent.can.logs import LogStats
from edge_agent.modules.telemetry.config import TelemetryConfig
from edge_agent.modules.telemetry.estimate import (
    BASELINE_SHAPE,
    ZSTD_LEVEL,
    UplinkEstimate,
)

DEFAULT_HOURS_PER_DAY = 2.0
DAYS_PER_MONTH = 30
MEGABYTE = 1_000_000


def _ratio(part: int, whole: int, digits: int = 4) -> float | None:
    return round(part / whole, digits) if whole else None


def _per_hour(count: int, seconds: float) -> float | None:
    return round(count * 3600 / seconds, 1) if seconds > 0 else None


def uplink_result(
    estimate: UplinkEstimate,
    *,
    drive: str,
    config: TelemetryConfig,
    config_source: str | None,
    missing_signals: list[str],
    dbc: DbcLoadResult,
    dbc_file: str,
    log: LogStats | None,
    scale_hints: int,
    hours_per_day: float,
    elapsed_s: float,
) -> dict[str, Any]:
    """The JSON object of ``edge-agent bench uplink --json``."""
    seconds = estimate.frames.seconds
    samples = estimate.samples
    legacy = "v1" if config.batch_format == 1 else "v2"
    formats = {
        legacy: _format(estimate, estimate.bytes, seconds, hours_per_day),
        "v3": _format(estimate, estimate.v3_bytes, seconds, hours_per_day),
    }
    chosen = formats["v3" if config.batch_format >= 3 else legacy]
    per_hour = chosen["bytes_per_hour"]
    return {
        "drive": drive,
        "samples": samples,
        "format": "v3" if config.batch_format >= 3 else legacy,
        "bytes": chosen["bytes"],
        "bytes_per_sample": chosen["bytes_per_sample"],
        "json_bytes": estimate.json_bytes,
        "msgpack_bytes": estimate.msgpack_bytes,
        "ratio_vs_json": chosen["ratio_vs_json"],
        "ratio_vs_msgpack": chosen["ratio_vs_msgpack"],
        "formats": formats,
        "catalogue_bytes": estimate.catalogue_bytes,
        "catalogue_signals": estimate.catalogue_signals,
        "json_raw_bytes": estimate.json_raw_bytes,
        "msgpack_raw_bytes": estimate.msgpack_raw_bytes,
        "baseline": BASELINE_SHAPE,
        "baseline_samples": {"json": estimate.json_objects, "msgpack": estimate.msgpack_objects},
        "log_seconds": round(estimate.frames.span_seconds, 3),
        "driving_seconds": round(seconds, 3),
        "gaps": estimate.frames.gaps,
        "samples_per_s": round(samples / seconds, 1) if seconds > 0 else None,
        "bytes_per_hour": per_hour,
        "hours_per_day": hours_per_day,
        "days_per_month": DAYS_PER_MONTH,
        "mb_per_month": (
            round(per_hour * hours_per_day * DAYS_PER_MONTH / MEGABYTE, 2)
            if per_hour is not None
            else None
        ),
        "signals": len(estimate.signals),
        "batches": estimate.batches,
        "captures": estimate.captures,
        "streams": {
            name: {
                "signals": len(totals.signals),
                "samples": totals.samples,
                "bytes": totals.v3_bytes if config.batch_format >= 3 else totals.bytes,
                f"{legacy}_bytes": totals.bytes,
                "v3_bytes": totals.v3_bytes,
                "batches": totals.batches,
            }
            for name, totals in sorted(estimate.streams.items())
        },
        "collection": {
            "config": config_source,
            "schemes": "from the config" if config_source else "every signal at its native rate",
            "batch_max_samples": config.batch_max_samples,
            "batch_max_age_s": config.batch_max_age_s,
            "resolution": config.resolution,
            "batch_format": config.batch_format,
            "scale_hints": scale_hints,
            "signals_not_in_dbc": missing_signals,
        },
        "lost": {
            "batches": estimate.lost_batches,
            "samples": estimate.lost_samples,
            "reason": estimate.lost_reason,
        },
        "frames": estimate.frames.summary(),
        "log": {
            "lines": log.lines if log else 0,
            "malformed": log.malformed if log else 0,
            "examples": list(log.examples) if log else [],
        },
        "dbc": {
            "file": dbc_file,
            "messages": dbc.message_count,
            "signals": dbc.signal_count,
            "skipped": len(dbc.skipped),
            "strict": dbc.strict,
        },
        "zstd_level": ZSTD_LEVEL,
        "elapsed_s": round(elapsed_s, 2),
        "machine": machine(),
    }


def _format(
    estimate: UplinkEstimate, size: int, seconds: float, hours_per_day: float
) -> dict[str, Any]:
    per_hour = _per_hour(size, seconds)
    return {
        "bytes": size,
        "bytes_per_sample": _ratio(size, estimate.samples, 3),
        "ratio_vs_json": _ratio(size, estimate.json_bytes),
        "ratio_vs_msgpack": _ratio(size, estimate.msgpack_bytes),
        "bytes_per_hour": per_hour,
        "mb_per_month": (
            round(per_hour * hours_per_day * DAYS_PER_MONTH / MEGABYTE, 2)
            if per_hour is not None
            else None
        ),
    }


def _size(count: float | None) -> str:
    if count is None:
        return "-"
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= size:
            return f"{count / size:.2f} {unit}"
    return f"{count:.0f} B"


def _number(value: float | None, form: str) -> str:
    return "-" if value is None else format(value, form)


class _Table:
    """Rows of the text form: per stream, the total, then the baselines."""

    def __init__(self, result: dict[str, Any]) -> None:
        self.seconds: float = result["driving_seconds"]
        self.month_factor = result["hours_per_day"] * result["days_per_month"] / MEGABYTE
        self.lines = [
            f"{'':<20} {'signals':>7} {'samples/s':>10} {'bytes/sample':>12} "
            f"{'bytes/hour':>11} {'MB/month':>10}"
        ]

    def row(self, name: str, signals: str, samples: int, size: int) -> None:
        hourly = size * 3600 / self.seconds if self.seconds > 0 else None
        per_s = samples / self.seconds if self.seconds > 0 else None
        rate_form = ",.1f" if per_s is None or per_s >= 10 else ".3g"
        self.lines.append(
            f"{name:<20} {signals:>7} {_number(per_s, rate_form):>10} "
            f"{_number(size / samples if samples else None, '.2f'):>12} {_size(hourly):>11} "
            f"{_number(hourly * self.month_factor if hourly is not None else None, ',.1f'):>10}"
        )


def render_text(result: dict[str, Any]) -> str:
    """The table ``edge-agent bench uplink`` prints without ``--json``."""
    collection = result["collection"]
    table = _Table(result)
    for name, stream in result["streams"].items():
        table.row(f"stream {name}", str(stream["signals"]), stream["samples"], stream["bytes"])
    samples = result["samples"]
    for name, figures in result["formats"].items():
        chosen = " (written)" if name == result["format"] else ""
        table.row(f"edge-agent {name}{chosen}", str(result["signals"]), samples, figures["bytes"])
    for label, key in (
        ("JSON lines + zstd", "json_bytes"),
        ("msgpack + zstd", "msgpack_bytes"),
        ("JSON lines, raw", "json_raw_bytes"),
    ):
        table.row(label, "", samples, result[key])
    ratios = ", ".join(
        f"{name} {_number(figures['ratio_vs_json'], '.3f')}"
        for name, figures in result["formats"].items()
    )
    source = f" ({collection['config']})" if collection["config"] else ""
    lines = [
        f"uplink estimate: {result['drive']}, {result['driving_seconds']:,.1f} s of driving"
        + (
            f" ({result['gaps']} gaps over 5 s left out of {result['log_seconds']:,.1f} s)"
            if result["gaps"]
            else ""
        ),
        f"collection: {collection['schemes']}{source}; batches of up to "
        f"{collection['batch_max_samples']:,} samples or {collection['batch_max_age_s']:g} s, "
        f"batch format {result['format']}",
        "",
        *table.lines,
        "",
        f"ratio vs JSON lines + zstd: {ratios}; signal catalogue {result['catalogue_bytes']:,} B "
        f"once per vehicle and version ({result['catalogue_signals']} signals, not in the ratio)",
        "baselines: the same samples in the same batches, one object per sample, zstd level "
        f"{result['zstd_level']} per batch",
        f"MB/month at {result['hours_per_day']:g} h/day, {result['days_per_month']} days "
        "(1 MB = 10^6 bytes)",
        _input_line(result),
    ]
    if collection["signals_not_in_dbc"]:
        lines.append("config signals the DBC lacks: " + ", ".join(collection["signals_not_in_dbc"]))
    lost = result["lost"]
    if lost["batches"]:
        lines.append(
            f"lost: {lost['batches']} batches ({lost['samples']:,} samples): {lost['reason']}"
        )
    return "\n".join(lines)


def _input_line(result: dict[str, Any]) -> str:
    frames, log, dbc = result["frames"], result["log"], result["dbc"]
    return (
        f"input: {frames['total']:,} frames, {frames['decoded']:,} decoded "
        f"({frames.get('diagnostic', 0):,} frames of diagnostic answers), "
        f"{frames['unknown_id']:,} with unknown ids, {frames['wrong_length']:,} of wrong length, "
        f"{log['malformed']:,} malformed lines; DBC {dbc['messages']} messages, "
        f"{dbc['signals']} signals, {dbc['skipped']} parts skipped"
    )
