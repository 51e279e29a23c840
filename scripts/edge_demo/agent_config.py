"""The demo's agent.toml: deploy/examples/laptop.toml, adjusted to this machine.

Only what must differ changes: the state directory, the CAN interface and channel of the
chosen mode, the broker address (the link relay), JSON logs; modules that are not installed
(yet) are left out, and in the in-process mode the simulated vehicle joins the agent.
"""

from __future__ import annotations

import copy
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
    if "diagnostics" in installed:
        # The simulated ECUs answer on the vehicle's channel: DTCs reach the cloud on
        # vehicles/{vid}/diag/dtc (the route's radar dropout sets U0235).
        modules["diagnostics"] = {
            "config": {
                "interface": mode.interface,
                "channel": mode.channel,
                "dtc_interval_s": 1.0,
                "signal_interval_s": 1.0,
            }
        }
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
