"""MQTT topic layout (docs/cloud.md, "Topics") and how cloud traffic appears on the in-process bus.

On MQTT every vehicle topic is ``vehicles/{vid}/{suffix}``. On the in-process bus:

* what arrives from the cloud is published on ``cloud/in/{suffix}`` (control priority), e.g.
  ``cloud/in/ota/jobs``, ``cloud/in/state/desired``, ``cloud/in/commands/ping``; the payload
  is the raw MQTT payload (bytes), parsed and validated by whoever subscribes;
* what a module wants sent upstream it publishes on ``cloud/out/{suffix}``, e.g.
  ``cloud/out/ota/status`` or ``cloud/out/events``; the cloud link spools it durably and
  publishes it when connected. Payloads are ``bytes`` or JSON-serialisable objects (sent as
  JSON). Telemetry batches go to the spool directly (they must be durable before they are
  acknowledged to their producer).
* the link's own state is published on ``cloud/link`` (``{"state": "online" | "offline", ...}``).
"""

from __future__ import annotations

IN_PREFIX = "cloud/in/"
OUT_PREFIX = "cloud/out/"
LINK_TOPIC = "cloud/link"

OTA_JOBS = "ota/jobs"
OTA_STATUS = "ota/status"
EVENTS = "events"
STATE_REPORTED = "state/reported"
STATE_DESIRED = "state/desired"
STATUS = "status"
COMMANDS = "commands"
CATALOG = "catalog"  # catalog/{hash} up (retained): a signal catalogue; catalog/{hash}/ack down
CATALOG_ACKS = "catalog/+/ack"
CATALOG_REQUESTS = "catalog/+/request"  # down: the cloud asks for a catalogue it lacks, by hash


def vehicle_topic(vehicle_id: str, suffix: str) -> str:
    """The MQTT topic of ``suffix`` for vehicle ``vehicle_id``."""
    return f"vehicles/{vehicle_id}/{suffix}"


def inbound(suffix: str) -> str:
    """The bus topic on which cloud messages for ``suffix`` are published."""
    return IN_PREFIX + suffix
