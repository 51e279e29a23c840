"""The simulator's vehicle DBC: strict loading, ids, cycle times, encode/decode round trips."""

from __future__ import annotations

import cantools
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.simulator import dbc

EXPECTED = {
    "AebBrakeRequest": (0x0A0, None),
    "RadarObject": (0x0B0, 20),
    "EgoMotion": (0x100, 10),
    "BrakePedal": (0x110, 20),
    "WheelSpeeds": (0x120, 20),
    "Powertrain": (0x180, 20),
    "BatteryStatus": (0x300, 100),
    "BodyStatus": (0x3C0, 200),
}


def test_dbc_loads_strictly_with_the_expected_messages() -> None:
    database = cantools.database.load_file(dbc.vehicle_dbc_path(), strict=True)
    found = {m.name: (m.frame_id, m.cycle_time) for m in database.messages}
    assert found == EXPECTED
    for message in database.messages:
        assert message.length == 8
        assert not message.is_extended_frame
        assert all(signal.byte_order == "little_endian" for signal in message.signals)


def test_brake_request_comes_from_the_agent_with_a_stage_table() -> None:
    message = dbc.load_vehicle_dbc().get_message_by_name(dbc.AEB_BRAKE_REQUEST)
    assert message.senders == ["AGENT"]
    stage = message.get_signal_by_name("AebStage")
    assert {int(k): str(v) for k, v in stage.choices.items()} == dbc.AEB_STAGES
    decel = message.get_signal_by_name("AebDecelRequest")
    assert (decel.minimum, decel.maximum, decel.scale) == (0, 10, 0.01)


def _midpoint(signal: object) -> float:
    low, high = signal.minimum, signal.maximum  # type: ignore[attr-defined]
    value = low + (high - low) * 0.37
    return round((value - signal.offset) / signal.scale) * signal.scale + signal.offset  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_message_round_trips(name: str) -> None:
    message = dbc.load_vehicle_dbc().get_message_by_name(name)
    values = {signal.name: _midpoint(signal) for signal in message.signals}
    payload = dbc.MessageEncoder(message).encode(values)
    assert len(payload) == 8
    decoded = message.decode(payload, decode_choices=False)
    for signal in message.signals:
        assert decoded[signal.name] == pytest.approx(values[signal.name], abs=signal.scale / 2)


def test_encoder_clamps_out_of_range_values() -> None:
    message = dbc.load_vehicle_dbc().get_message_by_name(dbc.RADAR_OBJECT)
    payload = dbc.MessageEncoder(message).encode(
        {"ObjectDistance": 400.0, "ObjectRelativeSpeed": -180.0}
    )
    decoded = message.decode(payload)
    assert decoded["ObjectDistance"] == 250.0
    assert decoded["ObjectRelativeSpeed"] == -100.0


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_every_in_range_value_round_trips(data: st.DataObject) -> None:
    database = dbc.load_vehicle_dbc()
    message = data.draw(st.sampled_from(database.messages))
    values = {
        signal.name: data.draw(st.floats(signal.minimum, signal.maximum), label=signal.name)
        for signal in message.signals
    }
    decoded = message.decode(dbc.MessageEncoder(message).encode(values), decode_choices=False)
    for signal in message.signals:
        assert decoded[signal.name] == pytest.approx(values[signal.name], abs=signal.scale * 0.51)


def test_checksum_detects_any_single_byte_change() -> None:
    payload = bytes([0x10, 0x27, 0x9C, 0xFF, 0x00, 0x03, 0x05, 0x00])
    checksum = dbc.frame_checksum(0x0B0, payload)
    for index in range(7):
        changed = bytearray(payload)
        changed[index] ^= 0x01
        assert dbc.frame_checksum(0x0B0, bytes(changed)) != checksum
    assert dbc.frame_checksum(0x0B1, payload) != checksum
