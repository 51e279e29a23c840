"""Diagnostics against the simulated ECUs on python-can's virtual bus (real can-isotp, udsoncan)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import can
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.bus import Bus, RequestFailed
from edge_agent.cli.main import main as agent_main
from edge_agent.clock import SystemClock
from edge_agent.module_api import ModuleContext
from edge_agent.modules.diagnostics import DiagnosticsConfig, DiagnosticsModule
from edge_agent.modules.diagnostics import tester as diag_tester
from edge_agent.modules.diagnostics.tester import EcuAddress
from edge_agent.simulator.ecus import EcuServer, brake_ecu, engine_ecu, place_dtcs
from fixtures.waiting import wait_until

ENGINE = EcuAddress("engine", 0x7E0, 0x7E8)


@pytest.fixture
def channel() -> str:
    return f"diag-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def ecus(channel: str) -> Iterator[EcuServer]:
    bus = can.Bus(interface="virtual", channel=channel)
    simulated = [engine_ecu(), brake_ecu()]
    place_dtcs(simulated, ["P0562"])
    with EcuServer(bus, simulated) as server:
        yield server
    bus.shutdown()


@pytest.fixture
def tester(channel: str) -> Iterator[diag_tester.Tester]:
    bus = can.Bus(interface="virtual", channel=channel)
    tester = diag_tester.Tester(bus, timeout_s=0.3)
    yield tester
    tester.close()
    bus.shutdown()


def test_scan_lists_ecus_dtcs_and_pids(
    ecus: EcuServer, channel: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status = agent_main(["diag", "scan", "--interface", "virtual", "--channel", channel, "--json"])
    assert status == 0
    result = json.loads(capsys.readouterr().out)
    by_id = {ecu["request_id"]: ecu for ecu in result["ecus"]}
    assert set(by_id) == {"0x7E0", "0x7E2"}
    engine = by_id["0x7E0"]
    assert engine["uds"] is True
    assert engine["functional"] is True  # found by one request on 0x7DF
    assert [d["code"] for d in engine["dtcs"]] == ["P0562"]
    assert engine["dtcs"][0]["description"] == "System supply voltage low"
    assert engine["dtcs"][0]["status"] == "0x0B"
    # Confirmed, failing now: OBD mode 03 (stored) and 0A (permanent) report it, and UDS.
    assert engine["dtcs"][0]["sources"] == ["obd-stored", "obd-permanent", "uds"]
    assert {"engine_speed", "coolant_temperature"} <= {p["name"] for p in engine["supported_pids"]}
    assert result["counters"]["silent_ecus"] == []  # nobody was probed one by one
    assert 0 < result["bus_share"] <= 0.06


def test_scan_text_without_ecus(channel: str, capsys: pytest.CaptureFixture[str]) -> None:
    status = agent_main(
        ["diag", "scan", "--interface", "virtual", "--channel", channel, "--timeout", "0.05"]
    )
    assert status == 0
    assert "no ECU answered" in capsys.readouterr().out


def test_negative_responses_pending_and_refusals_are_counted(
    ecus: EcuServer, tester: diag_tester.Tester
) -> None:
    with tester.uds(ENGINE) as session:
        assert session.read_did(0xF18C) == b"SN-ENG-42"  # answered after 0x78 pending
        with pytest.raises(Exception, match="0x31"):
            session.read_did(0x1234)
        with pytest.raises(Exception, match="refused"):
            session.clear_dtcs(allowed=False)
    counters = tester.counters
    assert counters.pending == 1
    assert counters.negative["0x31"] == 1
    assert counters.refused == 1
    assert ecus.ecus["engine"].dtcs  # nothing was cleared


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(st.sampled_from([0x7E8, 0x7E9, 0x7EA, 0x7EF]), st.binary(max_size=8)),
        max_size=40,
    )
)
def test_hostile_frames_are_counted_never_a_crash(
    ecus: EcuServer, tester: diag_tester.Tester, channel: str, frames: list[tuple[int, bytes]]
) -> None:
    hostile = can.Bus(interface="virtual", channel=channel)
    try:
        for arbitration_id, data in frames:
            hostile.send(
                can.Message(arbitration_id=arbitration_id, data=data, is_extended_id=False)
            )
        # The tester keeps working whatever came before: garbage, floods, foreign answers.
        assert tester.read_pid(ENGINE, 0x0C) == b"\x0c\x80"
    finally:
        hostile.shutdown()


async def test_module_reads_signals_sends_dtc_events_and_answers_commands(
    ecus: EcuServer, channel: str, tmp_path: Path
) -> None:
    bus = Bus()
    config = DiagnosticsConfig(
        interface="virtual", channel=channel, dtc_interval_s=0.05, signal_interval_s=0.05
    )
    context = ModuleContext(
        name="diagnostics", bus=bus, state_dir=tmp_path, clock=SystemClock(), vehicle_id="v1"
    )
    upstream = bus.subscribe("cloud/out/diag/#", maxsize=100)
    signals = bus.subscribe("can/diag/decoded/engine", maxsize=100)
    module = DiagnosticsModule(config, context)
    await module.setup()
    await module.start()
    run = context.spawn(module.run(), "run")
    try:
        # The engine's DTCs are read both ways: OBD modes 03/07/0A on 0x7DF, then UDS.
        obd = (await asyncio.wait_for(upstream.get(), 10)).payload
        assert (obd["source"], obd["code"], obd["change"]) == ("obd", "P0562", "appeared")
        assert obd["obd_status"] == ["permanent", "stored"]
        first = await asyncio.wait_for(upstream.get(), 10)
        assert (first.payload["code"], first.payload["change"]) == ("P0562", "appeared")
        assert first.payload["source"] == "uds"
        # Frozen when the code was set: speed 0 km/h, 13.96 V; and its first occurrence.
        assert first.payload["snapshot"] == {"0xDD01": "00", "0xDD02": "3688"}
        assert first.payload["extended_data"] == {"0x01": "01"}
        decoded = await asyncio.wait_for(signals.get(), 10)
        assert decoded.payload.signals["engine_speed"] == 800.0
        ecus.ecus["brake"].set_dtc("U0235")  # the radar dropped out
        await wait_until(lambda: upstream.qsize() > 0, what="the radar DTC upstream")
        event: dict[str, Any] = (await upstream.get()).payload
        assert (event["ecu"], event["code"], event["change"]) == ("brake", "U0235", "appeared")

        reply = await bus.request("agent/commands/read_dtcs", {"ecu": "engine"}, timeout=5)
        assert [d["code"] for d in reply.payload["dtcs"]] == ["P0562"]
        reply = await bus.request(
            "agent/commands/read_did", {"ecu": "engine", "did": "0xF190"}, timeout=5
        )
        assert reply.payload["ascii"] == "EDGEAGENTSIM00001"
        reply = await bus.request(
            "agent/commands/read_pids", {"ecu": "engine", "pids": ["engine_speed"]}, timeout=5
        )
        assert reply.payload["pids"]["engine_speed"] == {"value": 800.0, "unit": "rpm"}
        with pytest.raises(RequestFailed, match="read-only"):
            await bus.request("agent/commands/clear_dtcs", {"ecu": "engine"}, timeout=5)
        assert ecus.ecus["engine"].dtcs
    finally:
        run.cancel()
        for callback in context.take_stop_callbacks():
            result = callback()
            if result is not None:
                await result
        await bus.close()


def test_extended_session_is_kept_open_by_tester_present(
    ecus: EcuServer, tester: diag_tester.Tester
) -> None:
    engine = ecus.ecus["engine"]
    with tester.uds(ENGINE, extended=True) as session:
        assert engine.session == 3
        session.read_dtcs()
    tester.keep_alive(ENGINE)
    assert engine.tester_presents == 1
    assert engine.session == 3
    with tester.uds(ENGINE) as session, pytest.raises(Exception, match="refused"):
        session.change_session(0x02)  # programming session: never


def test_a_radar_dropout_sets_the_radar_dtc_and_low_battery_the_voltage_dtc() -> None:
    from edge_agent.simulator.body import BodyScript
    from edge_agent.simulator.can_io import SimulatorSession
    from edge_agent.simulator.ecu_faults import HISTORY_STATUS, EcuFaultMonitor
    from edge_agent.simulator.ecus import ACTIVE_STATUS
    from edge_agent.simulator.scenarios import get_scenario

    scenario = get_scenario("radar-dropout")
    dropout_start, dropout_end = scenario.radar.dropouts.spans[0]
    engine, brake = engine_ecu(), brake_ecu()
    monitor = EcuFaultMonitor(engine=engine, brake=brake)
    session = SimulatorSession(scenario)
    session.step_observers.append(
        lambda t, radar, body: monitor.observe(t, radar_sending=radar, body=body)
    )
    session.advance(dropout_start + 0.2)
    assert "U0235" not in brake.dtcs  # silent, but not yet for long
    session.advance(0.5)
    assert brake.dtcs["U0235"] == ACTIVE_STATUS
    session.advance(dropout_end - session.time_s + 0.1)
    assert brake.dtcs["U0235"] == HISTORY_STATUS  # back, and remembered
    assert "P0562" not in engine.dtcs

    low = dataclasses.replace(scenario, body=BodyScript(initial_soc_pct=5.0))
    session = SimulatorSession(low)
    session.step_observers.append(
        lambda t, radar, body: monitor.observe(t, radar_sending=radar, body=body)
    )
    session.advance(0.1)
    assert engine.dtcs["P0562"] == ACTIVE_STATUS


def test_sim_serves_ecus_beside_a_scenario(channel: str) -> None:
    from edge_agent.simulator.cli import main as sim_main

    status = sim_main(
        [
            "run",
            "--scenario",
            "radar-dropout",
            "--interface",
            "virtual",
            "--channel",
            channel,
            "--ecus",
            "--speed",
            "inf",
            "--seconds",
            "1",
            "--json",
        ]
    )
    assert status == 0


def test_diag_is_a_contributed_command() -> None:
    from edge_agent.cli.main import build_parser

    args = build_parser().parse_args(["diag", "scan", "--interface", "virtual", "--channel", "x"])
    assert args.diag_command == "scan"


def test_scan_on_a_bus_that_cannot_open_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    status = agent_main(["diag", "scan", "--interface", "nosuchinterface", "--channel", "x"])
    assert status == 2
    assert capsys.readouterr().err.startswith("edge-agent: diag scan: cannot open nosuchinterface")
