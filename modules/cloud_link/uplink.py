"""Store and forward: publish spooled records with QoS 1, remove each only after its PUBACK.

While connected, :meth:`Uplink.run` leases records (most important first, in append order
within a priority, so in order per stream), publishes up to ``window`` of them concurrently
in lease order, and acks every record the broker confirmed (acks are grouped: one spool
transaction for whatever PUBACKs arrived meanwhile). When the connection ends, confirmed
records are acked and the rest are handed back, to be published again, with the same message
id, after the next connect.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from edge_agent.logs import get_logger
from edge_agent.modules.cloud_link.budget import ALWAYS_SENT, LinkBudgets, publish_cost
from edge_agent.modules.cloud_link.client import LinkClient, PublishRefused, publish_properties
from edge_agent.modules.cloud_link.outbox import retained, valid_stream
from edge_agent.modules.cloud_link.restamp import Restamper
from edge_agent.modules.cloud_link.topics import vehicle_topic
from edge_agent.spool import AsyncSpool, SpoolPriority, SpoolRecord

_log = get_logger("edge_agent.module.cloud-link")


@dataclass
class UplinkCounters:
    """Counters since the module started (reported in health)."""

    published: int = 0
    published_bytes: int = 0
    refused_by_broker: int = 0
    unpublishable: int = 0
    last_refusal: str = ""


class Uplink:
    """Publishes from ``spool`` over one connection at a time (see the module docstring)."""

    def __init__(
        self,
        spool: AsyncSpool,
        budgets: LinkBudgets,
        vehicle_id: str,
        arrived: asyncio.Event,
        restamper: Restamper,
        *,
        window: int,
        poll_interval_s: float,
    ) -> None:
        self.spool = spool
        self.budgets = budgets
        self.vehicle_id = vehicle_id
        self.arrived = arrived
        self.window = window
        self.poll_interval_s = poll_interval_s
        self.counters = UplinkCounters()
        self.inflight = 0
        self._confirmed: list[int] = []
        self._confirmed_event = asyncio.Event()
        self._progress = asyncio.Event()
        self.restamper = restamper

    async def run(self, client: LinkClient, timeout_s: float) -> None:
        """Publish until cancelled or the connection fails (the error propagates)."""
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._ack_confirmed(), name="cloud-link.uplink.ack")
                await self._publish_loop(client, timeout_s, group)
        finally:
            # Shielded so that a cancelled session still records what the broker confirmed
            # (else those records would go out once more after the reconnect).
            await asyncio.shield(self._settle())

    async def _settle(self) -> None:
        confirmed, self._confirmed = self._confirmed, []
        if confirmed:
            await self.spool.ack(confirmed)
        await self.spool.release_all()
        self.inflight = 0

    async def _ack_confirmed(self) -> None:
        while True:
            await self._confirmed_event.wait()
            self._confirmed_event.clear()
            confirmed, self._confirmed = self._confirmed, []
            if confirmed:
                try:
                    await self.spool.ack(confirmed)
                except BaseException:
                    self._confirmed[:0] = confirmed  # let _settle try again
                    raise

    async def _lease(self, free: int) -> list[SpoolRecord]:
        allowed = self.budgets.allowed()
        remaining = self.budgets.remaining()
        if remaining is None:
            return await self.spool.lease(free)
        records = await self.spool.lease(free, priorities=ALWAYS_SENT)
        telemetry = [p for p in allowed if p not in ALWAYS_SENT]
        if telemetry and len(records) < free and remaining > 0:
            records += await self.spool.lease(
                free - len(records), max_bytes=remaining, priorities=telemetry
            )
        return records

    async def _wait_for_work(self) -> None:
        """Until new records arrive, a publish completes, or the poll interval passes."""
        self.arrived.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.poll_interval_s):
                waiters = [
                    asyncio.ensure_future(self.arrived.wait()),
                    asyncio.ensure_future(self._progress.wait()),
                ]
                try:
                    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for waiter in waiters:
                        waiter.cancel()

    async def _publish_loop(
        self, client: LinkClient, timeout_s: float, group: asyncio.TaskGroup
    ) -> None:
        while True:
            self._progress.clear()
            free = self.window - self.inflight
            if free <= 0:
                await self._progress.wait()
                continue
            records = await self._lease(free)
            if not records:
                await self._wait_for_work()
                continue
            for record in records:
                self.inflight += 1
                # Tasks start in creation order and each hands its PUBLISH to paho in its
                # first step, so packets leave in lease order (in order per stream).
                group.create_task(
                    self._publish(client, record, timeout_s), name="cloud-link.uplink.publish"
                )

    async def _publish(self, client: LinkClient, record: SpoolRecord, timeout_s: float) -> None:
        try:
            if not valid_stream(record.stream):
                self.counters.unpublishable += 1
                _log.error(
                    "spool record has an unusable stream name; dropped",
                    stream=record.stream,
                    record=record.id,
                )
                self._confirm(record)
                return
            topic = vehicle_topic(self.vehicle_id, record.stream)
            payload = await self.restamper.payload_for(record.stream, record.payload)
            cost = publish_cost(topic, len(payload))
            self.budgets.spend(cost)
            try:
                await client.publish_acked(
                    topic,
                    payload,
                    retain=retained(record.stream),
                    properties=publish_properties(record.message_id) if client.mqtt5 else None,
                    timeout_s=timeout_s,
                )
            except PublishRefused as error:
                # Keep the record (it is retried after the next connect, never dropped) but
                # do not let it stop the others.
                self.counters.refused_by_broker += 1
                self.counters.last_refusal = str(error)
                _log.error(
                    "broker refused a publish; will retry after reconnect",
                    error=str(error),
                    priority=SpoolPriority(record.priority).name,
                )
                return
            self.counters.published += 1
            self.counters.published_bytes += cost
            self._confirm(record)
        finally:
            self.inflight -= 1
            self._progress.set()

    def _confirm(self, record: SpoolRecord) -> None:
        self._confirmed.append(record.id)
        self._confirmed_event.set()
