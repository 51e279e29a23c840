"""Recorded logs: the lenient candump parser, .asc/.blf through python-can, and replay."""

from __future__ import annotations

import re
from pathlib import Path

import can
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.can.dbc import load_dbc
from edge_agent.can.decode import FrameDecoder
from edge_agent.can.logs import (
    LogFormatError,
    LogStats,
    open_log,
    parse_candump_line,
    read_candump_lines,
)
from edge_agent.can.replay import replay
from fixtures.can_helpers import BENCH_DBC

GOOD_LOG = """\
(1436509052.249713) vcan0 100#0011223344556677
(1436509052.250713) vcan0 101#0011223344556677
(1436509052.251713) vcan0 12345678#DEADBEEF
(1436509052.252713) vcan0 222##1001122334455667788990011
(1436509052.253713) vcan0 300#R
(1436509052.254713) vcan0 20000040#0000000000000000
"""


def test_candump_lines_of_every_kind() -> None:
    classic = parse_candump_line("(1436509052.249713) vcan0 123#DEADBEEF")
    assert (classic.arbitration_id, classic.is_extended_id, bytes(classic.data)) == (
        0x123,
        False,
        bytes.fromhex("DEADBEEF"),
    )
    assert classic.timestamp == pytest.approx(1436509052.249713)
    assert classic.channel == "vcan0"
    extended = parse_candump_line("(1.0) can1 1FFFFFFF#")
    assert extended.is_extended_id
    assert extended.arbitration_id == 0x1FFFFFFF
    assert not extended.data
    fd = parse_candump_line("(1.0) can0 123##3" + "AB" * 12)
    assert fd.is_fd
    assert fd.bitrate_switch
    assert fd.error_state_indicator
    assert len(fd.data) == 12
    remote = parse_candump_line("(1.0) can0 123#R4")
    assert remote.is_remote_frame
    assert remote.dlc == 4
    error = parse_candump_line("(1.0) can0 20000040#0000000000000000")
    assert error.is_error_frame
    assert error.arbitration_id == 0x40
    sent = parse_candump_line("(1.0) can0 123#11.22 T")
    assert not sent.is_rx
    assert bytes(sent.data) == b"\x11\x22"
    assert len(parse_candump_line("(1.0) can0 123#1122334455667788_C").data) == 8


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("garbage", "not '(TIMESTAMP)"),
        ("(1.0) can0 123#ABC", "even number of hex"),
        ("(1.0) can0 123#00112233445566778899", "at most 8"),
        ("(1.0) can0 800#00", "out of range"),
        ("(1.0) can0 123##", "flags digit"),
        ("(1.0) can0 123##1" + "00" * 9, "not a CAN FD length"),
        ("(1.0) can0 123#R9", "remote frame length"),
        ("(1.0) can0 123#11_C", "length code suffix"),
        ("(1.0) can0 20000040#" + "00" * 9, "error frame"),
    ],
)
def test_malformed_lines_say_why(line: str, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        parse_candump_line(line)


@settings(max_examples=500, deadline=None)
@given(
    st.text(max_size=80)
    | st.from_regex(r"\(\d{1,10}\.\d{1,6}\) \w{1,6} [0-9A-F]{1,9}#{1,2}[0-9A-FR_.]{0,20}")
)
def test_any_line_parses_or_raises_value_error(line: str) -> None:
    try:
        message = parse_candump_line(line)
    except ValueError:
        return
    assert len(message.data) <= (64 if message.is_fd else 8)


def test_malformed_lines_are_counted_never_fatal() -> None:
    stats = LogStats()
    lines = [*GOOD_LOG.splitlines(), "", "oops", "(1.0) can0 123#XYZ", "(2.0) can0 100#00"]
    frames = list(read_candump_lines(lines, stats))
    assert len(frames) == 7
    assert stats.malformed == 2
    assert stats.examples[0].startswith("line 8: ")


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_replay_counts_decoded_unknown_and_errors(tmp_path: Path) -> None:
    log = write(tmp_path / "drive.log", GOOD_LOG + "not a frame\n(1.0) vcan0 100#00\n")
    stats = LogStats()
    decoder = FrameDecoder(load_dbc(BENCH_DBC).database)
    result = replay(open_log(log, stats), decoder, stats)
    summary = result.summary()
    assert set(summary) == {
        "frames",
        "decoded",
        "unknown_ids",
        "errors",
        "duration_s",
        "frames_per_s",
    }
    assert summary["frames"] == 7
    assert summary["decoded"] == 2  # 0x100 and 0x101
    assert summary["unknown_ids"] == 2  # 0x12345678, 0x222
    assert result.remote_frames == 1  # 0x300 (EngineData) as a remote frame
    # malformed line + short 0x100 frame + error frame
    assert summary["errors"] == 3
    assert (result.malformed, result.decode_failures, result.error_frames) == (1, 1, 1)


def test_replay_keeps_scaled_recorded_pace() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    frames = [
        can.Message(timestamp=t, arbitration_id=0x100, data=bytes(8), is_extended_id=False)
        for t in (10.0, 10.5, 11.0, 10.9)
    ]
    decoder = FrameDecoder(load_dbc(BENCH_DBC).database)
    result = replay(frames, decoder, LogStats(), speed=2.0, clock=lambda: now[0], sleep=sleep)
    assert slept == pytest.approx([0.25, 0.25])  # half the recorded gaps; no wait backwards
    assert result.duration_s == pytest.approx(0.5)
    fast = replay(frames, decoder, LogStats(), speed=0, clock=lambda: now[0], sleep=sleep)
    assert fast.frames == 4
    assert len(slept) == 2


@pytest.mark.parametrize("suffix", [".asc", ".blf"])
def test_asc_and_blf_logs_are_read_with_python_can(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"drive{suffix}"
    sent = [
        can.Message(
            timestamp=100.0 + i,
            arbitration_id=0x100 + i % 2,
            data=bytes([i] * 8),
            is_extended_id=False,
        )
        for i in range(20)
    ]
    with can.Logger(str(path)) as logger:
        for message in sent:
            logger.on_message_received(message)
    stats = LogStats()
    frames = list(open_log(path, stats))
    assert stats.malformed == 0
    assert [(f.arbitration_id, bytes(f.data)) for f in frames] == [
        (m.arbitration_id, bytes(m.data)) for m in sent
    ]


def test_a_truncated_blf_counts_one_error_and_keeps_what_it_read(tmp_path: Path) -> None:
    path = tmp_path / "cut.blf"
    with can.Logger(str(path)) as logger:
        for i in range(200):
            logger.on_message_received(
                can.Message(timestamp=float(i), arbitration_id=0x100, data=bytes(8))
            )
    path.write_bytes(path.read_bytes()[:-37])
    stats = LogStats()
    frames = list(open_log(path, stats))
    assert len(frames) < 200
    assert stats.frames == len(frames)


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("drive.txt", "x", "unknown log kind"),
        ("missing.log", None, "file not found"),
        ("bad.blf", "definitely not a BLF file", "not a readable .blf"),
    ],
)
def test_unusable_logs_fail_before_the_first_frame(
    tmp_path: Path, name: str, content: str | None, reason: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(LogFormatError, match=reason):
        open_log(path, LogStats())
