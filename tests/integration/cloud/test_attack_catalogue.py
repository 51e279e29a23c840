"""The cloud channel's attack catalogue, end to end over a real mosquitto with mutual TLS.

A running agent (cloud link, OTA installer, heartbeat) behind the fleet ACL
(deploy/mosquitto/acl). Hostile desired states, commands and OTA jobs are sent the way an
attacker with broker access would: as the back end (``cloud``), as the vehicle's own
certificate, as another vehicle. Each is refused (a rejection in the reported state, an
error reply, a refusal on ``ota/status``, a broker refusal, or a packet the broker never
delivers). Afterwards the configuration in force, the link and the installer are the same
objects with the same settings, and marker files prove nothing was imported or executed.
docs/security.md lists the catalogue.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from edge_agent.config.desired import LAST_GOOD_FILE
from edge_agent.module_api import ModuleState
from edge_agent.modules.cloud_link.client import LinkClient, PublishRefused, tls_context
from edge_agent.modules.cloud_link.config import CloudLinkConfig
from edge_agent.simulator.rig.broker import LocalBroker
from edge_agent.supervisor import Supervisor
from fixtures.cloud import CloudSide, Pki, cloud_side, link_config, needs_mosquitto, running_agent
from fixtures.hostile import EVIL_MODULE, hostile_states, markers
from fixtures.waiting import wait_until

__all__ = ["markers"]  # a fixture
pytestmark = needs_mosquitto
VEHICLE = "veh-1"
PREFIX = f"vehicles/{VEHICLE}/"
ON_THIS_VEHICLE = {"cloud-link", "ota", "heartbeat"}
OTA = {
    "metadata_url": "http://127.0.0.1:9/metadata/",
    "targets_url": "http://127.0.0.1:9/targets/",
    "hardware_id": "bench-ecu",
}


@pytest.fixture
async def agent(pki: Pki, broker: LocalBroker, tmp_path: Path) -> AsyncIterator[Supervisor]:
    async with running_agent(
        tmp_path / "agent",
        VEHICLE,
        link_config(pki, VEHICLE, broker.port),
        extra_modules={"ota": {"config": OTA}, "heartbeat": {"config": {"interval_s": 1.0}}},
    ) as supervisor:
        await wait_until(
            lambda: all(r.state is ModuleState.RUNNING for r in supervisor.runners.values()),
            timeout=20,
            what="every module running",
        )
        await wait_until(lambda: _link(supervisor).link.online, timeout=10, what="link online")
        yield supervisor


def _link(supervisor: Supervisor) -> Any:
    return supervisor.runners["cloud-link"].module


def _client(pki: Pki, port: int, identity: str, identifier: str) -> LinkClient:
    config = CloudLinkConfig.model_validate(link_config(pki, identity, port))
    assert config.tls is not False
    return LinkClient(
        config, identity, tls_context(config.tls), identifier=identifier, last_will=False
    )


def _rejection_after(cloud: CloudSide, since: float) -> Callable[[], list[str] | None]:
    """The errors of a desired state rejected after ``since`` (per the reported state)."""

    def find() -> list[str] | None:
        for document in cloud.json_on("state/reported"):
            rejection = document.get("last_rejection") or {}
            if rejection.get("at", 0) >= since:
                return list(rejection["errors"])
        return None

    return find


async def _send_desired(cloud: CloudSide, payload: bytes) -> list[str]:
    since = time.time()
    await cloud.publish(PREFIX + "state/desired", payload, retain=True)
    find = _rejection_after(cloud, since)
    await wait_until(lambda: find() is not None, timeout=15, what="the desired state's rejection")
    errors = find()
    assert errors is not None
    return errors


def _replies(cloud: CloudSide, name: str) -> list[dict[str, Any]]:
    return [r for r in cloud.json_on(f"commands/{name}/reply") if isinstance(r, dict)]


async def _command(cloud: CloudSide, name: str, payload: bytes) -> dict[str, Any]:
    before = len(_replies(cloud, name))
    await cloud.publish(PREFIX + f"commands/{name}", payload)
    await wait_until(
        lambda: len(_replies(cloud, name)) > before, timeout=15, what=f"a reply to {name}"
    )
    return _replies(cloud, name)[-1]


def _statuses(cloud: CloudSide, job_id: str) -> list[dict[str, Any]]:
    return [s for s in cloud.json_on("ota/status") if s.get("job_id") == job_id]


async def _job(cloud: CloudSide, job_id: str, payload: bytes) -> dict[str, Any]:
    await cloud.publish(PREFIX + "ota/jobs", payload)
    await wait_until(
        lambda: _statuses(cloud, job_id), timeout=15, what=f"a status for job {job_id!r}"
    )
    return _statuses(cloud, job_id)[-1]


def _state_of(supervisor: Supervisor) -> dict[str, Any]:
    """What must not change: config layers, module instances, link settings, the installer."""
    link = _link(supervisor)
    ota = supervisor.runners["ota"].module
    assert ota is not None
    return {
        "layers": supervisor.config.layers,
        "agent": supervisor.config.agent.model_dump(),
        "instances": {name: id(runner.module) for name, runner in supervisor.runners.items()},
        "link_config": link.config.model_dump(),
        "connects": link.link.state.connects,
        "updater": type(ota.engine.updater),
        "ota_config": ota.config.model_dump(),
        "phase": ota.engine.state.phase,
    }


async def test_attack_catalogue_over_mutual_tls_mqtt(
    agent: Supervisor,
    pki: Pki,
    broker: LocalBroker,
    markers: dict[str, Path],
    tmp_path: Path,
) -> None:
    supervisor = agent
    before = _state_of(supervisor)
    refused: list[str] = []
    shell = ["/bin/sh", "-c", f"touch {markers['executed']}"]
    async with cloud_side(pki, broker.port) as cloud:
        await wait_until(
            lambda: cloud.on("state/reported"), timeout=10, what="the first reported state"
        )

        # -- desired states: code, commands, redirection, TLS off, privileged paths ----------
        for number, (what, document, expected) in enumerate(hostile_states(markers["executed"])):
            named = set(document.get("modules", {}))
            if named & {"can-reader", "fast-path", "telemetry"}:
                continue  # those modules do not run here; the bus-path test covers them
            errors = await _send_desired(
                cloud, json.dumps({**document, "version": f"attack-{number}"}).encode()
            )
            for line in expected:
                assert any(error.startswith(line) for error in errors), (what, errors)
            refused.append(f"desired: {what}")

        # -- desired states: size, depth, not data --------------------------------------------
        big = json.dumps({"version": "big", "modules": {"heartbeat": {"x": "y" * 270_000}}})
        errors = await _send_desired(cloud, big.encode())
        assert "more than the limit of 262144" in errors[0]
        refused.append("desired: oversize (above the agent's 256 KiB limit)")
        deep = '{"version": "deep", "modules": ' + '{"a":' * 40_000 + "1" + "}" * 40_001
        errors = await _send_desired(cloud, deep.encode())
        assert "nested too deeply (limit" in errors[0]
        refused.append("desired: nesting 40 000 deep")
        errors = await _send_desired(cloud, f"__import__('os').system({shell!r})".encode())
        assert "not valid JSON" in errors[0]
        refused.append("desired: Python code instead of JSON")
        received = _link(supervisor).link.received
        await cloud.publish(PREFIX + "state/desired", b"{" + b" " * 400_000 + b"}", retain=True)
        errors = await _send_desired(cloud, b"[]")  # the next one arrives; the big one never did
        assert "must be a JSON object" in errors[0]
        assert _link(supervisor).link.received == received + 1
        refused.append("desired: above the MQTT Maximum Packet Size (never delivered)")

        # -- commands ------------------------------------------------------------------------
        reply = await _command(
            cloud, "shell", json.dumps({"id": "sh", "args": {"cmd": shell}}).encode()
        )
        assert not reply["ok"]
        assert "unknown command 'shell'" in reply["error"]
        refused.append("command: unknown command carrying a shell line")
        reply = await _command(
            cloud,
            "set_log_level",
            json.dumps({"id": "lvl", "args": {"level": "__import__('os')"}}).encode(),
        )
        assert not reply["ok"]
        refused.append("command: code as a built-in's argument")
        reply = await _command(cloud, "deep", b'{"id": "d", "args": ' + b"[" * 50_000 + b"]}")
        assert not reply["ok"]
        assert "limit" in reply["error"]
        refused.append("command: nesting 50 000 deep")
        reply = await _command(cloud, "ping", json.dumps({"id": "x" * 70_000}).encode())
        assert not reply["ok"]
        assert "more than the limit of 65536" in reply["error"]
        refused.append("command: oversize request (above 64 KiB)")
        received = _link(supervisor).link.received
        await cloud.publish(PREFIX + "commands/huge", b"{" + b" " * 2_000_000 + b"}")
        reply = await _command(cloud, "ping", json.dumps({"id": "after-huge"}).encode())
        assert reply["ok"]
        assert not _replies(cloud, "huge")
        assert _link(supervisor).link.received == received + 1
        refused.append("command: 2 MB (above the Maximum Packet Size, never delivered)")
        flood = [f"flood-{n}" for n in range(300)]
        async with cloud.client("cloud-flood") as flooder:
            for command_id in flood:
                await flooder.publish(
                    PREFIX + "commands/ping", json.dumps({"id": command_id}).encode(), qos=1
                )
        await wait_until(
            lambda: {r["id"] for r in _replies(cloud, "ping")} >= set(flood),
            timeout=30,
            what="a reply to every flooded command",
        )
        refused.append("command: a flood of 300 (each answered, none lost)")

        # -- OTA jobs ----------------------------------------------------------------------
        status = await _job(
            cloud,
            "code-1",
            json.dumps(
                {
                    "id": "code-1",
                    "version": "9.9.9",
                    "updater": "rauc",
                    "rauc": {"command": shell},
                    "command": shell,
                    "metadata_url": "http://attacker.example/",
                }
            ).encode(),
        )
        assert status["phase"] == "refused"
        refused.append("job: code-bearing and redirecting fields (ignored; refused)")
        status = await _job(
            cloud,
            "traversal",
            json.dumps(
                {"id": "traversal", "version": "9.9.9", "target": "../../etc/passwd"}
            ).encode(),
        )
        assert status["code"] == "bad-job"
        refused.append("job: a target path outside the repository")
        status = await _job(
            cloud, "", b'{"id": "nest", "version": "1.0", "x": ' + b"[" * 10_000 + b"]}"
        )
        assert status["code"] == "bad-job"
        assert "nested too deeply" in status["reason"]
        refused.append("job: nesting 10 000 deep")
        payload = json.dumps({"id": "long", "version": "1.0", "pad": "p" * 20_000}).encode()
        await cloud.publish(PREFIX + "ota/jobs", payload)
        await wait_until(
            lambda: any("more than the limit" in s.get("reason", "") for s in _statuses(cloud, "")),
            timeout=15,
            what="the oversize job refused",
        )
        refused.append("job: oversize (above 16 KiB)")
        jobs = [f"job-flood-{n}" for n in range(200)]
        async with cloud.client("cloud-jobs") as flooder:
            for job_id in jobs:
                await flooder.publish(
                    PREFIX + "ota/jobs",
                    json.dumps({"id": job_id, "version": "9.9.9"}).encode(),
                    qos=1,
                )
        await wait_until(
            lambda: all(_statuses(cloud, j) for j in jobs),
            timeout=60,
            what="a status for every job",
        )
        assert all(_statuses(cloud, j)[-1]["phase"] == "refused" for j in jobs)
        refused.append("job: a flood of 200 (each refused by id, none lost)")

        # -- who may write what (the broker's ACL) ------------------------------------------
        received = _link(supervisor).link.received
        async with _client(pki, broker.port, VEHICLE, "veh-1-rogue") as rogue:
            for suffix, body in [
                ("state/desired", json.dumps({"version": "self", "modules": {}})),
                ("ota/jobs", json.dumps({"id": "self-job", "version": "9.9.9"})),
                ("commands/ping", json.dumps({"id": "self-cmd"})),
            ]:
                with pytest.raises(PublishRefused, match="Not authorized"):
                    await rogue.publish_acked(PREFIX + suffix, body.encode(), retain=True)
                refused.append(f"vehicle writes its own {suffix}")
        async with _client(pki, broker.port, "veh-2", "veh-2") as other:
            with pytest.raises(PublishRefused, match="Not authorized"):
                await other.publish_acked(PREFIX + "commands/ping", b'{"id": "other"}')
            refused.append("another vehicle writes this vehicle's commands")
        reply = await _command(cloud, "ping", json.dumps({"id": "after-acl"}).encode())
        assert reply["ok"]
        assert _link(supervisor).link.received == received + 1  # only the ping got through
        assert not _statuses(cloud, "self-job")
        assert not [r for r in _replies(cloud, "ping") if r["id"] in ("self-cmd", "other")]

    assert len(refused) >= 20, refused
    assert _state_of(supervisor) == before
    assert _link(supervisor).link.online
    assert not (tmp_path / "agent" / LAST_GOOD_FILE).exists()
    assert not markers["imported"].exists(), "hostile code was imported"
    assert not markers["executed"].exists(), "a hostile command ran"
    assert EVIL_MODULE not in sys.modules
    install_log = tmp_path / "agent" / "ota" / "install.log"
    lines = install_log.read_text().splitlines() if install_log.exists() else []
    assert len(lines) <= 20, "refusals are rate-limited in the install log"


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


async def test_oversize_messages_to_the_vehicle_never_reach_the_agent(
    agent: Supervisor, pki: Pki, broker: LocalBroker, tmp_path: Path
) -> None:
    """Five 30 MB commands (the issue's case) are dropped by the broker for this client."""
    supervisor = agent
    big = tmp_path / "big.json"
    big.write_bytes(b'{"id": "big", "pad": "' + b"x" * (30 * 1024 * 1024) + b'"}')
    cert = pki.client("cloud")
    received = _link(supervisor).link.received
    rss_before = _rss_bytes()
    for number in range(5):
        sender = await asyncio.create_subprocess_exec(
            "mosquitto_pub",
            *("-h", "127.0.0.1", "-p", str(broker.port), "-V", "mqttv5", "-q", "1"),
            *("--cafile", str(pki.ca.cert_file), "--cert", str(cert.cert_file)),
            *("--key", str(cert.key_file), "-i", f"cloud-big-{number}"),
            *("-t", PREFIX + "commands/big", "-f", str(big)),
        )
        assert await asyncio.wait_for(sender.wait(), 60) == 0
    async with cloud_side(pki, broker.port) as cloud:
        reply = await _command(cloud, "ping", json.dumps({"id": "after-big"}).encode())
    assert reply["ok"]
    assert not _replies(cloud, "big")
    assert _link(supervisor).link.received == received + 1
    growth = _rss_bytes() - rss_before
    assert growth < 40 * 1024 * 1024, f"RSS grew by {growth / 1e6:.0f} MB"
    assert os.path.getsize(big) > 30 * 1024 * 1024  # the file really was that big


async def test_a_command_replayed_after_a_restart_is_not_run_again(
    pki: Pki, broker: LocalBroker, tmp_path: Path
) -> None:
    marker = tmp_path / "ran.marker"

    async def touch(message: Any) -> int:
        with marker.open("a") as handle:
            handle.write("ran\n")
        return len(marker.read_text().splitlines())

    request = json.dumps({"id": "once-only"}).encode()
    replies: list[dict[str, Any]] = []
    async with cloud_side(pki, broker.port) as cloud:
        for _restart in range(2):
            async with running_agent(
                tmp_path / "agent", VEHICLE, link_config(pki, VEHICLE, broker.port)
            ) as supervisor:
                stop = supervisor.bus.serve("agent/commands/touch", touch)
                await wait_until(
                    lambda s=supervisor: _link(s).link.online, timeout=10, what="link online"
                )
                replies.append(await _command(cloud, "touch", request))
                stop()
    assert (
        replies[0]
        == replies[1]
        == {
            "id": "once-only",
            "command": "touch",
            "ok": True,
            "result": 1,
        }
    )
    assert marker.read_text() == "ran\n"


async def test_a_retained_plant_by_the_vehicle_is_refused_even_with_the_link_down(
    pki: Pki, broker: LocalBroker
) -> None:
    """With no agent connected, the vehicle's key still cannot leave a desired state behind."""
    async with _client(pki, broker.port, VEHICLE, "veh-1-offline-rogue") as rogue:
        with pytest.raises(PublishRefused, match="Not authorized"):
            await rogue.publish_acked(
                PREFIX + "state/desired", b'{"version": "p", "modules": {}}', retain=True
            )
    got: list[aiomqtt.Message] = []
    async with _client(pki, broker.port, VEHICLE, "veh-1-reader") as reader:
        await reader.subscribe([(PREFIX + "state/desired", 1), (PREFIX + "commands/+", 1)])
        async with _client(pki, broker.port, "cloud", "cloud-marker") as cloud:
            await cloud.publish_acked(PREFIX + "commands/marker", b"{}")

        async def collect() -> None:
            async for message in reader.messages:
                got.append(message)
                if str(message.topic).endswith("/marker"):
                    return

        await asyncio.wait_for(collect(), 10)
    assert [str(m.topic) for m in got] == [PREFIX + "commands/marker"]
