"""The one-owner rules of docs/architecture.md, checked on the source tree."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ROOT / "edge_agent"
BATCH_FORMAT = "edge_agent.modules.telemetry.batch"


def _python_files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*.py") if "__pycache__" not in path.parts)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            names.add(node.module)
    return names


def test_the_runtime_names_no_module_and_no_simulator() -> None:
    pattern = re.compile(r"edge_agent\.modules\.|edge_agent\.simulator")
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in _python_files(RUNTIME)
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []


@pytest.mark.parametrize(
    "folder",
    ["edge_agent/supervisor", "edge_agent/spool", "modules/cloud_link"],
)
def test_carriers_of_opaque_records_import_nothing_from_the_batch_format(folder: str) -> None:
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _python_files(ROOT / folder)
        for name in _imports(path)
        if name.startswith(BATCH_FORMAT)
    ]
    assert offenders == []


def test_the_cloud_link_uses_no_supervisor_internals() -> None:
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _python_files(ROOT / "modules" / "cloud_link")
        for name in _imports(path)
        if name.startswith(("edge_agent.supervisor", "edge_agent.modules."))
        and not name.startswith("edge_agent.modules.cloud_link")
    ]
    assert offenders == []
