"""What the fleet workers make of one upstream message: decided without PostgreSQL or NATS.

Every subject and payload gives an outcome, never an exception; a bad one is parked with a
one-line reason. Structural seeds: deep msgpack nesting in a sealed frame, a frame claiming
a huge size, damaged valid batches, subjects built to look like paths or wildcards.
"""

from __future__ import annotations

import json

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.fleet.permissions import checked_vehicle_id, vehicle_permissions
from edge_agent.fleet.server_config import MqttTls, NodePorts, render_node
from edge_agent.fleet.upstream import (
    NotOurs,
    Park,
    StoreBatch,
    StoreEvent,
    StoreState,
    batch_key,
    content_key,
    interpret,
    split_subject,
)
from edge_agent.fleet.worker import _split_credentials
from edge_agent.modules.telemetry.batch import ClockQuality, Sample, decode_batch, encode_samples
from edge_agent.modules.telemetry.batch.frame import seal

SUBJECT = "$MQTT.msgs.vehicles.veh-1.telemetry.chassis"


def batch(vehicle: str = "veh-1", wall: float = 1.7e9) -> bytes:
    return encode_samples(
        [Sample("speed", 0.1 * i, wall + i, 10.0 * i) for i in range(5)]
        + [Sample("gear", 0.5, wall, "D\x00"), Sample("raw", 0.6, wall, b"\x01")],
        vehicle_id=vehicle,
        stream="chassis",
        sequence=3,
        clock=ClockQuality.TRUSTED,
    )


def _nested(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


SEEDS = [
    b"",
    b"\x00" * 64,
    seal(msgpack.packb(_nested(500))),  # msgpack packs no deeper; the decoder must refuse it
    seal(msgpack.packb({"v": 1, "signals": [_nested(300)]})),
    b"EATB" + (2**31).to_bytes(4, "big") + b"\xff" * 32,
    batch()[:-7],
    batch()[:20] + b"\x00" * 20 + batch()[40:],
]


def test_a_good_batch_is_stored_under_its_own_message_id() -> None:
    data = batch()
    outcome = interpret(SUBJECT, data, {})
    assert isinstance(outcome, StoreBatch)
    assert outcome.key == batch_key(decode_batch(data))
    assert outcome.vehicle == "veh-1"
    assert outcome.sent_at.timestamp() == pytest.approx(1.7e9 + 4)
    assert outcome.first_sample_at.timestamp() == pytest.approx(1.7e9)


@pytest.mark.parametrize(
    ("subject", "payload", "reason"),
    [
        (SUBJECT, batch("veh-9"), "batch names vehicle 'veh-9'"),
        (SUBJECT, b"not a batch", "batch does not decode"),
        (SUBJECT, batch(wall=1e15), "batch time unusable"),
        ("$MQTT.msgs.vehicles.veh-1.secrets", b"x", "not an upward topic"),
        ("$MQTT.msgs.vehicles.veh-1.catalog." + "0" * 32, b"x", "catalogue refused"),
        ("$MQTT.msgs.elsewhere.veh-1.events", b"x", "not a vehicle topic"),
        ("$MQTT.msgs.vehicles.veh.1.events", b"x", "not an upward topic"),
    ],
)
def test_unstorable_messages_are_parked_with_a_reason(
    subject: str, payload: bytes, reason: str
) -> None:
    outcome = interpret(subject, payload, {})
    assert isinstance(outcome, Park)
    assert outcome.reason.startswith(reason), outcome.reason


def test_state_events_and_downward_messages() -> None:
    status = interpret("$MQTT.msgs.vehicles.veh-1.status", b'{"state":"on\x00"}', {})
    assert isinstance(status, StoreState)
    assert status.column == "status"
    assert "\x00" not in status.text
    event = interpret("$MQTT.msgs.vehicles.veh-1.commands.ping.reply", b"{}", {})
    assert isinstance(event, StoreEvent)
    assert event.key == content_key("vehicles/veh-1/commands/ping/reply", b"{}")
    assert isinstance(interpret("$MQTT.msgs.vehicles.veh-1.ota.jobs", b"{}", {}), NotOurs)
    assert split_subject("$MQTT.msgs.vehicles.veh-1.telemetry.a.b") == ("veh-1", "telemetry/a/b")
    assert split_subject("$MQTT.msgs.vehicles..events") is None


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    tail=st.lists(
        st.sampled_from(["telemetry", "events", "status", "catalog", "ack", "*", ">", "..", "x"]),
        min_size=0,
        max_size=5,
    ),
    vehicle=st.sampled_from(["veh-1", "", "a b", "*", ">", "veh-1.x", "é"]),
    payload=st.one_of(st.binary(max_size=300), st.sampled_from(SEEDS)),
)
def test_any_message_gets_an_outcome_never_an_exception(
    tail: list[str], vehicle: str, payload: bytes
) -> None:
    subject = ".".join(["$MQTT", "msgs", "vehicles", vehicle, *tail])
    outcome = interpret(subject, payload, {})
    if isinstance(outcome, Park):
        assert "\n" not in outcome.reason
        assert len(outcome.reason) <= 300


@pytest.mark.parametrize("hostile", ["veh.1", "veh 1", "*", ">", 'a"b', "a\nb", "", "x" * 65])
def test_vehicle_ids_that_could_change_the_server_configuration_are_refused(hostile: str) -> None:
    with pytest.raises(ValueError, match="not usable on the NATS back end"):
        checked_vehicle_id(hostile)


def test_a_vehicle_may_only_publish_up_and_subscribe_down_under_its_own_id() -> None:
    permissions = vehicle_permissions("veh-7")
    assert all(s.startswith("vehicles.veh-7.") for s in permissions["publish"]["allow"])
    assert "vehicles.veh-7.state.desired" not in permissions["publish"]["allow"]
    assert "vehicles.veh-7.state.desired" in permissions["subscribe"]["allow"]
    assert not any("telemetry" in s for s in permissions["subscribe"]["allow"])


def test_every_configuration_value_is_json_quoted(tmp_path) -> None:
    ports = [NodePorts(1, 2, 3, 4), NodePorts(5, 6, 7, 8)]
    tls = MqttTls(tmp_path / 'ca"}.pem', tmp_path / "c.pem", tmp_path / "k.pem")
    text = render_node(0, ports, tmp_path / "js", tls, ["veh-1"], 'pw"}\n', "Org")
    for line in text.splitlines():
        key, _, value = line.partition(": ")
        json.loads(value)  # every value parses whole: nothing broke out of its place
        assert key.isidentifier()


def test_worker_credentials_apply_to_every_server_the_cluster_announces() -> None:
    servers, credentials = _split_credentials(
        ["nats://worker:p%40ss@127.0.0.1:4222", "nats://127.0.0.1:4223"]
    )
    assert servers == ["nats://127.0.0.1:4222", "nats://127.0.0.1:4223"]
    assert credentials == {"user": "worker", "password": "p@ss"}


def test_a_single_node_has_no_cluster_block(tmp_path) -> None:
    tls = MqttTls(tmp_path / "ca.pem", tmp_path / "c.pem", tmp_path / "k.pem")
    text = render_node(0, [NodePorts(1, 2, 3, 4)], tmp_path / "js", tls, [], "pw", "Org")
    assert "cluster:" not in text
    assert '"stream_replicas": 1' in text
