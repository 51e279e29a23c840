"""Diagnostic signals in the uplink estimator: counted like decoded CAN signals.

A drive is recorded (candump log) while the module's own functional PID reads and a UDS
DID read (a multi-frame answer) run against the simulated ECUs on python-can's virtual
bus; ``edge-agent bench uplink --log`` then finds every PID value and the DID in it,
collected by the telemetry config's streams and counted in the batches, with the DID
named as the agent config's diagnostics table names it.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import can
import pytest

from edge_agent.cli.main import main as agent_main
from edge_agent.modules.diagnostics import tester as diag_tester
from edge_agent.modules.diagnostics.collect import read_pids
from edge_agent.simulator.ecus import EcuServer, brake_ecu, engine_ecu

SIMULATOR_DBC = "package:edge_agent.simulator/data/vehicle.dbc"
PIDS = {"engine_speed": 0x0C, "coolant_temperature": 0x05, "control_module_voltage": 0x42}
POLLS = 4
AGENT = """
[modules.telemetry.config]
[[modules.telemetry.config.streams]]
name = "diag"
signals = [{{signal = "engine_speed"}}, {{signal = "coolant_temperature"}},
           {{signal = "control_module_voltage"}}, {{signal = "vin"}}]

[modules.diagnostics.config]
channel = "{channel}"
dids = [{{ecu = "engine", did = 0xF190, signal = "vin", decode = "ascii"}}]
"""


def record_polls(channel: str) -> tuple[list[can.Message], int]:
    """Frames on the bus while PIDs (and the VIN) are read; and how many values were read."""
    ecu_bus = can.Bus(interface="virtual", channel=channel)
    tester_bus = can.Bus(interface="virtual", channel=channel)
    recorder_bus = can.Bus(interface="virtual", channel=channel)
    recorded = can.BufferedReader()
    notifier = can.Notifier(recorder_bus, [recorded], timeout=0.05)
    values = 0
    try:
        with EcuServer(ecu_bus, [engine_ecu(), brake_ecu()]):
            tester = diag_tester.Tester(tester_bus, timeout_s=0.2)
            for _ in range(POLLS):
                read = read_pids(
                    tester, list(PIDS.values()), {0x7E8: "engine", 0x7EA: "brake"}, set()
                )
                values += sum(len(signals) for signals in read.values())
            engine = diag_tester.EcuAddress("engine", 0x7E0, 0x7E8)
            with tester.uds(engine) as session:
                assert session.read_did(0xF190) == b"EDGEAGENTSIM00001"  # three frames
            values += 1
            tester.close()
    finally:
        notifier.stop()
        for bus in (ecu_bus, tester_bus, recorder_bus):
            bus.shutdown()
    frames = []
    while (frame := recorded.get_message(timeout=0)) is not None:
        frames.append(frame)
    return frames, values


def test_pids_and_dids_in_a_recorded_drive_are_collected_and_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    channel = f"uplink-{uuid.uuid4().hex[:8]}"
    frames, values = record_polls(channel)
    assert values == POLLS * 4 + 1  # engine: three PIDs, brake: the voltage; and the VIN
    log = tmp_path / "drive.log"
    with can.CanutilsLogWriter(log, channel="vcan0") as writer:
        for frame in frames:
            writer.on_message_received(frame)
    config = tmp_path / "agent.toml"
    config.write_text(AGENT.format(channel=channel))

    command = ["bench", "uplink", "--log", str(log), "--dbc", SIMULATOR_DBC, "--json"]
    assert agent_main([*command, "--config", str(config)]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    answers = [f for f in frames if 0x7E8 <= f.arbitration_id <= 0x7EF]
    assert result["frames"]["diagnostic"] == len(answers)
    assert result["frames"]["unknown_id"] == len(frames) - len(answers)  # requests, flow control
    assert result["samples"] == values  # every value read, and nothing else
    assert result["signals"] == 4  # three PIDs and the VIN, named as configured
    assert result["collection"]["signals_not_in_dbc"] == []
    assert result["bytes"] > 0

    # Without a config every signal goes at its native rate: the PIDs too (the DID unnamed).
    assert agent_main(command) == 0
    native = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert native["samples"] == values - 1
