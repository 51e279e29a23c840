"""Loading the agent's TOML file: syntax, environment overrides, schema, module options."""

from __future__ import annotations

import copy
import os
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
from edge_agent.untrusted import UntrustedDataError, load_toml_bounded

ENV_PREFIX = "EDGE_AGENT__"
# A vehicle's config file is a few KiB; these bounds only stop a hostile or broken one.
MAX_CONFIG_BYTES = 1024 * 1024
MAX_CONFIG_DEPTH = 32


@dataclass
class ModulePlan:
    """A module ready to be started: its class, supervision settings and validated options."""

    name: str
    module_class: type[Module[Any]]
    settings: ModuleSettings
    config: BaseModel


@dataclass(frozen=True)
class ConfigLayers:
    """The documents a configuration is composed from, lowest first (edge_agent.config.compose).

    ``local`` is the file's mapping (after environment overrides) and ``origin`` where it
    came from; ``signed`` the signed config target in force and ``desired`` the desired
    state in force (each ``{"version", "modules"}``), or None.
    """

    local: dict[str, Any] = field(default_factory=dict)
    origin: str = ""
    signed: dict[str, Any] | None = None
    desired: dict[str, Any] | None = None

    @property
    def signed_version(self) -> Any:
        """The version of the signed config target in force, or None."""
        return None if self.signed is None else self.signed.get("version")

    @property
    def desired_version(self) -> Any:
        """The version of the desired state in force, or None."""
        return None if self.desired is None else self.desired.get("version")


@dataclass
class LoadedConfig:
    """A validated configuration with every enabled module resolved and its options checked.

    ``layers`` are the documents it was composed from (the file, the signed config target,
    the desired state), kept so a new desired state or signed config can be laid over the
    same local file again.
    """

    agent: AgentConfig
    modules: dict[str, ModulePlan] = field(default_factory=dict)
    source: str = ""
    desired_version: Any = None
    layers: ConfigLayers = field(default_factory=ConfigLayers)
    # Why a stored desired state was not applied at start ("" when none was stored or it was).
    desired_ignored: str = ""


def _parse_env_value(raw: str) -> Any:
    try:
        value = load_toml_bounded(f"v = {raw}", max_depth=MAX_CONFIG_DEPTH)["v"]
    except UntrustedDataError:
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
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError([ConfigIssue(str(path), "file not found")]) from None
    except IsADirectoryError:
        raise ConfigError([ConfigIssue(str(path), "is a directory, not a config file")]) from None
    except PermissionError:
        raise ConfigError([ConfigIssue(str(path), "permission denied")]) from None
    try:
        return load_toml_bounded(
            raw, max_bytes=MAX_CONFIG_BYTES, max_depth=MAX_CONFIG_DEPTH, what="file"
        )
    except UntrustedDataError as error:
        raise ConfigError([ConfigIssue(str(path), str(error))]) from None


def validate_config(data: dict[str, Any], *, source: str = "") -> LoadedConfig:
    """Validate a config mapping (file contents or desired state) and resolve its modules.

    Every problem found is collected; ConfigError lists them all.
    """
    try:
        agent_config = AgentConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(issues_from_validation(error)) from None
    issues: list[ConfigIssue] = []
    loaded = LoadedConfig(
        agent=agent_config, source=source, layers=ConfigLayers(copy.deepcopy(data), source)
    )
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
