"""A battery scenario's voltage DTC reaches the cloud stand-in (real mosquitto, real consumer).

The named ``low-battery`` scenario drives the simulated ECUs' fault monitor; the agent's
diagnostics module reads the engine ECU (python-can virtual bus, real can-isotp) and its
cloud link sends the DTC event over mutual TLS to a private mosquitto, where the stand-in
(``edge-agent-cloud serve``'s consumer) stores it in SQLite.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from pathlib import Path

import can
import pytest

from edge_agent.simulator.can_io import SimulatorSession
from edge_agent.simulator.cli import main as sim_main
from edge_agent.simulator.cloud_consumer import BrokerAccess, ConsumerStats, consume
from edge_agent.simulator.cloud_store import CloudStore
from edge_agent.simulator.ecu_faults import EcuFaultMonitor
from edge_agent.simulator.ecus import ACTIVE_STATUS, EcuServer, brake_ecu, engine_ecu
from edge_agent.simulator.rig.broker import LocalBroker
from edge_agent.simulator.scenarios import get_scenario
from fixtures.cloud import Pki, link_config, link_state, needs_mosquitto, running_agent
from fixtures.waiting import wait_until

pytestmark = needs_mosquitto
VEHICLE = "veh-battery"


async def test_the_low_battery_scenario_sets_p0562_and_the_cloud_stores_it(
    pki: Pki, broker: LocalBroker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert sim_main(["list"]) == 0
    assert "low-battery" in capsys.readouterr().out
    channel = f"battery-{uuid.uuid4().hex[:8]}"
    ecu_bus = can.Bus(interface="virtual", channel=channel)
    engine, brake = engine_ecu(), brake_ecu()
    server = EcuServer(ecu_bus, [engine, brake])
    store = CloudStore(tmp_path / "cloud.db")
    cert = pki.client("cloud")
    access = BrokerAccess("127.0.0.1", broker.port, pki.ca.cert_file, cert.cert_file, cert.key_file)
    stats = ConsumerStats()
    cloud = asyncio.create_task(consume(store, access, client_id="cloud-diag", stats=stats))
    diagnostics = {
        "config": {
            "interface": "virtual",
            "channel": channel,
            "timeout_s": 0.2,
            "dtc_interval_s": 0.1,
            "signal_interval_s": 1.0,
        }
    }
    try:
        async with running_agent(
            tmp_path / "agent",
            VEHICLE,
            link_config(pki, VEHICLE, broker.port),
            extra_modules={"diagnostics": diagnostics},
        ) as supervisor:
            await wait_until(lambda: link_state(supervisor) == "online", what="the link online")
            await wait_until(lambda: stats.subscribed >= 1, what="the stand-in subscribed")
            scenario = get_scenario("low-battery")
            monitor = EcuFaultMonitor(engine=engine, brake=brake)
            session = SimulatorSession(scenario)
            session.step_observers.append(
                lambda t, radar, body: monitor.observe(t, radar_sending=radar, body=body)
            )
            session.advance(3.0)
            assert "P0562" not in engine.dtcs  # still above 10 %
            session.advance(scenario.duration_s - session.time_s)
            assert engine.dtcs["P0562"] == ACTIVE_STATUS

            def stored() -> list[dict[str, object]]:
                events = [json.loads(p) for p in store.payloads(VEHICLE, "diag/dtc")]
                found = [e for e in events if (e["code"], e["change"]) == ("P0562", "appeared")]
                return found if len(found) == 2 else []  # one from each source

            events = await wait_until(
                stored,
                timeout=20,
                what="P0562 in the cloud stand-in",
            )
    finally:
        cloud.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await cloud
        server.close()
        ecu_bus.shutdown()
        store.close()
    # The engine reads its codes both ways: OBD modes 03/0A on 0x7DF and UDS with a snapshot.
    assert {e["source"] for e in events} == {"obd", "uds"}
    uds = next(e for e in events if e["source"] == "uds")
    assert uds["description"] == "System supply voltage low"
    assert uds["ecu"] == "engine"
    assert uds["snapshot"]["0xDD02"] == "3688"  # the supply voltage frozen when it was set
