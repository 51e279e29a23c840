"""Simulated ECUs: an engine ECU and a brake ECU answering UDS and OBD-II over ISO-TP.

Each ECU is an ISO-TP endpoint (can-isotp, on a python-can ``Notifier``) on the usual OBD
physical addresses: engine 0x7E0 -> 0x7E8, brake 0x7E2 -> 0x7EA. They answer mode 01 PIDs,
modes 03/07/0A, UDS DiagnosticSessionControl, TesterPresent, ReadDTCInformation (by status
mask), ReadDataByIdentifier and ClearDiagnosticInformation, with the negative responses a
real ECU gives (0x11 unknown service, 0x13 wrong length, 0x31 unknown DID) and one DID that
answers "response pending" (0x78) before its data. Faults set DTCs at run time
(:meth:`SimulatedEcu.set_dtc`): a radar dropout sets U0235 on the brake ECU, a low battery
P0562 on the engine ECU.

The server side is the simulator's own code: udsoncan is a client library.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import can
import isotp

from edge_agent.modules.diagnostics.codes import code_from_bytes, code_to_bytes

# Status of a DTC that is failing now and confirmed (test failed, this cycle, confirmed).
ACTIVE_STATUS = 0x0B
RADAR_DTC = "U0235"
VOLTAGE_DTC = "P0562"
PENDING_DID = 0xF18C
# OBD-II functional request id (ISO 15765-4): every OBD ECU listens, each answers on its own id.
FUNCTIONAL_ID = 0x7DF
OBD_SERVICES = frozenset({0x01, 0x02, 0x03, 0x07, 0x09, 0x0A})
# ISO 14229-2 S3 server timeout: a non-default session ends after this long without requests.
S3_TIMEOUT_S = 5.0  # the serial number: answered after one "response pending"


@dataclass
class SimulatedEcu:
    """One ECU: its addresses, DTCs (code -> status), PIDs and DIDs."""

    name: str
    request_id: int
    response_id: int
    pids: dict[int, bytes] = field(default_factory=dict)
    dids: dict[int, bytes] = field(default_factory=dict)
    dtcs: dict[str, int] = field(default_factory=dict)
    snapshots: dict[str, bytes] = field(default_factory=dict)
    occurrences: dict[str, int] = field(default_factory=dict)
    functional: bool = True  # listens on the OBD functional id 0x7DF too
    session: int = 1
    requests: int = 0
    tester_presents: int = 0
    last_request: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def set_dtc(self, code: str, status: int = ACTIVE_STATUS) -> None:
        """Set (or change the status of) ``code``; status 0 removes it."""
        code_to_bytes(code)
        code = code.upper()
        with self._lock:
            if status:
                if status & 0x01 and not self.dtcs.get(code, 0) & 0x01:
                    # A new failure: freeze the conditions and count the occurrence.
                    self.occurrences[code] = min(0xFF, self.occurrences.get(code, 0) + 1)
                    self.snapshots[code] = self._freeze_frame()
                self.dtcs[code] = status
            else:
                self.dtcs.pop(code, None)

    def _freeze_frame(self) -> bytes:
        """Snapshot record 1: vehicle speed (DID 0xDD01, km/h) and supply voltage (0xDD02, mV)."""
        speed = self.pids.get(0x0D, b"\x00")[:1]
        voltage = self.pids.get(0x42, b"\x00\x00")[:2]
        return b"\x01\x02\xdd\x01" + speed + b"\xdd\x02" + voltage

    def answer(self, request: bytes) -> list[bytes]:
        """The answers to ``request`` in order (none for a suppressed positive response)."""
        self.requests += 1
        now = time.monotonic()
        if self.session != 1 and now - self.last_request > S3_TIMEOUT_S:
            self.session = 1  # the tester went quiet: back to the default session
        self.last_request = now
        if not request:
            return []
        service = request[0]
        handler = {
            0x01: self._current_data,
            0x03: self._obd_dtcs,
            0x07: self._obd_dtcs,
            0x0A: self._obd_dtcs,
            0x10: self._session,
            0x14: self._clear,
            0x19: self._read_dtc_information,
            0x22: self._read_did,
            0x3E: self._tester_present,
        }.get(service)
        if handler is None:
            return [_negative(service, 0x11)]
        return handler(request)

    def _supported_bitmap(self, base: int) -> bytes:
        bits = 0
        for pid in list(self.pids) + [b for b in (0x20, 0x40, 0x60) if self._has_above(b)]:
            if base < pid <= base + 32:
                bits |= 1 << (32 - (pid - base))
        return bits.to_bytes(4, "big")

    def _has_above(self, base: int) -> bool:
        return any(pid > base for pid in self.pids)

    def _current_data(self, request: bytes) -> list[bytes]:
        if not 2 <= len(request) <= 7:
            return []  # OBD ECUs stay silent on a request they cannot parse
        answer = bytearray([0x41])
        for pid in request[1:]:
            if pid % 0x20 == 0:
                answer += bytes([pid]) + self._supported_bitmap(pid)
            elif pid in self.pids:
                answer += bytes([pid]) + self.pids[pid]
        return [bytes(answer)] if len(answer) > 1 else []

    def _obd_dtcs(self, request: bytes) -> list[bytes]:
        mode = request[0]
        wanted = {0x03: 0x08, 0x07: 0x04, 0x0A: 0x08}[mode]
        with self._lock:
            codes = [code for code, status in self.dtcs.items() if status & wanted]
        body = b"".join(code_to_bytes(code) for code in codes)
        return [bytes([0x40 + mode, len(codes)]) + body]

    def _session(self, request: bytes) -> list[bytes]:
        if len(request) != 2:
            return [_negative(0x10, 0x13)]
        session = request[1] & 0x7F
        if session not in (1, 3):
            return [_negative(0x10, 0x12)]
        self.session = session
        # P2 50 ms, P2* 5 s (in 10 ms units).
        return [] if request[1] & 0x80 else [bytes([0x50, session, 0x00, 0x32, 0x01, 0xF4])]

    def _tester_present(self, request: bytes) -> list[bytes]:
        if len(request) != 2 or request[1] & 0x7F:
            return [_negative(0x3E, 0x13)]
        self.tester_presents += 1
        return [] if request[1] & 0x80 else [b"\x7e\x00"]

    def _clear(self, request: bytes) -> list[bytes]:
        if len(request) != 4:
            return [_negative(0x14, 0x13)]
        with self._lock:
            self.dtcs.clear()
        return [b"\x54"]

    def _read_dtc_information(self, request: bytes) -> list[bytes]:
        if len(request) < 2:
            return [_negative(0x19, 0x13)]
        if request[1] == 0x0A:  # all supported DTCs
            with self._lock:
                dtcs = dict(self.dtcs)
            return [b"\x59\x0a\xff" + _dtc_records(dtcs)]
        if request[1] in (0x04, 0x06):
            return [self._dtc_record(request)]
        if request[1] != 0x02:
            return [_negative(0x19, 0x12)]
        if len(request) != 3:
            return [_negative(0x19, 0x13)]
        mask = request[2]
        with self._lock:
            dtcs = {code: status for code, status in self.dtcs.items() if status & mask}
        return [b"\x59\x02\xff" + _dtc_records(dtcs)]

    def _dtc_record(self, request: bytes) -> bytes:
        """Snapshot (0x04) or extended data (0x06) of one DTC: record 1, or 0xFF for all."""
        if len(request) != 6:
            return _negative(0x19, 0x13)
        code = code_from_bytes(request[2], request[3])
        with self._lock:
            status = self.dtcs.get(code)
            snapshot = self.snapshots.get(code)
            occurrences = self.occurrences.get(code, 0)
        if status is None or request[5] not in (0x01, 0xFF):
            return _negative(0x19, 0x31)
        head = bytes([0x59, request[1]]) + request[2:5] + bytes([status])
        if request[1] == 0x04:
            return head + (snapshot or b"")
        return head + bytes([0x01, occurrences])  # record 1: occurrence counter

    def _read_did(self, request: bytes) -> list[bytes]:
        if len(request) < 3 or len(request) % 2 == 0:
            return [_negative(0x22, 0x13)]
        did = int.from_bytes(request[1:3], "big")
        if did not in self.dids:
            return [_negative(0x22, 0x31)]
        answer = b"\x62" + request[1:3] + self.dids[did]
        if did == PENDING_DID:
            return [_negative(0x22, 0x78), answer]
        return [answer]


def _negative(service: int, code: int) -> bytes:
    return bytes([0x7F, service, code])


def _dtc_records(dtcs: dict[str, int]) -> bytes:
    return b"".join(
        code_to_bytes(code) + b"\x00" + bytes([status]) for code, status in dtcs.items()
    )


def engine_ecu() -> SimulatedEcu:
    """An engine ECU at idle: OBD PIDs, VIN and part number DIDs."""
    return SimulatedEcu(
        name="engine",
        request_id=0x7E0,
        response_id=0x7E8,
        pids={
            0x01: b"\x00\x07\x65\x00",
            0x04: b"\x33",  # 20 % load
            0x05: b"\x82",  # 90 degC
            0x0C: b"\x0c\x80",  # 800 rpm
            0x0D: b"\x00",
            0x2F: b"\xb3",  # 70 % fuel
            0x42: b"\x36\x88",  # 13.96 V
        },
        dids={
            0xF190: b"EDGEAGENTSIM00001",
            0xF187: b"ENG-0001",
            PENDING_DID: b"SN-ENG-42",
        },
    )


def brake_ecu() -> SimulatedEcu:
    """A brake (ABS/AEB) ECU: UDS only for DTCs and DIDs, with wheel-speed and voltage PIDs."""
    return SimulatedEcu(
        name="brake",
        request_id=0x7E2,
        response_id=0x7EA,
        pids={0x0D: b"\x00", 0x42: b"\x36\x10"},
        dids={0xF187: b"BRK-0001", 0xF190: b"EDGEAGENTSIM00001"},
    )


class EcuServer:
    """Serves a set of simulated ECUs on one python-can bus until closed (a thread each)."""

    def __init__(self, bus: can.BusABC, ecus: list[SimulatedEcu]) -> None:
        self.bus = bus
        self.ecus = {ecu.name: ecu for ecu in ecus}
        self.notifier = can.Notifier(bus, [], timeout=0.05)
        self.transport_errors = 0
        self.functional_requests = 0
        self._stop = threading.Event()
        self._stacks: list[isotp.NotifierBasedCanStack] = []
        self._served: list[tuple[SimulatedEcu, isotp.NotifierBasedCanStack]] = []
        self._threads: list[threading.Thread] = []
        for ecu in ecus:
            stack = isotp.NotifierBasedCanStack(
                bus,
                self.notifier,
                address=isotp.Address(
                    isotp.AddressingMode.Normal_11bits, rxid=ecu.request_id, txid=ecu.response_id
                ),
                error_handler=self._transport_error,
                params={"tx_padding": 0x00, "blocking_send": False},
            )
            stack.start()
            self._stacks.append(stack)
            self._served.append((ecu, stack))
            thread = threading.Thread(
                target=self._serve, args=(ecu, stack), name=f"sim-ecu[{ecu.name}]", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        self.notifier.add_listener(_FunctionalListener(self))

    def _transport_error(self, error: Exception) -> None:
        self.transport_errors += 1

    def serve_functional(self, request: bytes) -> None:
        """Answer an OBD request sent to 0x7DF: every ECU that has an answer, on its own id.

        The answer goes through the ECU's physical stack, so a multi-frame answer gets its
        flow control from the tester on the ECU's physical request id (ISO 15765-4).
        """
        if self._stop.is_set() or not request or request[0] not in OBD_SERVICES:
            return
        self.functional_requests += 1
        for ecu, stack in self._served:
            if not ecu.functional:
                continue
            for answer in ecu.answer(request):
                stack.send(answer)

    def _serve(self, ecu: SimulatedEcu, stack: isotp.NotifierBasedCanStack) -> None:
        while not self._stop.is_set():
            request = stack.recv(block=True, timeout=0.05)
            if request is None:
                continue
            for answer in ecu.answer(bytes(request)):
                stack.send(answer)

    def close(self) -> None:
        """Stop serving; safe to call twice. The bus stays the caller's."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=2)
        for stack in self._stacks:
            stack.stop()
        self._stacks.clear()
        self.notifier.stop()

    def __enter__(self) -> EcuServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def single_frame_data(data: bytes) -> bytes | None:
    """The payload of an ISO-TP single frame (classic CAN), or None if ``data`` is not one."""
    if not data or data[0] >> 4 != 0:
        return None
    length = data[0] & 0x0F
    return bytes(data[1 : 1 + length]) if 1 <= length <= len(data) - 1 else None


class _FunctionalListener(can.Listener):
    """Hands single-frame requests on 0x7DF to the server; anything else there is ignored."""

    def __init__(self, server: EcuServer) -> None:
        self._server = server

    def on_message_received(self, msg: can.Message) -> None:
        if msg.arbitration_id != FUNCTIONAL_ID or msg.is_extended_id or msg.is_error_frame:
            return
        request = single_frame_data(bytes(msg.data))
        if request is not None:
            self._server.serve_functional(request)


def place_dtcs(ecus: list[SimulatedEcu], codes: list[str]) -> None:
    """Set each ``code`` on its ECU; ValueError naming a bad code or ECU.

    ``NAME:CODE`` names the ECU; a bare P code goes to the engine, any other to the brake ECU.
    """
    by_name = {ecu.name: ecu for ecu in ecus}
    for item in codes:
        name, _, code = item.rpartition(":")
        name = name or ("engine" if code.upper().startswith("P") else "brake")
        if name not in by_name:
            raise ValueError(f"no simulated ECU {name!r} (known: {', '.join(by_name)})")
        by_name[name].set_dtc(code)
