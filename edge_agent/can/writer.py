"""Sending frames: a small writer over any python-can bus, usable without the agent's bus.

The CAN reader module serves ``can/{bus}/send`` with it; a module that must not wait on the
event loop (the brake fast path, in its own process) opens its own :class:`CanWriter` on its
own python-can bus and calls ``send`` directly from its decision thread.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import can
from cantools.database.can import Database

from edge_agent.can.types import FrameToSend, SignalValue


class CanWriteError(Exception):
    """A frame could not be sent (bus closed, buffer full, bad frame); the text says which."""


def to_can_message(frame: FrameToSend) -> can.Message:
    """The python-can message for ``frame``; raise CanWriteError when it is not a valid frame."""
    limit = 0x1FFFFFFF if frame.is_extended_id else 0x7FF
    if not 0 <= frame.arbitration_id <= limit:
        kind = "extended" if frame.is_extended_id else "standard"
        raise CanWriteError(f"id 0x{frame.arbitration_id:X} is out of range for a {kind} id")
    if len(frame.data) > (64 if frame.is_fd else 8):
        raise CanWriteError(
            f"{len(frame.data)} data bytes do not fit a {'FD' if frame.is_fd else 'classic'} frame"
        )
    try:
        return can.Message(
            arbitration_id=frame.arbitration_id,
            data=bytes(frame.data),
            is_extended_id=frame.is_extended_id,
            is_fd=frame.is_fd,
            is_rx=False,
            check=True,
        )
    except (ValueError, TypeError) as error:
        raise CanWriteError(f"invalid frame: {error}") from None


class CanWriter:
    """Sends :class:`FrameToSend` frames (or DBC-encoded messages) on one python-can bus.

    Thread-safe: sends are serialised by a lock. ``owns_bus`` decides whether ``close`` shuts
    the bus down (true for :meth:`open`). Counters: ``sent`` and ``failures``.
    """

    def __init__(
        self, bus: can.BusABC, *, owns_bus: bool = False, database: Database | None = None
    ) -> None:
        self.bus = bus
        self.database = database
        self.owns_bus = owns_bus
        self.sent = 0
        self.failures = 0
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def open(
        cls,
        interface: str,
        channel: str | int,
        *,
        bitrate: int | None = None,
        fd: bool = False,
        database: Database | None = None,
        **options: Any,
    ) -> CanWriter:
        """Open a bus of its own (no receive filters needed: it only sends)."""
        if bitrate is not None:
            options["bitrate"] = bitrate
        try:
            bus = can.Bus(interface=interface, channel=channel, fd=fd, **options)
        except (can.CanError, OSError, ValueError) as error:
            raise CanWriteError(f"cannot open {interface} channel {channel}: {error}") from None
        return cls(bus, owns_bus=True, database=database)

    def send(self, frame: FrameToSend, timeout: float | None = 0.1) -> None:
        """Send ``frame``, waiting up to ``timeout`` s for room; raise CanWriteError on failure."""
        message = to_can_message(frame)
        with self._lock:
            if self._closed:
                self.failures += 1
                raise CanWriteError("writer is closed")
            try:
                self.bus.send(message, timeout=timeout)
            except (can.CanError, OSError, ValueError) as error:
                self.failures += 1
                raise CanWriteError(f"send failed: {error}") from None
            self.sent += 1

    def encode(self, message: str, signals: Mapping[str, SignalValue]) -> FrameToSend:
        """Encode DBC message ``message`` from physical ``signals`` (needs ``database``)."""
        if self.database is None:
            raise CanWriteError("no DBC given to this writer; cannot encode by name")
        try:
            definition = self.database.get_message_by_name(message)
            data = definition.encode(dict(signals), strict=True)
        except KeyError:
            raise CanWriteError(f"no message {message!r} in the DBC") from None
        except Exception as error:
            raise CanWriteError(f"cannot encode {message}: {error}") from None
        return FrameToSend(
            definition.frame_id,
            bytes(data),
            bool(definition.is_extended_frame),
            bool(definition.is_fd),
        )

    def send_message(
        self, message: str, signals: Mapping[str, SignalValue], timeout: float | None = 0.1
    ) -> FrameToSend:
        """Encode and send DBC message ``message``; return the frame sent."""
        frame = self.encode(message, signals)
        self.send(frame, timeout)
        return frame

    def close(self) -> None:
        """Stop sending; shut the bus down if this writer opened it. Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self.owns_bus:
            self.bus.shutdown()

    def __enter__(self) -> CanWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
