"""Command groups installed packages contribute to ``edge-agent`` through an entry point."""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from edge_agent.cli.contributed import COMMAND_GROUP, add_contributed_commands, groups_needed
from edge_agent.cli.main import build_parser


def install_distribution(site: Path, name: str, entry_points: dict[str, str]) -> None:
    """A real (if tiny) installed distribution that importlib.metadata finds on sys.path."""
    info = site / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    lines = "".join(f"{key} = {value}\n" for key, value in entry_points.items())
    (info / "entry_points.txt").write_text(f"[{COMMAND_GROUP}]\n{lines}")


def test_the_cloud_link_contributes_cloud_check() -> None:
    args = build_parser().parse_args(["cloud", "check", "--config", "agent.toml"])
    assert args.handler.__module__ == "edge_agent.modules.cloud_link.cli"
    assert args.module == "cloud-link"


def test_a_broken_group_is_left_out_with_one_line_and_the_rest_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    (site / "shiny_tools").mkdir(parents=True)
    (site / "shiny_tools" / "__init__.py").write_text(
        "def register(sub):\n    sub.add_parser('shiny', help='a contributed group')\n"
    )
    install_distribution(
        site,
        "vendor_tools",
        {"broken": "vendor_tools_missing.cli:register", "shiny": "shiny_tools:register"},
    )
    monkeypatch.syspath_prepend(str(site))
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    warnings = io.StringIO()
    added = add_contributed_commands(sub, warn=warnings)
    assert "shiny" in added
    assert "cloud" in added
    assert "broken" not in added
    [line] = warnings.getvalue().splitlines()
    assert "'broken'" in line
    assert "vendor_tools" in line
    assert "ModuleNotFoundError" in line
    assert parser.parse_args(["shiny"]).command == "shiny"


def modules_after(arguments: list[str], tmp_path: Path) -> set[str]:
    """The modules a fresh interpreter holds after ``edge-agent ARGUMENTS`` returns."""
    script = (
        "import sys, json\n"
        "from edge_agent.cli.main import main\n"
        f"status = main({arguments!r})\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    last = done.stdout.strip().splitlines()[-1]
    return set(json.loads(last))


def test_run_and_other_built_in_commands_load_no_contributed_group(tmp_path: Path) -> None:
    loaded = modules_after(["--log-format", "json", "run", "--config", "missing.toml"], tmp_path)
    assert "edge_agent.cli.main" in loaded
    assert not {name for name in loaded if name.startswith("edge_agent.modules.")}
    assert "udsoncan" not in loaded
    assert "edge_agent.modules.diagnostics" not in loaded


def test_a_contributed_command_loads_its_own_group_only(tmp_path: Path) -> None:
    loaded = modules_after(["ids", "scan", "missing.log", "--profile", "p.json"], tmp_path)
    assert "edge_agent.modules.can_ids.commands" in loaded
    assert "edge_agent.modules.diagnostics" not in loaded


def test_help_and_unknown_commands_see_every_group(tmp_path: Path) -> None:
    assert groups_needed(["--help"], {"run"}, ()) is None
    assert groups_needed([], {"run"}, ()) is None
    assert groups_needed(["nonsense"], {"run"}, ()) is None
    assert groups_needed(["--log-format", "run", "diag"], {"run"}, ("--log-format",)) == {"diag"}
    assert groups_needed(["--debug", "run", "--help"], {"run"}, ()) == set()
    usage = subprocess.run(
        [sys.executable, "-m", "edge_agent", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert all(name in usage for name in ("diag", "ids", "cloud", "run"))
