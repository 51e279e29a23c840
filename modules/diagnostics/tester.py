"""The workshop tester: UDS (udsoncan) and OBD-II requests to ECUs over ISO-TP (can-isotp).

One :class:`Tester` owns a python-can bus, a ``Notifier`` and one ISO-TP stack per ECU it
talks to. It is synchronous and thread-based (can-isotp's own threads): the module runs it in
a worker thread so the event loop never blocks on the bus. Every request passes the
read-only allow-list and the bus-share pacer first; every outcome is counted: answers,
timeouts, negative responses by code (0x78 "pending" included), malformed answers, ISO-TP
transport errors, silent ECUs, and frames on the diagnostic answer ids from nobody asked.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import can
import isotp

from edge_agent.modules.diagnostics.codes import MalformedResponse, parse_obd_dtcs
from edge_agent.modules.diagnostics.obd import (
    SHOW_CURRENT_DATA,
    SUPPORT_PIDS,
    parse_pid_response,
    supported_from_bitmap,
)
from edge_agent.modules.diagnostics.outcomes import RESPONSE_PENDING, DiagCounters, DiagnosticError
from edge_agent.modules.diagnostics.pacing import BusSharePacer
from edge_agent.modules.diagnostics.services import ServiceRefused, check_service
from edge_agent.modules.diagnostics.uds_session import (
    DEFAULT_SNAPSHOT_DIDS,
    EXTENDED_SESSION,
    UdsSession,
    uds_client,
)

# Physical OBD-II / UDS request ids on 11-bit CAN; an ECU answers on request id + 8.
OBD_REQUEST_IDS = tuple(range(0x7E0, 0x7E8))
ANSWER_OFFSET = 8
# OBD-II functional (broadcast) request id (ISO 15765-4); see functional.py.
FUNCTIONAL_REQUEST_ID = 0x7DF


@dataclass(frozen=True, slots=True)
class EcuAddress:
    """Where an ECU listens and answers (11-bit normal addressing)."""

    name: str
    request_id: int
    response_id: int


def default_address(request_id: int) -> EcuAddress:
    """The OBD-style address pair for ``request_id`` (answer on +8), named after it."""
    return EcuAddress(f"ecu_{request_id:03x}", request_id, request_id + ANSWER_OFFSET)


class _FrameCounter(can.Listener):
    """Charges every diagnostic frame to the pacer; counts answers from nobody asked."""

    def __init__(self, tester: Tester) -> None:
        self._tester = tester

    def on_message_received(self, msg: can.Message) -> None:
        self._tester._seen(msg)

    def on_error(self, exc: Exception) -> None:  # the notifier goes on; the bus reopens elsewhere
        self._tester.counters.transport_errors += 1


class Tester:
    """Reads DTCs, DIDs and PIDs from ECUs on one bus, paced and counted (see module doc)."""

    def __init__(
        self,
        bus: can.BusABC,
        *,
        bitrate: int = 500_000,
        share: float = 0.05,
        timeout_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        snapshot_dids: dict[int, int] | None = None,
    ) -> None:
        self.bus = bus
        self.snapshot_dids = DEFAULT_SNAPSHOT_DIDS if snapshot_dids is None else snapshot_dids
        self.counters = DiagCounters()
        self.timeout_s = timeout_s
        self._clock = clock
        self._sleep = sleep
        self.pacer = BusSharePacer(bitrate=bitrate, share=share, started=clock())
        self._lock = threading.Lock()
        self._expected: set[int] = set()
        self._sending: set[int] = set()
        self._closed = False
        self._diag_ids = {FUNCTIONAL_REQUEST_ID, *OBD_REQUEST_IDS}
        self._diag_ids |= {i + ANSWER_OFFSET for i in OBD_REQUEST_IDS}
        self.notifier = can.Notifier(bus, [_FrameCounter(self)], timeout=0.05)
        self._sent_frames = 0

    def close(self, timeout_s: float = 5.0) -> None:
        """Wait (up to ``timeout_s``) for the exchange in flight, then stop the notifier.

        Later requests fail with DiagnosticError. The bus stays the caller's, who may shut it
        down once this returns. Safe to call twice.
        """
        acquired = self._lock.acquire(timeout=timeout_s)
        try:
            self._closed = True
            self.notifier.stop()
        finally:
            if acquired:
                self._lock.release()

    def _seen(self, msg: can.Message) -> None:
        if msg.arbitration_id not in self._diag_ids or msg.is_error_frame:
            return
        if msg.arbitration_id in self._sending:
            return  # ours, echoed back by the interface: charged when it went out
        self.pacer.charge(1)
        if msg.arbitration_id >= OBD_REQUEST_IDS[0] + ANSWER_OFFSET and (
            msg.arbitration_id not in self._expected
        ):
            self.counters.stray_frames += 1

    def _transport_error(self, error: Exception) -> None:
        self.counters.transport_errors += 1

    @contextmanager
    def _stack(
        self, ecu: EcuAddress, *, start: bool = True
    ) -> Iterator[isotp.NotifierBasedCanStack]:
        if self._closed:
            raise DiagnosticError(f"{ecu.name}: the tester is closed")
        stack = isotp.NotifierBasedCanStack(
            self.bus,
            self.notifier,
            address=isotp.Address(
                isotp.AddressingMode.Normal_11bits, rxid=ecu.response_id, txid=ecu.request_id
            ),
            error_handler=self._transport_error,
            params={"tx_padding": 0x00, "blocking_send": False},
        )
        # Our own frames are charged as they go out: not every interface can echo them back
        # (udp_multicast cannot), so the listener sees only what others send.
        send = stack.txfn

        def send_counted(frame: isotp.CanMessage) -> None:
            self.pacer.charge(1)
            try:
                send(frame)
            except can.CanError:
                # can-isotp's thread would die of it; the request times out instead (counted).
                self.counters.transport_errors += 1

        stack.txfn = send_counted
        self._expected.add(ecu.response_id)
        self._sending.add(ecu.request_id)
        if start:  # udsoncan's connection starts and stops the stack it is given itself
            stack.start()
        try:
            yield stack
        finally:
            if start:
                stack.stop()
            self._expected.discard(ecu.response_id)
            self._sending.discard(ecu.request_id)

    def check(self, service: int, *, clear_allowed: bool = False) -> None:
        """Refuse (ServiceRefused, counted) a service outside the read-only allow-list."""
        try:
            check_service(service, clear_allowed=clear_allowed)
        except ServiceRefused:
            self.counters.refused += 1
            raise

    def _pace(self) -> None:
        wait = self.pacer.wait_s(self._clock())
        if wait > 0:
            self._sleep(wait)

    # -- UDS -------------------------------------------------------------------------------

    @contextmanager
    def uds(self, ecu: EcuAddress, *, extended: bool = False) -> Iterator[UdsSession]:
        """A UDS client session with ``ecu``, read-only services only.

        The default diagnostic session, or the extended one when ``extended`` (some ECUs
        report more there). The session itself is in uds_session.py.
        """
        with (
            self._lock,
            self._stack(ecu, start=False) as stack,
            uds_client(stack, self.counters, ecu.name, self.timeout_s, self.snapshot_dids) as uds,
        ):
            session = UdsSession(self, ecu, uds)
            if extended:
                session.change_session(EXTENDED_SESSION)
            yield session

    def keep_alive(self, ecu: EcuAddress) -> None:
        """Keep a non-default session open on ``ecu`` past its S3 timeout (5 s).

        TesterPresent with the positive answer suppressed: no answer takes the bus.
        """
        with self.uds(ecu) as session:
            session.tester_present()

    # -- OBD-II ----------------------------------------------------------------------------

    def obd(self, ecu: EcuAddress, request: bytes) -> bytes:
        """One OBD-II exchange with ``ecu``; DiagnosticError on silence or a negative answer."""
        self.check(request[0])
        with self._lock, self._stack(ecu) as stack:
            return self._obd_exchange(ecu, stack, request)

    def _obd_exchange(
        self, ecu: EcuAddress, stack: isotp.NotifierBasedCanStack, request: bytes
    ) -> bytes:
        self._pace()
        self.counters.requests += 1
        stack.send(request)
        deadline = self._clock() + self.timeout_s
        while True:
            received = stack.recv(block=True, timeout=max(0.0, deadline - self._clock()))
            if received is None:
                self.counters.timeouts += 1
                raise DiagnosticError(f"{ecu.name}: no answer within {self.timeout_s:g} s")
            answer = bytes(received)
            if len(answer) == 3 and answer[0] == 0x7F and answer[1] == request[0]:
                if answer[2] == RESPONSE_PENDING:
                    self.counters.pending += 1
                    deadline = self._clock() + self.timeout_s * 10
                    continue
                self.counters.negative[f"0x{answer[2]:02X}"] += 1
                raise DiagnosticError(f"{ecu.name}: negative response 0x{answer[2]:02X}")
            if answer[:1] != bytes([request[0] + 0x40]):
                self.counters.malformed += 1
                continue  # not ours (a late answer to an earlier request): keep waiting
            self.counters.answers += 1
            return answer

    def probe(self, ecu: EcuAddress) -> bool:
        """Whether ``ecu`` answers OBD mode 01 PID 00 (or anything at all) in time."""
        try:
            self.obd(ecu, bytes([SHOW_CURRENT_DATA, 0x00]))
        except DiagnosticError as error:
            if "negative" in str(error):
                return True
            self.counters.silent_ecus.add(ecu.name)
            return False
        self.counters.silent_ecus.discard(ecu.name)
        return True

    def supported_pids(self, ecu: EcuAddress) -> list[int]:
        """The mode 01 PIDs ``ecu`` says it supports (walking the 0x00, 0x20, ... bitmaps)."""
        supported: list[int] = []
        for base in SUPPORT_PIDS:
            try:
                data = parse_pid_response(self.obd(ecu, bytes([SHOW_CURRENT_DATA, base])), base)
                listed = supported_from_bitmap(base, data)
            except MalformedResponse:
                self.counters.malformed += 1
                break
            except DiagnosticError:
                break
            supported += [pid for pid in listed if pid % 0x20]
            if base + 0x20 not in listed:
                break
        return supported

    def read_pid(self, ecu: EcuAddress, pid: int) -> bytes:
        """The data bytes of mode 01 ``pid`` from ``ecu``."""
        answer = self.obd(ecu, bytes([SHOW_CURRENT_DATA, pid]))
        try:
            return parse_pid_response(answer, pid)
        except MalformedResponse as error:
            self.counters.malformed += 1
            raise DiagnosticError(f"{ecu.name}: {error}") from None

    def obd_dtcs(self, ecu: EcuAddress, mode: int) -> list[str]:
        """The codes of OBD mode 03 (stored), 07 (pending) or 0A (permanent) from ``ecu``."""
        answer = self.obd(ecu, bytes([mode]))
        try:
            return parse_obd_dtcs(answer, mode)
        except MalformedResponse as error:
            self.counters.malformed += 1
            raise DiagnosticError(f"{ecu.name}: {error}") from None

    def share_taken(self) -> float:
        """The share of the bus diagnostics took since this tester started."""
        return self.pacer.share_taken(self._clock())
