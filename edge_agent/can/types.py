"""Types shared by everything that moves CAN data over the in-process bus.

Topic scheme (documented in docs/can.md):

* ``can/{bus}/decoded/{message}``: a :class:`DecodedMessage` per received frame that the DBC
  decodes (``{bus}`` is the configured bus name, ``{message}`` the DBC message name);
* ``can/{bus}/raw``: the received python-can ``can.Message`` itself (only when raw publishing
  is enabled for that bus);
* ``can/{bus}/send``: request/reply topic of the CAN writer (payload :class:`FrameToSend`);
* ``can/{bus}/status``: :class:`BusStatus` on every state change of a bus (control priority).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

SignalValue = float | int | str


def decoded_topic(bus: str, message: str) -> str:
    """The bus topic a decoded message of ``message`` on ``bus`` is published on."""
    return f"can/{bus}/decoded/{message}"


def raw_topic(bus: str) -> str:
    """The bus topic raw frames of ``bus`` are published on."""
    return f"can/{bus}/raw"


def send_topic(bus: str) -> str:
    """The request topic of the writer of ``bus``."""
    return f"can/{bus}/send"


def status_topic(bus: str) -> str:
    """The topic bus state changes of ``bus`` are published on."""
    return f"can/{bus}/status"


@dataclass(slots=True)
class DecodedMessage:
    """One received frame decoded with the DBC.

    ``timestamp`` is python-can's receive timestamp (seconds, wall-clock based);
    ``monotonic`` is ``time.monotonic()`` taken when the agent received it. ``signals`` maps
    signal names (or VSS paths, when a mapping is configured) to physical values; choice
    signals carry their numeric raw value.
    """

    bus: str
    message: str
    frame_id: int
    timestamp: float
    monotonic: float
    signals: dict[str, SignalValue] = field(default_factory=dict)


@dataclass(slots=True, frozen=True)
class FrameToSend:
    """A frame another module asks the CAN writer to send."""

    arbitration_id: int
    data: bytes
    is_extended_id: bool = False
    is_fd: bool = False


class BusState(enum.StrEnum):
    """A CAN bus's state as the reader sees it (docs/can.md)."""

    UP = "up"
    ERROR_PASSIVE = "error-passive"  # the controller reported error-passive: still receiving
    BUS_OFF = "bus-off"  # the controller left the bus; the reader reopens it after a while
    DOWN = "down"  # not open (not yet, failed to open, or closed)


@dataclass(slots=True, frozen=True)
class BusStatus:
    """A CAN bus's state as the reader sees it, and why it changed."""

    bus: str
    state: BusState
    reason: str = ""
