"""candump ``.log`` files: ``(1436509052.249713) vcan0 123#DEADBEEF``, one frame per line."""

from __future__ import annotations

import copy
import math
import random
from types import TracebackType
from typing import TextIO

import can

CAN_ERR_FLAG = 0x20000000
CAN_ERR_BUSERROR = 0x00000080


def candump_line(frame: can.Message, channel: str) -> str:
    """One frame in ``candump -L`` form (no line end); timestamps to the microsecond."""
    if frame.is_error_frame:
        frame_id = f"{CAN_ERR_FLAG | CAN_ERR_BUSERROR:08X}"
        body = bytes(frame.data).hex().upper() if frame.data else "0000000000000000"
    else:
        frame_id = (
            f"{frame.arbitration_id:08X}" if frame.is_extended_id else f"{frame.arbitration_id:03X}"
        )
        if frame.is_remote_frame:
            body = f"R{frame.dlc}" if frame.dlc else "R"
        elif frame.is_fd:
            flags = (1 if frame.bitrate_switch else 0) | (2 if frame.error_state_indicator else 0)
            body = f"#{flags:X}{bytes(frame.data).hex().upper()}"
        else:
            body = bytes(frame.data).hex().upper()
    return f"({frame.timestamp:.6f}) {channel} {frame_id}#{body}"


class CandumpRecorder:
    """Writes frames to a candump ``.log`` file as they come (a context manager).

    Usable directly as a :class:`~edge_agent.simulator.can_io.SimulatorSession` ``frame_sink``.
    """

    def __init__(
        self, path: str, channel: str = "vcan0", *, jitter_ms: float = 0.0, seed: int = 0
    ) -> None:
        if not (jitter_ms >= 0 and math.isfinite(jitter_ms)):
            raise ValueError(f"receive jitter must be a finite number >= 0 (got {jitter_ms})")
        self.path = path
        self.channel = channel
        self.frames = 0
        # A receiver stamps frames when they arrive, not on the sender's exact grid: Gaussian
        # receive-time jitter of this standard deviation, seeded (reproducible logs).
        self.jitter_s = jitter_ms / 1000.0
        self._random = random.Random(seed)
        self._file: TextIO = open(path, "w", encoding="ascii")  # noqa: SIM115 - closed in close()

    def __call__(self, frame: can.Message) -> None:
        """Append ``frame`` (its timestamp moved by the receive jitter, if any)."""
        if self.jitter_s:
            frame = copy.copy(frame)
            frame.timestamp += self._random.gauss(0.0, self.jitter_s)
        self._file.write(candump_line(frame, self.channel) + "\n")
        self.frames += 1

    def close(self) -> None:
        """Flush and close the file (safe to call twice)."""
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> CandumpRecorder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
