"""Per-bus ingest: receive frames off the event loop, decode them, publish them on the bus.

One :class:`BusIngest` serves one open python-can bus. Frames are never read with a blocking
call on the event loop:

* when the bus has a file descriptor (SocketCAN), ``loop.add_reader`` calls back when frames
  are waiting and the callback drains what is there with non-blocking reads;
* otherwise (python-can's virtual bus, most vendor interfaces) a reader thread blocks in
  ``recv``, decodes, and hands the loop whole batches (up to ``batch_max_frames`` frames, or
  what arrived within ``batch_window_s``), waking it with ``call_soon_threadsafe`` only when
  it is idle, so a busy bus costs no cross-thread call per frame.

A pump task on the loop publishes each batch with ``Bus.publish``, so subscribers' overflow
policies apply (a BLOCK subscriber slows the pump down). Between reader and pump at most
``max_pending`` items wait; beyond that the reader waits up to ``stall_s`` (the thread) or
stops reading (the descriptor) and the kernel buffers; a batch that still finds no room is
dropped and counted in ``drops``. Error frames update the bus state (up, error-passive,
bus-off) reported through ``on_status``; a reader that fails resolves ``ended``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import can

from edge_agent.bus import Bus
from edge_agent.can.decode import DecodeOutcome, FrameDecoder
from edge_agent.can.tally import DecodeTally
from edge_agent.can.types import BusState, DecodedMessage, decoded_topic, raw_topic

# Linux SocketCAN error frame classes (linux/can/error.h), as python-can passes them on.
CAN_ERR_CRTL = 0x04
CAN_ERR_BUSOFF = 0x40
CAN_ERR_RESTARTED = 0x100
CAN_ERR_CRTL_PASSIVE = 0x10 | 0x20  # RX_PASSIVE | TX_PASSIVE, in data[1]
CAN_ERR_CRTL_ACTIVE = 0x40
# Without a "back to error-active" report, error-passive clears after this long without
# error frames while frames keep arriving.
PASSIVE_CLEARS_AFTER_S = 5.0

Batch = list[tuple[str, Any]]


@dataclass(slots=True)
class BusCounters(DecodeTally):
    """Counters of one bus, kept across reconnects (see docs/can.md).

    The decode tally, plus ``drops``: frames dropped because subscribers fell behind.
    """

    drops: int = 0

    def snapshot(self) -> dict[str, int]:
        """The counters as a JSON-ready dict."""
        return {**self.tally(), "drops": self.drops}


def error_frame_state(frame: can.Message) -> BusState | None:
    """The bus state an error frame reports (bus-off, error-passive, up), if any."""
    error_class = frame.arbitration_id
    if error_class & CAN_ERR_BUSOFF:
        return BusState.BUS_OFF
    if error_class & CAN_ERR_RESTARTED:
        return BusState.UP
    data = frame.data or b""
    if error_class & CAN_ERR_CRTL and len(data) > 1:
        if data[1] & CAN_ERR_CRTL_PASSIVE:
            return BusState.ERROR_PASSIVE
        if data[1] & CAN_ERR_CRTL_ACTIVE:
            return BusState.UP
    return None


class BusIngest:
    """Reads one python-can bus and publishes decoded (and optionally raw) frames.

    Call ``start`` on the event loop and ``stop`` when done; ``stop`` does not shut the
    python-can bus down (its owner does). ``bad_frames`` holds the latest example of each
    kind of bad frame for rate-limited logging by the owner.
    """

    def __init__(
        self,
        name: str,
        can_bus: can.BusABC,
        decoder: FrameDecoder,
        bus: Bus,
        *,
        counters: BusCounters | None = None,
        publish_raw: bool = False,
        sender: str = "",
        batch_max_frames: int = 256,
        batch_window_s: float = 0.002,
        max_pending: int = 8192,
        stall_s: float = 0.5,
        poll_s: float = 0.1,
        reader: str = "auto",
        on_status: Callable[[BusState, str], None] | None = None,
    ) -> None:
        self.name = name
        self.can_bus = can_bus
        self.decoder = decoder
        self.bus = bus
        self.counters = counters or BusCounters()
        self.sender = sender
        self.batch_max_frames = max(1, batch_max_frames)
        self.batch_window_s = batch_window_s
        self.max_pending = max(1, max_pending)
        self.stall_s = stall_s
        self.poll_s = poll_s
        self.reader = reader
        self.on_status = on_status
        self.state = BusState.UP
        self.bad_frames: dict[str, str] = {}
        self.mode = ""
        self._raw_topic = raw_topic(name) if publish_raw else None
        self._topics = {
            codec.name: decoded_topic(name, codec.name) for codec in decoder.codecs.values()
        }
        self._handoff: deque[Batch] = deque()
        self._room = threading.Condition()
        self._in_flight = 0
        self._pump_idle = False
        self._wakeup: asyncio.Future[None] | None = None
        self._stopping = False
        self._last_error_frame = 0.0
        self._fd = -1
        self._paused = False
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pump_task: asyncio.Task[None] | None = None
        self.ended: asyncio.Future[str] | None = None
        self._reader_done: asyncio.Future[None] | None = None

    # -- life ----------------------------------------------------------------------------------

    def start(self) -> None:
        """Start reading (reader thread or descriptor callback) and the pump; call on the loop."""
        loop = self._loop = asyncio.get_running_loop()
        self.ended = loop.create_future()
        self._reader_done = loop.create_future()
        self._pump_task = loop.create_task(self._pump(), name=f"can.{self.name}.pump")
        fd = -1
        if self.reader == "auto":
            with contextlib.suppress(NotImplementedError, OSError, ValueError, AttributeError):
                fd = self.can_bus.fileno()
        if fd >= 0:
            self.mode, self._fd = "fd", fd
            loop.add_reader(fd, self._on_readable)
        else:
            self.mode = "thread"
            self._thread = threading.Thread(
                target=self._read_thread, name=f"can.{self.name}.reader", daemon=True
            )
            self._thread.start()

    async def stop(self, grace_s: float = 2.0) -> bool:
        """Stop reading and publishing; return False when the reader thread did not end in time."""
        self._stopping = True
        with self._room:
            self._room.notify_all()
        ended_in_time = True
        if self.mode == "fd":
            self._remove_reader()
            self._finish("")
        elif self._reader_done is not None:
            done, _ = await asyncio.wait([self._reader_done], timeout=grace_s)
            ended_in_time = bool(done)
        if self._pump_task is not None:
            self._pump_task.cancel()
            await asyncio.wait([self._pump_task])  # unlike awaiting it, never raises
        return ended_in_time

    @property
    def pending(self) -> int:
        """Items handed to the pump and not yet published."""
        return self._in_flight

    # -- per frame (reader side: the thread, or the loop in descriptor mode) -------------------

    def _take(self, frame: can.Message, batch: Batch) -> None:
        # The hot path: ``frames`` and ``decoded`` are counted inline (DecodeTally.count would
        # add a call per frame); every other outcome goes through the tally's own counting.
        counters = self.counters
        counters.frames += 1
        if self._raw_topic is not None:
            batch.append((self._raw_topic, frame))
        result = self.decoder.decode(frame)
        if result.__class__ is DecodedMessage:
            counters.decoded += 1
            batch.append((self._topics[result.message], result))
            if self.state not in {BusState.UP, BusState.ERROR_PASSIVE}:
                self._set_state(BusState.UP, "frames are arriving again")
            elif self.state is BusState.ERROR_PASSIVE and (
                time.monotonic() - self._last_error_frame > PASSIVE_CLEARS_AFTER_S
            ):
                self._set_state(BusState.UP, "no error frames for a while")
            return
        self._count_bad(frame, result)  # type: ignore[arg-type]

    def _count_bad(self, frame: can.Message, outcome: DecodeOutcome) -> None:
        self.counters.count_undecoded(frame.arbitration_id, outcome)
        if outcome is DecodeOutcome.ERROR_FRAME:
            self._last_error_frame = time.monotonic()
            state = error_frame_state(frame)
            if state is not None and state != self.state:
                self._set_state(state, f"error frame class 0x{frame.arbitration_id:X}")
            return
        if outcome is DecodeOutcome.REMOTE_FRAME:
            return
        data = frame.data or b""
        self.bad_frames[outcome.value] = (
            f"id 0x{frame.arbitration_id:X} length {len(data)} data {bytes(data[:16]).hex()}"
        )

    def _set_state(self, state: BusState, reason: str) -> None:
        self.state = state
        if self.on_status is not None and self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closing
                self._loop.call_soon_threadsafe(self.on_status, state, reason)

    # -- the reader thread ---------------------------------------------------------------------

    def _read_thread(self) -> None:
        recv = self.can_bus.recv
        take = self._take
        limit = self.batch_max_frames
        monotonic = time.monotonic
        reason = ""
        try:
            while not self._stopping:
                frame = recv(self.poll_s)
                if frame is None:
                    continue
                batch: Batch = []
                take(frame, batch)
                count = 1
                deadline = monotonic() + self.batch_window_s
                while count < limit:
                    frame = recv(0)
                    if frame is None:
                        remaining = deadline - monotonic()
                        if remaining <= 0 or (frame := recv(remaining)) is None:
                            break
                    take(frame, batch)
                    count += 1
                self._hand_over(batch, count)
        except Exception as error:
            reason = "" if self._stopping else f"{type(error).__name__}: {error}"
        finally:
            if self._loop is not None:
                with contextlib.suppress(RuntimeError):
                    self._loop.call_soon_threadsafe(self._finish, reason)

    def _hand_over(self, batch: Batch, frames: int) -> None:
        if not batch:
            return
        size = len(batch)
        limit = self.max_pending
        with self._room:
            if self._in_flight and self._in_flight + size > limit:
                self._room.wait_for(
                    lambda: self._stopping or self._in_flight + size <= limit, self.stall_s
                )
                if self._stopping:
                    return
                if self._in_flight and self._in_flight + size > limit:
                    self.counters.drops += frames
                    self.bad_frames["drop"] = f"{frames} frames: subscribers fell behind"
                    return
            self._in_flight += size
        self._handoff.append(batch)
        if self._pump_idle and self._loop is not None:
            self._pump_idle = False
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._wake_pump)

    # -- the descriptor reader (on the loop) ---------------------------------------------------

    def _on_readable(self) -> None:
        batch: Batch = []
        recv = self.can_bus.recv
        try:
            for _ in range(self.batch_max_frames):
                frame = recv(0)
                if frame is None:
                    break
                self._take(frame, batch)
        except Exception as error:
            self._remove_reader()
            self._finish("" if self._stopping else f"{type(error).__name__}: {error}")
        if batch:
            with self._room:
                self._in_flight += len(batch)
            self._handoff.append(batch)
            self._wake_pump()
            if self._in_flight >= self.max_pending and self._fd >= 0 and not self._paused:
                self._paused = True  # let the kernel buffer until the pump catches up
                self._remove_reader(forget=False)

    def _remove_reader(self, *, forget: bool = True) -> None:
        if self._fd >= 0 and self._loop is not None:
            self._loop.remove_reader(self._fd)
            if forget:
                self._fd = -1

    # -- loop side -----------------------------------------------------------------------------

    def _finish(self, reason: str) -> None:
        if self._reader_done is not None and not self._reader_done.done():
            self._reader_done.set_result(None)
        if reason and self.ended is not None and not self.ended.done():
            self.ended.set_result(reason)

    def _wake_pump(self) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    def _release(self, size: int) -> None:
        with self._room:
            self._in_flight -= size
            self._room.notify()
        if self._paused and self._in_flight <= self.max_pending // 2 and self._fd >= 0:
            self._paused = False
            assert self._loop is not None
            self._loop.add_reader(self._fd, self._on_readable)

    async def _pump(self) -> None:
        loop = asyncio.get_running_loop()
        publish = self.bus.publish
        sender = self.sender
        handoff = self._handoff
        while True:
            if not handoff:
                self._wakeup = loop.create_future()
                self._pump_idle = True
                if not handoff:  # the reader may have handed over just before we said idle
                    await self._wakeup
                self._pump_idle = False
                continue
            batch = handoff.popleft()
            try:
                for topic, payload in batch:
                    await publish(topic, payload, sender=sender)
            finally:
                self._release(len(batch))
            await asyncio.sleep(0)  # subscribers run between batches
