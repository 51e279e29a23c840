"""The demo's agent.toml: deploy/examples/laptop.toml, adjusted to this machine.

Only what must differ changes: the state directory, the CAN interface and channel of the
chosen mode, the broker address (the link relay), JSON logs; modules that are not installed
(yet) are left out, and in the in-process mode the simulated vehicle joins the agent.
"""

from __future__ import annotations

import copy
import json
import tomllib
from pathlib import Path
from typing import Any

from edge_agent.discovery import installed_modules
from edge_demo.modes import CanMode

ROOT = Path(__file__).resolve().parents[2]
LAPTOP_CONFIG = ROOT / "deploy" / "examples" / "laptop.toml"
DBC = "package:edge_agent.simulator/data/vehicle.dbc"


def build_config(
    mode: CanMode,
    state_dir: Path,
    trace: Path,
    *,
    broker: tuple[str, int] | None,
    notes: list[str],
    seconds: float | None = None,
    mqtt_version: str = "5",
) -> dict[str, Any]:
    """The config mapping for the demo's agent; ``notes`` collects what was left out and why."""
    with LAPTOP_CONFIG.open("rb") as handle:
        config: dict[str, Any] = copy.deepcopy(tomllib.load(handle))
    config["agent"].update(state_dir=str(state_dir), log_format="json")
    modules: dict[str, Any] = config.setdefault("modules", {})
    installed = installed_modules()
    for name in list(modules):
        if name not in installed:
            notes.append(f"{name} is not installed yet: running without it")
            del modules[name]
    fast_path = modules.get("fast-path")
    if fast_path is not None:
        fast_path["isolation"] = mode.fast_path_isolation
        fast_path.setdefault("config", {})["can"] = {
            "interface": mode.interface,
            "channel": mode.channel,
        }
    if "can-reader" in installed:
        reader = modules.setdefault("can-reader", {})
        buses = reader.setdefault("config", {}).setdefault("buses", [])
        if not buses:
            buses.append({"name": "vehicle", "dbc": DBC})
        for bus in buses:
            bus.update(interface=mode.interface, channel=mode.channel)
    else:
        notes.append(
            "CAN reader (can-reader) not installed yet: no decoded signals, so no telemetry "
            "batches; the fast path still reads its own socket"
        )
        modules.pop("telemetry", None)
    if "cloud-link" in modules:
        if broker is None:
            notes.append("no MQTT broker: running without the cloud link (no link outage)")
            del modules["cloud-link"]
        else:
            host, port = broker
            modules["cloud-link"].setdefault("config", {}).update(
                host=host, port=port, mqtt_version=mqtt_version
            )
    elif "cloud-link" not in installed:
        notes.append("cloud link not installed yet: skipping the link outage")
    if mode.name == "in-process":
        modules["demo-vehicle"] = {
            "entry_point": "edge_demo.vehicle_module:SimulatedVehicleModule",
            "restart": "never",
            "config": {"channel": mode.channel, "trace": str(trace)}
            | ({"seconds": seconds} if seconds else {}),
        }
    return config


def toml_text(data: dict[str, Any]) -> str:
    """TOML for a config mapping (tables, arrays of tables, scalars, lists, inline tables)."""
    lines: list[str] = []
    _table(lines, [], data)
    return "\n".join(lines).lstrip("\n") + "\n"


def _key(part: str) -> str:
    return part if part.replace("-", "").replace("_", "").isalnum() else json.dumps(part)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _table(lines: list[str], path: list[str], table: dict[str, Any]) -> None:
    scalars = {k: v for k, v in table.items() if not isinstance(v, dict) and not _is_table_array(v)}
    if path and (scalars or not table):
        lines += ["", "[" + ".".join(_key(p) for p in path) + "]"]
    lines += [f"{_key(k)} = {_value(v)}" for k, v in scalars.items()]
    for key, value in table.items():
        if isinstance(value, dict):
            _table(lines, [*path, key], value)
        elif _is_table_array(value):
            for item in value:
                lines += ["", "[[" + ".".join(_key(p) for p in [*path, key]) + "]]"]
                lines += [f"{_key(k)} = {_value(v)}" for k, v in item.items()]
