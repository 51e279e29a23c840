"""A health file written by another version: ``edge-agent status`` shows it or says why not."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.cli.health_text import render_health
from edge_agent.cli.main import main
from edge_agent.health import HEALTH_FILE, HealthFile, NoAgentRunning


def write(state_dir: Path, document: Any) -> None:
    (state_dir / HEALTH_FILE).write_text(json.dumps(document))


def test_a_live_agent_of_another_shape_is_shown_as_far_as_understood(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(
        tmp_path,
        {
            "agent": {"pid": os.getpid(), "updated_at": time.time(), "state": {"v": 2}},
            "modules": {"heartbeat": {"status": "up"}, "odd": ["not", "a", "table"]},
            "format": 7,
        },
    )
    assert main(["status", "--state-dir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"agent ? vehicle ? pid {os.getpid()}: ?, up ?, loop lag ? ms"
    assert lines[1].split() == ["heartbeat", "?", "restarts=?"]
    assert lines[2] == "  warning: health file from another version; not understood: modules.odd"


@pytest.mark.parametrize(
    ("agent", "why"),
    [
        ({"updated_at": "yesterday"}, "agent.updated_at 'yesterday' is not a time"),
        ({"updated_at": None}, "agent.updated_at None is not a time"),
        ({"pid": -1}, "pid -1 from"),
        ({"pid": 0}, "pid 0 from"),
        ({"pid": 10**30}, "is gone"),
        ({"pid": True}, "pid True from"),
    ],
)
def test_the_fields_that_say_an_agent_runs_must_be_understood(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], agent: dict[str, Any], why: str
) -> None:
    write(tmp_path, {"agent": {"pid": os.getpid(), "updated_at": time.time(), **agent}})
    with pytest.raises(NoAgentRunning, match="no agent") as raised:
        HealthFile(tmp_path).read(time.time())
    assert why in str(raised.value)
    assert main(["status", "--state-dir", str(tmp_path)]) == 3
    assert why in capsys.readouterr().err


def test_deep_nesting_is_no_agent_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / HEALTH_FILE).write_text('{"agent": ' + "[" * 100_000)
    with pytest.raises(NoAgentRunning, match="nested too deeply"):
        HealthFile(tmp_path).read(time.time())


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(st.text(max_size=6), children, max_size=3)
        ),
        max_leaves=12,
    ),
    st.dictionaries(
        st.sampled_from(["version", "state", "ready", "started_at", "loop_lag_ms", "pid"]),
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    ),
)
def test_rendering_any_snapshot_never_fails(modules: Any, agent: dict[str, Any]) -> None:
    lines = render_health({"agent": agent, "modules": modules}, time.time())
    assert lines[0].startswith("agent ")
