"""Implementations of the core ``edge-agent`` sub-commands."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from edge_agent.cli.exit_codes import Exit, UserError
from edge_agent.config import ConfigError, LoadedConfig, load_config
from edge_agent.config.desired import load_last_good, validate_desired
from edge_agent.discovery import installed_modules
from edge_agent.health import HealthFile, NoAgentRunning
from edge_agent.logs import configure_logging, get_logger
from edge_agent.process.affinity import apply_cpu_affinity
from edge_agent.process.launcher import lower_agent_priority
from edge_agent.spool import SpoolLocked


def _load(path: Path) -> LoadedConfig:
    try:
        return load_config(path)
    except ConfigError as error:
        raise UserError("\n".join(error.lines())) from None


def _with_last_good_desired_state(loaded: LoadedConfig) -> LoadedConfig:
    """Overlay the last desired state that applied cleanly, if it still validates."""
    log = get_logger("edge_agent.config")
    document = load_last_good(loaded.agent.agent.state_dir)
    if document is None:
        return loaded
    try:
        desired = validate_desired(loaded, document)
    except ConfigError as error:
        log.warning(
            "stored desired state no longer valid; running on the config file",
            version=document.get("version"),
            errors=error.lines(),
        )
        return loaded
    log.info("running on the last good desired state", version=document.get("version"))
    return desired


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
        raise UserError(f"agent.state_dir: cannot create {settings.state_dir}: {error}") from None
    loaded = _with_last_good_desired_state(loaded)
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
    agent = snapshot["agent"]
    uptime = time.time() - float(agent["started_at"])
    print(
        f"agent {agent['version']} vehicle {agent['vehicle_id']} pid {agent['pid']}: "
        f"{agent['state']}{' (ready)' if agent['ready'] else ''}, up {uptime:.0f} s, "
        f"loop lag {agent['loop_lag_ms']} ms"
    )
    for name, module in snapshot["modules"].items():
        line = f"  {name:<16} {module['state']:<12} restarts={module['restarts']}"
        if module["last_error"]:
            line += f" last_error={module['last_error']!r}"
        if not module["ok"] and module["reason"]:
            line += f" degraded: {module['reason']}"
        print(line)
    return Exit.OK


def run_bench(args: argparse.Namespace) -> int:
    """``edge-agent bench NAME``: run a benchmark and print its figures."""
    from edge_agent.bench.registry import render_benchmark, run_benchmark

    result = run_benchmark(args.name, args)
    text = None if args.json else render_benchmark(args.name, result)
    if args.json:
        print(json.dumps(result))
    elif text is not None:
        print(text)
    else:
        json.dump(result, sys.stdout, indent=2)
        print()
    return Exit.OK
