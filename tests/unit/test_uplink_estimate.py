"""The uplink estimator's pieces: collection replay, batch and baseline encoding, frame counts."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import can
import msgpack
import pytest
import zstandard
from cantools.database.can import Database
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.can.dbc import load_dbc, load_dbc_text
from edge_agent.can.decode import FrameDecoder
from edge_agent.can.logs import LogStats, read_candump_lines
from edge_agent.can.types import DecodedMessage
from edge_agent.modules.telemetry.batch import MILLISECONDS, LinearScale, Sample, decode_batch
from edge_agent.modules.telemetry.collection import Collection, Cut
from edge_agent.modules.telemetry.config import (
    CaptureRule,
    Condition,
    SignalRule,
    StreamConfig,
    TelemetryConfig,
)
from edge_agent.modules.telemetry.estimate import (
    BatchEncoder,
    estimate_uplink,
    json_lines,
    native_rate_config,
)
from edge_agent.modules.telemetry.scales import dbc_scales, load_scale_hints
from edge_agent.modules.telemetry.uplink_report import render_text
from edge_agent.simulator.dbc import vehicle_dbc_path

EPOCH = 1_700_000_000.0


def vehicle_database() -> Database:
    database: Database = load_dbc(vehicle_dbc_path()).database
    return database


def ego_motion(t: float, speed_raw: int = 5000, length: int = 8) -> can.Message:
    data = speed_raw.to_bytes(2, "little") + bytes(6)
    return can.Message(
        timestamp=EPOCH + t, arbitration_id=0x100, data=data[:length], is_extended_id=False
    )


def decoded(t: float, **signals: float) -> DecodedMessage:
    return DecodedMessage("can0", "M", 1, EPOCH + t, 1000.0 + t, dict(signals))


def test_collection_cuts_by_size_and_by_age() -> None:
    config = TelemetryConfig(
        streams=[StreamConfig(name="motion", signals=[SignalRule(signal="Speed")])],
        batch_max_samples=3,
        batch_max_age_s=1.0,
    )
    collection = Collection(config)
    cuts = [cut for i in range(4) for cut in collection.ingest(decoded(i * 0.1, Speed=float(i)))]
    assert [len(cut.samples) for cut in cuts] == [3]
    assert collection.tick(1000.0 + 0.9) == []  # the 4th sample has waited 0.6 s only
    (aged,) = collection.tick(1000.0 + 1.3)
    assert [s.value for s in aged.samples] == [3.0]
    assert collection.flush() == []


def test_collection_sends_a_capture_when_its_window_closes() -> None:
    config = TelemetryConfig(
        captures=[
            CaptureRule(
                name="hard-braking",
                stream="captures",
                when=Condition(signal="Accel", op="<", value=-6.0),
                signals=["Speed"],
                pre_s=0.25,
                post_s=0.25,
            )
        ]
    )
    collection = Collection(config)
    cuts: list[Cut] = []
    for i in range(10):
        accel = -7.0 if i == 5 else 0.0
        cuts += collection.ingest(decoded(i * 0.1, Speed=float(i), Accel=accel))
    (capture,) = cuts
    assert capture.capture == "hard-braking"
    # 0.25 s before the trigger at 0.5 s, then up to the sample that closes the window
    assert [s.value for s in capture.samples] == [3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    assert collection.captures_sent == 1


def test_collection_reconfigure_flushes_old_rules_and_keeps_counting() -> None:
    # The running module reconfigures through this: what the old rules buffered leaves as a
    # batch, the new rules take over, and the health counters do not restart from zero.
    old = TelemetryConfig(streams=[StreamConfig(name="a", signals=[SignalRule(signal="Speed")])])
    new = TelemetryConfig(streams=[StreamConfig(name="b", signals=[SignalRule(signal="Accel")])])
    collection = Collection(old)
    collection.ingest(decoded(0.0, Speed=1.0, Accel=0.5))
    assert collection.buffered == 1
    (flushed,) = collection.reconfigure(new)
    assert (flushed.stream, [s.value for s in flushed.samples]) == ("a", [1.0])
    collection.ingest(decoded(0.1, Speed=2.0, Accel=0.7))
    (cut,) = collection.flush()
    assert (cut.stream, [s.signal for s in cut.samples]) == ("b", ["Accel"])
    assert (collection.messages, collection.samples) == (2, 2)


def test_collection_trigger_starts_named_or_all_captures() -> None:
    rules = [
        CaptureRule(name=name, stream="captures", signals=["Speed"], pre_s=0.2, post_s=0.2)
        for name in ("first", "second")
    ]
    collection = Collection(TelemetryConfig(captures=rules))
    collection.ingest(decoded(0.0, Speed=1.0))
    assert collection.trigger(1000.05, "second") == ["second"]
    assert collection.trigger(1000.05) == ["first"]  # "second" is already recording
    with pytest.raises(KeyError):
        collection.trigger(1000.05, "third")
    cuts = collection.tick(1000.3)
    assert sorted(cut.capture or "" for cut in cuts) == ["first", "second"]
    assert collection.captures_sent == 2


def test_baselines_hold_the_same_samples_as_the_batch() -> None:
    samples = [
        Sample("EgoSpeed", 1000.0 + i * 0.01, EPOCH + i * 0.01, round(i * 0.37, 2))
        for i in range(50)
    ] + [Sample("Gear", 1000.5, EPOCH + 0.5, 3)]
    encoded = BatchEncoder(scales={"EgoSpeed": LinearScale(0.01)}).encode(
        Cut("signals", "telemetry-low", samples)
    )
    batch = decode_batch(encoded.batch)
    ours = sorted((s.signal, round(s.wall, 3), s.value) for s in batch.samples())
    text = zstandard.ZstdDecompressor().decompress(encoded.json_zstd).decode()
    from_json = sorted((o["signal"], o["t"], o["value"]) for o in map(json.loads, text.split()))
    unpacker = msgpack.Unpacker(raw=False)
    unpacker.feed(zstandard.ZstdDecompressor().decompress(encoded.msgpack_zstd))
    from_msgpack = sorted((o["signal"], o["t"], o["value"]) for o in unpacker)
    assert ours == from_json == from_msgpack
    assert encoded.json_objects == encoded.msgpack_objects == len(samples) == batch.sample_count
    assert batch.signals[0].name == "EgoSpeed"


def test_batch_format_1_keeps_noisy_columns_unpacked_and_costs_more() -> None:
    noise = random.Random(5)
    samples = [
        Sample("Accel", 1000.0 + i * 0.01, EPOCH + i * 0.01, 1.5 + noise.randrange(-60, 60) / 1000)
        for i in range(500)
    ]
    cut = Cut("signals", "telemetry-low", samples)
    packed = BatchEncoder(batch_format=2).encode(cut).batch
    plain = BatchEncoder(batch_format=1).encode(cut).batch
    assert (packed[4], plain[4]) == (2, 1)
    assert len(packed) < len(plain)
    assert decode_batch(packed).same_as(decode_batch(plain))


def test_batch_encoder_is_reproducible_and_counts_sequences_per_stream() -> None:
    cut = Cut("signals", "telemetry-low", [Sample("A", 1.0, EPOCH, 1.5)])
    first, second = BatchEncoder(seed=3), BatchEncoder(seed=3)
    assert first.encode(cut).batch == second.encode(cut).batch
    assert decode_batch(first.encode(cut).batch).sequence == 2
    assert (
        decode_batch(first.encode(Cut("other", "telemetry-low", cut.samples)).batch).sequence == 1
    )


def test_json_baseline_rounds_times_to_the_batch_resolution() -> None:
    text, count = json_lines([Sample("A", 1.0, EPOCH + 0.0123456, 2)], MILLISECONDS)
    assert count == 1
    assert json.loads(text) == {"t": EPOCH + 0.012, "signal": "A", "value": 2}


def test_dbc_scales_are_the_dbc_conversions() -> None:
    hints = dbc_scales(vehicle_database())
    assert hints["EgoSpeed"] == LinearScale(0.01, 0.0)
    assert hints["CellTempMax"] == LinearScale(0.5, -40.0)
    assert "MotorSpeed" not in hints  # factor 1, offset 0: published as an integer
    renamed = dbc_scales(vehicle_database(), {"EgoMotion": {"EgoSpeed": "Vehicle.Speed"}})
    assert renamed["Vehicle.Speed"] == LinearScale(0.01, 0.0)


def test_dbc_scales_drop_a_name_two_messages_scale_differently() -> None:
    text = (
        'VERSION ""\nNS_ :\nBS_:\nBU_: A\n'
        'BO_ 1 One: 8 A\n SG_ Temp : 0|8@1+ (0.5,0) [0|127] "" A\n'
        'BO_ 2 Two: 8 A\n SG_ Temp : 0|8@1+ (0.25,0) [0|63] "" A\n'
        ' SG_ Volt : 8|8@1+ (0.1,0) [0|25] "" A\n'
    )
    hints = dbc_scales(load_dbc_text(text).database)
    assert hints == {"Volt": LinearScale(0.1, 0.0)}


def test_scale_hints_load_from_dbc_files(tmp_path: Path) -> None:
    other = tmp_path / "other.dbc"
    other.write_text(
        'VERSION ""\nNS_ :\nBS_:\nBU_: A\n'
        'BO_ 1 One: 8 A\n SG_ EgoSpeed : 0|16@1+ (0.02,0) [0|300] "" A\n'
        ' SG_ Pressure : 16|16@1+ (0.1,0) [0|25] "" A\n'
    )
    hints = load_scale_hints(["package:edge_agent.simulator/data/vehicle.dbc", str(other)])
    assert "EgoSpeed" not in hints  # scaled differently by the two files
    assert hints["Pressure"] == LinearScale(0.1, 0.0)
    assert hints["YawRate"] == LinearScale(0.01, 0.0)


def test_frames_that_do_not_decode_are_counted() -> None:
    database = vehicle_database()
    frames = [
        ego_motion(0.00),
        ego_motion(0.01, length=4),  # short: not decoded
        can.Message(timestamp=EPOCH + 0.02, arbitration_id=0x100, data=bytes(12), is_fd=True),
        can.Message(timestamp=EPOCH + 0.03, arbitration_id=0x6F0, data=bytes(8)),
        can.Message(timestamp=EPOCH + 0.04, arbitration_id=0x6F1, data=bytes(8)),
        can.Message(timestamp=EPOCH + 0.05, arbitration_id=0x6F0, data=bytes(8)),
        can.Message(timestamp=EPOCH + 0.06, arbitration_id=0x100, is_error_frame=True),
        can.Message(timestamp=EPOCH + 0.07, arbitration_id=0x100, is_remote_frame=True),
        can.Message(timestamp=math.nan, arbitration_id=0x100, data=bytes(8)),
    ]
    config = native_rate_config(s.name for m in database.messages for s in m.signals)
    estimate = estimate_uplink(frames, FrameDecoder(database), config, BatchEncoder())
    assert estimate.frames.summary() == {
        "total": 9,
        "decoded": 2,  # the 12-byte frame decodes from its first 8 bytes
        "unknown_id": 3,
        "unknown_ids": 2,
        "wrong_length": 2,
        "bad_timestamp": 1,
        "short": 1,
        "error": 1,
        "remote": 1,
        "decode_failed": 0,
        "diagnostic": 0,  # no recorded decoder (diagnostic answers) given
    }
    assert estimate.samples == 8  # EgoMotion has four signals
    assert estimate.json_objects == estimate.msgpack_objects == estimate.samples


def test_native_rate_keeps_every_value_and_cuts_by_size() -> None:
    database = vehicle_database()
    config = native_rate_config(["EgoSpeed"], batch_max_samples=40)
    frames = [ego_motion(i * 0.01, speed_raw=5000 + i) for i in range(100)]
    estimate = estimate_uplink(frames, FrameDecoder(database), config, BatchEncoder())
    assert (estimate.samples, estimate.batches) == (100, 3)
    assert estimate.streams["signals"].signals == {"EgoSpeed"}
    assert estimate.frames.seconds == pytest.approx(0.99)


def test_age_cuts_follow_the_module_timer() -> None:
    database = vehicle_database()
    config = native_rate_config(["EgoSpeed"], batch_max_age_s=1.0)
    frames = [ego_motion(i * 0.1) for i in range(50)]  # 5 s at 10 Hz
    estimate = estimate_uplink(frames, FrameDecoder(database), config, BatchEncoder())
    # The timer ticks every 0.5 s: a batch opened at 0 s is cut at the 1.0 s tick, holding
    # the samples from 0.0 to 0.9 s; then 1.0-1.9, ... and the last one at the end.
    assert estimate.batches == 5
    assert estimate.samples == 50


def test_render_text_names_the_columns_an_operator_reads() -> None:
    database = vehicle_database()
    config = native_rate_config(["EgoSpeed", "YawRate"])
    frames = [ego_motion(i * 0.01, speed_raw=5000 + i % 7) for i in range(500)]
    estimate = estimate_uplink(frames, FrameDecoder(database), config, BatchEncoder())
    assert estimate.signals == {"EgoSpeed", "YawRate"}
    from edge_agent.modules.telemetry.uplink_report import uplink_result

    result = uplink_result(
        estimate,
        drive="test",
        config=config,
        config_source=None,
        missing_signals=[],
        dbc=load_dbc(vehicle_dbc_path()),
        dbc_file="vehicle.dbc",
        log=None,
        scale_hints=0,
        hours_per_day=3.0,
        elapsed_s=0.1,
    )
    text = render_text(result)
    for heading in ("signals", "samples/s", "bytes/hour", "MB/month", "3 h/day, 30 days"):
        assert heading in text
    assert "JSON lines + zstd" in text


# Candump lines: frames of the vehicle DBC with any length, unknown ids, and plain garbage.
known_ids = st.sampled_from([0x0B0, 0x100, 0x110, 0x120, 0x180, 0x300, 0x3C0])
frame_lines = st.builds(
    lambda t, ident, data: f"({EPOCH + t:.6f}) vcan0 {ident:03X}#{data.hex().upper()}",
    st.floats(0, 100, allow_nan=False),
    st.one_of(known_ids, st.integers(0, 0x7FF)),
    st.binary(max_size=8),
)
garbage_lines = st.text(
    alphabet=st.sampled_from("()#0123456789ABCDEFRvcan .\t_x"), max_size=40
).filter(lambda line: "\n" not in line)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(frame_lines, garbage_lines), max_size=60))
def test_any_candump_text_is_counted_never_fatal(lines: list[str]) -> None:
    database = vehicle_database()
    stats = LogStats()
    config = native_rate_config(s.name for m in database.messages for s in m.signals)
    frames = read_candump_lines(lines, stats)
    estimate = estimate_uplink(frames, FrameDecoder(database), config, BatchEncoder())
    counts = estimate.frames.summary()
    assert stats.frames + stats.malformed == sum(1 for line in lines if line.strip())
    assert counts["total"] == stats.frames
    not_decoded = (
        counts["unknown_id"]
        + counts["short"]
        + counts["error"]
        + counts["remote"]
        + counts["decode_failed"]
        + counts["bad_timestamp"]
    )
    assert counts["decoded"] + not_decoded == counts["total"]
    assert estimate.samples == estimate.json_objects == estimate.msgpack_objects
    assert estimate.samples >= 3 * counts["decoded"]  # every message has 3 or more signals


def test_a_log_joined_from_sessions_days_apart_counts_driving_time_only() -> None:
    database = vehicle_database()
    config = native_rate_config(["EgoSpeed"])
    day = 86_400.0
    frames = [ego_motion(i * 0.01, speed_raw=5000 + i) for i in range(500)]
    frames += [ego_motion(3 * day + i * 0.01, speed_raw=5000 + i) for i in range(500)]
    estimate = estimate_uplink(frames, FrameDecoder(database), config, BatchEncoder())
    assert estimate.frames.gaps == 1
    assert estimate.frames.seconds == pytest.approx(9.98)
    assert estimate.frames.span_seconds == pytest.approx(3 * day + 4.99)


def test_v3_is_reported_beside_v2_with_the_catalogue_apart() -> None:
    database = vehicle_database()
    config = native_rate_config(s.name for m in database.messages for s in m.signals)
    frames = [ego_motion(i * 0.01, speed_raw=5000 + (i * 7) % 13) for i in range(2000)]
    estimate = estimate_uplink(
        frames, FrameDecoder(database), config, BatchEncoder(scales=dbc_scales(database))
    )
    assert 0 < estimate.v3_bytes < estimate.bytes
    assert estimate.catalogue_signals == 4  # EgoMotion's signals
    assert estimate.catalogue_bytes > 0


def test_reordered_receive_stamps_add_no_driving_time() -> None:
    database = vehicle_database()
    config = native_rate_config(["EgoSpeed"])
    stamps = [0.0, 0.02, 0.01, 0.03, 0.025, 0.04]  # receive jitter swaps neighbours
    frames = [ego_motion(t) for t in stamps]
    estimate = estimate_uplink(frames, FrameDecoder(database), config, BatchEncoder())
    assert estimate.frames.seconds == pytest.approx(0.04)
    assert estimate.frames.gaps == 0
