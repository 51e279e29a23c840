"""OBD-II functional addressing (0x7DF -> 0x7E8-0x7EF) against the simulated ECUs.

Real can-isotp on python-can's virtual bus: the scan and the module ask every OBD ECU at
once; OBD DTCs (modes 03/07/0A) become events when they appear, change modes or clear;
an ECU nobody configured, one that floods and one that answers garbage are counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import can
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from edge_agent.bus import Bus
from edge_agent.cli.main import main as agent_main
from edge_agent.clock import SystemClock
from edge_agent.module_api import ModuleContext
from edge_agent.modules.diagnostics import DiagnosticsConfig, DiagnosticsModule
from edge_agent.modules.diagnostics import tester as diag_tester
from edge_agent.modules.diagnostics.functional import functional_obd
from edge_agent.modules.diagnostics.outcomes import DiagnosticError
from edge_agent.simulator.ecus import EcuServer, SimulatedEcu, brake_ecu, engine_ecu
from fixtures.waiting import wait_until, wait_until_sync


@pytest.fixture
def channel() -> str:
    return f"obd-{uuid.uuid4().hex[:8]}"


def gearbox() -> SimulatedEcu:
    """A third ECU at 0x7E1 -> 0x7E9 (the module below is not told about it)."""
    return SimulatedEcu("gearbox", 0x7E1, 0x7E9, pids={0x0D: b"\x00", 0x42: b"\x35\x00"})


def body(functional: bool) -> SimulatedEcu:
    """An ECU at 0x7E5 -> 0x7ED that may ignore the functional id."""
    ecu = SimulatedEcu("body", 0x7E5, 0x7ED, pids={0x42: b"\x34\x00"}, functional=functional)
    ecu.set_dtc("B0100")
    return ecu


@pytest.fixture
def served(channel: str) -> Iterator[dict[str, SimulatedEcu]]:
    bus = can.Bus(interface="virtual", channel=channel)
    ecus = [engine_ecu(), brake_ecu(), gearbox(), body(functional=False)]
    ecus[0].set_dtc("P0562")
    with EcuServer(bus, ecus) as server:
        yield server.ecus
    bus.shutdown()


def scan(channel: str, capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, Any]:
    command = ["diag", "scan", "--interface", "virtual", "--channel", channel, "--json"]
    assert agent_main([*command, "--timeout", "0.2", *extra]) == 0
    result: dict[str, Any] = json.loads(capsys.readouterr().out)
    return result


def test_the_scan_finds_obd_ecus_with_one_functional_request(
    served: dict[str, SimulatedEcu], channel: str, capsys: pytest.CaptureFixture[str]
) -> None:
    result = scan(channel, capsys)
    found = {ecu["response_id"]: ecu for ecu in result["ecus"]}
    assert set(found) == {"0x7E8", "0x7E9", "0x7EA"}  # the body ECU ignores 0x7DF
    assert all(ecu["functional"] for ecu in found.values())
    assert [p["name"] for p in found["0x7E9"]["supported_pids"]] == [
        "vehicle_speed",
        "control_module_voltage",
    ]
    # Every ECU answered each functional request; the requests did not go out per address.
    assert result["counters"]["silent_ecus"] == []
    assert result["counters"]["timeouts"] == 0

    physical = scan(channel, capsys, "--physical")
    by_id = {ecu["response_id"]: ecu for ecu in physical["ecus"]}
    assert by_id["0x7ED"]["functional"] is False  # found only by probing 0x7E5 itself
    assert [d["code"] for d in by_id["0x7ED"]["dtcs"]] == ["B0100"]
    assert len(physical["counters"]["silent_ecus"]) == 4  # 0x7E3, 0x7E4, 0x7E6, 0x7E7


def test_functional_answers_from_a_flooding_or_garbling_ecu_are_counted(
    served: dict[str, SimulatedEcu], channel: str
) -> None:
    bus = can.Bus(interface="virtual", channel=channel)
    tester = diag_tester.Tester(bus, timeout_s=0.2)
    gear = served["gearbox"]
    original = gear.answer
    gear.answer = lambda request: original(request) * 3  # type: ignore[method-assign]
    served["brake"].answer = lambda request: [b"\x55\x01\x02"]  # type: ignore[method-assign]
    try:
        answers = functional_obd(tester, b"\x01\x0d", expect=[0x7E8, 0x7E9, 0x7EA])
        assert set(answers) == {0x7E8, 0x7E9}  # the brake ECU's garbage is not an answer
        assert answers[0x7E9] == b"\x41\x0d\x00"
        counters = tester.counters
        assert counters.malformed == 1
        assert counters.stray_frames >= 2  # the gearbox's repeats, kept out
        with pytest.raises(ValueError, match="one frame"):
            functional_obd(tester, b"\x01" * 8)
    finally:
        tester.close()
        bus.shutdown()


@pytest.fixture
async def module(
    served: dict[str, SimulatedEcu], channel: str, tmp_path: Path
) -> AsyncIterator[tuple[DiagnosticsModule, Bus]]:
    bus = Bus()
    config = DiagnosticsConfig.model_validate(
        {
            "interface": "virtual",
            "channel": channel,
            "timeout_s": 0.2,
            "dtc_interval_s": 0.05,
            "signal_interval_s": 0.05,
            "ecus": [
                {"name": "engine", "request_id": 0x7E0, "response_id": 0x7E8, "dtcs": "obd"},
                {"name": "brake", "request_id": 0x7E2, "response_id": 0x7EA, "dtcs": "uds"},
            ],
        }
    )
    context = ModuleContext(
        name="diagnostics", bus=bus, state_dir=tmp_path, clock=SystemClock(), vehicle_id="v1"
    )
    diagnostics = DiagnosticsModule(config, context)
    await diagnostics.setup()
    await diagnostics.start()
    run = context.spawn(diagnostics.run(), "run")
    try:
        yield diagnostics, bus
    finally:
        run.cancel()
        for callback in context.take_stop_callbacks():
            result = callback()
            if result is not None:
                await result
        await bus.close()


async def test_obd_dtcs_appear_change_and_clear_upstream(
    module: tuple[DiagnosticsModule, Bus], served: dict[str, SimulatedEcu]
) -> None:
    diagnostics, bus = module
    upstream = bus.subscribe("cloud/out/diag/#", maxsize=100)
    brake_signals = bus.subscribe("can/diag/decoded/brake", maxsize=100)

    async def next_event(code: str) -> dict[str, Any]:
        while True:
            event: dict[str, Any] = (await asyncio.wait_for(upstream.get(), 10)).payload
            if event["code"] == code:
                return event

    engine = served["engine"]
    engine.set_dtc("P0300", 0x04)  # a misfire seen once: pending only
    event = await next_event("P0300")
    assert (event["source"], event["change"], event["obd_status"]) == (
        "obd",
        "appeared",
        ["pending"],
    )
    engine.set_dtc("P0300", 0x0D)  # seen again: confirmed (stored, permanent) and pending
    event = await next_event("P0300")
    assert event["change"] == "changed"
    assert event["obd_status"] == ["pending", "permanent", "stored"]
    engine.set_dtc("P0300", 0)
    event = await next_event("P0300")
    assert (event["change"], event["obd_status"]) == ("cleared", [])
    assert event["description"] == "Misfires detected on several or random cylinders"

    # The cloud's read_dtcs on an OBD-only ECU asks modes 03/07/0A on its physical id.
    engine.set_dtc("P0420", 0x08)
    reply = await bus.request("agent/commands/read_dtcs", {"ecu": "engine"}, timeout=10)
    assert [(d["code"], d["obd_status"]) for d in reply.payload["dtcs"]] == [
        ("P0420", ["permanent", "stored"]),
        ("P0562", ["permanent", "stored"]),  # set by the fixture
    ]
    assert reply.payload["dtcs"][0]["description"] == "Catalyst efficiency under threshold (bank 1)"

    # PIDs came from every configured ECU through the same functional requests.
    decoded = await asyncio.wait_for(brake_signals.get(), 10)
    assert decoded.payload.signals["control_module_voltage"] == 13.84
    # The gearbox answers 0x7DF too, but nobody configured it: counted, not published.
    await wait_until(lambda: diagnostics.tester.counters.foreign_answers > 0, what="foreign")
    assert diagnostics.tester.counters.malformed == 0


async def test_only_ecus_nobody_configured_count_as_foreign(channel: str, tmp_path: Path) -> None:
    bus = can.Bus(interface="virtual", channel=channel)
    engine = engine_ecu()
    engine.set_dtc("P0562")
    with EcuServer(bus, [engine, brake_ecu()]):  # both configured, the brake one read by UDS
        config = DiagnosticsConfig(interface="virtual", channel=channel, timeout_s=0.2)
        context = ModuleContext(
            name="diagnostics", bus=Bus(), state_dir=tmp_path, clock=SystemClock(), vehicle_id="v"
        )
        diagnostics = DiagnosticsModule(config, context)
        await diagnostics.setup()
        try:
            await diagnostics._read_all_dtcs()
            await diagnostics._read_signals()
            assert diagnostics._obd_dtcs == {
                "engine": {"P0562": frozenset({"stored", "permanent"})}
            }
            assert diagnostics.tester.counters.foreign_answers == 0
        finally:
            for callback in context.take_stop_callbacks():
                result = callback()
                if result is not None:
                    await result
            await context.bus.close()
    bus.shutdown()


@st.composite
def isotp_frames(draw: st.DrawFn) -> bytes:
    """One ISO-TP frame, mostly well-shaped but with a field gone wrong."""
    kind = draw(st.sampled_from(["single", "first", "huge-first", "consecutive", "flow", "junk"]))
    if kind == "single":
        head = bytes([draw(st.integers(0, 15))])
    elif kind == "first":
        size = draw(st.sampled_from([0, 1, 7, 8, 62, 4095]))
        head = bytes([0x10 | size >> 8, size & 0xFF])
    elif kind == "huge-first":  # the escape form: 32-bit length, up to 4 GiB
        head = b"\x10\x00" + draw(st.sampled_from([4096, 2**32 - 1])).to_bytes(4, "big")
    elif kind == "consecutive":
        head = bytes([0x20 | draw(st.integers(0, 15))])
    elif kind == "flow":
        head = bytes([0x30 | draw(st.integers(0, 15)), draw(st.integers(0, 255)), 0x7F])
    else:
        head = bytes([draw(st.integers(0x40, 0xFF))])
    return (head + draw(st.binary(max_size=8)))[: draw(st.integers(1, 8))]


class Heckler(can.Listener):
    """Answers every diagnostic request with ``frames`` on answer ids, while it is in flight."""

    def __init__(self, bus: can.BusABC, frames: list[tuple[int, bytes]]) -> None:
        self.bus = bus
        self.frames = frames

    def on_message_received(self, msg: can.Message) -> None:
        if msg.arbitration_id in (0x7DF, 0x7E0):
            for arbitration_id, data in self.frames:
                self.bus.send(
                    can.Message(arbitration_id=arbitration_id, data=data, is_extended_id=False)
                )


@pytest.mark.slow
@settings(
    max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(st.tuples(st.sampled_from([0x7E8, 0x7E9, 0x7EB, 0x7EF]), isotp_frames()), max_size=12)
)
@example([(0x7E9, b"\x10\x00\xff\xff\xff\xff")])  # a first frame announcing 4 GiB
@example([(0x7E8, b"\x21\x00"), (0x7E8, b"\x30\x00\x00")])  # out of sequence, stray flow control
def test_malformed_isotp_frames_during_an_exchange_are_counted_never_a_crash(
    served: dict[str, SimulatedEcu], channel: str, frames: list[tuple[int, bytes]]
) -> None:
    hostile = can.Bus(interface="virtual", channel=channel)
    notifier = can.Notifier(hostile, [Heckler(hostile, frames)], timeout=0.05)
    bus = can.Bus(interface="virtual", channel=channel)
    tester = diag_tester.Tester(bus, timeout_s=0.1)
    try:
        functional_obd(tester, b"\x01\x0d", expect=[0x7E8, 0x7E9, 0x7EA])
        with contextlib.suppress(DiagnosticError):  # spoiled by the frames: counted
            tester.read_pid(diag_tester.EcuAddress("engine", 0x7E0, 0x7E8), 0x0C)
        notifier.stop()
        # Once the heckler is quiet, everything works again.
        answers = functional_obd(tester, b"\x01\x0d", expect=[0x7E8, 0x7E9, 0x7EA])
        assert set(answers) >= {0x7E8, 0x7E9, 0x7EA}
        assert tester.read_pid(diag_tester.EcuAddress("engine", 0x7E0, 0x7E8), 0x0C) == b"\x0c\x80"
        # Every hostile frame (sent twice: once per request) was seen and charged to the
        # share, beside our four requests.
        wait_until_sync(
            lambda: tester.pacer.frames >= 2 * len(frames) + 4, what="every frame charged"
        )
    finally:
        notifier.stop()
        tester.close()
        bus.shutdown()
        hostile.shutdown()
