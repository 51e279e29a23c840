"""BusIngest on real python-can buses: thread and descriptor readers, states, backpressure."""

from __future__ import annotations

import collections
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import can
import pytest

from edge_agent.bus import Bus, OverflowPolicy
from edge_agent.can.dbc import load_dbc
from edge_agent.can.decode import FrameDecoder
from edge_agent.can.ingest import BusIngest, error_frame_state
from edge_agent.can.types import DecodedMessage, FrameToSend
from edge_agent.can.writer import CanWriteError, CanWriter
from fixtures.can_helpers import BENCH_DBC, frame, no_leaked_channels
from fixtures.waiting import wait_until

__all__ = ["no_leaked_channels"]
pytestmark = pytest.mark.usefixtures("no_leaked_channels")
DATABASE = load_dbc(BENCH_DBC).database


@pytest.fixture
def pair() -> Iterator[tuple[can.BusABC, can.BusABC]]:
    channel = f"test-{uuid.uuid4().hex}"
    sender = can.Bus(interface="virtual", channel=channel)
    receiver = can.Bus(interface="virtual", channel=channel)
    yield sender, receiver
    sender.shutdown()
    receiver.shutdown()


@pytest.fixture
async def bus() -> AsyncIterator[Bus]:
    agent_bus = Bus()
    yield agent_bus
    await agent_bus.close()


def make_ingest(receiver: can.BusABC, bus: Bus, **options: Any) -> BusIngest:
    return BusIngest("chassis", receiver, FrameDecoder(DATABASE, bus="chassis"), bus, **options)


async def test_thread_reader_publishes_decoded_and_raw_frames(
    pair: tuple[can.BusABC, can.BusABC], bus: Bus
) -> None:
    sender, receiver = pair
    decoded = bus.subscribe("can/chassis/decoded/#", maxsize=100)
    raw = bus.subscribe("can/chassis/raw", maxsize=100)
    ingest = make_ingest(receiver, bus, publish_raw=True)
    ingest.start()
    try:
        assert ingest.mode == "thread"
        sender.send(frame(257, bytes(8)))
        sender.send(frame(0x7FF, bytes(8)))  # unknown
        sender.send(frame(256, bytes(3)))  # too short
        sender.send(frame(256, b"", is_remote_frame=True))
        message = await decoded.get()
        assert message.topic == "can/chassis/decoded/VehicleDynamics"
        assert isinstance(message.payload, DecodedMessage)
        assert message.payload.bus == "chassis"
        await wait_until(lambda: ingest.counters.frames == 4, what="four frames counted")
        await wait_until(lambda: raw.qsize() == 4, what="four frames on the raw topic")
        counters = ingest.counters.snapshot()
        assert counters == {
            "frames": 4,
            "decoded": 1,
            "error_frames": 0,
            "remote_frames": 1,
            "decode_failures": 1,
            "short_frames": 1,
            "unknown_ids": 1,
            "distinct_unknown_ids": 1,
            "drops": 0,
        }
        assert "id 0x7FF" in ingest.bad_frames["unknown-id"]
        assert "length 3" in ingest.bad_frames["short-frame"]
    finally:
        assert await ingest.stop()


async def test_error_frames_drive_the_bus_state(
    pair: tuple[can.BusABC, can.BusABC], bus: Bus
) -> None:
    sender, receiver = pair
    states: list[tuple[str, str]] = []
    ingest = make_ingest(receiver, bus, on_status=lambda s, r: states.append((s, r)))
    ingest.start()
    try:
        sender.send(can.Message(is_error_frame=True, arbitration_id=0x04, data=bytes([0, 0x20])))
        await wait_until(
            lambda: states and states[-1][0] == "error-passive", what="the error-passive state"
        )
        sender.send(can.Message(is_error_frame=True, arbitration_id=0x40, data=bytes(8)))
        await wait_until(lambda: states[-1][0] == "bus-off", what="the bus-off state")
        sender.send(frame(257, bytes(8)))
        await wait_until(lambda: states[-1][0] == "up", what="the bus back up")
        assert ingest.counters.error_frames == 2
    finally:
        await ingest.stop()


def test_error_frame_classes() -> None:
    def error(class_bits: int, data: bytes = bytes(8)) -> can.Message:
        return can.Message(is_error_frame=True, arbitration_id=class_bits, data=data)

    assert error_frame_state(error(0x40)) == "bus-off"
    assert error_frame_state(error(0x100)) == "up"
    assert error_frame_state(error(0x04, bytes([0, 0x10]))) == "error-passive"
    assert error_frame_state(error(0x04, bytes([0, 0x40]))) == "up"
    assert error_frame_state(error(0x04, b"")) is None
    assert error_frame_state(error(0x02)) is None


async def test_a_stuck_block_subscriber_costs_counted_drops_not_a_hang(
    pair: tuple[can.BusABC, can.BusABC], bus: Bus
) -> None:
    sender, receiver = pair
    stuck = bus.subscribe("can/#", maxsize=4, overflow=OverflowPolicy.BLOCK)
    ingest = make_ingest(receiver, bus, max_pending=16, stall_s=0.05, batch_max_frames=8)
    ingest.start()
    try:
        for _ in range(200):
            sender.send(frame(256, bytes(8)))
        await wait_until(lambda: ingest.counters.frames == 200, what="200 frames counted")
        assert ingest.counters.drops > 0
        drained = 0
        while (await stuck.get()) is not None:  # the pump resumes once there is room
            drained += 1
            if drained + ingest.counters.drops >= 200:
                break
        assert drained + ingest.counters.drops == 200
    finally:
        await ingest.stop()


async def test_a_closed_bus_ends_the_reader_with_a_reason(
    pair: tuple[can.BusABC, can.BusABC], bus: Bus
) -> None:
    _, receiver = pair
    ingest = make_ingest(receiver, bus)
    ingest.start()
    receiver.shutdown()
    assert ingest.ended is not None
    await wait_until(ingest.ended.done, what="the ingest to end")
    assert "closed bus" in ingest.ended.result()
    await ingest.stop()


class DescriptorBus(can.BusABC):  # type: ignore[misc]
    """A bus with a real file descriptor (a socket pair), like SocketCAN, for the fd reader."""

    def __init__(self, **kwargs: Any) -> None:
        self._read, self._write = socket.socketpair()
        self._read.setblocking(False)
        self._frames: collections.deque[can.Message] = collections.deque()
        self.channel_info = "descriptor test bus"
        super().__init__(channel="fd", **kwargs)

    def deliver(self, message: can.Message) -> None:
        if not self._frames:  # the socket only says "frames waiting", like a readable socket
            self._write.send(b"x")
        self._frames.append(message)

    def fileno(self) -> int:
        return self._read.fileno()

    def _recv_internal(self, timeout: float | None) -> tuple[can.Message | None, bool]:
        if not self._frames:
            return None, False
        message = self._frames.popleft()
        if not self._frames:
            self._read.recv(16)
        return message, False

    def send(self, msg: can.Message, timeout: float | None = None) -> None:
        self.deliver(msg)

    def shutdown(self) -> None:
        super().shutdown()
        self._read.close()
        self._write.close()


async def test_descriptor_reader_runs_on_the_loop_without_a_thread(bus: Bus) -> None:
    device = DescriptorBus()
    decoded = bus.subscribe("can/chassis/decoded/#", maxsize=10_000)
    ingest = make_ingest(device, bus, max_pending=64)
    ingest.start()
    try:
        assert ingest.mode == "fd"
        for index in range(500):
            device.deliver(frame(256 + index % 2, bytes(8)))
        await wait_until(lambda: decoded.qsize() == 500, what="500 decoded messages")
        assert ingest.counters.drops == 0  # the reader paused instead of dropping
    finally:
        await ingest.stop()
        device.shutdown()


async def test_writer_round_trip_and_invalid_frames(
    pair: tuple[can.BusABC, can.BusABC],
) -> None:
    sender, receiver = pair
    writer = CanWriter(sender, database=DATABASE)
    writer.send(FrameToSend(0x123, b"\x01\x02"))
    received = receiver.recv(1.0)
    assert received is not None
    assert (received.arbitration_id, bytes(received.data), received.is_extended_id) == (
        0x123,
        b"\x01\x02",
        False,
    )
    sent = writer.send_message(
        "EngineData",
        {
            "EngineSpeed": 1000,
            "ThrottlePosition": 10,
            "CoolantTemp": 90,
            "EngineTorque": 50,
            "FuelRate": 3,
            "EngineRunning": 1,
            "EngineMode": 2,
            "EngineCounter": 5,
        },
    )
    echoed = receiver.recv(1.0)
    assert echoed is not None
    assert bytes(echoed.data) == sent.data
    assert DATABASE.decode_message(768, echoed.data)["EngineSpeed"] == 1000
    with pytest.raises(CanWriteError, match="out of range"):
        writer.send(FrameToSend(0x800, b""))
    with pytest.raises(CanWriteError, match="do not fit"):
        writer.send(FrameToSend(0x1, bytes(9)))
    with pytest.raises(CanWriteError, match="no message"):
        writer.encode("Nope", {})
    assert (writer.sent, writer.failures) == (2, 0)
    writer.close()
    with pytest.raises(CanWriteError, match="closed"):
        writer.send(FrameToSend(0x1, b""))


def test_writer_that_opens_its_own_bus_closes_it() -> None:
    channel = f"test-{uuid.uuid4().hex}"
    with can.Bus(interface="virtual", channel=channel) as listener:
        with CanWriter.open("virtual", channel) as writer:
            writer.send(FrameToSend(0x10, b"\xff", is_extended_id=True))
        writer.close()  # twice is fine
        received = listener.recv(1.0)
        assert received is not None
        assert received.is_extended_id


def test_ingest_benchmark_reports_its_figures() -> None:
    from edge_agent.modules.can_reader.ingest_bench import run_ingest_benchmark

    result = run_ingest_benchmark(frames=4000, runs=1, seconds=0.2, dbc=str(BENCH_DBC))
    assert result["agent_frames_per_s"] > 0
    assert result["baseline_frames_per_s"] > 0
    assert result["ratio"] == pytest.approx(
        result["agent_frames_per_s"] / result["baseline_frames_per_s"], rel=0.01
    )
    assert result["drops"] == 0
    assert result["paced_frames"] == result["paced_consumed"] > 0
