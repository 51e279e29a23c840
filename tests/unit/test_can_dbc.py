"""Lenient DBC loading: broken pieces are skipped with a reason, the rest decodes."""

from __future__ import annotations

from pathlib import Path

import cantools
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.can.dbc import DbcError, kernel_filters, load_dbc, load_dbc_text
from edge_agent.can.dbc_text import split_statements
from edge_agent.can.decode import FrameDecoder
from edge_agent.can.types import DecodedMessage
from fixtures.can_helpers import BENCH_DBC, BROKEN_DBC, REAL_DBCS, frame, needs_real_dbcs


def reasons(result_items: list[object]) -> str:
    return "\n".join(f"{item.message}: {item.reason}" for item in result_items)  # type: ignore[attr-defined]


def test_a_clean_file_loads_strictly_in_one_go() -> None:
    result = load_dbc(BENCH_DBC)
    assert result.strict
    assert result.skipped == []
    assert result.message_count == 4
    assert result.signal_count == 32


def test_the_broken_fixture_really_fails_a_strict_load() -> None:
    with pytest.raises(Exception, match="Invalid syntax"):
        cantools.database.load_file(str(BROKEN_DBC))


def test_broken_pieces_are_skipped_with_file_lines_and_the_rest_loads() -> None:
    result = load_dbc(BROKEN_DBC)
    assert not result.strict
    assert "Invalid syntax" in result.strict_error
    names = {message.name for message in result.database.messages}
    assert names == {"Speed", "TooLong", "Overlap", "Extended"}
    text = reasons(result.skipped)
    assert "Garbled: line 18: message left out: Invalid syntax at line 20" in text
    assert "Speed: line 37: value table (VAL_) of signal NoSuchSignal left out" in text
    assert "TooLong: line 22: signal Outside left out: its bits do not fit in 8 bytes" in text
    assert "(database): line 38:" in text
    assert "frame id 999" in text
    assert "Overlap" in reasons(result.notes)
    assert "overlapping" in reasons(result.notes)
    too_long = result.database.get_message_by_name("TooLong")
    assert [signal.name for signal in too_long.signals] == ["Inside"]
    # The good value table and comments of the surviving message are kept.
    speed = result.database.get_message_by_name("Speed")
    assert speed.get_signal_by_name("Gear").choices is not None
    assert speed.comment == "Ego speed and gear."


def test_what_survives_decodes() -> None:
    decoder = FrameDecoder(load_dbc(BROKEN_DBC).database, bus="b")
    speed = decoder.decode(frame(256, bytes([0x10, 0x27, 3, 0xEC, 0, 0, 0, 0])))
    assert isinstance(speed, DecodedMessage)
    assert speed.signals == {"VehicleSpeed": 100.0, "Gear": 3, "Temperature": -20.0}
    overlap = decoder.decode(frame(259, bytes([0x34, 0x12, 0, 0, 0, 0, 0, 0])))
    assert isinstance(overlap, DecodedMessage)
    assert overlap.signals == {"Torque": 0x1234, "Deceleration": pytest.approx(1.8)}
    extended = decoder.decode(
        frame(0x18FECA15, bytes([7, 0xFF, 0xF0, 0, 0, 0, 0, 0]), is_extended_id=True)
    )
    assert isinstance(extended, DecodedMessage)
    assert extended.signals == {"Counter": 7, "Level": -0.25}  # raw 0xFFF is -1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "not a CAN database"),
        ('VERSION "x"\nBU_: A\n', "no message definitions"),
        ('BO_ 1 A: 8 X\n SG_ s : 0|8@1+ (1,0) [0|255 "" X\n', "no usable message"),
        ("BO_ x A: 8 X\n", "no usable message"),
        ("\x00\x01\x02 binary junk", "not a CAN database"),
    ],
)
def test_nothing_usable_is_a_dbc_error(text: str, message: str) -> None:
    with pytest.raises(DbcError, match=message):
        load_dbc_text(text, source="t.dbc")


def test_unreadable_files_are_dbc_errors(tmp_path: Path) -> None:
    with pytest.raises(DbcError, match="file not found"):
        load_dbc(tmp_path / "missing.dbc")
    with pytest.raises(DbcError, match="is a directory"):
        load_dbc(tmp_path)


def test_latin1_text_is_read(tmp_path: Path) -> None:
    path = tmp_path / "umlaut.dbc"
    path.write_bytes(
        b'BO_ 5 A: 1 X\n SG_ s : 0|8@1+ (1,0) [0|255] "" X\nCM_ SG_ 5 s "Prim\xe4rachse";\n'
    )
    assert load_dbc(path).message_count == 1


def test_kernel_filters_follow_the_id_kind() -> None:
    database = load_dbc(BROKEN_DBC).database
    filters = {f["can_id"]: f for f in kernel_filters(database.messages)}
    assert filters[256] == {"can_id": 256, "can_mask": 0x7FF, "extended": False}
    assert filters[0x18FECA15] == {"can_id": 0x18FECA15, "can_mask": 0x1FFFFFFF, "extended": True}


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet=st.sampled_from(list('BO_ SG_VAL:|@+-()[]"\n\t01289;abcXYZ')), max_size=300)
)
def test_splitting_never_fails_and_keeps_every_line(text: str) -> None:
    statements = split_statements(text)
    kept = "\n".join(s.text for s in statements).splitlines()
    assert [line for line in kept if line.strip()] == [
        line for line in text.splitlines() if line.strip()
    ]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(BROKEN_DBC.read_text().splitlines()), max_size=40))
def test_any_mix_of_dbc_lines_loads_or_raises_dbc_error(lines: list[str]) -> None:
    try:
        result = load_dbc_text("\n".join(lines))
    except DbcError:
        return
    assert result.message_count >= 1


@needs_real_dbcs
@pytest.mark.parametrize("path", REAL_DBCS, ids=lambda p: p.name)
def test_every_real_dbc_loads_leniently(path: Path) -> None:
    result = load_dbc(path)
    strict = cantools.database.load_file(str(path), strict=False).messages if result.strict else []
    assert result.message_count >= 30
    assert result.message_count >= len(strict)
    decoder = FrameDecoder(result.database)
    assert len(decoder.codecs) == result.message_count


@needs_real_dbcs
def test_a_real_dbc_fails_strictly_and_loses_only_its_bad_value_table() -> None:
    tesla = next(p for p in REAL_DBCS if p.name == "tesla_can.dbc")
    with pytest.raises(Exception, match="unused VAL_ entries"):
        cantools.database.load_file(str(tesla))
    result = load_dbc(tesla)
    assert not result.strict
    assert result.message_count == 44
    assert len(result.skipped) == 1
    assert result.skipped[0].message == "UI_driverAssistRoadSign"
    assert "has no signal UI_mapSpeedLimit" in result.skipped[0].reason


@needs_real_dbcs
def test_overlapping_signals_in_a_real_dbc_are_kept_with_a_note() -> None:
    vw = next(p for p in REAL_DBCS if p.name == "vw_mqb.dbc")
    result = load_dbc(vw)
    assert not result.strict
    assert result.skipped == []
    assert [note.message for note in result.notes] == ["PLA_01"]
    decoder = FrameDecoder(result.database)
    decoded = decoder.decode(frame(304, bytes(range(8))))
    assert isinstance(decoded, DecodedMessage)  # cantools itself cannot decode this message
    assert {"PLA_Bremsmoment", "PLA_Bremsverzoegerung"} <= set(decoded.signals)


def test_unindented_layout_is_understood() -> None:
    text = (
        'VERSION ""\nNS_ :\nCM_\nBA_DEF_\nVAL_\n\nBS_:\nBU_: A\n'
        'BO_ 1 M: 8 A\nSG_ s : 0|8@1+ (1,0) [0|255] "" A\n'
        'CM_ SG_ 1 s "a comment\nover two lines";\nVAL_ 1 s 0 "x" 1 "y";\nVAL_ 1 nosig 0 "x";\n'
    )
    result = load_dbc_text(text)
    assert [(s.message, s.reason.split(":")[0]) for s in result.skipped] == [("M", "line 14")]
    signal = result.database.messages[0].signals[0]
    assert signal.comment == "a comment\nover two lines"
    assert signal.choices is not None
