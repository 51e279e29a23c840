"""OBD-II functional addressing (ISO 15765-4): one request on 0x7DF, answers from 0x7E8-0x7EF.

An OBD-II tester does not need to know which ECUs a vehicle has: it sends its request once
to the functional id 0x7DF and every emissions-relevant ECU answers on its own physical
answer id (0x7E8 to 0x7EF). A functional request is always one ISO-TP single frame; an
answer may be several frames, so the tester listens on all eight answer ids with a can-isotp
stack each, whose flow control goes to that ECU's physical request id (answer id - 8).

The tester waits ``timeout_s`` for answers, or less once every answer id in ``expect`` has
answered; a 0x78 "response pending" from one ECU gives it P2* (ten times as long). Every
outcome is counted in the tester's counters: answers, timeouts (nobody answered),
pending, negative answers by code, malformed (wrong echo), and duplicates (a second answer
from one ECU to one request: an ECU that floods), counted as stray frames.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterator
from contextlib import AbstractContextManager, contextmanager

import can
import isotp

from edge_agent.modules.diagnostics.outcomes import RESPONSE_PENDING, DiagnosticError
from edge_agent.modules.diagnostics.tester import (
    ANSWER_OFFSET,
    FUNCTIONAL_REQUEST_ID,
    OBD_REQUEST_IDS,
    Tester,
    default_address,
)

OBD_ANSWER_IDS = tuple(request_id + ANSWER_OFFSET for request_id in OBD_REQUEST_IDS)
SINGLE_FRAME_MAX = 7  # classic CAN, normal addressing: one PCI byte, seven data bytes
POLL_S = 0.002  # how often the eight stacks are looked at while answers are awaited


def single_frame(request: bytes) -> bytes:
    """``request`` as an ISO-TP single frame (PCI byte, data, padding 0x00 to 8 bytes)."""
    if not 1 <= len(request) <= SINGLE_FRAME_MAX:
        raise ValueError(
            f"a functional request is one frame of 1 to {SINGLE_FRAME_MAX} bytes, "
            f"not {len(request)}"
        )
    return bytes([len(request)]) + request + bytes(SINGLE_FRAME_MAX - len(request))


def functional_obd(
    tester: Tester, request: bytes, *, expect: Collection[int] = ()
) -> dict[int, bytes]:
    """Send OBD ``request`` to 0x7DF; the positive answers by answer id (may be empty).

    Returns as soon as every answer id in ``expect`` has answered, else after the wait.
    Raises ServiceRefused for a service off the allow-list, DiagnosticError when the
    tester is closed or the request cannot be sent.
    """
    tester.check(request[0])
    frame = can.Message(
        arbitration_id=FUNCTIONAL_REQUEST_ID, data=single_frame(request), is_extended_id=False
    )
    answers: dict[int, bytes] = {}
    with tester._lock, _listening(tester) as stacks:
        tester._pace()
        tester.counters.requests += 1
        tester.pacer.charge(1)
        tester._sending.add(FUNCTIONAL_REQUEST_ID)  # an echo of it is not charged twice
        try:
            tester.bus.send(frame)
        except can.CanError as error:
            tester.counters.transport_errors += 1
            raise DiagnosticError(f"functional request not sent: {error}") from None
        finally:
            tester._sending.discard(FUNCTIONAL_REQUEST_ID)
        deadline = tester._clock() + tester.timeout_s
        while True:
            for answer_id, stack in stacks.items():
                while (received := stack.recv(block=False)) is not None:
                    pending = _take(tester, request, answer_id, bytes(received), answers)
                    if pending:
                        deadline = max(deadline, tester._clock() + tester.timeout_s * 10)
            if (expect and all(a in answers for a in expect)) or tester._clock() >= deadline:
                break
            tester._sleep(POLL_S)
    if not answers:
        tester.counters.timeouts += 1
    return answers


@contextmanager
def _listening(tester: Tester) -> Iterator[dict[int, isotp.NotifierBasedCanStack]]:
    """A started can-isotp stack on each OBD answer id, by answer id.

    They are stopped together, in threads: each stop waits for its own two threads, which
    one after the other would take a third of a second.
    """
    contexts = [tester._stack(default_address(request_id)) for request_id in OBD_REQUEST_IDS]
    entered: list[AbstractContextManager[isotp.NotifierBasedCanStack]] = []
    stacks: dict[int, isotp.NotifierBasedCanStack] = {}
    try:
        for request_id, context in zip(OBD_REQUEST_IDS, contexts, strict=True):
            stacks[request_id + ANSWER_OFFSET] = context.__enter__()
            entered.append(context)
        yield stacks
    finally:
        stopping = [
            threading.Thread(target=context.__exit__, args=(None, None, None), daemon=True)
            for context in entered
        ]
        for thread in stopping:
            thread.start()
        for thread in stopping:
            thread.join()


def _take(
    tester: Tester, request: bytes, answer_id: int, answer: bytes, answers: dict[int, bytes]
) -> bool:
    """Count and keep one ECU's answer; True when it says "response pending"."""
    counters = tester.counters
    if len(answer) == 3 and answer[0] == 0x7F and answer[1] == request[0]:
        if answer[2] == RESPONSE_PENDING:
            counters.pending += 1
            return True
        counters.negative[f"0x{answer[2]:02X}"] += 1
        return False
    if answer[:1] != bytes([request[0] + 0x40]):
        counters.malformed += 1
    elif answer_id in answers:
        counters.stray_frames += 1  # a second answer to one request: kept the first
    else:
        counters.answers += 1
        answers[answer_id] = answer
    return False
