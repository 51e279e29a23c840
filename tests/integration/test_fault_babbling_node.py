"""Fault matrix (g): a babbling node floods one of the reader's buses at full rate.

The bench traffic generator sends as fast as one process can on the ``powertrain`` bus
while the vehicle bus carries the radar at 100 Hz. Pass: the vehicle bus keeps decoding
(at least 90 % of the frames sent to it arrive), the fast path answers at least 95 % of the
radar frames, what telemetry cannot keep up with is counted as dropped, and every module
keeps running (no stall, no crash). Bus-off is covered by the CAN reader tests
(docs/reliability.md).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from edge_agent.simulator.rig.agent import Agent, agent_config, load_traffic
from fixtures.agent_rig import (
    Vehicle,
    agents,
    all_running,
    bus_frames,
    decisions,
    namespace,
    start_agent,
)
from fixtures.waiting import wait_until_sync

__all__ = ["agents", "namespace"]


@pytest.mark.slow
def test_flooded_bus_leaves_the_other_bus_and_the_fast_path_alone(
    namespace: str, agents: list[Agent], tmp_path: Path
) -> None:
    config = agent_config(tmp_path / "state", load_bus=True, telemetry_queue=500)
    agent = start_agent(agents, namespace, tmp_path, config)
    vehicle_before, decided_before = bus_frames(agent, "vehicle"), decisions(agent)
    flood = subprocess.Popen(load_traffic(namespace, 1e9, 12), stdout=subprocess.PIPE)
    counts = Vehicle(namespace, 10.0).result()
    flood_out, _ = flood.communicate(timeout=30)
    flooded = json.loads(flood_out)
    # The radar sender sends one ego frame for every second radar frame.
    sent_to_vehicle_bus = counts["radar_frames"] * 1.5
    wait_until_sync(
        lambda: bus_frames(agent, "vehicle") - vehicle_before >= 0.9 * sent_to_vehicle_bus,
        timeout=10,
        what="the vehicle bus to have decoded what was sent to it",
    )
    assert counts["brake_frames"] >= 0.95 * counts["radar_frames"], counts
    wait_until_sync(
        lambda: decisions(agent) - decided_before >= 0.95 * counts["radar_frames"],
        timeout=5,
        what="decisions",
    )
    reader = agent.module("can-reader")["details"]["buses"]
    # It really babbled: many times the vehicle bus's traffic in the same seconds (a count,
    # not a rate, so a slow machine cannot fail it). Whether the reader keeps up with a
    # saturated bus is a throughput figure: `edge-agent bench ingest` (docs/benchmarks.md).
    assert flooded["frames"] >= 10 * sent_to_vehicle_bus, flooded
    # The flooded bus is read and counted, not abandoned; what the UDP socket itself drops
    # is not counted (udp_multicast has no overflow counter; see docs/reliability.md).
    assert reader["powertrain"]["frames"] >= sent_to_vehicle_bus, (reader, flooded)
    telemetry = agent.module("telemetry")["details"]
    inbox = next(s for s in agent.health()["bus"] if s["name"] == "telemetry.decoded")
    assert telemetry["dropped"] == inbox["dropped"]  # losses, if any, are counted
    assert all_running(agent) == {}
    assert agent.alive()
