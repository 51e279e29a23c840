"""Signals and messages no CAN frame can hold are left out before cantools parses them."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.can.dbc import DbcError, load_dbc_text
from edge_agent.can.dbc_bounds import (
    MAX_DBC_CHARS,
    MAX_FRAME_BYTES,
    MAX_SIGNAL_BITS,
    MAX_STRING_CHARS,
    screen,
)

HEADER = 'VERSION ""\n\nBU_: ECU\n\n'
GOOD = 'BO_ 257 Good: 8 ECU\n SG_ Speed : 0|16@1+ (0.01,0) [0|655] "km/h" ECU\n\n'


def test_a_signal_of_two_to_the_31_bits_is_left_out_and_the_rest_loads() -> None:
    text = (
        HEADER
        + 'BO_ 256 Radar: 8 ECU\n SG_ Huge : 0|2147483647@1+ (1,0) [0|1] "" ECU\n'
        + ' SG_ Range : 8|8@1+ (1,0) [0|255] "m" ECU\n\n'
        + GOOD
    )
    result = load_dbc_text(text, source="car.dbc")
    radar = result.database.get_message_by_name("Radar")
    assert [signal.name for signal in radar.signals] == ["Range"]
    assert result.database.get_message_by_name("Good").signals[0].name == "Speed"
    assert result.skipped[0].message == "Radar"
    assert "signal Huge at bit 0, 2147483647 bits" in result.skipped[0].reason
    assert result.skipped[0].reason.startswith("line 6:")
    assert not result.strict


def test_a_frame_longer_than_can_fd_is_left_out_with_its_signals() -> None:
    text = (
        HEADER
        + 'BO_ 300 Giant: 4294967295 ECU\n SG_ A : 0|8@1+ (1,0) [0|255] "" ECU\n'
        + ' SG_ B : 4000|8@1+ (1,0) [0|255] "" ECU\n\n'
        + GOOD
    )
    result = load_dbc_text(text)
    assert [message.name for message in result.database.messages] == ["Good"]
    assert [skipped.message for skipped in result.skipped] == ["Giant"]
    assert "length 4294967295 bytes is over 64" in result.skipped[0].reason


def test_a_file_with_nothing_in_bounds_says_why_in_one_line() -> None:
    text = HEADER + 'BO_ 100 M: 8 ECU\n SG_ S : 9000|8@1+ (1,0) [0|1] "" ECU\n'
    result = load_dbc_text(text)  # the message stays, without the signal
    assert result.signal_count == 0
    with pytest.raises(DbcError, match="out of bounds: Only: line 5: length 65 bytes") as error:
        load_dbc_text(HEADER + "BO_ 100 Only: 65 ECU\n")
    assert "\n" not in str(error.value)


def test_multiplexed_signal_lines_are_screened_too() -> None:
    text = (
        HEADER
        + 'BO_ 400 Mux: 8 ECU\n SG_ Sel M : 0|8@1+ (1,0) [0|3] "" ECU\n'
        + ' SG_ Wide m1 : 8|99@1+ (1,0) [0|1] "" ECU\n'
        + ' SG_ Fine m1 : 8|8@1+ (1,0) [0|255] "" ECU\n\n'
    )
    screened, left_out = screen(text)
    assert left_out == [
        ("Mux", "line 7: signal Wide at bit 8, 99 bits: over 64 bits or past bit 511; left out")
    ]
    assert " SG_ Fine m1" in screened
    assert "Wide" not in screened
    assert len(screened.splitlines()) == len(text.splitlines())  # line numbers kept


@settings(max_examples=200, deadline=None)
@given(
    start=st.one_of(st.integers(0, 600), st.sampled_from([2**31 - 1, 2**32, 10**30])),
    length=st.one_of(st.integers(0, 80), st.sampled_from([2**31 - 1, 2**63, 10**30])),
    frame=st.one_of(st.integers(0, 70), st.sampled_from([2**32 - 1, 10**20])),
)
def test_screen_keeps_exactly_what_fits_the_bounds(start: int, length: int, frame: int) -> None:
    text = f'BO_ 100 M: {frame} ECU\n SG_ S : {start}|{length}@1+ (1,0) [0|1] "" ECU\n'
    screened, left_out = screen(text)
    frame_ok = frame <= MAX_FRAME_BYTES
    signal_ok = length <= MAX_SIGNAL_BITS and start < MAX_FRAME_BYTES * 8
    assert (screened is text) == (frame_ok and signal_ok)
    assert len(left_out) == (0 if frame_ok and signal_ok else 1)
    if not frame_ok:
        assert screened.strip() == ""


def test_a_16_mib_comment_is_cut_and_the_messages_still_load() -> None:
    comment = "x" * (16 << 20)
    text = HEADER + GOOD + f'CM_ BO_ 257 "{comment}";\nCM_ SG_ 257 Speed "km/h over ground";\n'
    result = load_dbc_text(text)
    good = result.database.get_message_by_name("Good")
    assert len(good.comment) == MAX_STRING_CHARS
    assert good.signals[0].comment == "km/h over ground"
    assert result.skipped[0].reason == (
        "line 8: a quoted string of 16,777,216 characters cut to 65,536"
    )


def test_a_cut_string_keeps_its_line_breaks_and_escaped_quotes() -> None:
    inner = 'a\\"b\n' * (MAX_STRING_CHARS // 4)
    text = f'CM_ "{inner}";\nBO_ 1 M: 8 ECU\n'
    screened, left_out = screen(text)
    assert len(screened.splitlines()) == len(text.splitlines())
    assert screened.endswith('";\nBO_ 1 M: 8 ECU\n')
    assert len(left_out) == 1


def test_a_file_over_the_size_limit_is_refused_whole() -> None:
    with pytest.raises(DbcError, match=r"^big.dbc: 33,554,433 characters is over the 33,554,432"):
        load_dbc_text(" " * (MAX_DBC_CHARS + 1), source="big.dbc")
