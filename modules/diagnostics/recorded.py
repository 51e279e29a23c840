"""Diagnostic answers in a recorded drive, decoded as the signals the module would publish.

A drive recorded while the diagnostics module (or any OBD tester) polled holds the ECUs'
answers on 0x7E8-0x7EF. :class:`RecordedAnswers` follows each answer id's ISO-TP frames
(single, first and consecutive frames; the tester's flow control is not needed to listen),
and turns each complete answer into a ``DecodedMessage``: a mode 01 answer into its PIDs by
name (``engine_speed``, ...), as the module publishes them, and a UDS ReadDataByIdentifier
answer into the DID's configured signal (``dids`` of the agent's diagnostics table, decoded
as configured), or ``did_XXXX`` (an unsigned number up to 4 bytes, else hex). The
uplink estimator (``edge-agent bench uplink``) gets it through the
``edge_agent.recorded_decoders`` entry-point group, so diagnostic signals are collected,
batched and counted like decoded CAN signals.

Bounded: one partial answer per id (at most 4095 bytes, ISO-TP's classic limit); a frame out
of sequence or an answer that does not parse drops what was gathered and is counted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import can
from pydantic import ValidationError

from edge_agent.can.types import DecodedMessage, SignalValue
from edge_agent.modules.diagnostics.codes import MalformedResponse
from edge_agent.modules.diagnostics.config import DiagnosticsConfig, DidSignal, decode_did
from edge_agent.modules.diagnostics.obd import PIDS, SHOW_CURRENT_DATA, decode_pid, pid_length
from edge_agent.modules.diagnostics.tester import ANSWER_OFFSET, OBD_REQUEST_IDS

ANSWER_IDS = frozenset(request_id + ANSWER_OFFSET for request_id in OBD_REQUEST_IDS)
ENTRY_POINT = "diagnostics:DiagnosticsModule"
ISOTP_MAX = 4095
READ_DID_ANSWER = 0x62
BUS = "diag"


@dataclass
class _Partial:
    size: int
    data: bytearray
    next_sequence: int = 1


@dataclass
class RecordedAnswers:
    """Decodes the ECUs' diagnostic answers in recorded frames (see the module docstring)."""

    bus: str = BUS
    dids: dict[tuple[int, int], DidSignal] = field(default_factory=dict)
    answers: int = 0
    malformed: int = 0
    _partial: dict[int, _Partial] = field(default_factory=dict)

    @classmethod
    def for_agent(cls, modules: Mapping[str, Any]) -> RecordedAnswers:
        """A decoder for an agent config's ``[modules]``: its DIDs by their signal names.

        Without a (valid) diagnostics table, DIDs are named ``did_XXXX``.
        """
        for name, table in modules.items():
            entry = table.get("entry_point") if isinstance(table, Mapping) else None
            if name != "diagnostics" and not (
                isinstance(entry, str) and entry.endswith(ENTRY_POINT)
            ):
                continue
            try:
                config = DiagnosticsConfig.model_validate(table.get("config", {}))
            except ValidationError:
                break  # the agent refuses it too: nothing to name DIDs after
            answer_ids = {ecu.name: ecu.response_id for ecu in config.ecus}
            dids = {
                (answer_ids[did.ecu], did.did): did for did in config.dids if did.ecu in answer_ids
            }
            return cls(bus=config.bus_name, dids=dids)
        return cls()

    @property
    def signals(self) -> set[str]:
        """Signal names this decoder can produce: every known PID and the configured DIDs."""
        return {pid.name for pid in PIDS.values()} | {did.signal for did in self.dids.values()}

    def claims(self, frame: can.Message) -> bool:
        """Whether ``frame`` is on an answer id this decoder follows."""
        return frame.arbitration_id in ANSWER_IDS and not frame.is_extended_id

    def decode(self, frame: can.Message) -> DecodedMessage | None:
        """The signals of the answer ``frame`` completes, or None (not an answer, not done)."""
        if not self.claims(frame) or frame.is_error_frame or frame.is_remote_frame:
            return None
        answer = self._reassemble(frame.arbitration_id, bytes(frame.data or b""))
        if answer is None:
            return None
        try:
            signals = self._signals(frame.arbitration_id, answer)
        except MalformedResponse:
            self.malformed += 1
            return None
        if not signals:
            return None
        self.answers += 1
        return DecodedMessage(
            bus=self.bus,
            message=f"ecu_{frame.arbitration_id:03x}",
            frame_id=frame.arbitration_id,
            timestamp=frame.timestamp,
            monotonic=frame.timestamp,
            signals=signals,
        )

    def _reassemble(self, answer_id: int, data: bytes) -> bytes | None:
        kind = data[0] >> 4 if data else 0xF
        if kind == 0:  # single frame
            size = data[0] & 0x0F
            if not 1 <= size <= len(data) - 1:
                self.malformed += 1
                return None
            return data[1 : 1 + size]
        if kind == 1 and len(data) >= 2:  # first frame
            size = (data[0] & 0x0F) << 8 | data[1]
            if not 8 <= size <= ISOTP_MAX:  # 0: the 32-bit escape, beyond ISO-TP's classic limit
                self._partial.pop(answer_id, None)
                self.malformed += 1
                return None
            self._partial[answer_id] = _Partial(size, bytearray(data[2:]))
            return None
        if kind == 2:  # consecutive frame
            partial = self._partial.get(answer_id)
            if partial is None:
                return None  # its first frame was before the recording began
            if data[0] & 0x0F != partial.next_sequence:
                del self._partial[answer_id]
                self.malformed += 1
                return None
            partial.data += data[1:]
            partial.next_sequence = (partial.next_sequence + 1) & 0x0F
            if len(partial.data) >= partial.size:
                del self._partial[answer_id]
                return bytes(partial.data[: partial.size])
            return None
        return None  # flow control (ours) or not ISO-TP

    def _signals(self, answer_id: int, answer: bytes) -> dict[str, SignalValue]:
        """The PIDs of a mode 01 answer or the DID of a ReadDataByIdentifier answer."""
        if answer[0] == 0x40 + SHOW_CURRENT_DATA:
            signals: dict[str, SignalValue] = {}
            at = 1
            while at < len(answer):
                pid = answer[at]
                length = pid_length(pid)
                if length is None or at + 1 + length > len(answer):
                    raise MalformedResponse(f"mode 01: PID {pid:02X} cannot be read here")
                if pid in PIDS:
                    name, value, _ = decode_pid(pid, answer[at + 1 : at + 1 + length])
                    signals[name] = value
                at += 1 + length
            return signals
        if answer[0] == READ_DID_ANSWER and len(answer) > 3:
            number, data = int.from_bytes(answer[1:3], "big"), answer[3:]
            configured = self.dids.get((answer_id, number))
            if configured is not None:
                return {configured.signal: decode_did(configured, data)}
            did: SignalValue = int.from_bytes(data, "big") if len(data) <= 4 else data.hex()
            return {f"did_{number:04x}": did}
        return {}  # other answers (DTCs, sessions) are not signals
