"""The cloud stand-in against a real mosquitto: decode and store, drop duplicates, scale out
with shared subscriptions, and drive vehicles from its command line."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from edge_agent.modules.cloud_link.client import LinkClient, publish_properties, tls_context
from edge_agent.modules.cloud_link.config import CloudLinkConfig
from edge_agent.modules.telemetry.batch import ClockQuality, Sample, encode_samples
from edge_agent.simulator.cloud import main as cloud_main
from edge_agent.simulator.cloud_store import CloudStore
from edge_agent.simulator.rig.broker import LocalBroker
from fixtures.cloud import (
    Pki,
    link_config,
    link_state,
    needs_mosquitto,
    running_agent,
    running_consumer,
)
from fixtures.waiting import wait_until

pytestmark = needs_mosquitto


def batch(sequence: int, samples: int = 50) -> bytes:
    return encode_samples(
        [
            Sample("VehicleSpeed", 100.0 + i * 0.01, 1_760_000_000.0 + i * 0.01, 50.0 + i)
            for i in range(samples)
        ],
        vehicle_id="veh-1",
        stream="chassis",
        sequence=sequence,
        clock=ClockQuality.TRUSTED,
    )


def last_json(capsys: pytest.CaptureFixture[str]) -> Any:
    """The last line printed, as JSON (the agent's own logs go to stdout in tests)."""
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


async def test_stand_in_decodes_stores_and_drops_duplicates(
    pki: Pki, broker: LocalBroker, tmp_path: Path
) -> None:
    store = CloudStore(tmp_path / "cloud.db")
    async with (
        running_consumer(store, pki, broker.port, "cloud-main") as stats,
        running_agent(
            tmp_path / "agent", "veh-1", link_config(pki, "veh-1", broker.port)
        ) as supervisor,
    ):
        await wait_until(
            lambda: link_state(supervisor) == "online", timeout=10, what="the link online"
        )
        for sequence in range(20):
            await supervisor.bus.publish("cloud/out/telemetry/chassis", batch(sequence))
        await supervisor.bus.publish("cloud/out/events", {"kind": "hard-brake"})
        await supervisor.bus.publish("cloud/out/telemetry/chassis", b"not a batch")
        config = CloudLinkConfig.model_validate(link_config(pki, "veh-1", broker.port))
        assert config.tls is not False
        replayed = batch(99)
        async with LinkClient(config, "veh-1x", tls_context(config.tls)) as again:
            # The same record twice (as after a lost PUBACK): the second is a duplicate.
            for _ in range(2):
                await again.publish_acked(
                    "vehicles/veh-1/telemetry/chassis",
                    replayed,
                    properties=publish_properties(b"\x01" * 16),
                )
        await wait_until(
            lambda: (
                stats.outcomes.get("duplicate", 0) >= 1 and stats.outcomes.get("stored", 0) >= 22
            ),
            timeout=10,
            what="stored",
        )
    summary = store.summary()["veh-1"]
    store.close()
    assert summary["batches"] == 21
    assert summary["samples"] == 21 * 50
    assert summary["events"] == 1
    assert summary["duplicates"] == 1
    assert summary["rejected"] == 1
    assert summary["status"] == "offline"  # the agent said goodbye on stop
    assert summary["health_ok"] is True


async def test_shared_subscription_splits_the_fleet_between_consumers(
    pki: Pki, broker: LocalBroker, tmp_path: Path
) -> None:
    stores = [CloudStore(tmp_path / f"cloud-{i}.db") for i in range(2)]
    async with (
        running_consumer(stores[0], pki, broker.port, "cloud-a", "fleet") as first,
        running_consumer(stores[1], pki, broker.port, "cloud-b", "fleet") as second,
        running_agent(
            tmp_path / "agent", "veh-1", link_config(pki, "veh-1", broker.port)
        ) as supervisor,
    ):
        await wait_until(
            lambda: link_state(supervisor) == "online", timeout=10, what="the link online"
        )
        for sequence in range(60):
            await supervisor.bus.publish("cloud/out/telemetry/chassis", batch(sequence, 5))
        await wait_until(
            lambda: first.outcomes.get("stored", 0) + second.outcomes.get("stored", 0) >= 60,
            timeout=10,
            what="all stored",
        )
    ids = [set(store.message_ids("veh-1", "telemetry/")) for store in stores]
    for store in stores:
        store.close()
    assert ids[0], "both members of the share group got work"
    assert ids[1], "both members of the share group got work"
    assert not ids[0] & ids[1], "each message went to one member only"
    assert len(ids[0] | ids[1]) == 60


async def test_command_line_drives_a_vehicle(
    pki: Pki, broker: LocalBroker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cert = pki.client("cloud")
    common = [
        "--host",
        "127.0.0.1",
        "--port",
        str(broker.port),
        "--ca",
        str(pki.ca.cert_file),
        "--cert",
        str(cert.cert_file),
        "--key",
        str(cert.key_file),
    ]
    async with running_agent(
        tmp_path / "agent", "veh-1", link_config(pki, "veh-1", broker.port)
    ) as supervisor:
        await wait_until(
            lambda: link_state(supervisor) == "online", timeout=10, what="the link online"
        )
        status = await asyncio.to_thread(cloud_main, ["command", *common, "veh-1", "ping"])
        assert status == 0
        assert last_json(capsys)["result"]["pong"] is True
        status = await asyncio.to_thread(cloud_main, ["command", *common, "veh-1", "nope"])
        assert status == 1
        assert "unknown command" in last_json(capsys)["error"]
        status = await asyncio.to_thread(
            cloud_main, ["desired", *common, "veh-1", '{"version": "x", "modules": {}}']
        )
        assert status == 0
        # An empty desired state is a valid one: every module on the file's settings.
        await wait_until(
            lambda: (
                (supervisor.runners["cloud-link"].module.reporter.last_applied or {}).get("version")
                == "x"
            ),
            timeout=10,
            what="desired state handled",
        )
        serve = subprocess.Popen(
            [
                sys.executable,
                "-P",
                "-m",
                "edge_agent.simulator.cloud",
                "serve",
                *common,
                "--db",
                str(tmp_path / "served.db"),
                "--summary-every",
                "0.2",
                "--json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            assert serve.stdout is not None
            line = await asyncio.wait_for(asyncio.to_thread(serve.stdout.readline), 20)
            assert "vehicles" in json.loads(line)
        finally:
            serve.terminate()
            serve.communicate(timeout=10)
    assert (
        await asyncio.to_thread(
            cloud_main, ["command", "--port", str(broker.port), "veh-1", "ping"]
        )
        == 2
    )  # no certs
    assert cloud_main(["certs", "--out", str(tmp_path / "pki"), "--vehicle", "veh-7"]) == 0
    assert (tmp_path / "pki" / "veh-7.pem").exists()
    assert (tmp_path / "pki" / "cloud.key").exists()
