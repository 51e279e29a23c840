"""Frame decoding: documented outcomes only, generated decoders equal to cantools."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import can
import pytest
from cantools.database.can import Database
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.can.dbc import load_dbc
from edge_agent.can.decode import (
    DecodeOutcome,
    FrameDecoder,
    cantools_decoder,
    compile_decoder,
)
from edge_agent.can.logs import FD_LENGTHS
from edge_agent.can.types import DecodedMessage
from edge_agent.can.vss import signal_names
from fixtures.can_helpers import BENCH_DBC, BROKEN_DBC, REAL_DBCS, frame, needs_real_dbcs

TEST_DBCS = [BENCH_DBC, BROKEN_DBC]


@cache
def database_for(path: Path) -> Database:
    return load_dbc(path).database


@cache
def decoder_for(path: Path) -> FrameDecoder:
    return FrameDecoder(database_for(path), bus="test")


def frames(ids: list[int]) -> st.SearchStrategy[can.Message]:
    """Random frames: known and random ids, any length (classic and FD), any flags."""
    any_id = st.one_of(st.sampled_from(ids), st.integers(0, 0x1FFFFFFF))
    lengths = st.sampled_from(sorted(FD_LENGTHS))

    @st.composite
    def build(draw: st.DrawFn) -> can.Message:
        arbitration_id = draw(any_id)
        kind = draw(st.sampled_from(["data", "data", "data", "remote", "error", "fd"]))
        length = draw(lengths) if kind == "fd" else draw(st.integers(0, 8))
        data = draw(st.binary(min_size=length, max_size=length))
        return can.Message(
            arbitration_id=arbitration_id,
            data=b"" if kind == "remote" else data,
            dlc=length if kind == "remote" else None,
            is_extended_id=arbitration_id > 0x7FF or draw(st.booleans()),
            is_remote_frame=kind == "remote",
            is_error_frame=kind == "error",
            is_fd=kind == "fd",
        )

    return build()


def check_outcome(decoder: FrameDecoder, message: can.Message) -> None:
    result = decoder.decode(message)
    codec = decoder.codecs.get(message.arbitration_id)
    if message.is_error_frame:
        assert result is DecodeOutcome.ERROR_FRAME
    elif codec is None:
        assert result is DecodeOutcome.UNKNOWN_ID
    elif message.is_remote_frame:
        assert result is DecodeOutcome.REMOTE_FRAME
    elif len(message.data) < codec.length:
        assert result is DecodeOutcome.SHORT_FRAME
    elif isinstance(result, DecodedMessage):
        assert result.message == codec.name
        assert result.frame_id == message.arbitration_id
        assert all(isinstance(v, int | float) for v in result.signals.values())
    else:
        assert result is DecodeOutcome.DECODE_FAILED


@pytest.mark.parametrize("path", TEST_DBCS, ids=lambda p: p.name)
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_random_frames_give_only_documented_outcomes(path: Path, data: st.DataObject) -> None:
    decoder = decoder_for(path)
    check_outcome(decoder, data.draw(frames(list(decoder.codecs))))


@needs_real_dbcs
@pytest.mark.parametrize("path", REAL_DBCS, ids=lambda p: p.name)
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_random_frames_on_real_dbcs_give_only_documented_outcomes(
    path: Path, data: st.DataObject
) -> None:
    decoder = decoder_for(path)
    check_outcome(decoder, data.draw(frames(list(decoder.codecs))))


def assert_same_as_cantools(path: Path, data: st.DataObject) -> None:
    database = database_for(path)
    message = data.draw(st.sampled_from(database.messages))
    fast = compile_decoder(message, {})
    if fast is None:
        return
    payload = data.draw(st.binary(min_size=message.length, max_size=message.length))
    try:
        expected = cantools_decoder(message, {})(payload)
    except Exception:
        return  # cantools cannot decode overlapping signals; ours can (tested elsewhere)
    decoded = fast(payload)
    assert decoded == expected
    assert [type(v) for v in decoded.values()] == [type(v) for v in expected.values()]


@pytest.mark.parametrize("path", TEST_DBCS, ids=lambda p: p.name)
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_generated_decoders_equal_cantools(path: Path, data: st.DataObject) -> None:
    assert_same_as_cantools(path, data)


@needs_real_dbcs
@pytest.mark.parametrize("path", REAL_DBCS, ids=lambda p: p.name)
@settings(max_examples=500, deadline=None)
@given(data=st.data())
def test_generated_decoders_equal_cantools_on_real_dbcs(path: Path, data: st.DataObject) -> None:
    assert_same_as_cantools(path, data)


def test_outcomes_by_example() -> None:
    decoder = decoder_for(BENCH_DBC)
    good = decoder.decode(frame(256, bytes(8)))
    assert isinstance(good, DecodedMessage)
    assert good.bus == "test"
    assert good.message == "WheelSpeeds"
    assert decoder.decode(frame(256, bytes(7))) is DecodeOutcome.SHORT_FRAME
    assert isinstance(decoder.decode(frame(256, bytes(12), is_fd=True)), DecodedMessage)
    assert decoder.decode(frame(0x7FF, bytes(8))) is DecodeOutcome.UNKNOWN_ID
    assert decoder.decode(frame(256, b"", is_remote_frame=True)) is DecodeOutcome.REMOTE_FRAME
    assert decoder.decode(frame(0x40, bytes(8), is_error_frame=True)) is DecodeOutcome.ERROR_FRAME


def test_choices_stay_numbers_and_scaling_applies() -> None:
    decoder = decoder_for(BENCH_DBC)
    # VehicleSpeed 0x2710 * 0.01 = 100.0; GearPosition (bits 51..53) = 3 ("D" in the DBC).
    data = (0x2710 | (3 << 51)).to_bytes(8, "little")
    decoded = decoder.decode(frame(257, data))
    assert isinstance(decoded, DecodedMessage)
    assert decoded.signals["VehicleSpeed"] == pytest.approx(100.0)
    assert decoded.signals["GearPosition"] == 3


def test_signals_can_be_published_under_vss_names() -> None:
    database = load_dbc(BENCH_DBC).database
    names, unused = signal_names(
        {
            "VehicleSpeed": "Vehicle.Speed",
            "RadarObject.ObjectDistance": "Vehicle.ADAS.Distance",
            "Typo": "Vehicle.Nothing",
        },
        database.messages,
    )
    assert unused == ["Typo"]
    decoder = FrameDecoder(database, signal_names=names)
    decoded = decoder.decode(frame(257, bytes(8)))
    assert isinstance(decoded, DecodedMessage)
    assert "Vehicle.Speed" in decoded.signals
    assert "VehicleSpeed" not in decoded.signals
    radar = decoder.decode(frame(512, bytes(8)))
    assert isinstance(radar, DecodedMessage)
    assert "Vehicle.ADAS.Distance" in radar.signals


def test_message_subset_leaves_the_rest_unknown() -> None:
    decoder = FrameDecoder(load_dbc(BENCH_DBC).database, messages={"EngineData"})
    assert list(decoder.codecs) == [768]
    assert decoder.decode(frame(256, bytes(8))) is DecodeOutcome.UNKNOWN_ID


def test_multiplexed_messages_fall_back_to_cantools() -> None:
    text = (
        'BO_ 100 Mux: 8 X\n SG_ Selector M : 0|8@1+ (1,0) [0|255] "" X\n'
        ' SG_ A m1 : 8|8@1+ (1,0) [0|255] "" X\n SG_ B m2 : 8|16@1+ (0.5,0) [0|1000] "" X\n'
    )
    from edge_agent.can.dbc import load_dbc_text

    decoder = FrameDecoder(load_dbc_text(text).database)
    assert not decoder.codecs[100].compiled
    first = decoder.decode(frame(100, bytes([1, 9, 0, 0, 0, 0, 0, 0])))
    assert isinstance(first, DecodedMessage)
    assert first.signals == {"Selector": 1, "A": 9}
    assert decoder.decode(frame(100, bytes([7, 0, 0, 0, 0, 0, 0, 0]))) is (
        DecodeOutcome.DECODE_FAILED
    )
