"""Under CI=true a skip is a failure (but for socketcan tests), and .ci/run lists what skipped.

A throw-away test directory is run by a real pytest with this project's plugin
(tests/fixtures/real_parts.py), once as on a developer's machine and once as in CI; the
JUnit report goes through scripts/skip-report as `.ci/run` does.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"

SAMPLE = """
import pytest

def test_needs_mosquitto():
    pytest.skip("mosquitto not installed")

@pytest.mark.skipif(True, reason="libfaketime not installed")
def test_needs_faketime():
    pass

@pytest.mark.socketcan
def test_needs_vcan0():
    pytest.skip("no vcan0 interface: run scripts/test-vcan")

@pytest.mark.xfail(reason="known", strict=True)
def test_expected_to_fail():
    assert False

def test_runs():
    pass
"""


def run_sample(tmp_path: Path, *, ci: bool) -> tuple[subprocess.CompletedProcess[str], str]:
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    (tmp_path / "test_skipped_module.py").write_text(
        'import pytest\npytest.skip("buildah not installed", allow_module_level=True)\n'
    )
    report = tmp_path / "junit.xml"
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = str(TESTS)
    if ci:
        env["CI"] = "true"
    result = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-c", os.devnull, "-p", "fixtures.real_parts"),
            *("-p", "no:cacheprovider", "-p", "no:randomly", "-q", "-rs"),
            *("-o", "markers=socketcan: needs vcan0", "--continue-on-collection-errors"),
            *(f"--junitxml={report}", f"--rootdir={tmp_path}", str(tmp_path)),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    summary = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "skip-report"), str(report)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result, summary.stdout


def test_outside_ci_a_missing_part_skips(tmp_path: Path) -> None:
    result, summary = run_sample(tmp_path, ci=False)
    assert result.returncode == 0, result.stdout
    assert "1 passed, 4 skipped, 1 xfailed" in result.stdout
    assert summary.splitlines()[0] == "skipped tests: 4"


def test_under_ci_a_missing_part_fails_and_only_socketcan_skips(tmp_path: Path) -> None:
    result, summary = run_sample(tmp_path, ci=True)
    assert result.returncode != 0
    # A skip in setup (a skipif mark, a fixture) fails as an error, one in the test as a failure.
    assert "1 failed, 1 passed, 1 skipped, 1 xfailed, 2 errors" in result.stdout, result.stdout
    assert "a missing real part fails the run instead of skipping it: mosquitto" in result.stdout
    assert "libfaketime not installed" in result.stdout
    assert "module skipped at collection: buildah not installed" in result.stdout
    assert summary.splitlines() == [
        "skipped tests: 1",
        "  test_sample::test_needs_vcan0: no vcan0 interface: run scripts/test-vcan",
    ]
