"""Desired and reported state: MQTT ``state/desired`` to the supervisor, ``state/reported`` back.

A desired state is handed, unchanged, to the supervisor's ``agent/config/apply`` request,
which validates it exactly like the local config file and applies it without restarting
unaffected modules (or rejects it and changes nothing). The reported state is a retained
document: modules and versions, config source and desired version, a health summary, the
link, and the last applied and last rejected desired state. It is sent after every
connect, after every desired state, and when the health summary changes (at most every
``reported_min_interval_s`` on the module's clock). The last applied/rejected records
survive restarts.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge_agent.agent_topics import APPLY_DESIRED_TOPIC, HEALTH_TOPIC, STATUS_TOPIC
from edge_agent.bus import Bus, Message, NoResponder, RequestFailed, RequestTimeout
from edge_agent.clock import Clock
from edge_agent.config import ConfigError, parse_desired
from edge_agent.durable import write_bytes_atomic
from edge_agent.logs import get_logger
from edge_agent.modules.cloud_link.outbox import Outbox
from edge_agent.modules.cloud_link.topics import STATE_DESIRED, STATE_REPORTED, inbound
from edge_agent.version import __version__

MEMORY_FILE = "cloud-state.json"
_log = get_logger("edge_agent.module.cloud-link")


def health_summary(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The stable part of a supervisor health snapshot: what the reported state shows."""
    agent = snapshot.get("agent", {})
    modules: dict[str, Any] = {}
    problems: list[str] = []
    for name, module in sorted(snapshot.get("modules", {}).items()):
        modules[name] = {
            "version": module.get("version"),
            "state": module.get("state"),
            "ok": module.get("ok"),
            "reason": module.get("reason", ""),
            "restarts": module.get("restarts", 0),
        }
        if module.get("state") != "running" or not module.get("ok", True):
            problems.append(f"{name}: {module.get('reason') or module.get('state')}")
    return {
        "agent": {
            "version": agent.get("version", __version__),
            "state": agent.get("state"),
            "ready": agent.get("ready"),
            "config_source": agent.get("config_source"),
        },
        "desired_version": agent.get("desired_version"),
        "config": agent.get("config"),
        "modules": modules,
        "health": {"ok": not problems, "problems": problems},
    }


class StateReporter:
    """Applies desired states from the cloud and keeps the reported state up to date."""

    def __init__(
        self,
        *,
        bus: Bus,
        outbox: Outbox,
        clock: Clock,
        vehicle_id: str,
        module_name: str,
        state_dir: Path,
        link_summary: Callable[[], dict[str, Any]],
        apply_timeout_s: float,
        min_interval_s: float,
    ) -> None:
        self.bus = bus
        self.outbox = outbox
        self.clock = clock
        self.vehicle_id = vehicle_id
        self.module_name = module_name
        self.memory_file = state_dir / MEMORY_FILE
        self.link_summary = link_summary
        self.apply_timeout_s = apply_timeout_s
        self.min_interval_s = min_interval_s
        self.last_applied: dict[str, Any] | None = None
        self.last_rejection: dict[str, Any] | None = None
        self.published = 0
        self._summary: dict[str, Any] | None = None
        self._sent_summary: dict[str, Any] | None = None
        self._sent_at = float("-inf")
        self._lock = asyncio.Lock()

    async def load(self) -> None:
        """Read the last applied/rejected records kept from an earlier run (if any)."""
        try:
            memory = json.loads(await asyncio.to_thread(self.memory_file.read_bytes))
        except (OSError, ValueError):
            return
        if isinstance(memory, dict):
            self.last_applied = memory.get("last_applied")
            self.last_rejection = memory.get("last_rejection")

    def _remember(self) -> None:
        data = json.dumps(
            {"last_applied": self.last_applied, "last_rejection": self.last_rejection}
        ).encode()
        write_bytes_atomic(self.memory_file, data)

    def listen(self) -> list[Callable[[], None]]:
        """Start serving desired states and watching health; returns the unsubscribers."""
        return [
            self.bus.listen(
                inbound(STATE_DESIRED), self._on_desired, maxsize=4, name="cloud-link.desired"
            ),
            self.bus.listen(HEALTH_TOPIC, self._on_health, maxsize=1, name="cloud-link.health"),
        ]

    # -- desired ---------------------------------------------------------------------------

    async def _on_desired(self, message: Message) -> None:
        payload = message.payload if isinstance(message.payload, bytes) else b""
        if not payload:
            return  # the retained desired state was cleared: nothing to do
        await self.apply(payload)

    async def apply(self, payload: bytes) -> dict[str, Any]:
        """Apply one desired-state payload; record and report the outcome; return the reply."""
        version: Any = None
        try:
            document = parse_desired(payload)
            version = document.get("version")
            reply = await self.bus.request(
                APPLY_DESIRED_TOPIC, document, timeout=self.apply_timeout_s, sender="cloud-link"
            )
            result: dict[str, Any] = dict(reply.payload)
        except ConfigError as error:
            result = {"accepted": False, "version": version, "errors": error.lines()}
        except NoResponder:
            result = {
                "accepted": False,
                "version": version,
                "errors": [f"no supervisor serves {APPLY_DESIRED_TOPIC}"],
            }
        except RequestTimeout:
            result = {
                "accepted": False,
                "version": version,
                "errors": [f"not applied within {self.apply_timeout_s:g} s"],
            }
        except RequestFailed as error:
            result = {"accepted": False, "version": version, "errors": [str(error)]}
        now = self.clock.wall()
        if result.get("accepted"):
            self.last_applied = {"version": version, "at": now, "report": result.get("report")}
            _log.info("desired state applied", version=version, report=result.get("report"))
        else:
            self.last_rejection = {"version": version, "at": now, "errors": result["errors"]}
            _log.warning("desired state rejected", version=version, errors=result["errors"])
        try:
            await asyncio.to_thread(self._remember)
        except OSError as error:
            _log.warning("could not keep the desired-state outcome", error=str(error))
        await self.report(fresh=True)
        return result

    # -- reported --------------------------------------------------------------------------

    async def _on_health(self, message: Message) -> None:
        if not isinstance(message.payload, dict):
            return
        self._summary = health_summary(message.payload)
        if self._summary != self._sent_summary and (
            self.clock.monotonic() - self._sent_at >= self.min_interval_s
        ):
            await self.report()

    async def _fresh_summary(self) -> dict[str, Any] | None:
        try:
            reply = await self.bus.request(STATUS_TOPIC, None, timeout=2.0, sender="cloud-link")
        except (NoResponder, RequestTimeout, RequestFailed):
            return self._summary
        return health_summary(reply.payload) if isinstance(reply.payload, dict) else None

    def document(self) -> dict[str, Any]:
        """The reported-state document as of now."""
        summary = self._summary or health_summary({})
        return {
            "vehicle_id": self.vehicle_id,
            "reported_at": self.clock.wall(),
            **summary,
            "link": self.link_summary(),
            "last_applied": self.last_applied,
            "last_rejection": self.last_rejection,
        }

    async def report(self, *, fresh: bool = False) -> None:
        """Spool a new reported state (``fresh``: ask the supervisor for current health)."""
        async with self._lock:
            if fresh:
                self._summary = await self._fresh_summary()
            document = self.document()
            self._sent_summary = self._summary
            self._sent_at = self.clock.monotonic()
            await self.outbox.send(STATE_REPORTED, document)
            self.published += 1
