"""candump .log recording: the line format, a property round trip, whole recordings."""

from __future__ import annotations

import io
from itertools import pairwise
from pathlib import Path

import can
import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.simulator.recorder import CandumpRecorder, candump_line
from edge_agent.simulator.runner import record_scenario
from edge_agent.simulator.scenarios import get_scenario


def test_line_format_matches_candump() -> None:
    frame = can.Message(
        timestamp=1436509052.249713,
        arbitration_id=0x123,
        data=bytes.fromhex("DEADBEEF"),
        is_extended_id=False,
    )
    assert candump_line(frame, "vcan0") == "(1436509052.249713) vcan0 123#DEADBEEF"
    extended = can.Message(timestamp=1.0, arbitration_id=0x1ABCDEF, data=b"", is_extended_id=True)
    assert candump_line(extended, "can1") == "(1.000000) can1 01ABCDEF#"
    remote = can.Message(
        timestamp=2.0, arbitration_id=0x7FF, is_remote_frame=True, dlc=3, is_extended_id=False
    )
    assert candump_line(remote, "vcan0") == "(2.000000) vcan0 7FF#R3"


def _read_back(lines: list[str]) -> list[can.Message]:
    return list(can.CanutilsLogReader(io.StringIO("\n".join(lines) + "\n")))


frames = st.one_of(
    st.builds(
        lambda ts, ident, ext, data: can.Message(
            timestamp=ts,
            arbitration_id=ident if ext else ident & 0x7FF,
            is_extended_id=ext,
            data=data,
        ),
        st.integers(0, 4_000_000_000_000_000).map(lambda us: us / 1_000_000),
        st.integers(0, 0x1FFFFFFF),
        st.booleans(),
        st.binary(max_size=8),
    ),
    st.builds(
        lambda ts, ident, dlc: can.Message(
            timestamp=ts, arbitration_id=ident, is_remote_frame=True, dlc=dlc, is_extended_id=False
        ),
        st.integers(0, 10**12).map(lambda us: us / 1_000_000),
        st.integers(0, 0x7FF),
        st.integers(0, 8),
    ),
    st.builds(
        lambda ts: can.Message(timestamp=ts, is_error_frame=True, data=bytes(8)),
        st.integers(0, 10**12).map(lambda us: us / 1_000_000),
    ),
)


@given(st.lists(frames, min_size=1, max_size=20))
def test_python_can_reads_back_every_frame(written: list[can.Message]) -> None:
    read = _read_back([candump_line(frame, "vcan0") for frame in written])
    assert len(read) == len(written)
    for original, parsed in zip(written, read, strict=True):
        assert parsed.timestamp == original.timestamp
        assert parsed.is_error_frame == original.is_error_frame
        if original.is_error_frame:
            continue
        assert parsed.channel == "vcan0"
        assert parsed.arbitration_id == original.arbitration_id
        assert parsed.is_extended_id == original.is_extended_id
        assert parsed.is_remote_frame == original.is_remote_frame
        assert parsed.dlc == original.dlc
        if not original.is_remote_frame:
            assert bytes(parsed.data) == bytes(original.data)


def test_a_recording_reads_back_with_python_can(tmp_path: Path) -> None:
    path = tmp_path / "drive.log"
    result, count = record_scenario(get_scenario("bus-off"), str(path), seconds=3.0)
    assert result.duration_s == 3.0
    lines = path.read_text(encoding="ascii").splitlines()
    assert len(lines) == count > 500
    assert lines[0].startswith("(1700000000.")
    read = list(can.CanutilsLogReader(str(path)))
    assert len(read) == count
    stamps = [frame.timestamp for frame in read]
    assert stamps == sorted(stamps)
    assert any(frame.is_error_frame for frame in read)
    assert {frame.channel for frame in read if not frame.is_error_frame} == {"vcan0"}


def test_recordings_are_reproducible(tmp_path: Path) -> None:
    first, second = tmp_path / "a.log", tmp_path / "b.log"
    record_scenario(get_scenario("garbage-frames"), str(first), seconds=2.0, seed=3)
    record_scenario(get_scenario("garbage-frames"), str(second), seconds=2.0, seed=3)
    assert first.read_bytes() == second.read_bytes()


def test_receive_jitter_moves_timestamps_reproducibly_and_nothing_else(tmp_path: Path) -> None:
    exact, jittered, again = tmp_path / "exact.log", tmp_path / "j.log", tmp_path / "j2.log"
    scenario = get_scenario("following-2s")
    record_scenario(scenario, str(exact), seconds=3.0)
    record_scenario(scenario, str(jittered), seconds=3.0, jitter_ms=0.5)
    record_scenario(scenario, str(again), seconds=3.0, jitter_ms=0.5)
    assert jittered.read_bytes() == again.read_bytes()
    plain = list(can.CanutilsLogReader(str(exact)))
    moved = list(can.CanutilsLogReader(str(jittered)))
    assert [bytes(f.data) for f in plain] == [bytes(f.data) for f in moved]
    offsets = [m.timestamp - p.timestamp for p, m in zip(plain, moved, strict=True)]
    mean = sum(offsets) / len(offsets)
    spread = (sum((o - mean) ** 2 for o in offsets) / len(offsets)) ** 0.5
    assert abs(mean) < 0.0001
    assert 0.0004 < spread < 0.0006  # 0.5 ms standard deviation
    assert any(b.timestamp < a.timestamp for a, b in pairwise(moved))  # as in real logs


def test_receive_jitter_must_be_a_finite_non_negative_number(tmp_path: Path) -> None:
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="receive jitter"):
            CandumpRecorder(str(tmp_path / "x.log"), jitter_ms=bad)
