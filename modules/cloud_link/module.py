"""The ``cloud-link`` module: MQTT link, store-and-forward uplink, desired/reported state, commands.

Generic: it knows no vehicle and no other module. It takes what modules publish on
``cloud/out/{suffix}`` (and what they append to the shared spool directly), publishes it to
``vehicles/{vid}/{suffix}``, and puts what the cloud sends on ``cloud/in/{suffix}``. See
docs/cloud.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from edge_agent.bus import Message
from edge_agent.metrics import Sample
from edge_agent.module_api import Module, ModuleContext
from edge_agent.modules.cloud_link.budget import LinkBudgets
from edge_agent.modules.cloud_link.command_memory import MEMORY_FILE as COMMAND_MEMORY_FILE
from edge_agent.modules.cloud_link.command_memory import CommandMemory
from edge_agent.modules.cloud_link.commands import CommandService
from edge_agent.modules.cloud_link.config import NETWORK_TOPIC, CloudLinkConfig
from edge_agent.modules.cloud_link.link import CloudLink
from edge_agent.modules.cloud_link.link_state import LinkState
from edge_agent.modules.cloud_link.metrics import cloud_link_metrics
from edge_agent.modules.cloud_link.outbox import Outbox, forward_bus_to_spool
from edge_agent.modules.cloud_link.restamp import Restamper
from edge_agent.modules.cloud_link.state import StateReporter
from edge_agent.modules.cloud_link.uplink import Uplink
from edge_agent.spool import AsyncSpool

HEALTH_REFRESH_S = 2.0


async def open_spool(context: ModuleContext, config: CloudLinkConfig) -> tuple[AsyncSpool, bool]:
    """The agent's shared spool, or (only while the agent hands none) one of our own.

    Returns the spool and whether this module owns it (and so must close it).
    """
    if context.spool is not None:
        return context.spool, False
    path = config.spool_path or Path(context.state_dir) / "spool.db"
    context.log.info("no shared spool from the agent; opening the cloud link's own", path=str(path))
    # Like the agent's: records are opaque here; their producers' transforms degrade them.
    return await AsyncSpool.open(path, degrade=context.streams.degrade), True


class CloudLinkModule(Module[CloudLinkConfig]):
    """Keeps the vehicle's MQTT link to the fleet back end (offline-first; see docs/cloud.md)."""

    name = "cloud-link"
    version = "1.0.0"
    config_model = CloudLinkConfig
    is_cloud_link = True  # changes to it are on probation until the link is back

    @classmethod
    def health_metrics(cls, details: Mapping[str, Any]) -> Iterable[Sample]:
        """Prometheus metrics from the module's health details (see its ``metrics`` file)."""
        return cloud_link_metrics(details)

    def __init__(self, config: CloudLinkConfig, context: ModuleContext) -> None:
        super().__init__(config, context)
        self._spool: AsyncSpool | None = None
        self._owns_spool = False
        self._stop_listening: list[Callable[[], None]] = []
        self._link_task: asyncio.Task[None] | None = None

    async def setup(self) -> None:
        """Get the spool (the link itself never fails on a missing broker or certificate)."""
        self._spool, self._owns_spool = await open_spool(self.context, self.config)
        if self._owns_spool:
            # After the module's tasks are gone (the uplink acks what the broker confirmed).
            self.context.on_stop(self._spool.close)

    async def start(self) -> None:
        """Wire the parts and start connecting in the background: ready at once (offline-first)."""
        assert self._spool is not None
        context, config = self.context, self.config
        self.budgets = LinkBudgets(config.links, config.active_link, context.clock.monotonic)
        self.outbox = Outbox(self._spool)
        self.uplink = Uplink(
            self._spool,
            self.budgets,
            context.vehicle_id,
            self.outbox.arrived,
            Restamper(context.streams),
            window=config.inflight_window,
            poll_interval_s=config.poll_interval_s,
        )
        self.reporter = StateReporter(
            bus=context.bus,
            outbox=self.outbox,
            clock=context.clock,
            vehicle_id=context.vehicle_id,
            module_name=context.name,
            state_dir=Path(context.state_dir),
            link_summary=self.link_summary,
            apply_timeout_s=config.apply_timeout_s,
            min_interval_s=config.reported_min_interval_s,
        )
        self.link = CloudLink(
            config,
            vehicle_id=context.vehicle_id,
            bus=context.bus,
            clock=context.clock,
            uplink=self.uplink,
            on_connected=lambda: self.reporter.report(fresh=True),
            on_state=self._link_changed,
        )
        self.commands = CommandService(
            bus=context.bus,
            outbox=self.outbox,
            vehicle_id=context.vehicle_id,
            timeout_s=config.command_timeout_s,
            link_summary=self.link_summary,
            memory=CommandMemory(Path(context.state_dir) / COMMAND_MEMORY_FILE),
        )
        await self.commands.memory.load()
        await self.reporter.load()
        self._stop_listening = [
            *self.reporter.listen(),
            self.commands.listen(),
            context.bus.listen(
                NETWORK_TOPIC, self._on_network, maxsize=8, name="cloud-link.network"
            ),
        ]
        context.spawn(forward_bus_to_spool(context.bus, self.outbox), "outbox")
        self._link_task = context.spawn(self.link.run(), "link")
        context.spawn(self._refresh_health(), "health")

    @property
    def spool(self) -> AsyncSpool:
        """The spool this link publishes from (shared by the agent, or its own)."""
        assert self._spool is not None
        return self._spool

    def link_summary(self) -> dict[str, Any]:
        """The link as reported to the cloud and in ``get_status``."""
        return {
            **self.link.state.as_dict(),
            "broker": f"{self.config.host}:{self.config.port}",
            "tls": self.config.tls is not False,
            **self.budgets.summary(),
        }

    def _link_changed(self) -> None:
        status = self.link.state
        self.context.health.set_detail("link", self.link_summary())
        self.context.health.link_online(status.state is LinkState.ONLINE)
        if status.state is LinkState.OFFLINE and status.reason.startswith("TLS setup"):
            self.context.health.degraded(status.reason)
        elif not self.uplink.counters.refused_by_broker:
            self.context.health.healthy()

    async def _on_network(self, message: Message) -> None:
        payload = message.payload
        with contextlib.suppress(ValueError, UnicodeDecodeError):
            if isinstance(payload, bytes | str):
                payload = json.loads(payload)
        link = payload.get("link") if isinstance(payload, dict) else None
        if not isinstance(link, str) or not self.budgets.switch(link):
            self.context.log.warning(
                "cloud/network: unknown link; keeping the current one",
                got=payload if not isinstance(payload, bytes) else payload[:100],
                known=sorted(self.budgets.profiles),
                active=self.budgets.active,
            )
            return
        self.context.log.info("active network link changed", link=link)
        self.outbox.arrived.set()  # held-back records may go now
        self.link.publish_state(link=link)

    async def _refresh_health(self) -> None:
        assert self._spool is not None
        health = self.context.health
        while True:
            stats = await self._spool.stats()
            self._link_changed()
            health.set_detail(
                "uplink",
                {
                    **vars(self.uplink.counters),
                    "inflight": self.uplink.inflight,
                    "received": self.link.received,
                    "spool_refused": self.outbox.refused,
                    "reported": self.reporter.published,
                    "commands": self.commands.handled,
                },
            )
            health.set_detail(
                "backlog",
                {
                    "records": stats.records,
                    "bytes": stats.bytes,
                    "by_priority": {
                        name: figures.records for name, figures in stats.by_priority.items()
                    },
                },
            )
            if self.uplink.counters.refused_by_broker:
                health.degraded(f"broker refused publishes: {self.uplink.counters.last_refusal}")
            await asyncio.sleep(HEALTH_REFRESH_S)

    async def reconfigure(self, config: CloudLinkConfig) -> bool:
        """Budgets, link profiles, window and timeouts change in place; the rest reconnects."""
        if not self.config.same_connection(config):
            return False
        active = self.budgets.active
        if config.active_link != self.config.active_link or active not in config.links:
            active = config.active_link
        self.budgets.reconfigure(config.links, active)
        self.uplink.window = config.inflight_window
        self.uplink.poll_interval_s = config.poll_interval_s
        self.commands.timeout_s = config.command_timeout_s
        self.reporter.apply_timeout_s = config.apply_timeout_s
        self.reporter.min_interval_s = config.reported_min_interval_s
        self.config = config
        self.outbox.arrived.set()
        return True

    async def stop(self) -> None:
        """Say goodbye to the broker (retained offline status) and end the session cleanly."""
        for stop_listening in self._stop_listening:
            stop_listening()
        if self._link_task is not None:
            await self.link.stop()
            # The session ends by itself now; let the uplink record the last PUBACKs.
            await asyncio.wait([self._link_task], timeout=2.0)
            await self.commands.close()
