"""Loading the agent's TOML file: syntax, environment overrides, schema, module options."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from edge_agent.config.errors import ConfigError, ConfigIssue, issues_from_validation
from edge_agent.config.model import AgentConfig, ModuleSettings
from edge_agent.discovery import ModuleLoadError, load_module_class
from edge_agent.module_api import Module
from edge_agent.module_order import DependencyCycle, start_order

ENV_PREFIX = "EDGE_AGENT__"


@dataclass
class ModulePlan:
    """A module ready to be started: its class, supervision settings and validated options."""

    name: str
    module_class: type[Module[Any]]
    settings: ModuleSettings
    config: BaseModel


@dataclass
class LoadedConfig:
    """A validated configuration with every enabled module resolved and its options checked."""

    agent: AgentConfig
    modules: dict[str, ModulePlan] = field(default_factory=dict)
    source: str = ""
    desired_version: Any = None


def _parse_env_value(raw: str) -> Any:
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw
    # Numbers, booleans and dates stay text: the schema turns "2" into 2 where it wants a
    # number, and a vehicle id or password such as 4711 must stay the string it is.
    return value if isinstance(value, str | list | dict) else raw


def apply_env_overrides(data: dict[str, Any], environ: Mapping[str, str]) -> list[str]:
    """Apply ``EDGE_AGENT__SECTION__KEY=value`` variables to ``data``; return the paths set.

    ``__`` separates levels, names are lower-cased. A value written as a TOML string, array or
    inline table (``"x"``, ``[1, 2]``, ``{a = 1}``) is read as one; any other value is passed
    as text and the schema converts it (``2``, ``true`` and ``1.5`` where it wants a number or
    a flag, ``4711`` stays a string where it wants one). Use it for secrets and paths that
    differ per machine, e.g. ``EDGE_AGENT__AGENT__STATE_DIR=/data/agent``.
    """
    applied: list[str] = []
    for key in sorted(environ):
        if not key.startswith(ENV_PREFIX) or len(key) == len(ENV_PREFIX):
            continue
        path = [part.lower() for part in key[len(ENV_PREFIX) :].split("__")]
        if any(not part for part in path):
            continue
        node = data
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[path[-1]] = _parse_env_value(environ[key])
        applied.append(".".join(path))
    return applied


def read_toml(path: Path) -> dict[str, Any]:
    """Read a TOML file; raise ConfigError with one clear line when it is missing or malformed."""
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError([ConfigIssue(str(path), "file not found")]) from None
    except IsADirectoryError:
        raise ConfigError([ConfigIssue(str(path), "is a directory, not a config file")]) from None
    except PermissionError:
        raise ConfigError([ConfigIssue(str(path), "permission denied")]) from None
    except UnicodeDecodeError as error:
        raise ConfigError(
            [ConfigIssue(str(path), f"not UTF-8 text (bad byte at offset {error.start})")]
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError([ConfigIssue(str(path), f"TOML syntax error: {error}")]) from None


def validate_config(data: dict[str, Any], *, source: str = "") -> LoadedConfig:
    """Validate a config mapping (file contents or desired state) and resolve its modules.

    Every problem found is collected; ConfigError lists them all.
    """
    try:
        agent_config = AgentConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(issues_from_validation(error)) from None
    issues: list[ConfigIssue] = []
    loaded = LoadedConfig(agent=agent_config, source=source)
    for name, settings in agent_config.modules.items():
        if not settings.enabled:
            continue
        prefix = f"modules.{name}"
        try:
            module_class = load_module_class(name, settings.entry_point)
        except ModuleLoadError as error:
            issues.append(ConfigIssue(prefix, str(error)))
            continue
        try:
            options = module_class.config_model.model_validate(settings.config)
        except ValidationError as error:
            issues.extend(issues_from_validation(error, f"{prefix}.config"))
            continue
        loaded.modules[name] = ModulePlan(name, module_class, settings, options)
    for name, plan in loaded.modules.items():
        for needed in plan.module_class.requires:
            if needed not in loaded.modules:
                issues.append(
                    ConfigIssue(
                        f"modules.{name}", f"requires module {needed!r}, which is not enabled"
                    )
                )
    try:
        start_order({name: plan.module_class.requires for name, plan in loaded.modules.items()})
    except DependencyCycle as error:
        issues.append(ConfigIssue("modules", str(error)))
    if issues:
        raise ConfigError(issues)
    return loaded


def load_config(path: Path, environ: Mapping[str, str] | None = None) -> LoadedConfig:
    """Read, override from the environment, and validate the config file at ``path``."""
    data = read_toml(path)
    apply_env_overrides(data, os.environ if environ is None else environ)
    return validate_config(data, source=str(path))
