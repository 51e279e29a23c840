"""One configured CAN bus kept open: open, ingest, watch, reconnect with capped jittered backoff."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from typing import Any

import can

from edge_agent.backoff import Backoff
from edge_agent.bus import Priority
from edge_agent.can.dbc import kernel_filters
from edge_agent.can.decode import FrameDecoder
from edge_agent.can.ingest import BusCounters, BusIngest
from edge_agent.can.types import BusState, BusStatus, FrameToSend, status_topic
from edge_agent.can.writer import CanWriteError, CanWriter
from edge_agent.module_api import ModuleContext
from edge_agent.modules.can_reader.config import BusConfig, CanReaderConfig

# A connection that stayed up this long starts its backoff from the beginning again.
STABLE_AFTER_S = 10.0
# Bad-frame kinds: (counter, example keys in BusIngest.bad_frames, log as a warning).
BAD_KINDS: dict[str, tuple[str, tuple[str, ...], bool]] = {
    "unknown ids": ("unknown_ids", ("unknown-id",), False),
    "undecodable frames": ("decode_failures", ("short-frame", "decode-failed"), True),
    "error frames": ("error_frames", (), True),
    "dropped frames": ("drops", ("drop",), True),
}


def _shut_down_if_opened(opening: asyncio.Future[can.BusABC]) -> None:
    if not opening.cancelled() and opening.exception() is None:
        opening.result().shutdown()


class BusConnection:
    """Keeps one bus open and ingesting; its state and counters survive reconnects.

    ``state`` is a :class:`BusState` (up, error-passive, bus-off, down); each change is published
    as a :class:`BusStatus` on ``can/{bus}/status`` with control priority.
    """

    def __init__(
        self,
        config: BusConfig,
        decoder: FrameDecoder,
        settings: CanReaderConfig,
        context: ModuleContext,
        *,
        on_change: Callable[[], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.name = config.name
        self.decoder = decoder
        self.settings = settings
        self.context = context
        self.on_change = on_change
        self.backoff = Backoff(
            settings.reconnect_initial_s, settings.reconnect_max_s, rng=rng or random.Random()
        )
        self.counters = BusCounters()
        self.state = BusState.DOWN
        self.reason = "not opened yet"
        self.state_since = context.clock.monotonic()
        self.reconnects = 0
        self.frames_per_s = 0.0
        self.can_bus: can.BusABC | None = None
        self.ingest: BusIngest | None = None
        self.writer: CanWriter | None = None
        self.first_attempt = asyncio.Event()
        self._reopen = asyncio.Event()
        self._closing = asyncio.Event()
        self._rate_mark = (self.state_since, 0)
        self._logged: dict[str, tuple[float, int]] = {}

    # -- opening -------------------------------------------------------------------------------

    def uses_kernel_filters(self) -> bool:
        """Whether the DBC's ids go to python-can as ``can_filters``."""
        if self.config.kernel_filters == "auto":
            return self.config.interface == "socketcan"
        return self.config.kernel_filters == "on"

    def bus_arguments(self) -> dict[str, Any]:
        """Keyword arguments for ``can.Bus`` (interface, channel, filters, options)."""
        config = self.config
        arguments: dict[str, Any] = {
            "interface": config.interface,
            "channel": config.channel,
            "receive_own_messages": config.receive_own_messages,
        }
        if config.fd:
            arguments["fd"] = True
        if config.bitrate is not None:
            arguments["bitrate"] = config.bitrate
        if config.data_bitrate is not None:
            arguments["data_bitrate"] = config.data_bitrate
        if self.uses_kernel_filters():
            arguments["can_filters"] = kernel_filters(self.decoder.dbc_messages)
        arguments.update(config.options)
        return arguments

    async def keep_connected(self) -> None:
        """Open the bus and ingest from it; on failure reconnect with backoff, until closed."""
        attempt = 0
        while not self._closing.is_set():
            try:
                can_bus = await self._open()
            except Exception as error:
                attempt += 1
                self._set_state(BusState.DOWN, f"cannot open: {type(error).__name__}: {error}")
                self.first_attempt.set()
                await self._pause(attempt)
                continue
            opened_at = self.context.clock.monotonic()
            reason = await self._ingest_until_trouble(can_bus)
            if self._closing.is_set():
                return
            self.reconnects += 1
            self._set_state(BusState.DOWN, reason)
            stable = self.context.clock.monotonic() - opened_at > STABLE_AFTER_S
            attempt = 1 if stable else attempt + 1
            await self._pause(attempt)

    async def _open(self) -> can.BusABC:
        """Open the bus in a worker thread (drivers may block); never leak it when cancelled."""
        opening = asyncio.ensure_future(asyncio.to_thread(lambda: can.Bus(**self.bus_arguments())))
        try:
            return await asyncio.shield(opening)
        except asyncio.CancelledError:
            opening.add_done_callback(_shut_down_if_opened)
            raise

    async def _ingest_until_trouble(self, can_bus: can.BusABC) -> str:
        config = self.config
        self.can_bus = can_bus
        self.writer = CanWriter(can_bus)
        self.ingest = ingest = BusIngest(
            self.name,
            can_bus,
            self.decoder,
            self.context.bus,
            counters=self.counters,
            publish_raw=config.publish_raw,
            sender=self.context.name,
            batch_max_frames=config.batch_max_frames,
            batch_window_s=config.batch_window_s,
            max_pending=config.max_pending,
            reader=config.reader,
            on_status=self._set_state,
        )
        self._reopen.clear()
        ingest.start()
        self._set_state(BusState.UP, f"opened ({ingest.mode} reader)")
        self.first_attempt.set()
        assert ingest.ended is not None
        waiters: list[asyncio.Future[Any]] = [
            asyncio.ensure_future(self._reopen.wait()),
            asyncio.ensure_future(self._closing.wait()),
        ]
        try:
            await asyncio.wait([ingest.ended, *waiters], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            await self._disconnect()
        if ingest.ended.done():
            return f"reader failed: {ingest.ended.result()}"
        return f"reopening: bus-off for more than {config.bus_off_reopen_s:g} s"

    async def _pause(self, attempt: int) -> None:
        delay = self.backoff.delay(attempt)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._closing.wait()

    async def _disconnect(self) -> None:
        ingest, can_bus, writer = self.ingest, self.can_bus, self.writer
        self.ingest, self.can_bus, self.writer = None, None, None
        if writer is not None:
            writer.close()
        if ingest is not None and not await ingest.stop():
            self.context.log.warning("CAN reader thread did not end in time", bus=self.name)
        if can_bus is not None:
            with contextlib.suppress(Exception):
                can_bus.shutdown()

    async def close(self) -> None:
        """Stop ingesting and shut the bus down; no reconnect follows. Safe to call twice."""
        self._closing.set()
        await self._disconnect()
        self._set_state(BusState.DOWN, "stopped")

    def reopen(self) -> None:
        """Close and reopen the bus now (a bus-off that does not recover, say)."""
        self._reopen.set()

    # -- state and figures ---------------------------------------------------------------------

    def _set_state(self, state: BusState, reason: str) -> None:
        if state == self.state and reason == self.reason:
            return
        changed = state != self.state
        self.state, self.reason = state, reason
        if changed:
            self.state_since = self.context.clock.monotonic()
            self.context.bus.publish_nowait(
                status_topic(self.name),
                BusStatus(self.name, state, reason),
                priority=Priority.CONTROL,
                sender=self.context.name,
            )
            log = self.context.log.info if state is BusState.UP else self.context.log.warning
            log("CAN bus state", bus=self.name, state=state.value, reason=reason)
        if self.on_change is not None:
            self.on_change()

    async def send(self, frame: FrameToSend) -> None:
        """Send ``frame`` on this bus (in a worker thread); CanWriteError when it is down."""
        writer = self.writer
        if writer is None or self.state is BusState.DOWN:
            raise CanWriteError(f"bus {self.name} is down: {self.reason}")
        await asyncio.to_thread(writer.send, frame, self.settings.send_timeout_s)

    def tick(self, now: float) -> None:
        """Periodic upkeep: frame rate, bus-off reopen, rate-limited bad-frame logging."""
        mark_time, mark_frames = self._rate_mark
        if now > mark_time:
            self.frames_per_s = (self.counters.frames - mark_frames) / (now - mark_time)
            self._rate_mark = (now, self.counters.frames)
        if self.state is BusState.BUS_OFF and now - self.state_since > self.config.bus_off_reopen_s:
            self.reopen()
        examples = self.ingest.bad_frames if self.ingest is not None else {}
        for kind, (counter, keys, warn) in BAD_KINDS.items():
            count = getattr(self.counters, counter)
            logged_at, logged_count = self._logged.get(kind, (-1e9, 0))
            if count <= logged_count or now - logged_at < self.settings.bad_frame_log_interval_s:
                continue
            self._logged[kind] = (now, count)
            example = next((examples[key] for key in keys if key in examples), "")
            log = self.context.log.warning if warn else self.context.log.info
            log(
                "CAN bad frames",
                bus=self.name,
                kind=kind,
                new=count - logged_count,
                total=count,
                example=example,
            )

    def details(self) -> dict[str, Any]:
        """Health details of this bus: state, counters, rate, reader mode."""
        ingest = self.ingest
        return {
            "state": self.state.value,
            "reason": self.reason,
            **self.counters.snapshot(),
            "frames_per_s": round(self.frames_per_s, 1),
            "reconnects": self.reconnects,
            "reader": ingest.mode if ingest is not None else "",
            "pending": ingest.pending if ingest is not None else 0,
            "kernel_filters": len(self.decoder.dbc_messages) if self.uses_kernel_filters() else 0,
        }
