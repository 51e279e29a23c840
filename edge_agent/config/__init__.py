"""Typed configuration: one TOML file, pydantic models, environment overrides."""

from edge_agent.config.desired import parse_desired
from edge_agent.config.errors import ConfigError, ConfigIssue
from edge_agent.config.loader import (
    LoadedConfig,
    ModulePlan,
    apply_env_overrides,
    load_config,
    read_toml,
    validate_config,
)
from edge_agent.config.model import AgentConfig, AgentSettings, ModuleSettings

__all__ = [
    "AgentConfig",
    "AgentSettings",
    "ConfigError",
    "ConfigIssue",
    "LoadedConfig",
    "ModulePlan",
    "ModuleSettings",
    "apply_env_overrides",
    "load_config",
    "parse_desired",
    "read_toml",
    "validate_config",
]
