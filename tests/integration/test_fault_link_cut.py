"""Fault matrix (a): the agent's network link cut and restored, in real namespaces.

The agent (and the vehicle) run in one network namespace, mosquitto and a recording cloud
subscriber in another, joined by a veth pair; ``ip link set down`` on the agent's end cuts
the link, ``up`` restores it. Pass: while cut, telemetry batches pile up in the spool and
the link reports offline; after the restore the spool drains to zero, and the cloud has
every batch telemetry made, each stream's sequence numbers without a gap.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.simulator.rig.agent import Agent, agent_config, namespace_broker
from edge_agent.simulator.rig.netns import in_namespace
from fixtures.agent_rig import Vehicle, agents, all_running, namespace, start_agent
from fixtures.waiting import wait_until_sync

__all__ = ["agents", "namespace"]

RECORDER = Path(__file__).resolve().parents[1] / "fixtures" / "mqtt_recorder.py"
AGENT_ADDRESS, CLOUD_ADDRESS = "10.231.0.1", "10.231.0.2"


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def cloud_namespace(namespace: str) -> Iterator[tuple[str, str]]:
    """A second namespace joined to ``namespace`` by a veth pair; (cloud ns, agent's link)."""
    cloud = f"ea-cloud-{uuid.uuid4().hex[:8]}"
    link = f"veth{uuid.uuid4().hex[:6]}"
    ip("netns", "add", cloud)
    try:
        ip(
            "-n",
            namespace,
            "link",
            "add",
            link,
            "type",
            "veth",
            "peer",
            "name",
            "cloud0",
            "netns",
            cloud,
        )
        ip("-n", namespace, "addr", "add", f"{AGENT_ADDRESS}/30", "dev", link)
        ip("-n", cloud, "addr", "add", f"{CLOUD_ADDRESS}/30", "dev", "cloud0")
        ip("-n", namespace, "link", "set", link, "up")
        ip("-n", cloud, "link", "set", "cloud0", "up")
        ip("-n", cloud, "link", "set", "lo", "up")
        yield cloud, link
    finally:
        subprocess.run(["ip", "netns", "delete", cloud], capture_output=True, check=False)


def link_state(agent: Agent) -> str:
    link = agent.module("cloud-link").get("details", {}).get("link", {})
    return str(link.get("state", ""))


def spooled(agent: Agent) -> int:
    return int((agent.health().get("spool") or {}).get("records", -1))


@pytest.mark.slow
def test_link_cut_spools_then_drains_without_loss(
    namespace: str, cloud_namespace: tuple[str, str], agents: list[Agent], tmp_path: Path
) -> None:
    cloud, link = cloud_namespace
    with namespace_broker(cloud, host=CLOUD_ADDRESS) as port:
        recorder = subprocess.Popen(
            in_namespace(
                cloud, [sys.executable, "-P", str(RECORDER), CLOUD_ADDRESS, str(port), "rig-1"]
            ),
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert recorder.stdout is not None
            assert recorder.stdout.readline().strip() == "ready"
            config = agent_config(tmp_path / "state", broker_port=port, broker_host=CLOUD_ADDRESS)
            agent = start_agent(agents, namespace, tmp_path, config)
            wait_until_sync(
                lambda: link_state(agent) == "online", timeout=15, what="the link to come up"
            )
            vehicle = Vehicle(namespace, 22.0)
            wait_until_sync(
                lambda: agent.module("telemetry")["details"].get("batches", 0) >= 2,
                timeout=10,
                what="batches",
            )
            ip("-n", namespace, "link", "set", link, "down")
            wait_until_sync(
                lambda: link_state(agent) == "offline",
                timeout=20,
                what="the link to be noticed down",
            )
            wait_until_sync(
                lambda: spooled(agent) >= 4, timeout=20, what="batches to pile up in the spool"
            )
            assert all_running(agent) == {}
            ip("-n", namespace, "link", "set", link, "up")
            wait_until_sync(
                lambda: link_state(agent) == "online", timeout=20, what="the link to come back"
            )
            vehicle.result()
            wait_until_sync(lambda: spooled(agent) == 0, timeout=20, what="the spool to drain")
            made = agent.module("telemetry")["details"]["batches"]
            agent.stop()  # a stop flushes partial batches into the spool: count before it
        finally:
            recorder.terminate()
            out, _ = recorder.communicate(timeout=10)
    received = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    by_stream: dict[str, set[int]] = {}
    for batch in received:
        by_stream.setdefault(batch["stream"], set()).add(batch["seq"])
    for stream, seqs in by_stream.items():
        assert sorted(seqs) == list(range(min(seqs), max(seqs) + 1)), f"gap in {stream}"
    assert sum(len(s) for s in by_stream.values()) >= made, (made, by_stream)
