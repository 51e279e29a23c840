"""Security of the cloud link against a real mosquitto: mutual TLS and the vehicle ACL.

Refusals: no client certificate, one from another CA, an expired one, a broker whose
certificate names another host or has expired. The agent keeps running offline and retries
with backoff, and every connection it ever opens starts with a TLS handshake (never
plaintext). Under the fleet ACL (deploy/mosquitto/acl; identity = certificate CN) a vehicle
cannot touch another vehicle's topics, and the agent's own configuration works.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from pathlib import Path

import aiomqtt
import pytest
import tomli_w

from edge_agent.cli.main import main as cli_main
from edge_agent.module_api import ModuleState
from edge_agent.modules.cloud_link.client import LinkClient, PublishRefused, tls_context
from edge_agent.modules.cloud_link.config import CloudLinkConfig
from edge_agent.simulator.rig.broker import LocalBroker
from fixtures.cloud import (
    Pki,
    cloud_side,
    link_config,
    link_module,
    link_proxy,
    link_state,
    needs_mosquitto,
    running_agent,
)
from fixtures.waiting import wait_until

pytestmark = needs_mosquitto
TLS_HANDSHAKE = b"\x16"


@pytest.mark.parametrize("case", ["other-ca", "expired", "wrong-host", "expired-server"])
async def test_refused_certificates_keep_the_agent_offline_and_never_fall_back(
    pki: Pki, tmp_path: Path, case: str
) -> None:
    server = {"wrong-host": pki.wrong_host_server, "expired-server": pki.expired_server}.get(
        case, pki.server
    )
    broker = LocalBroker(tmp_path / "broker", tls=pki.broker_tls(server))
    broker.start()
    tls = pki.tls_config("veh-1")
    if case == "other-ca":
        tls = pki.tls_config("veh-1", issued=pki.other_ca.issue_client(tmp_path, "veh-1"))
    elif case == "expired":
        tls = pki.tls_config("veh-1", issued=pki.ca.issue_client(tmp_path, "veh-1", expired=True))
    expected = {
        "other-ca": "unknown ca",
        "expired": "certificate expired",
        "wrong-host": "ip address mismatch",
        "expired-server": "certificate has expired",
    }[case]
    try:
        async with (
            link_proxy(broker.port) as proxy,
            running_agent(
                tmp_path / "agent", "veh-1", link_config(pki, "veh-1", proxy.port, tls=tls)
            ) as supervisor,
        ):
            await wait_until(
                lambda: link_module(supervisor).link.state.attempt >= 4,
                timeout=10,
                what="three failed connection attempts",
            )
            link = link_module(supervisor).link.state
            assert supervisor.runners["cloud-link"].state is ModuleState.RUNNING  # offline-first
            assert link.state == "offline"
            assert link.connects == 0
            assert expected in link.reason.lower(), link.reason
            assert len(proxy.first_bytes) >= 3
            assert set(proxy.first_bytes) == {TLS_HANDSHAKE}, "a plaintext connection was tried"
        assert "New client connected" not in broker.log()
    finally:
        broker.stop()


async def test_no_client_certificate_and_plaintext_are_refused(
    pki: Pki, broker: LocalBroker
) -> None:
    no_cert = ssl.create_default_context(cafile=str(pki.ca.cert_file))
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client(
            "127.0.0.1", broker.port, identifier="veh-1", timeout=2, tls_context=no_cert
        ):
            pass
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client("127.0.0.1", broker.port, identifier="veh-1", timeout=2):
            pass
    log = broker.log()
    assert "peer did not return a certificate" in log
    assert "New client connected" not in log


async def test_missing_certificate_files_keep_the_link_offline_and_say_so(
    pki: Pki, broker: LocalBroker, tmp_path: Path
) -> None:
    tls = {**pki.tls_config("veh-1"), "cert_file": str(tmp_path / "missing.pem")}
    async with (
        link_proxy(broker.port) as proxy,
        running_agent(
            tmp_path / "agent", "veh-1", link_config(pki, "veh-1", proxy.port, tls=tls)
        ) as supervisor,
    ):
        runner = supervisor.runners["cloud-link"]
        await wait_until(
            lambda: runner.context is not None and not runner.context.health.report.ok,
            timeout=10,
            what="health degraded",
        )
        assert "TLS setup" in runner.context.health.report.reason  # type: ignore[union-attr]
        assert "missing.pem" in runner.context.health.report.reason  # type: ignore[union-attr]
        assert link_state(supervisor) == "offline"
        assert proxy.first_bytes == []  # no connection at all without the files


def _client(pki: Pki, port: int, identity: str) -> LinkClient:
    config = CloudLinkConfig.model_validate(link_config(pki, identity, port))
    assert config.tls is not False
    return LinkClient(config, identity, tls_context(config.tls))


async def test_acl_keeps_a_vehicle_out_of_another_vehicles_topics(
    pki: Pki, broker: LocalBroker
) -> None:
    received_by_b: list[str] = []
    received_by_a: list[str] = []

    async def collect(client: LinkClient, into: list[str]) -> None:
        with contextlib.suppress(aiomqtt.MqttError):
            async for message in client.messages:
                into.append(str(message.topic))

    async with (
        _client(pki, broker.port, "veh-b") as vehicle_b,
        _client(pki, broker.port, "veh-a") as vehicle_a,
        _client(pki, broker.port, "cloud") as cloud,
    ):
        await vehicle_b.subscribe("vehicles/veh-b/#", qos=1)
        # mosquitto grants a wildcard subscription and applies "read" per message instead.
        await vehicle_a.subscribe([("vehicles/veh-b/#", 1), ("vehicles/veh-a/#", 1)])
        collectors = [
            asyncio.create_task(collect(vehicle_b, received_by_b)),
            asyncio.create_task(collect(vehicle_a, received_by_a)),
        ]
        with pytest.raises(PublishRefused, match="Not authorized"):
            await vehicle_a.publish_acked("vehicles/veh-b/state/desired", b"{}")
        # Directions are split (deploy/mosquitto/acl): vehicles read what the cloud sends.
        await cloud.publish_acked("vehicles/veh-b/commands/ping", b"private")
        await cloud.publish_acked("vehicles/veh-a/commands/ping", b"own")
        await wait_until(
            lambda: received_by_a and received_by_b, timeout=5, what="each vehicle's own command"
        )
        for task in collectors:
            task.cancel()
        await asyncio.gather(*collectors, return_exceptions=True)
    assert received_by_a == ["vehicles/veh-a/commands/ping"]  # never veh-b's
    assert received_by_b == ["vehicles/veh-b/commands/ping"]


async def test_the_agents_own_configuration_works_under_the_acl(
    pki: Pki, broker: LocalBroker, tmp_path: Path
) -> None:
    async with (
        cloud_side(pki, broker.port) as cloud,
        running_agent(
            tmp_path / "agent", "veh-a", link_config(pki, "veh-a", broker.port)
        ) as supervisor,
    ):
        await wait_until(
            lambda: link_state(supervisor) == "online", timeout=10, what="the link online"
        )
        bus = supervisor.bus
        await bus.publish("cloud/out/events", {"kind": "hard-brake"})
        await bus.publish("cloud/out/telemetry/chassis", b"\x01\x02")
        await bus.publish("cloud/out/ota/status", {"state": "idle"})
        await wait_until(
            lambda: (
                cloud.on("events")
                and cloud.on("telemetry/chassis")
                and cloud.on("ota/status")
                and cloud.on("state/reported")
            ),
            timeout=10,
            what="events, telemetry, OTA status and reported state at the cloud",
        )
        await cloud.publish("vehicles/veh-a/commands/ping", json.dumps({"id": "p"}).encode())
        await wait_until(lambda: cloud.on("commands/ping/reply"), timeout=10, what="the ping reply")
        assert cloud.json_on("commands/ping/reply")[0]["ok"] is True
        assert cloud.json_on("status")[0]["state"] == "online"
        assert link_module(supervisor).uplink.counters.refused_by_broker == 0
    assert all(r.topic.startswith("vehicles/veh-a/") for r in cloud.received)


def _agent_toml(pki: Pki, path: Path, port: int, tls: dict[str, str]) -> Path:
    link = {"host": "127.0.0.1", "port": port, "connect_timeout_s": 2.0, "tls": tls}
    config = {
        "agent": {"vehicle_id": "veh-1", "state_dir": str(path.parent)},
        "modules": {"cloud-link": {"config": link}},
    }
    path.write_text(tomli_w.dumps(config))
    return path


async def test_cloud_check_command_tells_success_from_refusal(
    pki: Pki, broker: LocalBroker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = _agent_toml(pki, tmp_path / "good.toml", broker.port, pki.tls_config("veh-1"))
    assert await asyncio.to_thread(cli_main, ["cloud", "check", "--config", str(good)]) == 0
    out = capsys.readouterr().out
    assert "connected to 127.0.0.1" in out
    assert "mutual TLS" in out
    assert "subscription to commands accepted" in out
    foreign = pki.other_ca.issue_client(tmp_path / "foreign", "veh-1")
    bad = _agent_toml(
        pki, tmp_path / "bad.toml", broker.port, pki.tls_config("veh-1", issued=foreign)
    )
    assert await asyncio.to_thread(cli_main, ["cloud", "check", "--config", str(bad)]) == 5
    assert "unknown ca" in capsys.readouterr().out.lower()
