"""Decoding received frames with a (leniently loaded) DBC, fast, never raising.

``FrameDecoder.decode`` turns a python-can ``Message`` into a :class:`DecodedMessage` or one of
the :class:`DecodeOutcome` values below; it never raises, whatever the frame holds:

* ``unknown-id``: no DBC message has the frame's arbitration id;
* ``short-frame``: the frame carries fewer data bytes than the DBC message's length (bytes
  beyond the length are ignored, as cantools does);
* ``error-frame`` / ``remote-frame``: no data to decode;
* ``decode-failed``: anything else cantools rejects, e.g. a multiplexer value the DBC lacks.

Values are physical (scaled); choice (``VAL_``) signals carry their number, not the label.
Messages of plain integer signals, the vast majority, use a decoder generated here from the
DBC (``int.from_bytes``, then a shift, mask, sign fix and scale per signal), two to three
times as fast as cantools; multiplexed messages and float signals use cantools itself. The tests
check both against cantools on random data.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import can
from cantools.database.can import Database
from cantools.database.can import Message as DbcMessage
from cantools.database.conversion import BaseConversion, IdentityConversion

from edge_agent.can.types import DecodedMessage, SignalValue

SignalDecoder = Callable[[bytes | bytearray], dict[str, SignalValue]]


class DecodeOutcome(enum.StrEnum):
    """Why a frame produced no decoded message (see the module docstring)."""

    UNKNOWN_ID = "unknown-id"
    SHORT_FRAME = "short-frame"
    ERROR_FRAME = "error-frame"
    REMOTE_FRAME = "remote-frame"
    DECODE_FAILED = "decode-failed"


@dataclass(frozen=True, slots=True)
class MessageCodec:
    """How to decode one DBC message: its name, length and signal decoder."""

    name: str
    frame_id: int
    length: int
    decode: SignalDecoder
    compiled: bool


def _scaling(signal: Any) -> tuple[Any, Any]:
    """(scale, offset) as cantools applies them with choices off; (None, None) for identity."""
    conversion = signal.conversion
    plain = BaseConversion.factory(conversion.scale, conversion.offset, None, conversion.is_float)
    if isinstance(plain, IdentityConversion):
        return None, None
    return plain.scale, plain.offset


def compile_decoder(message: DbcMessage, names: Mapping[str, str]) -> SignalDecoder | None:
    """A fast decoder for ``message`` (data of exactly its length), or None when not eligible.

    Eligible: not multiplexed, integer signals only, each inside the message. ``names`` maps
    signal names to the names to publish them under (default: the signal name). The decoder
    is generated Python source: two ``int.from_bytes`` and one shift-mask-scale expression per
    signal, the same arithmetic cantools does, without its per-signal calls.
    """
    length = message.length
    if message.is_multiplexed() or not message.signals:
        return None
    lines: list[str] = []
    items: list[str] = []
    uses = {"little": False, "big": False}
    for index, signal in enumerate(message.signals):
        if signal.is_float or signal.length <= 0:
            return None
        if signal.byte_order == "little_endian":
            source, shift = "little", signal.start
            if shift + signal.length > length * 8:
                return None
        else:  # Motorola: the start bit is the most significant bit, in sawtooth numbering
            most = (signal.start // 8) * 8 + (7 - signal.start % 8)
            source, shift = "big", length * 8 - 1 - (most + signal.length - 1)
            if shift < 0:
                return None
        uses[source] = True
        raw = f"r{index}"
        lines.append(f"    {raw} = ({source} >> {shift}) & {(1 << signal.length) - 1}")
        if signal.is_signed:
            sign = 1 << (signal.length - 1)
            lines.append(f"    if {raw} & {sign}:\n        {raw} -= {sign << 1}")
        scale, offset = _scaling(signal)
        value = raw if scale is None else f"{raw} * {scale!r} + {offset!r}"
        items.append(f"{names.get(signal.name, signal.name)!r}: {value}")
    head = [f"    {source} = from_bytes(data, {source!r})" for source in uses if uses[source]]
    text = "\n".join(
        [
            "def decode(data, from_bytes=int.from_bytes):",
            *head,
            *lines,
            "    return {" + ", ".join(items) + "}",
        ]
    )
    namespace: dict[str, Any] = {}
    # Only integers, floats (repr round-trips them exactly) and repr() of names are
    # interpolated, so the generated text is plain arithmetic on ``data``.
    exec(compile(text, f"<dbc message {message.name}>", "exec"), namespace)  # noqa: S102
    decode: SignalDecoder = namespace["decode"]
    return decode


def cantools_decoder(message: DbcMessage, names: Mapping[str, str]) -> SignalDecoder:
    """A decoder that calls cantools (choices off), renaming signals per ``names``."""
    decode_message = message.decode
    renames = {name: new for name, new in names.items() if new != name}

    def decode(data: bytes | bytearray) -> dict[str, SignalValue]:
        values: dict[str, SignalValue] = decode_message(  # type: ignore[assignment]
            bytes(data), decode_choices=False, allow_truncated=False
        )  # with choices off, cantools gives numbers only
        if renames:
            return {renames.get(name, name): value for name, value in values.items()}
        return values

    return decode


class FrameDecoder:
    """Decodes frames of one bus with a DBC; ``decode`` is the hot path and never raises.

    ``signal_names`` maps ``message -> signal -> published name`` (a VSS path, say);
    ``messages`` restricts decoding to those message names (others count as unknown ids).
    """

    def __init__(
        self,
        database: Database,
        *,
        bus: str = "",
        signal_names: Mapping[str, Mapping[str, str]] | None = None,
        messages: set[str] | None = None,
        compiled: bool = True,
    ) -> None:
        self.bus = bus
        self.codecs: dict[int, MessageCodec] = {}
        for message in database.messages:
            if messages is not None and message.name not in messages:
                continue
            names = (signal_names or {}).get(message.name, {})
            fast = compile_decoder(message, names) if compiled else None
            self.codecs[message.frame_id] = MessageCodec(
                message.name,
                message.frame_id,
                message.length,
                fast or cantools_decoder(message, names),
                fast is not None,
            )
        self.dbc_messages = [m for m in database.messages if m.frame_id in self.codecs]

    def decode(self, frame: can.Message) -> DecodedMessage | DecodeOutcome:
        """Decode ``frame`` (see the module docstring for the outcomes)."""
        if frame.is_error_frame:
            return DecodeOutcome.ERROR_FRAME
        codec = self.codecs.get(frame.arbitration_id)
        if codec is None:
            return DecodeOutcome.UNKNOWN_ID
        if frame.is_remote_frame:
            return DecodeOutcome.REMOTE_FRAME
        data = frame.data
        if data is None or len(data) != codec.length:
            if data is None or len(data) < codec.length:
                return DecodeOutcome.SHORT_FRAME
            data = data[: codec.length]
        try:
            signals = codec.decode(data)
        except Exception:
            return DecodeOutcome.DECODE_FAILED
        return DecodedMessage(
            self.bus, codec.name, frame.arbitration_id, frame.timestamp, time.monotonic(), signals
        )
