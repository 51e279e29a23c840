"""Implementations of the core ``edge-agent`` sub-commands."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import errno
import json
import time
from pathlib import Path
from typing import Any

from edge_agent.cli.exit_codes import Exit, UserError
from edge_agent.cli.health_text import render_health
from edge_agent.config import ConfigError, LoadedConfig, load_config
from edge_agent.config.compose import compose
from edge_agent.config.desired import read_last_good
from edge_agent.config.loader import ConfigLayers
from edge_agent.config.signed import load_signed
from edge_agent.discovery import installed_modules
from edge_agent.health import HealthFile, NoAgentRunning
from edge_agent.logs import EventLogger, configure_logging, get_logger
from edge_agent.process.affinity import apply_cpu_affinity
from edge_agent.process.launcher import lower_agent_priority
from edge_agent.spool import SpoolLocked

# Errors that say the disk is full or failing, not that the configuration is wrong.
_DISK_STATES = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO)


def _load(path: Path) -> LoadedConfig:
    try:
        return load_config(path)
    except ConfigError as error:
        raise UserError("\n".join(error.lines())) from None


def _with_stored_layers(loaded: LoadedConfig) -> LoadedConfig:
    """Lay the stored signed config and last good desired state over the file, if they fit.

    A stored layer this version cannot read, or that no longer validates (written by another
    version, a module uninstalled since), is skipped with a one-line reason in the log and in
    health (``agent.desired_ignored``): the desired state first, then the signed config. The
    config file is the safe state.
    """
    log = get_logger("edge_agent.config")
    state_dir = loaded.agent.agent.state_dir
    stored = read_last_good(state_dir)
    signed, desired = load_signed(state_dir), stored.document
    ignored = stored.problem
    if stored.problem:
        log.warning(
            "stored desired state not usable; running on the config file", reason=stored.problem
        )
    if signed is None and desired is None:
        loaded.desired_ignored = ignored
        return loaded
    layers = dataclasses.replace(loaded.layers, signed=signed, desired=desired)
    try:
        composed = compose(layers)
    except ConfigError as error:
        if desired is None:
            composed = None
        else:
            log.warning(
                "stored desired state no longer valid; running without it",
                version=desired.get("version"),
                errors=error.lines(),
            )
            ignored = (
                f"stored desired state {desired.get('version')!r} no longer valid: "
                f"{error.lines()[0]}"
            )
            layers = dataclasses.replace(layers, desired=None)
            composed = _compose_or_none(layers, log)
    if composed is None:
        log.warning(
            "stored signed config no longer valid; running on the config file",
            version=None if signed is None else signed.get("version"),
        )
        loaded.desired_ignored = ignored
        return loaded
    composed.desired_ignored = ignored
    if desired is not None and composed.layers.desired is not None:
        log.info("running on the last good desired state", version=desired.get("version"))
    if signed is not None:
        log.info("running on the signed config", version=signed.get("version"))
    return composed


def _compose_or_none(layers: ConfigLayers, log: EventLogger) -> LoadedConfig | None:
    try:
        return compose(layers)
    except ConfigError as error:
        log.warning("stored config layers do not validate", errors=error.lines())
        return None


def run_agent(args: argparse.Namespace) -> int:
    """``edge-agent run --config PATH``: host the configured modules until SIGTERM."""
    from edge_agent.supervisor import Supervisor

    loaded = _load(Path(args.config))
    settings = loaded.agent.agent
    configure_logging(
        "debug" if args.debug else settings.log_level, args.log_format or settings.log_format
    )
    try:
        settings.state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        if error.errno not in _DISK_STATES:
            raise UserError(
                f"agent.state_dir: cannot create {settings.state_dir}: {error}"
            ) from None
        # A full or failing disk must not keep the modules (the brake path) from starting.
        get_logger("edge_agent.supervisor").warning(
            "cannot create the state directory; starting without it", error=str(error)
        )
    loaded = _with_stored_layers(loaded)
    # Before any thread starts: threads inherit the affinity of the thread that creates them.
    apply_cpu_affinity(settings.cpu_affinity)
    lower_agent_priority(settings.nice)

    async def main() -> int:
        return await Supervisor(loaded).run()

    try:
        return asyncio.run(main())
    except SpoolLocked as error:
        raise UserError(f"spool: {error} (is another agent running on this state dir?)") from None


def check_config(args: argparse.Namespace) -> int:
    """``edge-agent check-config PATH``: validate; one line per error and exit 2 when invalid."""
    loaded = _load(Path(args.path))
    agent = loaded.agent.agent
    print(f"{args.path}: valid")
    print(f"  vehicle_id: {agent.vehicle_id}")
    print(f"  state_dir: {agent.state_dir}")
    disabled = [n for n, m in loaded.agent.modules.items() if not m.enabled]
    for name, plan in loaded.modules.items():
        flags = ["required"] if plan.settings.required else []
        flags.append(f"restart={plan.settings.restart.value}")
        print(f"  module {name} {plan.module_class.version} ({', '.join(flags)})")
    if disabled:
        print(f"  disabled: {', '.join(disabled)}")
    return Exit.OK


def list_modules(args: argparse.Namespace) -> int:
    """``edge-agent modules``: installed modules with version, distribution, entry point."""
    from edge_agent.discovery import ModuleLoadError, load_module_class

    rows: list[dict[str, Any]] = []
    for name, entry in sorted(installed_modules().items()):
        try:
            version = load_module_class(name).version
            problem = ""
        except ModuleLoadError as error:
            version, problem = "?", str(error)
        rows.append(
            {
                "name": name,
                "version": version,
                "distribution": f"{entry.distribution} {entry.distribution_version}",
                "entry_point": entry.value,
                "error": problem,
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return Exit.OK
    print(f"{'NAME':<16} {'VERSION':<10} {'DISTRIBUTION':<24} ENTRY POINT")
    for row in rows:
        print(
            f"{row['name']:<16} {row['version']:<10} {row['distribution']:<24} {row['entry_point']}"
        )
        if row["error"]:
            print(f"  ! {row['error']}")
    return Exit.OK


def _state_dir_for_status(args: argparse.Namespace) -> Path:
    if args.state_dir:
        return Path(args.state_dir)
    if args.config:
        return _load(Path(args.config)).agent.agent.state_dir
    return Path("/var/lib/edge-agent")


def show_status(args: argparse.Namespace) -> int:
    """``edge-agent status``: the running agent's health; exit 3 when none runs."""
    state_dir = _state_dir_for_status(args)
    try:
        snapshot = HealthFile(state_dir).read(time.time())
    except NoAgentRunning as error:
        raise UserError(str(error), Exit.NO_AGENT) from None
    if args.json:
        print(json.dumps(snapshot, indent=2))
        return Exit.OK
    for line in render_health(snapshot, time.time()):
        print(line)
    if snapshot.get("spool"):
        print(_spool_line(snapshot["spool"]))
    return Exit.OK


def _spool_line(spool: dict[str, Any]) -> str:
    """The spool in one line: where records are kept, how many, and why it is degraded."""
    if "error" in spool:
        return f"  {'spool':<16} {'unknown':<12} error={spool['error']}"
    line = (
        f"  {'spool':<16} {spool.get('storage', 'disk'):<12} "
        f"records={spool.get('records', 0)} bytes={spool.get('bytes', 0)}"
    )
    if spool.get("memory_records"):
        line += f" in_memory={spool['memory_records']}"
    if spool.get("degraded"):
        line += f" degraded: {spool.get('degraded_reason') or 'yes'}"
    return line
