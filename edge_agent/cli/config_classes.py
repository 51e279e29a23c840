"""``edge-agent config classes``: every setting of the installed models and who may change it.

Tunable settings may come from a desired state; privileged ones only from a signed config
target (docs/security.md, whose table is this command's ``--markdown`` output).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from dataclasses import dataclass

from pydantic import BaseModel

from edge_agent.cli.exit_codes import Exit
from edge_agent.config.classes import Setting, SettingClass, walk_settings
from edge_agent.config.model import AgentSettings, MetricsSettings, ModuleSettings, SpoolSettings
from edge_agent.discovery import ModuleLoadError, installed_modules, load_module_class


@dataclass(frozen=True)
class Section:
    """One table of the config file and the model that checks it."""

    table: str
    model: type[BaseModel]
    note: str = ""


def sections() -> Iterator[Section]:
    """The runtime's tables, then each installed module's options, by module name."""
    yield Section("agent", AgentSettings, "local: from the file only")
    yield Section("spool", SpoolSettings, "local: from the file only")
    yield Section("metrics", MetricsSettings, "local: from the file only; absent: no endpoint")
    yield Section("modules.NAME", ModuleSettings, "supervision of every module")
    for name in sorted(installed_modules()):
        try:
            model = load_module_class(name).config_model
        except ModuleLoadError:
            continue  # `edge-agent modules` names what failed to import
        yield Section(f"modules.{name}.config", model)


def _rows(section: Section) -> list[Setting]:
    return list(walk_settings(section.model))


def render_markdown() -> str:
    """One Markdown table: per section, its tunable and its privileged settings.

    Settings inside a privileged one are privileged too and not listed separately.
    """
    lines = [
        "| table | tunable (a desired state may change it) | privileged (signed config only) |",
        "|---|---|---|",
    ]
    for section in sections():
        shown = [s for s in _rows(section) if s.within is SettingClass.TUNABLE]
        cells = [
            ", ".join(f"`{s.path}`" for s in shown if s.effective is wanted) or "-"
            for wanted in (SettingClass.TUNABLE, SettingClass.PRIVILEGED)
        ]
        note = f" ({section.note})" if section.note else ""
        lines.append(f"| `[{section.table}]`{note} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines) + "\n"


def show_classes(args: argparse.Namespace) -> int:
    """Print the classes of every setting (``--markdown`` for docs, ``--json`` for tools)."""
    if args.markdown:
        print(render_markdown(), end="")
        return Exit.OK
    rows = [
        {"table": section.table, "setting": setting.path, "class": setting.effective.value}
        for section in sections()
        for setting in _rows(section)
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return Exit.OK
    for row in rows:
        print(f"{row['class']:<11} [{row['table']}] {row['setting']}")
    return Exit.OK


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``config`` command group to the ``edge-agent`` parser."""
    config = sub.add_parser("config", help="configuration tools")
    actions = config.add_subparsers(dest="config_command", required=True, metavar="COMMAND")
    classes = actions.add_parser(
        "classes", help="who may change each setting: tunable (desired state) or privileged"
    )
    form = classes.add_mutually_exclusive_group()
    form.add_argument("--markdown", action="store_true", help="tables for docs/security.md")
    form.add_argument("--json", action="store_true")
    classes.set_defaults(handler=show_classes)
