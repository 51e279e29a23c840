"""The module's OBD-II reads, functionally addressed: mode 01 PIDs and modes 03/07/0A DTCs.

One request on 0x7DF reaches every OBD ECU (see :mod:`functional`); the answers are sorted
to the configured ECUs by answer id. An answer from an id no configured ECU has is counted
(``foreign_answers``) and dropped; a malformed one is counted and leaves that ECU's
previous reading as it was, so a bad answer never turns into a "cleared" event.

An OBD DTC's state is the set of modes that report it: ``stored`` (mode 03, confirmed),
``pending`` (07) and ``permanent`` (0A, only the ECU itself clears it). A mode an ECU did
not answer this time leaves what that mode said before unchanged.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from edge_agent.can.types import SignalValue
from edge_agent.modules.diagnostics.codes import MalformedResponse, parse_obd_dtcs
from edge_agent.modules.diagnostics.functional import functional_obd
from edge_agent.modules.diagnostics.obd import (
    MAX_PIDS_PER_REQUEST,
    SHOW_CURRENT_DATA,
    decode_pid,
    parse_pids_response,
)
from edge_agent.modules.diagnostics.outcomes import DiagnosticError
from edge_agent.modules.diagnostics.tester import EcuAddress, Tester

OBD_DTC_MODES = {0x03: "stored", 0x07: "pending", 0x0A: "permanent"}

ObdDtcs = dict[str, frozenset[str]]  # code -> the modes that report it


def read_pids(
    tester: Tester, pids: list[int], ecus: Mapping[int, str], responders: set[int]
) -> dict[str, dict[str, SignalValue]]:
    """Mode 01 ``pids`` from every ECU in ``ecus`` (answer id -> name), six per request.

    ``responders`` (answer ids that answered before; updated) shortens the wait: once
    they have answered nobody else is waited for. Empty, every configured ECU is.
    """
    values: dict[str, dict[str, SignalValue]] = {}
    for start in range(0, len(pids), MAX_PIDS_PER_REQUEST):
        asked = pids[start : start + MAX_PIDS_PER_REQUEST]
        expect = (responders & ecus.keys()) or ecus.keys()
        try:
            answers = functional_obd(tester, bytes([SHOW_CURRENT_DATA, *asked]), expect=expect)
        except DiagnosticError:
            continue  # counted by the tester
        for answer_id, answer in answers.items():
            name = ecus.get(answer_id)
            if name is None:
                tester.counters.foreign_answers += 1
                continue
            responders.add(answer_id)
            try:
                found = parse_pids_response(answer, asked)
            except MalformedResponse:
                tester.counters.malformed += 1
                continue
            for pid, data in found.items():
                signal, value, _ = decode_pid(pid, data)
                values.setdefault(name, {})[signal] = value
    return values


def read_obd_dtcs(
    tester: Tester,
    ecus: Mapping[int, str],
    before: Mapping[str, ObdDtcs],
    configured: Collection[int] = (),
) -> dict[str, ObdDtcs]:
    """Modes 03, 07 and 0A from the OBD ECUs ``ecus`` (answer id -> name), on ``before``.

    An answer from an ECU in ``configured`` (answer ids) but not in ``ecus`` (one whose
    DTCs are read by UDS) is ignored; from any other id it is counted as foreign.
    """
    state = {
        name: {code: set(modes) for code, modes in before.get(name, {}).items()}
        for name in ecus.values()
    }
    for mode, label in OBD_DTC_MODES.items():
        try:
            answers = functional_obd(tester, bytes([mode]), expect=ecus.keys())
        except DiagnosticError:
            continue
        for answer_id, answer in answers.items():
            name = ecus.get(answer_id)
            if name is None:
                tester.counters.foreign_answers += answer_id not in configured
                continue
            try:
                codes = parse_obd_dtcs(answer, mode)
            except MalformedResponse:
                tester.counters.malformed += 1
                continue
            for modes in state[name].values():
                modes.discard(label)
            for code in codes:
                state[name].setdefault(code, set()).add(label)
    return {
        name: {code: frozenset(modes) for code, modes in codes.items() if modes}
        for name, codes in state.items()
    }


def read_obd_dtcs_of(tester: Tester, ecu: EcuAddress) -> ObdDtcs:
    """Modes 03, 07 and 0A asked of one ECU on its physical id (a command names one ECU).

    Raises DiagnosticError when the ECU answers none of them.
    """
    found: dict[str, set[str]] = {}
    answered = 0
    last: DiagnosticError | None = None
    for mode, label in OBD_DTC_MODES.items():
        try:
            codes = tester.obd_dtcs(ecu, mode)
        except DiagnosticError as error:
            last = error
            continue  # counted; an ECU need not speak every mode
        answered += 1
        for code in codes:
            found.setdefault(code, set()).add(label)
    if not answered and last is not None:
        raise last
    return {code: frozenset(modes) for code, modes in found.items()}


def by_answer_id(ecus: Iterable[Any]) -> dict[int, str]:
    """Configured ECUs (anything with ``name`` and ``response_id``) by answer id."""
    return {ecu.response_id: ecu.name for ecu in ecus}
