"""state.json written by another version, or damaged: read without failing, settled safely."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.cli.main import main as cli
from edge_agent.ota.layout import OtaLayout
from edge_agent.ota.settle import needs_settling, settle
from edge_agent.ota.state import OtaState, Phase, StateStore

TRIAL = {
    "format": 1,
    "phase": "switched",
    "job_id": "job-7",
    "target": "edge-agent",
    "version": "3.0.0",
    "from_slot": "a",
    "to_slot": "b",
    "from_version": "2.0.0",
    "boot_attempts": 1,
    "finalised": False,
}


def written(tmp_path: Path, document: Any) -> StateStore:
    path = tmp_path / "state.json"
    path.write_text(json.dumps(document))
    return StateStore(path)


def test_a_phase_this_version_does_not_know_reads_as_unknown_with_the_reason(
    tmp_path: Path,
) -> None:
    state = written(tmp_path, {**TRIAL, "phase": "staging-delta", "delta_base": "x"}).load()
    assert state.phase is Phase.UNKNOWN
    assert state.in_progress  # no new job is taken until it is settled
    assert (state.from_slot, state.to_slot, state.job_id) == ("a", "b", "job-7")
    assert state.read_warning == (
        "state.json not fully understood: phase 'staging-delta' is not known to this version"
    )


def test_values_of_the_wrong_type_keep_their_defaults_and_are_named(tmp_path: Path) -> None:
    finished = {"phase": "committed", "finalised": True, "floor_version": "2.0.0"}
    state = written(tmp_path, {**finished, "boot_attempts": "3", "progress": [1]}).load()
    assert state.phase is Phase.COMMITTED  # nothing under way: defaults are harmless
    assert (state.boot_attempts, state.progress, state.floor_version) == (0, {}, "2.0.0")
    assert "boot_attempts '3' is not understood" in state.read_warning
    assert "progress [1] is not understood" in state.read_warning
    assert "\n" not in state.read_warning


def test_anything_not_understood_in_the_middle_of_an_attempt_is_unknown(tmp_path: Path) -> None:
    assert written(tmp_path, {**TRIAL, "boot_attempts": -1}).load().phase is Phase.UNKNOWN
    assert written(tmp_path, {**TRIAL, "from_slot": 1}).load().phase is Phase.UNKNOWN
    later_format = written(tmp_path, {**TRIAL, "format": 2}).load()
    assert later_format.phase is Phase.UNKNOWN
    assert "format 2 is newer than 1" in later_format.read_warning
    idle_in_a_later_format = written(tmp_path, {"format": 2, "phase": "idle"}).load()
    assert idle_in_a_later_format.phase is Phase.IDLE


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"", "not valid JSON"),
        (b'{"phase": "switched", "from_sl', "not valid JSON"),
        (b"\xff\xfe garbage", "not valid JSON"),
        (b"[1, 2]", "holds a JSON list"),
        (b"[" * 100_000, "not valid JSON"),  # deep nesting: RecursionError inside json
        (b" " * (1024 * 1024 + 1), "larger than"),
    ],
)
def test_an_unreadable_file_reads_as_idle_with_a_one_line_reason(
    tmp_path: Path, content: bytes, why: str
) -> None:
    (tmp_path / "state.json").write_bytes(content)
    state = StateStore(tmp_path / "state.json").load()
    assert state.phase is Phase.IDLE
    assert state.code == "state-unreadable"
    assert why in state.reason
    assert state.read_warning == state.reason


def test_the_read_warning_is_never_saved(tmp_path: Path) -> None:
    store = written(tmp_path, {**TRIAL, "phase": "staging-delta"})
    store.save(store.load())
    assert "read_warning" not in json.loads(store.path.read_text())


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=len(json.dumps(TRIAL).encode())))
def test_a_state_file_cut_at_any_byte_reads_without_failing(cut: int) -> None:
    raw = json.dumps(TRIAL).encode()[:cut]
    state = OtaStateFromBytes.load(raw)
    assert isinstance(state.phase, Phase)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from([*TRIAL, "extra"]),
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    )
)
def test_any_object_reads_without_failing_and_settles_to_a_known_phase(
    document: dict[str, Any],
) -> None:
    state = OtaState.from_json(document)
    for ab, active, running in (
        (True, "a", "a"),
        (True, "b", "b"),
        (True, None, None),
        (False, "rootfs.1", "rootfs.1"),
    ):
        settled = settle(state, ab=ab, active=active, running=running)
        assert settled.phase is not Phase.UNKNOWN
        assert not needs_settling(settled, ab=ab)


class OtaStateFromBytes:
    """Reads bytes through the real StateStore (a temporary file per example)."""

    @staticmethod
    def load(raw: bytes) -> OtaState:
        import tempfile

        with tempfile.TemporaryDirectory() as scratch:
            path = Path(scratch) / "state.json"
            path.write_bytes(raw)
            return StateStore(path).load()


@pytest.mark.parametrize(
    ("active", "running", "phase", "finalised", "decided"),
    [
        ("b", "b", Phase.SWITCHED, False, "treated as a trial boot"),
        ("b", "a", Phase.SWITCHED, False, "treated as a trial boot"),
        ("a", "b", Phase.ROLLED_BACK, False, "finishing the rollback to slot a"),
        ("a", "a", Phase.FAILED, False, "attempt abandoned; staying on slot a"),
        (None, None, Phase.IDLE, True, "nothing to finish; staying on slot none"),
    ],
)
def test_an_unknown_phase_is_settled_from_the_slots(
    active: str | None, running: str | None, phase: Phase, finalised: bool, decided: str
) -> None:
    state = OtaState.from_json({**TRIAL, "phase": "staging-delta"})
    settled = settle(state, ab=True, active=active, running=running)
    assert (settled.phase, settled.finalised, settled.code) == (phase, finalised, "state-unknown")
    assert settled.reason.startswith("state.json not fully understood: phase 'staging-delta'")
    assert f"; {decided}" in settled.reason
    assert (settled.from_slot, settled.to_slot, settled.boot_attempts) == ("a", "b", 1)


def test_an_attempt_without_a_slot_pair_touches_nothing() -> None:
    state = OtaState.from_json({**TRIAL, "from_slot": "c"})
    assert needs_settling(state, ab=True)
    settled = settle(state, ab=True, active="b", running="b")
    assert (settled.phase, settled.code) == (Phase.IDLE, "state-unknown")
    assert "staying on slot b" in settled.reason


def test_rauc_settles_by_the_booted_slot() -> None:
    state = OtaState.from_json({**TRIAL, "phase": "x", "from_slot": "rootfs.0", "to_slot": "other"})
    assert not needs_settling(OtaState.from_json({**TRIAL, "from_slot": "rootfs.0"}), ab=False)
    on_old = settle(state, ab=False, active="rootfs.0", running="rootfs.0")
    assert on_old.phase is Phase.FAILED
    on_new = settle(state, ab=False, active="rootfs.1", running="rootfs.1")
    assert on_new.phase is Phase.SWITCHED


def test_a_state_that_is_understood_is_left_alone() -> None:
    state = OtaState.from_json(TRIAL)
    assert state.read_warning == ""
    assert settle(state, ab=True, active="b", running="b") is state


def test_ota_status_shows_a_foreign_state_and_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layout = OtaLayout.for_state_dir(tmp_path)
    layout.root.mkdir()
    layout.state_file.write_text(json.dumps({**TRIAL, "phase": "staging-delta", "format": 2}))
    layout.log_file.write_bytes(b'{"job_id": "j", "result": "committed"}\n[[[[\n\xff\n')
    assert cli(["ota", "status", "--state-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "phase unknown job job-7 -> 3.0.0" in out
    assert "warning: state.json not fully understood: phase 'staging-delta'" in out
    assert cli(["ota", "status", "--json", "--state-dir", str(tmp_path)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["state"]["phase"] == "unknown"
    assert "format 2 is newer than 1" in report["read_warning"]
    assert [r["job_id"] for r in report["log"]] == ["j"]
