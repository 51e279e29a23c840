"""The configuration file of one node of the fleet's NATS cluster.

Rendered as ``key: <JSON>`` lines (the NATS configuration format reads JSON values), so no
value can break out of its place: every string is JSON-quoted. See docs/fleet.md for what
each block is for.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_agent.fleet.permissions import checked_vehicle_id, cloud_permissions, vehicle_permissions

ACCOUNT = "FLEET"
WORKER_USER = "worker"
CLOUD_IDENTITY = "cloud"


@dataclass(frozen=True, slots=True)
class NodePorts:
    """The loopback ports of one node."""

    client: int
    cluster: int
    mqtt: int
    monitor: int


@dataclass(frozen=True, slots=True)
class MqttTls:
    """The MQTT listener's side of mutual TLS."""

    ca_file: Path
    cert_file: Path
    key_file: Path


def certificate_user(identity: str, organisation: str) -> str:
    """The NATS user name ``verify_and_map`` derives from a client certificate's subject.

    NATS matches the subject as an RFC 2253 string (last RDN first), so a certificate
    ``O=<organisation>, CN=<identity>`` maps to ``CN=<identity>,O=<organisation>``.
    """
    return f"CN={identity},O={organisation}"


def account_users(
    vehicles: Sequence[str], organisation: str, worker_password: str
) -> list[dict[str, Any]]:
    """The fleet account's users.

    One per vehicle (ids checked) and the cloud, MQTT only and mapped from their
    certificates, and the workers' user over NATS.
    """
    users: list[dict[str, Any]] = [
        {
            "user": certificate_user(checked_vehicle_id(vehicle), organisation),
            "permissions": vehicle_permissions(vehicle),
            "allowed_connection_types": ["MQTT"],
        }
        for vehicle in vehicles
    ]
    users.append(
        {
            "user": certificate_user(CLOUD_IDENTITY, organisation),
            "permissions": cloud_permissions(),
            "allowed_connection_types": ["MQTT"],
        }
    )
    users.append(
        {
            "user": WORKER_USER,
            "password": worker_password,
            "allowed_connection_types": ["STANDARD"],
        }
    )
    return users


def render_node(  # noqa: PLR0917 - one call site, every argument named there
    index: int,
    ports: Sequence[NodePorts],
    store_dir: Path,
    tls: MqttTls,
    vehicles: Sequence[str],
    worker_password: str,
    organisation: str,
    *,
    max_file_store: int = 4 << 30,
) -> str:
    """The configuration text of node ``index`` of a cluster on ``ports``."""
    own = ports[index]
    users = account_users(vehicles, organisation, worker_password)
    settings: dict[str, Any] = {
        "server_name": f"fleet-{index}",
        "host": "127.0.0.1",
        "port": own.client,
        "http": f"127.0.0.1:{own.monitor}",
        "max_payload": 8 << 20,
        "jetstream": {
            "store_dir": str(store_dir),
            "max_file_store": max_file_store,
            "max_memory_store": 64 << 20,
        },
        "cluster": {
            "name": "fleet",
            "host": "127.0.0.1",
            "port": own.cluster,
            "routes": [
                f"nats-route://127.0.0.1:{other.cluster}"
                for number, other in enumerate(ports)
                if number != index
            ],
        },
        "mqtt": {
            "host": "127.0.0.1",
            "port": own.mqtt,
            "tls": {
                "ca_file": str(tls.ca_file),
                "cert_file": str(tls.cert_file),
                "key_file": str(tls.key_file),
                "verify_and_map": True,
                "timeout": 5,
            },
            # How long a QoS 1 delivery to an MQTT subscriber waits for its PUBACK before
            # NATS sends it again; and how many may be unacknowledged per subscription.
            "ack_wait": "30s",
            "max_ack_pending": 1024,
            "stream_replicas": min(3, len(ports)),
            # Every QoS 1 subscription of every vehicle session is a JetStream consumer: as
            # R3 each is a Raft group of its own (4 per vehicle), which swamped a 3-node
            # cluster of 1,000 vehicles after a node kill (docs/fleet.md, "Scaling"). R1:
            # the messages stay in the R3 streams; only a subscription's delivery state
            # lives on one node, and waits for it when that node is down.
            "consumer_replicas": 1,
        },
        "accounts": {ACCOUNT: {"jetstream": "enabled", "users": users}},
    }
    if len(ports) == 1:  # one node is no cluster (JetStream refuses a cluster without routes)
        del settings["cluster"]
    return "".join(f"{key}: {json.dumps(value)}\n" for key, value in settings.items())
