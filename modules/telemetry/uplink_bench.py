"""``edge-agent bench uplink``: what a drive costs on the uplink, measured through the agent.

Without ``--log`` the drive is the simulator's ``standard-drive`` (seed 0), generated in
memory (``--seconds`` shortens it); with ``--log LOG --dbc FILE`` it is a recorded candump
``.log``, ``.asc`` or ``.blf``. Either way the frames go through the agent's CAN decoding,
the telemetry collection (every decoded signal at its native rate, or ``--config``'s
telemetry section) and the batch format it writes, next to JSON and msgpack baselines of
the same samples. Bad input is counted; only an unreadable log, DBC or config, or a log of which
nothing decodes, is an error (one line, exit status 2).

Telemetry contributes it through the ``edge_agent.benchmarks`` entry-point group. A vehicle
install without the simulator has no synthetic drive: there it needs ``--log`` and ``--dbc``.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import can
from pydantic import ValidationError

from edge_agent.can.databases import load_database
from edge_agent.can.dbc import DbcError, DbcLoadResult
from edge_agent.can.decode import FrameDecoder
from edge_agent.can.logs import LogFormatError, LogStats, open_log
from edge_agent.can.resources import resolve_data_path
from edge_agent.cli.exit_codes import UserError
from edge_agent.config import ConfigError, ConfigIssue, read_toml
from edge_agent.config.errors import issues_from_validation
from edge_agent.modules.telemetry.collection import Collection
from edge_agent.modules.telemetry.config import TelemetryConfig
from edge_agent.modules.telemetry.estimate import (
    DEFAULT_VEHICLE_ID,
    BatchEncoder,
    RecordedDecoder,
    estimate_uplink,
    native_rate_config,
    resolution_of,
)
from edge_agent.modules.telemetry.scales import dbc_scales, dbc_units
from edge_agent.modules.telemetry.uplink_report import (
    DEFAULT_HOURS_PER_DAY,
    render_text,
    uplink_result,
)

__all__ = ["bench_from_args", "render_text", "synthetic_frames", "telemetry_settings"]

SYNTHETIC_SCENARIO = "standard-drive"
SIMULATOR_DBC = "package:edge_agent.simulator/data/vehicle.dbc"
TELEMETRY_ENTRY_POINT = "telemetry:TelemetryModule"


@dataclass(frozen=True, slots=True)
class TelemetrySettings:
    """The telemetry options of an agent config, and the vehicle id batches carry."""

    config: TelemetryConfig
    vehicle_id: str
    source: str
    modules: dict[str, Any]


def telemetry_settings(path: str) -> TelemetrySettings:
    """Read the telemetry module's options from the agent config at ``path``.

    Raises ConfigError (one line) when the file is unreadable, has no telemetry module, or
    its options do not validate. Environment overrides are not applied: the file is what
    is being estimated, not this machine's environment.
    """
    data = read_toml(Path(path))
    modules = data.get("modules")
    found = None
    if isinstance(modules, dict):
        for name, settings in modules.items():
            entry = settings.get("entry_point") if isinstance(settings, dict) else None
            if name == "telemetry" or (
                isinstance(entry, str) and entry.endswith(TELEMETRY_ENTRY_POINT)
            ):
                found = (name, settings)
                break
    if found is None or not isinstance(found[1], dict):
        raise ConfigError([ConfigIssue(path, "no [modules.telemetry] section to estimate")])
    name, settings = found
    try:
        config = TelemetryConfig.model_validate(settings.get("config", {}))
    except ValidationError as error:
        raise ConfigError(issues_from_validation(error, f"{path}: modules.{name}.config")) from None
    agent = data.get("agent")
    vehicle_id = agent.get("vehicle_id") if isinstance(agent, dict) else None
    if not isinstance(vehicle_id, str) or not 0 < len(vehicle_id) <= 256:
        vehicle_id = DEFAULT_VEHICLE_ID
    return TelemetrySettings(config, vehicle_id, path, modules if isinstance(modules, dict) else {})


def synthetic_frames(seconds: float | None = None) -> Iterator[can.Message]:
    """The frames of the simulator's standard drive (seed 0, open loop), as recorded."""
    from edge_agent.simulator.can_io import SimulatorSession
    from edge_agent.simulator.runner import RECORDING_EPOCH
    from edge_agent.simulator.scenarios import get_scenario

    pending: list[can.Message] = []
    session = SimulatorSession(
        get_scenario(SYNTHETIC_SCENARIO),
        None,
        seed=0,
        duration_s=seconds,
        frame_sink=pending.append,
        epoch=RECORDING_EPOCH,
    )
    while not session.finished:
        session.step()
        yield from pending
        pending.clear()


RECORDED_DECODERS = "edge_agent.recorded_decoders"


def recorded_decoders(modules: dict[str, Any]) -> list[RecordedDecoder]:
    """A fresh decoder from each installed owner of a recorded format (diagnostics, ...).

    Each gets the agent config's ``[modules]`` table (empty without ``--config``) and finds
    its own options there: the format stays its owner's business.
    """
    decoders = []
    for entry in entry_points(group=RECORDED_DECODERS):
        try:
            decoders.append(entry.load()(modules))
        except Exception as error:  # a broken plugin: one line naming it
            raise UserError(
                f"bench uplink: recorded decoder {entry.name!r} ({entry.value}) failed: {error}"
            ) from None
    return decoders


def _load_dbc(path: str) -> DbcLoadResult:
    try:
        return load_database(resolve_data_path(path))
    except (DbcError, ValueError) as error:
        raise UserError(f"bench uplink: DBC {error}") from None


def _hours_per_day(args: argparse.Namespace) -> float:
    hours = getattr(args, "hours_per_day", None)
    if hours is None:
        return DEFAULT_HOURS_PER_DAY
    if not 0 < hours <= 24:
        raise UserError(
            f"bench uplink: --hours-per-day must be above 0 and at most 24, got {hours}"
        )
    return float(hours)


def bench_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Entry for ``edge-agent bench uplink`` (see the module docstring)."""
    started = time.perf_counter()
    log_path: str | None = getattr(args, "log", None)
    dbc_path: str | None = getattr(args, "dbc", None)
    config_path: str | None = getattr(args, "config", None)
    hours_per_day = _hours_per_day(args)
    if log_path and not dbc_path:
        raise UserError("bench uplink: --log needs --dbc FILE, the DBC to decode it with")
    if dbc_path and not log_path:
        raise UserError("bench uplink: --dbc goes with --log LOG (the synthetic drive has its own)")
    if not log_path and importlib.util.find_spec("edge_agent.simulator") is None:
        raise UserError(
            "bench uplink: the synthetic drive comes from the simulator, which is not installed; "
            "pass --log LOG --dbc FILE"
        )
    settings = None
    if config_path:
        try:
            settings = telemetry_settings(config_path)
        except ConfigError as error:
            raise UserError(f"bench uplink: {error}") from None
    dbc = _load_dbc(dbc_path or SIMULATOR_DBC)
    recorded = recorded_decoders(settings.modules if settings else {})
    decoder = FrameDecoder(dbc.database)
    stats = LogStats()
    if log_path:
        try:
            frames: Iterator[can.Message] = open_log(log_path, stats)
        except LogFormatError as error:
            raise UserError(f"bench uplink: log {error}") from None
        drive = log_path
    else:
        seconds = getattr(args, "seconds", None)
        frames = synthetic_frames(seconds)
        drive = f"{SYNTHETIC_SCENARIO} (simulator, seed 0, in memory)"
    if settings is not None:
        config = settings.config
    else:
        names = {signal.name for message in dbc.database.messages for signal in message.signals}
        config = native_rate_config(names | {s for other in recorded for s in other.signals})
    encoder = BatchEncoder(
        vehicle_id=settings.vehicle_id if settings else DEFAULT_VEHICLE_ID,
        resolution=resolution_of(config),
        scales=dbc_scales(dbc.database),
        batch_format=config.batch_format,
        units=dbc_units(dbc.database),
    )
    estimate = estimate_uplink(frames, decoder, config, encoder, recorded)
    if estimate.frames.decoded == 0:
        counts = estimate.frames
        raise UserError(
            f"bench uplink: nothing in {drive} decodes with {dbc_path}: {counts.total} frames "
            f"({counts.unknown_ids} with ids the DBC lacks, {counts.short_frames} too short, "
            f"{stats.malformed} malformed lines)"
        )
    decodable = {signal.name for message in decoder.dbc_messages for signal in message.signals}
    for other in recorded:
        decodable |= other.signals
    return uplink_result(
        estimate,
        drive=drive,
        config=config,
        config_source=settings.source if settings else None,
        missing_signals=sorted(Collection(config).wanted_signals - decodable) if settings else [],
        dbc=dbc,
        dbc_file=dbc_path or SIMULATOR_DBC,
        log=stats if log_path else None,
        scale_hints=len(encoder.scales),
        hours_per_day=hours_per_day,
        elapsed_s=time.perf_counter() - started,
    )
