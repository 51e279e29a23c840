"""kill -9 of a real writer process at random instants loses no acknowledged record."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def load_harness() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "spool_kill_loop", FIXTURES / "spool_kill_loop.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_fifty_random_kills_lose_nothing_acknowledged(tmp_path: Path) -> None:
    harness = load_harness()
    iterations = int(os.environ.get("SPOOL_KILL_ITERATIONS", "50"))
    report = harness.kill_loop(iterations, tmp_path, seed=20_250)
    assert report.problems == []
    assert report.iterations == iterations
    assert report.acknowledged > iterations  # the writers did get work done
    assert report.acked_by_uplink > 0
