"""Composing the running configuration from its layers: file, signed config, desired state.

* **local** (the TOML file, after environment overrides) alone holds ``[agent]`` and
  ``[spool]``: identity, paths and the spool stay the vehicle's own, whatever else arrives.
* **signed** (the last TUF-signed config target the OTA module verified and applied,
  ``{"version", "modules"}``): each module table in it replaces the file's table for that
  module; any setting, privileged ones included; a module it adds is started.
* **desired** (the last desired state from the cloud that applied cleanly,
  ``{"version", "modules"}``): tunable settings only, merged field by field into the tables
  below it, and only for modules already enabled there. A desired state that names a
  privileged setting or another module is refused before anything in it is validated,
  imported or run (docs/security.md).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from edge_agent.config.classes import merge_tunable, refuse_privileged
from edge_agent.config.errors import ConfigError, ConfigIssue
from edge_agent.config.loader import ConfigLayers, LoadedConfig, validate_config
from edge_agent.config.model import ModuleSettings

NOT_HERE = (
    "not a module enabled on this vehicle; adding or enabling a module is privileged "
    "(signed config target)"
)


def base_data(layers: ConfigLayers) -> tuple[dict[str, Any], str]:
    """The file's mapping with the signed module tables laid over it, and its source text."""
    data = copy.deepcopy(layers.local)
    if layers.signed is None:
        return data, layers.origin
    modules = data.setdefault("modules", {})
    if isinstance(modules, dict):
        for name, table in layers.signed["modules"].items():
            modules[name] = copy.deepcopy(table)
    return data, f"signed config {layers.signed_version}"


def desired_issues(document: Mapping[str, Any], base: LoadedConfig) -> list[ConfigIssue]:
    """Why ``document`` (a parsed desired state) may not be laid over ``base``; empty if it may.

    Only declared setting classes and the names of modules already running are consulted:
    nothing named in ``document`` is imported.
    """
    issues: list[ConfigIssue] = []
    for name, table in document["modules"].items():
        where = f"modules.{name}"
        plan = base.modules.get(name)
        if plan is None:
            issues.append(ConfigIssue(where, NOT_HERE))
            continue
        if not isinstance(table, Mapping):
            issues.append(ConfigIssue(where, "must be a table", table))
            continue
        issues.extend(
            refuse_privileged(
                {k: v for k, v in table.items() if k != "config"}, ModuleSettings, where
            )
        )
        # Only "config" is merged below, so validation would never see another unknown key.
        issues.extend(
            ConfigIssue(f"{where}.{key}", "unknown setting", value)
            for key, value in table.items()
            if key not in ModuleSettings.model_fields
        )
        options = table.get("config")
        if options is None:
            continue
        if not isinstance(options, Mapping):
            issues.append(ConfigIssue(f"{where}.config", "must be a table", options))
            continue
        issues.extend(refuse_privileged(options, plan.module_class.config_model, f"{where}.config"))
    return issues


def _merge_desired(
    data: dict[str, Any], document: Mapping[str, Any], base: LoadedConfig
) -> dict[str, Any]:
    merged = copy.deepcopy(data)
    for name, table in document["modules"].items():
        target = merged["modules"][name]
        options = table.get("config")
        if options is not None:
            model = base.modules[name].module_class.config_model
            target["config"] = merge_tunable(target.get("config") or {}, options, model)
    return merged


def compose(layers: ConfigLayers) -> LoadedConfig:
    """Validate the configuration ``layers`` describe; ConfigError says what is wrong."""
    data, source = base_data(layers)
    base = validate_config(data, source=source)
    if layers.desired is None:
        base.layers = layers
        return base
    issues = desired_issues(layers.desired, base)
    if issues:
        raise ConfigError(issues)
    merged = _merge_desired(data, layers.desired, base)
    loaded = validate_config(merged, source=f"desired state {layers.desired_version}")
    loaded.layers = layers
    loaded.desired_version = layers.desired_version
    return loaded
