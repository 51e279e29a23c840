"""One decode tally: the CAN reader, a log replay and the uplink estimator count frames alike."""

from __future__ import annotations

import can
from cantools.database.can import Database
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.can.dbc import load_dbc
from edge_agent.can.decode import DecodeOutcome, FrameDecoder
from edge_agent.can.ingest import BusCounters
from edge_agent.can.logs import LogStats
from edge_agent.can.replay import replay
from edge_agent.can.tally import MAX_DISTINCT_UNKNOWN_IDS, DecodeTally
from edge_agent.modules.telemetry.config import TelemetryConfig
from edge_agent.modules.telemetry.estimate import BatchEncoder, estimate_uplink
from edge_agent.simulator.dbc import vehicle_dbc_path


def vehicle_database() -> Database:
    database: Database = load_dbc(vehicle_dbc_path()).database
    return database


DECODER = FrameDecoder(vehicle_database())


def test_each_outcome_has_its_counter() -> None:
    tally = DecodeTally()
    frames = [
        can.Message(arbitration_id=0x100, data=bytes(8)),  # EgoMotion
        can.Message(arbitration_id=0x100, data=bytes(3)),  # too short
        can.Message(arbitration_id=0x7FF, data=bytes(8)),  # unknown
        can.Message(arbitration_id=0x7FF, data=bytes(8)),  # the same unknown id again
        can.Message(arbitration_id=0x100, is_remote_frame=True),
        can.Message(arbitration_id=0x40, is_error_frame=True),
    ]
    for frame in frames:
        tally.count(frame, DECODER.decode(frame))
    assert tally.tally() == {
        "frames": 6,
        "decoded": 1,
        "unknown_ids": 2,
        "distinct_unknown_ids": 1,
        "error_frames": 1,
        "remote_frames": 1,
        "decode_failures": 1,  # short frames are decode failures ...
        "short_frames": 1,  # ... and counted apart as well
    }
    tally.count_undecoded(0x10, DecodeOutcome.DECODE_FAILED)
    assert (tally.decode_failures, tally.short_frames, tally.frames) == (2, 1, 6)


def test_distinct_unknown_ids_are_bounded() -> None:
    tally = DecodeTally()
    for arbitration_id in range(MAX_DISTINCT_UNKNOWN_IDS + 10):
        tally.count_undecoded(arbitration_id, DecodeOutcome.UNKNOWN_ID)
    assert tally.unknown_ids == MAX_DISTINCT_UNKNOWN_IDS + 10
    assert len(tally.unknown_id_set) == MAX_DISTINCT_UNKNOWN_IDS


frame_strategy = st.builds(
    lambda arbitration_id, data, kind: can.Message(
        timestamp=1_700_000_000.0,
        arbitration_id=arbitration_id,
        data=b"" if kind else data,
        is_remote_frame=kind == "remote",
        is_error_frame=kind == "error",
    ),
    st.sampled_from([0x100, 0x200, 0x300, 0x7FF, 0x123]),
    st.binary(max_size=8),
    st.sampled_from(["", "", "", "remote", "error"]),
)


@settings(max_examples=40, deadline=None)
@given(st.lists(frame_strategy, max_size=40))
def test_reader_replay_and_estimator_agree(frames: list[can.Message]) -> None:
    reader = BusCounters()
    for frame in frames:
        reader.count(frame, DECODER.decode(frame))
    replayed = replay(frames, DECODER, LogStats())
    estimated = estimate_uplink(frames, DECODER, TelemetryConfig(), BatchEncoder()).frames
    assert replayed.tally() == reader.tally() == estimated.tally()
    assert reader.snapshot() == {**reader.tally(), "drops": 0}
