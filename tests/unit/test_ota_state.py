"""The durable bookkeeping: state.json, the install log (torn lines), the current link."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edge_agent.ota.layout import OtaLayout
from edge_agent.ota.state import InstallLog, OtaState, Phase, StateStore
from edge_agent.ota.versions import is_newer, parse_version


def test_state_round_trips_and_ignores_unknown_keys(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.json")
    assert store.load().phase is Phase.IDLE
    store.save(OtaState(phase=Phase.SWITCHED, job_id="j1", boot_attempts=2))
    assert store.load().phase is Phase.SWITCHED
    assert store.load().boot_attempts == 2
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left


def test_damaged_state_file_reads_as_idle_with_a_reason(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text("{not json")
    state = StateStore(tmp_path / "state.json").load()
    assert state.phase is Phase.IDLE
    assert state.code == "state-unreadable"


def test_torn_last_line_is_ignored_and_the_next_record_survives(tmp_path: Path) -> None:
    log = InstallLog(tmp_path / "install.log")
    log.append(job_id="j1", old_version="1.0.0", new_version="2.0.0", result="committed")
    with (tmp_path / "install.log").open("ab") as handle:
        handle.write(b'{"job_id": "j2", "resu')  # power cut in the middle of a write
    assert [r["job_id"] for r in log.records()] == ["j1"]
    log.append(job_id="j3", old_version="2.0.0", new_version="3.0.0", result="failed")
    assert [r["job_id"] for r in log.records()] == ["j1", "j3"]
    assert log.has("j3", "failed")
    assert not log.has("j3", "committed")


def test_switch_replaces_the_link_atomically(tmp_path: Path) -> None:
    layout = OtaLayout(tmp_path / "ota")
    for slot in ("a", "b"):
        layout.slot_dir(slot).mkdir(parents=True)
    assert layout.active_slot() is None
    layout.switch_to("a")
    assert os.readlink(layout.current) == "slots/a"
    layout.switch_to("b")
    assert os.readlink(layout.current) == "slots/b"
    assert layout.active_slot() == "b"
    assert sorted(p.name for p in layout.root.iterdir()) == ["current", "slots"]
    with pytest.raises(RuntimeError, match="active slot"):
        layout.wipe_slot("b")


def test_versions_compare_numerically() -> None:
    assert is_newer("1.10.0", "1.9.9")
    assert not is_newer("1.0", "1.0.0")
    assert parse_version("2") == (2, 0, 0, 0)
    with pytest.raises(ValueError, match="not a version"):
        parse_version("1.0.0-rc1")
