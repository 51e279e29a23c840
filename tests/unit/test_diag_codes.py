"""Diagnostics' pure parts: DTC codec, OBD parsers, table, pacer, allow-list, DTC changes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.modules.diagnostics.codes import (
    MalformedResponse,
    UdsDtc,
    code_from_bytes,
    code_to_bytes,
    parse_obd_dtcs,
)
from edge_agent.modules.diagnostics.dtc_events import obd_dtc_changes, uds_dtc_changes
from edge_agent.modules.diagnostics.dtc_table import GENERIC_CODES, describe
from edge_agent.modules.diagnostics.obd import (
    decode_pid,
    parse_pid_response,
    supported_from_bitmap,
)
from edge_agent.modules.diagnostics.pacing import FRAME_BITS, BusSharePacer
from edge_agent.modules.diagnostics.services import ServiceRefused, check_service


def test_known_codes_encode_as_j2012() -> None:
    assert code_to_bytes("P0562") == b"\x05\x62"
    assert code_to_bytes("U0235") == b"\xc2\x35"
    assert code_to_bytes("C0035") == b"\x40\x35"
    assert code_from_bytes(0xC2, 0x35) == "U0235"


@given(st.integers(0, 0xFF), st.integers(0, 0xFF))
def test_every_two_bytes_round_trip(high: int, low: int) -> None:
    assert code_to_bytes(code_from_bytes(high, low)) == bytes([high, low])


@given(st.integers(0, 0xFFFFFF), st.integers(0, 0xFF))
def test_uds_dtc_id_round_trips(dtc_id: int, status: int) -> None:
    assert UdsDtc.from_id(dtc_id, status).dtc_id == dtc_id


@pytest.mark.parametrize("bad", ["", "X0123", "P4123", "P012", "P01234", "P0G12"])
def test_bad_codes_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="not a DTC"):
        code_to_bytes(bad)


def test_table_codes_are_valid_and_described() -> None:
    for code, text in GENERIC_CODES.items():
        code_to_bytes(code)
        assert describe(code) == text
    assert "manufacturer" in describe("P1234")
    assert "generic" in describe("B0999")


@given(st.binary(max_size=64), st.sampled_from([0x03, 0x07, 0x0A]))
def test_obd_dtc_answers_parse_or_are_malformed(answer: bytes, mode: int) -> None:
    try:
        codes = parse_obd_dtcs(answer, mode)
    except MalformedResponse:
        return
    assert all(len(code) == 5 for code in codes)


def test_obd_dtc_answer_decodes() -> None:
    assert parse_obd_dtcs(b"\x43\x02\x05\x62\xc2\x35", 0x03) == ["P0562", "U0235"]
    with pytest.raises(MalformedResponse):
        parse_obd_dtcs(b"\x43\x03\x05\x62", 0x03)


@given(st.binary(max_size=16), st.integers(0, 0xFF))
def test_pid_answers_parse_or_are_malformed(answer: bytes, pid: int) -> None:
    try:
        data = parse_pid_response(answer, pid)
    except MalformedResponse:
        return
    decode_pid(pid, data)


def test_pid_decoding_and_support_bitmap() -> None:
    assert decode_pid(0x0C, parse_pid_response(b"\x41\x0c\x0c\x80", 0x0C)) == (
        "engine_speed",
        800.0,
        "rpm",
    )
    assert supported_from_bitmap(0x00, b"\x80\x00\x00\x01") == [0x01, 0x20]
    with pytest.raises(MalformedResponse):
        supported_from_bitmap(0x00, b"\x80")


def test_pacer_keeps_the_share_and_measures_it() -> None:
    pacer = BusSharePacer(bitrate=500_000, share=0.05, started=0.0, burst_frames=0)
    pacer.charge(100)
    wait = pacer.wait_s(0.0)
    assert wait == pytest.approx(100 * FRAME_BITS / (0.05 * 500_000))
    assert pacer.share_taken(wait) == pytest.approx(0.05)
    assert pacer.wait_s(wait) == 0


def test_allow_list_refuses_writes_and_resets() -> None:
    check_service(0x19)
    check_service(0x22)
    for service in (0x11, 0x14, 0x27, 0x2E, 0x31, 0x34, 0x04):
        with pytest.raises(ServiceRefused, match="refused"):
            check_service(service)
    check_service(0x14, clear_allowed=True)


def test_dtc_changes_name_appeared_changed_cleared() -> None:
    events = uds_dtc_changes(
        "brake", {"U0235": 0x0B, "C0035": 0x08}, {"U0235": 0x08, "P0562": 0x0B}
    )
    assert [(e["code"], e["change"]) for e in events] == [
        ("C0035", "cleared"),
        ("P0562", "appeared"),
        ("U0235", "changed"),
    ]
    assert events[1]["description"] == "System supply voltage low"
    assert events[0]["status"] == 0
    assert (events[2]["status"], len(events[2]["status_bits"])) == (0x08, 1)
    assert {e["source"] for e in events} == {"uds"}


def test_obd_dtc_changes_carry_the_modes_that_report_the_code() -> None:
    stored = frozenset({"stored"})
    events = obd_dtc_changes(
        "engine",
        {"P0562": stored, "P0118": stored},
        {"P0562": frozenset({"stored", "pending"}), "P0101": stored},
    )
    assert [(e["code"], e["change"], e["obd_status"]) for e in events] == [
        ("P0101", "appeared", ["stored"]),
        ("P0118", "cleared", []),
        ("P0562", "changed", ["pending", "stored"]),
    ]
    assert all(e["source"] == "obd" and e["ecu"] == "engine" for e in events)
    assert "status" not in events[0]
