"""A one-shot scan of a bus: which ECUs answer, their DTCs with descriptions, their PIDs.

Used by ``edge-agent diag scan``; the result is JSON-ready. As an OBD-II scan tool does
(ISO 15765-4), it asks mode 01 PID 00 once on the functional id 0x7DF; every ECU that answers
(on 0x7E8-0x7EF) is asked, again functionally and all at once, for its further supported-PID
bitmaps and its stored, pending and permanent DTCs (modes 03, 07, 0A), then, on its physical
id, for its UDS DTCs by status mask (when it speaks UDS). With ``physical``, the eight
physical request ids (0x7E0-0x7E7) that stayed silent are also probed one by one, for ECUs
that do not listen on 0x7DF; those that answer are read physically.
"""

from __future__ import annotations

from typing import Any

import can

from edge_agent.modules.diagnostics.codes import MalformedResponse, parse_obd_dtcs, status_names
from edge_agent.modules.diagnostics.collect import OBD_DTC_MODES
from edge_agent.modules.diagnostics.dtc_table import describe
from edge_agent.modules.diagnostics.functional import functional_obd
from edge_agent.modules.diagnostics.obd import (
    PIDS,
    SHOW_CURRENT_DATA,
    SUPPORT_PIDS,
    parse_pid_response,
    supported_from_bitmap,
)
from edge_agent.modules.diagnostics.outcomes import DiagnosticError
from edge_agent.modules.diagnostics.tester import (
    OBD_REQUEST_IDS,
    EcuAddress,
    Tester,
    default_address,
)


def scan(tester: Tester, *, physical: bool = False) -> dict[str, Any]:
    """Scan the bus with ``tester``; see the module docstring."""
    discovery = functional_obd(tester, bytes([SHOW_CURRENT_DATA, 0x00]))
    supported = _supported_functional(tester, discovery)
    obd_dtcs = _obd_dtcs_functional(tester, list(supported))
    ecus: list[dict[str, Any]] = []
    for request_id in OBD_REQUEST_IDS:
        ecu = default_address(request_id)
        if ecu.response_id in supported:
            pids, dtcs = supported[ecu.response_id], obd_dtcs[ecu.response_id]
        elif physical and tester.probe(ecu):
            pids, dtcs = tester.supported_pids(ecu), _obd_dtcs_physical(tester, ecu)
        else:
            continue
        ecus.append(_entry(tester, ecu, pids, dtcs, functional=ecu.response_id in supported))
    return {
        "ecus": ecus,
        "counters": tester.counters.as_dict(),
        "bus_share": round(tester.share_taken(), 4),
    }


def _supported_functional(tester: Tester, first: dict[int, bytes]) -> dict[int, list[int]]:
    """Supported PIDs of every ECU that answered the functional PID 00 (``first``).

    The next bitmap (0x20, 0x40, ...) is asked of all of them at once while any lists it.
    """
    supported: dict[int, list[int]] = {answer_id: [] for answer_id in first}
    answers, base = first, 0x00
    while True:
        going: set[int] = set()
        for answer_id, answer in answers.items():
            try:
                listed = supported_from_bitmap(base, parse_pid_response(answer, base))
            except MalformedResponse:
                tester.counters.malformed += 1
                continue
            supported[answer_id] += [pid for pid in listed if pid % 0x20]
            if base + 0x20 in listed:
                going.add(answer_id)
        base += 0x20
        if not going or base not in SUPPORT_PIDS:
            return supported
        asked = functional_obd(tester, bytes([SHOW_CURRENT_DATA, base]), expect=going)
        answers = {answer_id: answer for answer_id, answer in asked.items() if answer_id in going}


def _obd_dtcs_functional(tester: Tester, answer_ids: list[int]) -> dict[int, dict[str, list[str]]]:
    """Modes 03, 07 and 0A, each asked of every ECU at once: code -> the modes reporting it."""
    found: dict[int, dict[str, list[str]]] = {answer_id: {} for answer_id in answer_ids}
    if not answer_ids:
        return found
    for mode, label in OBD_DTC_MODES.items():
        answers = functional_obd(tester, bytes([mode]), expect=answer_ids)
        for answer_id, answer in answers.items():
            if answer_id not in found:
                continue  # it did not answer the discovery: not in this scan
            try:
                codes = parse_obd_dtcs(answer, mode)
            except MalformedResponse:
                tester.counters.malformed += 1
                continue
            for code in codes:
                found[answer_id].setdefault(code, []).append(label)
    return found


def _obd_dtcs_physical(tester: Tester, ecu: EcuAddress) -> dict[str, list[str]]:
    """Modes 03, 07 and 0A asked of one ECU on its physical id."""
    found: dict[str, list[str]] = {}
    for mode, label in OBD_DTC_MODES.items():
        try:
            for code in tester.obd_dtcs(ecu, mode):
                found.setdefault(code, []).append(label)
        except DiagnosticError:
            pass  # counted by the tester; an ECU need not speak every mode
    return found


def _entry(
    tester: Tester,
    ecu: EcuAddress,
    pids: list[int],
    obd_dtcs: dict[str, list[str]],
    *,
    functional: bool,
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": ecu.name,
        "request_id": f"0x{ecu.request_id:03X}",
        "response_id": f"0x{ecu.response_id:03X}",
        "functional": functional,
        "supported_pids": [
            {"pid": f"0x{pid:02X}", "name": PIDS[pid].name if pid in PIDS else None} for pid in pids
        ],
    }
    dtcs: dict[str, dict[str, Any]] = {
        code: {"code": code, "sources": [f"obd-{label}" for label in labels]}
        for code, labels in obd_dtcs.items()
    }
    try:
        with tester.uds(ecu) as session:
            for dtc in session.read_dtcs(0xFF):
                item = dtcs.setdefault(dtc.code, {"code": dtc.code, "sources": []})
                item["sources"].append("uds")
                item["status"] = f"0x{dtc.status:02X}"
                item["status_bits"] = status_names(dtc.status)
        entry["uds"] = True
    except DiagnosticError:
        entry["uds"] = False
    for item in dtcs.values():
        item["description"] = describe(item["code"])
    entry["dtcs"] = sorted(dtcs.values(), key=lambda d: d["code"])
    return entry


def scan_bus(
    interface: str,
    channel: str,
    *,
    bitrate: int,
    share: float,
    timeout_s: float,
    physical: bool = False,
) -> dict[str, Any]:
    """Open ``interface``/``channel``, scan it, close it."""
    bus = can.Bus(interface=interface, channel=channel)
    try:
        tester = Tester(bus, bitrate=bitrate, share=share, timeout_s=timeout_s)
        try:
            return scan(tester, physical=physical)
        finally:
            tester.close()
    finally:
        bus.shutdown()


def render_text(result: dict[str, Any]) -> str:
    """The scan as lines a person reads."""
    lines: list[str] = []
    if not result["ecus"]:
        lines.append("no ECU answered")
    for ecu in result["ecus"]:
        lines.append(
            f"{ecu['name']} ({ecu['request_id']} -> {ecu['response_id']})"
            f"{', UDS' if ecu['uds'] else ''}"
            f"{'' if ecu['functional'] else ', ignores 0x7DF'}"
        )
        pids = ", ".join(p["name"] or p["pid"] for p in ecu["supported_pids"]) or "none"
        lines.append(f"  PIDs: {pids}")
        if not ecu["dtcs"]:
            lines.append("  DTCs: none")
        for dtc in ecu["dtcs"]:
            status = f" status {dtc['status']}" if "status" in dtc else ""
            sources = ", ".join(dtc["sources"])
            lines.append(f"  {dtc['code']}{status} ({sources}): {dtc['description']}")
    counters = result["counters"]
    lines.append(
        f"bus share {result['bus_share'] * 100:.2f} %, {counters['requests']} requests, "
        f"{counters['timeouts']} timeouts, negative {counters['negative'] or 'none'}"
    )
    return "\n".join(lines)
