"""Property tests of the answer parsers with structural seeds: lengths, counts, huge answers.

Random bytes rarely look like an answer; these strategies build answers that do (the right
echo, PIDs that were asked, a DTC count) and then get one part wrong, up to the largest
answer ISO-TP can carry (4095 bytes).
"""

from __future__ import annotations

import can
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from edge_agent.modules.diagnostics.codes import MalformedResponse, parse_obd_dtcs
from edge_agent.modules.diagnostics.functional import single_frame
from edge_agent.modules.diagnostics.obd import (
    MAX_PIDS_PER_REQUEST,
    PIDS,
    SUPPORT_PIDS,
    decode_pid,
    parse_pid_response,
    parse_pids_response,
    pid_length,
)
from edge_agent.modules.diagnostics.recorded import RecordedAnswers
from edge_agent.simulator.ecus import single_frame_data

ISOTP_MAX = 4095
KNOWN = sorted([*PIDS, *SUPPORT_PIDS])


@st.composite
def multi_pid_answers(draw: st.DrawFn) -> tuple[bytes, list[int]]:
    """A mode 01 answer to a request for up to six PIDs, sometimes subtly wrong."""
    asked = draw(st.lists(st.sampled_from(KNOWN), min_size=1, max_size=6, unique=True))
    body = bytearray([0x41])
    for pid in draw(st.permutations(asked)):
        if draw(st.booleans()):
            continue  # the ECU does not support it: left out, as J1979 says
        length = pid_length(pid) or 1
        length += draw(st.sampled_from([0, 0, 0, -1, 1]))  # mostly right
        body += bytes([pid]) + draw(st.binary(min_size=max(0, length), max_size=max(0, length)))
    body += draw(st.sampled_from([b"", b"", b"\x00", bytes([draw(st.integers(0, 255))])]))
    return bytes(body), asked


@given(multi_pid_answers())
@example((b"\x41", [0x0C]))
@example((b"\x41\x0c\x0c", [0x0C]))  # data cut short
@example((b"\x41\x0c\x0c\x80\x0c\x0c\x80", [0x0C]))  # the same PID twice
@example((b"\x41\x0d\x00", [0x0C]))  # a PID nobody asked
@example((b"\x41" + b"\x0c\x0c\x80" * 1365, [0x0C]))  # the largest ISO-TP answer
@example((b"\x41\x03\x00\x00", [0x03]))  # asked, but of unknown length
def test_multi_pid_answers_parse_or_are_malformed(case: tuple[bytes, list[int]]) -> None:
    answer, asked = case
    try:
        found = parse_pids_response(answer, asked)
    except MalformedResponse:
        return
    assert set(found) <= set(asked)
    assert sum(1 + len(data) for data in found.values()) == len(answer) - 1
    for pid, data in found.items():
        assert len(data) == pid_length(pid)
        decode_pid(pid, data)


def test_a_multi_pid_answer_decodes() -> None:
    found = parse_pids_response(b"\x41\x0c\x0c\x80\x05\x82\x42\x36\x88", [0x0C, 0x05, 0x42])
    assert [decode_pid(pid, data)[1] for pid, data in found.items()] == [800.0, 90.0, 13.96]
    assert MAX_PIDS_PER_REQUEST == 6


@st.composite
def obd_dtc_answers(draw: st.DrawFn) -> tuple[bytes, int]:
    """A mode 03/07/0A answer: echo, count, pairs; the count or the length sometimes off."""
    mode = draw(st.sampled_from([0x03, 0x07, 0x0A]))
    pairs = draw(st.integers(0, (ISOTP_MAX - 2) // 2))
    count = draw(st.sampled_from([pairs, pairs, max(0, pairs - 1), pairs + 1, 255]))
    body = draw(st.binary(min_size=2 * pairs, max_size=2 * pairs))
    tail = draw(st.sampled_from([b"", b"", b"\x00"]))
    echo = draw(st.sampled_from([0x40 + mode, 0x40 + mode, 0x7F, 0x43]))
    return bytes([echo, count & 0xFF]) + body + tail, mode


@given(obd_dtc_answers())
@example((b"\x43\xff", 0x03))  # 255 codes announced, none there
@example((b"\x43\xff" + b"\x01\x00" * 2046, 0x03))  # the largest ISO-TP answer
@example((b"\x47\x01\x05", 0x07))  # half a code
@example((b"\x4a\x00\x00\x00\x00\x00", 0x0A))  # padding only
def test_obd_dtc_answers_with_structure_parse_or_are_malformed(case: tuple[bytes, int]) -> None:
    answer, mode = case
    try:
        codes = parse_obd_dtcs(answer, mode)
    except MalformedResponse:
        return
    assert answer[0] == 0x40 + mode
    assert len(codes) <= answer[1]
    assert all(len(code) == 5 and code[0] in "PCBU" for code in codes)


@given(st.sampled_from(KNOWN), st.binary(max_size=ISOTP_MAX))
@example(0x00, b"\x41\x00\xff\xff\xff")  # a support bitmap one byte short
def test_single_pid_answers_keep_only_their_length(pid: int, tail: bytes) -> None:
    answer = bytes([0x41, pid]) + tail
    try:
        data = parse_pid_response(answer, pid)
    except MalformedResponse:
        assert len(tail) < (pid_length(pid) or 0)
        return
    assert len(data) == pid_length(pid)


@given(st.binary(min_size=1, max_size=7))
def test_functional_requests_are_single_frames_the_ecus_read_back(request: bytes) -> None:
    frame = single_frame(request)
    assert len(frame) == 8
    assert single_frame_data(frame) == request


@given(st.binary(max_size=8))
@example(b"\x00\x01")  # length 0
@example(b"\x08\x01\x02\x03\x04\x05\x06\x07")  # says 8 in an 8-byte frame
@example(b"\x10\x14\x01\x02\x03\x04\x05\x06")  # a first frame, not a single one
def test_the_ecus_take_only_well_formed_single_frames(data: bytes) -> None:
    payload = single_frame_data(data)
    if payload is not None:
        assert data[0] >> 4 == 0
        assert len(payload) == data[0] & 0x0F <= len(data) - 1


@pytest.mark.parametrize("size", [0, 8])
def test_a_functional_request_is_one_frame(size: int) -> None:
    with pytest.raises(ValueError, match="one frame"):
        single_frame(bytes(size))


@st.composite
def answer_frames(draw: st.DrawFn) -> list[can.Message]:
    """ISO-TP frames on answer ids: real answers cut into frames, with parts gone wrong."""
    frames: list[can.Message] = []
    for _ in range(draw(st.integers(1, 6))):
        answer_id = draw(st.sampled_from([0x7E8, 0x7E9, 0x7EF, 0x7DF]))
        answer = draw(
            st.one_of(
                multi_pid_answers().map(lambda case: case[0]),
                obd_dtc_answers().map(lambda case: case[0][:200]),
                st.binary(min_size=3, max_size=40).map(lambda b: b"\x62" + b),
            )
        )
        pieces = _isotp(answer)
        if draw(st.booleans()):  # spoil one piece: its PCI, its length, or leave it out
            at = draw(st.integers(0, len(pieces) - 1))
            spoiled = draw(st.sampled_from(["pci", "cut", "drop"]))
            if spoiled == "drop":
                del pieces[at]
            elif spoiled == "cut":
                pieces[at] = pieces[at][: draw(st.integers(0, len(pieces[at])))]
            else:
                pieces[at] = bytes([draw(st.integers(0, 255))]) + pieces[at][1:]
        frames += [
            can.Message(arbitration_id=answer_id, data=p, is_extended_id=False) for p in pieces
        ]
    return frames


def _isotp(payload: bytes) -> list[bytes]:
    if len(payload) <= 7:
        return [bytes([len(payload)]) + payload]
    pieces = [bytes([0x10 | len(payload) >> 8, len(payload) & 0xFF]) + payload[:6]]
    for index, at in enumerate(range(6, len(payload), 7), start=1):
        pieces.append(bytes([0x20 | index & 0x0F]) + payload[at : at + 7])
    return pieces


@given(answer_frames())
@example(
    [can.Message(arbitration_id=0x7E8, data=b"\x10\x00\xff\xff\xff\xff", is_extended_id=False)]
)  # 4 GiB
@example(
    [can.Message(arbitration_id=0x7E8, data=b"\x1f\xff\x41", is_extended_id=False)]
)  # 4095 bytes, then nothing
@example(
    [can.Message(arbitration_id=0x7E8, data=b"\x21\x41\x0c", is_extended_id=False)]
)  # a lone consecutive frame
def test_recorded_answers_decode_or_are_counted(frames: list[can.Message]) -> None:
    decoder = RecordedAnswers()
    decoded = [message for frame in frames if (message := decoder.decode(frame)) is not None]
    assert decoder.answers == len(decoded)
    for message in decoded:
        assert 0x7E8 <= message.frame_id <= 0x7EF
        assert message.signals
    assert all(len(p.data) <= ISOTP_MAX for p in decoder._partial.values())


def test_recorded_answers_reassemble_a_multi_frame_did() -> None:
    decoder = RecordedAnswers()
    pieces = _isotp(b"\x62\xf1\x90" + b"EDGEAGENTSIM00001")
    frames = [can.Message(arbitration_id=0x7E8, data=p, is_extended_id=False) for p in pieces]
    messages = [decoder.decode(frame) for frame in frames]
    assert messages[:-1] == [None, None]
    assert messages[-1] is not None
    assert messages[-1].signals == {"did_f190": b"EDGEAGENTSIM00001".hex()}
