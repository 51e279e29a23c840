"""Every setting declares its class; the classes decide what a desired state may touch."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from edge_agent.cli.config_classes import render_markdown, sections
from edge_agent.cli.main import main as cli
from edge_agent.config.classes import (
    SIGNED_ONLY,
    SettingClass,
    merge_tunable,
    privileged,
    refuse_privileged,
    tunable,
    walk_settings,
)
from edge_agent.config.model import AgentConfig
from edge_agent.discovery import installed_modules, load_module_class

DOCS = Path(__file__).resolve().parents[2] / "docs" / "security.md"
TABLE = re.compile(r"<!-- setting-classes:begin -->\n(.*?)<!-- setting-classes:end -->", re.S)


def every_model() -> list[tuple[str, type[BaseModel]]]:
    """The runtime's models and the config model of every installed module (entry points)."""
    models: list[tuple[str, type[BaseModel]]] = [("config file", AgentConfig)]
    for name in sorted(installed_modules()):
        models.append((f"modules.{name}.config", load_module_class(name).config_model))
    return models


@pytest.mark.parametrize(("table", "model"), every_model(), ids=[t for t, _ in every_model()])
def test_every_field_of_every_installed_model_declares_its_class(
    table: str, model: type[BaseModel]
) -> None:
    unclassified = [s.path for s in walk_settings(model) if s.declared is None]
    assert not unclassified, f"[{table}] fields without tunable()/privileged(): {unclassified}"


@pytest.mark.parametrize(("table", "model"), every_model(), ids=[t for t, _ in every_model()])
def test_lists_and_tables_a_desired_state_replaces_hold_only_tunable_fields(
    table: str, model: type[BaseModel]
) -> None:
    # AgentConfig.modules is merged module by module, field by field, never replaced whole.
    settings = [s for s in walk_settings(model) if not s.path.startswith("modules")]
    leaks = [
        s.path
        for s in settings
        if s.replaced_whole and s.within is SettingClass.TUNABLE and s.declared is not s.within
    ]
    assert not leaks, f"[{table}] privileged fields inside a tunable list or table: {leaks}"


def test_no_test_hook_is_a_production_setting() -> None:
    hooks = re.compile(r"fault|inject|test|hold_s$")
    found = [
        f"{table}.{s.path}"
        for table, model in every_model()
        for s in walk_settings(model)
        if hooks.search(s.name)
    ]
    assert not found


def test_what_names_code_commands_paths_hosts_tls_or_can_is_privileged() -> None:
    effective = {
        f"{section.table}.{s.path}": s.effective
        for section in sections()
        for s in walk_settings(section.model)
    }
    for path in (
        "modules.NAME.entry_point",
        "modules.NAME.enabled",
        "modules.NAME.isolation",
        "modules.ota.config.rauc.command",
        "modules.ota.config.updater",
        "modules.ota.config.state_dir",
        "modules.ota.config.guard.parked_max_speed",
        "modules.cloud-link.config.host",
        "modules.cloud-link.config.port",
        "modules.cloud-link.config.tls",
        "modules.cloud-link.config.tls.ca_file",
        "modules.cloud-link.config.spool_path",
        "modules.can-reader.config.buses[].interface",
        "modules.fast-path.config.policy.full_ttc_s",
        "modules.fast-path.config.can.channel",
        "spool.max_mb",
        "agent.state_dir",
    ):
        assert effective[path] is SettingClass.PRIVILEGED, path
    for path in (
        "modules.telemetry.config.streams",
        "modules.telemetry.config.captures[].pre_s",
        "modules.cloud-link.config.active_link",
        "modules.cloud-link.config.links.*.budget_bytes",
        "modules.cloud-link.config.command_timeout_s",
        "modules.fast-path.config.latency_budget_ms",
        "agent.log_level",
    ):
        assert effective[path] is SettingClass.TUNABLE, path


class Inner(BaseModel):
    knob: int = tunable(1)
    secret: str = privileged("x")


class Outer(BaseModel):
    section: Inner = tunable(default_factory=Inner)
    locked: Inner = privileged(default_factory=Inner)
    items: list[Inner] = tunable(default_factory=list)
    plain: int = 0


def test_refusal_names_each_privileged_key_and_walks_tunable_sections() -> None:
    document: dict[str, Any] = {
        "section": {"knob": 2, "secret": "y"},
        "locked": {"knob": 3},
        "plain": 1,
        "unknown": 4,
    }
    issues = refuse_privileged(document, Outer, "m")
    assert [str(i) for i in issues] == [
        f"m.section.secret: {SIGNED_ONLY}",
        f"m.locked: {SIGNED_ONLY}",
        f"m.plain: {SIGNED_ONLY}",  # unclassified: privileged
    ]


def test_merge_goes_into_sections_and_replaces_lists() -> None:
    base = {"section": {"knob": 1, "secret": "kept"}, "items": [{"knob": 1}, {"knob": 2}]}
    merged = merge_tunable(base, {"section": {"knob": 5}, "items": [{"knob": 9}]}, Outer)
    assert merged == {"section": {"knob": 5, "secret": "kept"}, "items": [{"knob": 9}]}
    assert base["section"] == {"knob": 1, "secret": "kept"}


def test_classes_show_in_the_json_schema() -> None:
    schema = Inner.model_json_schema()["properties"]
    assert schema["knob"]["edge_agent_class"] == "tunable"
    assert schema["secret"]["edge_agent_class"] == "privileged"


def test_docs_security_table_is_what_the_models_say() -> None:
    match = TABLE.search(DOCS.read_text())
    assert match, "docs/security.md has no setting-classes table"
    assert match.group(1) == render_markdown(), (
        "docs/security.md is stale: paste `edge-agent config classes --markdown` between the "
        "setting-classes markers"
    )


def test_config_classes_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["config", "classes"]) == 0
    out = capsys.readouterr().out
    assert "privileged  [modules.cloud-link.config] host" in out
    assert "tunable     [modules.telemetry.config] streams" in out
