"""``edge-agent bench``: benchmarks come from the ``edge_agent.benchmarks`` entry-point group.

Third-party benchmarks are a real distribution on ``sys.path`` (a ``.dist-info`` directory
with ``entry_points.txt`` beside the plugin's modules), found by ``importlib.metadata`` the
way an installed one is.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.bench.everything import run_every
from edge_agent.bench.registry import BenchmarkLoadError, find_benchmark, installed_benchmarks
from edge_agent.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
OWNERS = {
    "bus": "edge_agent.bench.",
    "spool": "edge_agent.bench.",
    "ingest": "edge_agent.modules.can_reader.",
    "batch": "edge_agent.modules.telemetry.",
    "uplink": "edge_agent.modules.telemetry.",
    "fastpath": "edge_agent.simulator.rig.",
    "drain": "edge_agent.simulator.rig.",
}
PLUGINS = {
    "echo": "bench_echo:bench_from_args",
    "broken": "bench_broken:bench_from_args",
    "absent": "bench_not_installed.figures:bench_from_args",
    "all": "bench_echo:bench_from_args",
}
ECHO = '''
"""A benchmark that reports the arguments it got."""
def bench_from_args(args):
    return {"messages": args.messages}
def render_text(result):
    return f"echo: {result['messages']} messages"
'''


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The distribution ``bench-plugins`` 1.0 with the benchmarks of ``PLUGINS``."""
    dist_info = tmp_path / "bench_plugins-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: bench-plugins\nVersion: 1.0\n"
    )
    lines = ["[edge_agent.benchmarks]", *(f"{n} = {v}" for n, v in PLUGINS.items())]
    (dist_info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "bench_echo.py").write_text(ECHO)
    (tmp_path / "bench_broken.py").write_text("import a_dependency_nobody_installed\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    for name in ("bench_echo", "bench_broken"):
        sys.modules.pop(name, None)


def bench(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["bench", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_each_benchmark_of_the_project_is_an_entry_point_of_its_owner() -> None:
    installed = installed_benchmarks()
    assert set(OWNERS) <= set(installed)
    for name, owner in OWNERS.items():
        assert installed[name].value.startswith(owner), installed[name]
        assert installed[name].distribution == "edge-agent"


def test_listing_imports_no_benchmark() -> None:
    # Finding a benchmark's module imports its parent packages at most, never the module.
    benchmarks = [value.partition(":")[0] for value in PLUGINS.values()]
    benchmarks += [entry.module_path for entry in installed_benchmarks().values()]
    probe = (
        "import sys\n"
        "from edge_agent.cli.main import main\n"
        "main(['bench', 'list'])\n"
        f"print(sorted(set({benchmarks!r}) & set(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-P", "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.splitlines()[-1] == "[]", result.stdout


@pytest.mark.usefixtures("plugins")
def test_list_shows_what_is_installed_with_its_distribution(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for argv in (["list"], ["--list"], []):
        code, out, _ = bench(capsys, *argv)
        assert code == 0
        rows = {line.split()[0]: line for line in out.splitlines()[1:]}
        assert "bench-plugins 1.0" in rows["echo"]
        assert "bench_echo:bench_from_args" in rows["echo"]
        assert {"broken", "bus", "fastpath", "all"} <= set(rows)
    code, out, _ = bench(capsys, "list", "--json")
    assert code == 0
    listed = {row["name"]: row for row in json.loads(out)}
    assert listed["echo"] == {
        "name": "echo",
        "distribution": "bench-plugins 1.0",
        "entry_point": "bench_echo:bench_from_args",
    }


@pytest.mark.usefixtures("plugins")
def test_a_benchmark_whose_package_is_not_installed_is_not_listed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert "absent" not in installed_benchmarks()
    code, _, err = bench(capsys, "absent")
    assert code == 2
    assert err.startswith("edge-agent: bench: unknown benchmark 'absent' (installed: ")
    assert "echo" in err


@pytest.mark.usefixtures("plugins")
def test_a_plugin_runs_with_the_common_flags_and_renders_its_text(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert bench(capsys, "echo", "--messages", "7") == (0, "echo: 7 messages\n", "")
    code, out, _ = bench(capsys, "echo", "--messages", "7", "--json")
    assert code == 0
    assert json.loads(out) == {"messages": 7}


@pytest.mark.usefixtures("plugins")
def test_an_import_failure_is_one_line_naming_the_plugin(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = bench(capsys, "broken")
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("edge-agent: bench: benchmark 'broken' (entry point ")
    assert "'bench_broken:bench_from_args' of distribution 'bench-plugins'" in err
    assert "failed to import: ModuleNotFoundError" in err
    assert "a_dependency_nobody_installed" in err


@pytest.mark.usefixtures("plugins")
def test_a_plugin_cannot_take_a_name_of_the_command_itself(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert "all" not in installed_benchmarks()
    code, _, err = bench(capsys, "list")
    assert code == 0
    assert "ignored 'all' (entry point 'bench_echo:bench_from_args'" in err
    assert "rename the entry point" in err


@pytest.mark.usefixtures("plugins")
def test_all_runs_each_benchmark_and_reports_the_broken_one_beside_the_others() -> None:
    installed = installed_benchmarks()
    report = run_every({name: installed[name] for name in ("broken", "echo")})
    results = report["benchmarks"]
    assert list(results) == ["broken", "echo"]
    assert results["echo"]["messages"] is None  # every benchmark runs with its defaults
    assert "duration_s" in results["echo"]
    assert "benchmark 'broken'" in results["broken"]["error"]
    assert "failed to import" in results["broken"]["error"]
    assert report["machine"]["cpus"]


def test_an_unknown_name_lists_the_installed_ones() -> None:
    with pytest.raises(BenchmarkLoadError, match=r"unknown benchmark 'nope' \(installed: .*bus"):
        find_benchmark("nope")


def test_the_runtime_names_no_simulator_and_its_bench_names_no_module() -> None:
    runtime = ROOT / "edge_agent"
    for path in runtime.rglob("*.py"):
        assert "edge_agent.simulator" not in path.read_text(), path
    for folder in ("bench", "cli"):
        for path in (runtime / folder).rglob("*.py"):
            assert "edge_agent.modules" not in path.read_text(), path
