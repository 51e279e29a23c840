"""The fleet load generator: real vehicles (the agent's spool, uplink and cloud link) in
generator processes, against a test-started mosquitto with mutual TLS and the fleet ACL.

What a vehicle counts as acked must really be at the broker: a cloud-side subscriber
receives every acked batch, decodes it with the telemetry module's decoder, and finds the
vehicle's own id, sequence and message id in it. Vehicles that lose coverage spool and
deliver everything after they are back.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.fleet.generator import FleetLoad, LoadPlan, split
from edge_agent.fleet.traffic import FLEET_TELEMETRY, TrafficProfile, build_profile
from edge_agent.modules.telemetry.batch import decode_batch, parse_catalogue
from edge_agent.modules.telemetry.config import TelemetryConfig
from edge_agent.modules.telemetry.uplink_bench import telemetry_settings
from edge_agent.simulator.rig.broker import LocalBroker
from fixtures.cloud import Pki, broker, cloud_side, needs_mosquitto, pki
from fixtures.waiting import wait_until

__all__ = ["broker", "pki"]

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def profile() -> TrafficProfile:
    return build_profile("fleet", 60.0)


def test_fleet_profile_is_the_example_vehicle_config() -> None:
    example = telemetry_settings(str(REPO / "deploy/examples/vehicle.toml")).config
    assert TelemetryConfig.model_validate(FLEET_TELEMETRY) == example


def test_profile_cadence_is_the_estimators(profile: TrafficProfile) -> None:
    # Every stream cut by the estimator is there, each at its own cadence and priority.
    assert {s.stream for s in profile.streams} == {"motion", "battery"}
    for stream in profile.streams:
        batches = [decode_batch(t) for t in stream.templates]
        assert all(b.stream == stream.stream for b in batches)
        assert stream.period_s * len(stream.templates) == pytest.approx(profile.drive_s)
    assert profile.bytes_per_hour > 0


def _plan(pki: Pki, port: int, root: Path, profile: TrafficProfile, **options: object) -> LoadPlan:
    ids = [f"fleet-{i:03d}" for i in range(6)]
    for vid in ids:
        pki.client(vid)
    settings: dict[str, object] = {
        "addresses": [("127.0.0.1", port)],
        "ca_file": str(pki.ca.cert_file),
        "cert_dir": str(pki.root / "clients"),
        "spool_dir": str(root / "spools"),
        "profile": profile,
        "shares": split(ids, 2),
        "duration_s": 6.0,
        "speedup": 30.0,  # a batch per stream every 1 to 2 s
        "ramp_s": 1.0,
        "offline_share": 0.5,
        "offline_s": 2.0,
        "drain_timeout_s": 30.0,
        "link": {"keepalive_s": 2, "reconnect_initial_s": 0.1, "reconnect_max_s": 0.5},
    }
    settings.update(options)
    return LoadPlan(**settings)  # type: ignore[arg-type]


@needs_mosquitto
@pytest.mark.slow
async def test_vehicles_acked_batches_are_at_the_broker(
    pki: Pki, broker: LocalBroker, tmp_path: Path, profile: TrafficProfile
) -> None:
    # Format v2 (the default); v3 with catalogues runs in test_fleet_bench.py.
    batch_format = 2
    plan = _plan(pki, broker.port, tmp_path, profile, batch_format=batch_format)
    async with cloud_side(pki, broker.port) as cloud:
        load = FleetLoad(tmp_path / "generator", plan)
        load.start()
        report = await load.wait(timeout_s=90)
        acked = report.acked_batches()
        # Every produced batch was acked (the offline ones drained after coverage returned).
        assert report.total("produced") == len(acked) == report.total("acked") > 0
        assert report.total("offline_windows") >= 1
        offline = [v for v in report.vehicles if v["offline_windows"]]
        assert all(v["connects"] >= 2 for v in offline)

        catalogues = {}

        def arrived() -> set[tuple[str, str]]:
            for message in cloud.received:
                if "/catalog/" in message.topic:
                    catalogue = parse_catalogue(message.payload)
                    catalogues[catalogue.hash] = catalogue
            seen = set()
            for message in cloud.received:
                if "/telemetry/" not in message.topic:
                    continue
                batch = decode_batch(message.payload, catalogues=catalogues)
                assert message.topic == f"vehicles/{batch.vehicle_id}/telemetry/{batch.stream}"
                # v2 is written as v1 when no column is worth packing (docs/batch-format.md).
                assert batch.version in ({1, 2} if batch_format == 2 else {3})
                seen.add((batch.vehicle_id, batch.message_id.hex()))
            return seen

        seen = await wait_until(
            lambda: (found := arrived()) >= set(acked) and found,
            timeout=30,
            what="every acked batch at the cloud side",
            details=lambda: f"missing {len(set(acked) - arrived())} of {len(acked)}",
        )
        # Nothing arrived that no vehicle made (ids are the vehicles' own).
        assert seen == set(acked)
        for (vehicle, _), row in acked.items():
            stream, sequence = row[0], row[1]
            assert vehicle.startswith("fleet-")
            assert stream in {"motion", "battery"}
            assert sequence >= 1
