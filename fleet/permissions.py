"""Who may publish and subscribe what on the fleet's NATS cluster (the mosquitto ACL, as NATS).

The same direction split as ``deploy/mosquitto/acl``: a vehicle publishes only its upward
topics under ``vehicles/{its id}/`` and subscribes only its downward ones; the back end
(the MQTT user ``cloud``) the reverse, for every vehicle. MQTT topics become NATS subjects
(``/`` to ``.``, ``+`` to ``*``, ``#`` to ``>``), so the rules are written as subjects.

A vehicle id becomes part of the server's configuration file and of subjects, so it must
be a plain token: NATS 2.9's MQTT refuses ``.`` and spaces in topics, and anything else
could change the meaning of the configuration. :func:`checked_vehicle_id` enforces that.
"""

from __future__ import annotations

import re

# Topic suffixes under vehicles/{vid}/, as NATS subject tails.
UPWARD = (
    "telemetry.>",
    "events",
    "state.reported",
    "commands.*.reply",
    "ota.status",
    "status",
    "catalog.*",
    "diag.>",
)
DOWNWARD = ("state.desired", "commands.*", "ota.jobs", "catalog.*.ack")

# NATS MQTT delivers a QoS 1 subscription through a JetStream consumer whose deliver subject
# is ``$MQTT.sub.<unique>``; the MQTT client's own connection subscribes to it, so the
# vehicle's permissions must allow it (tests/integration/fleet/test_fleet_permissions.py
# checks that a vehicle cannot use this to read another's traffic).
MQTT_INTERNAL_SUBSCRIBE = ("$MQTT.sub.>",)

_VEHICLE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def checked_vehicle_id(vehicle: str) -> str:
    """``vehicle`` if it is a plain token usable in a NATS subject; ValueError otherwise."""
    if not _VEHICLE_ID.fullmatch(vehicle):
        raise ValueError(
            f"vehicle id {vehicle[:70]!r} is not usable on the NATS back end: letters, digits, "
            "'_' and '-' only (NATS MQTT refuses '.' in topics), at most 64 characters"
        )
    return vehicle


def vehicle_permissions(vehicle: str) -> dict[str, dict[str, list[str]]]:
    """The NATS ``permissions`` block of one vehicle's user."""
    prefix = f"vehicles.{checked_vehicle_id(vehicle)}."
    return {
        "publish": {"allow": [prefix + tail for tail in UPWARD]},
        "subscribe": {"allow": [*(prefix + tail for tail in DOWNWARD), *MQTT_INTERNAL_SUBSCRIBE]},
    }


def cloud_permissions() -> dict[str, dict[str, list[str]]]:
    """The NATS ``permissions`` block of the MQTT user ``cloud`` (the back end's tools).

    An MQTT filter ending in ``/#`` also matches its parent level, and NATS MQTT subscribes
    that parent as a subject of its own (``vehicles.*.telemetry`` for
    ``vehicles/+/telemetry/#``), so the parents of the ``>`` rules are allowed too.
    """
    upward = ["vehicles.*." + tail for tail in UPWARD]
    parents = [subject.removesuffix(".>") for subject in upward if subject.endswith(".>")]
    return {
        "publish": {"allow": ["vehicles.*." + tail for tail in DOWNWARD]},
        "subscribe": {"allow": [*upward, *parents, *MQTT_INTERNAL_SUBSCRIBE]},
    }


def mqtt_topic_to_subject(topic: str) -> str:
    """The NATS subject of an MQTT topic name (no wildcards), as NATS MQTT maps it."""
    return topic.replace("/", ".")


def subject_to_mqtt_topic(subject: str) -> str:
    """The MQTT topic of a NATS subject (the reverse of :func:`mqtt_topic_to_subject`)."""
    return subject.replace(".", "/")
