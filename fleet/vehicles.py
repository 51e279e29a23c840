"""A lightweight fleet vehicle: the agent's own spool, uplink and cloud link, without the rest.

Each :class:`FleetVehicle` is what an agent's cloud side is: an
:class:`~edge_agent.spool.AsyncSpool` on disk, the cloud-link module's
:class:`~edge_agent.modules.cloud_link.outbox.Outbox` and
:class:`~edge_agent.modules.cloud_link.uplink.Uplink` (store and forward: a record leaves
the spool only after its PUBACK) and :class:`~edge_agent.modules.cloud_link.link.CloudLink`
(mutual TLS with the vehicle's own certificate, a persistent MQTT 3.1.1 session, last will,
keepalive, reconnect with backoff, the subscriptions to its downward topics). Only the
supervisor, the CAN side and the other modules are missing: the telemetry batches come from
:class:`~edge_agent.fleet.traffic.BatchMaker` at the estimator's cadence.

Two things are the generator's own, and say so:

* coverage: a vehicle may lose the network for a while (``offline`` windows); it keeps
  producing into its spool meanwhile and drains the backlog when it is back;
* failover between nodes: the agent's link knows one broker address (in a fleet: a DNS
  name or load balancer in front of the cluster). The generator stands in for that: a
  vehicle that has been offline for ``failover_s`` (its node was killed) connects to the
  next address of the cluster, with the same persistent session.

What the vehicle counts is read from its spool (:class:`WatchedSpool`): a batch counts as
sent when the uplink leases it for a publish and as ``acked`` when the uplink acknowledges it
in the spool, which it does only after the broker's PUBACK.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_agent.bus import Bus
from edge_agent.clock import SystemClock
from edge_agent.fleet.traffic import BatchMaker, TrafficProfile
from edge_agent.modules.cloud_link.budget import LinkBudgets
from edge_agent.modules.cloud_link.config import CloudLinkConfig
from edge_agent.modules.cloud_link.link import CloudLink
from edge_agent.modules.cloud_link.outbox import Outbox
from edge_agent.modules.cloud_link.restamp import Restamper
from edge_agent.modules.cloud_link.uplink import Uplink
from edge_agent.spool import AsyncSpool, SpoolPolicy, SpoolPriority, SpoolRecord
from edge_agent.streams import StreamRegistry

# A vehicle's spool: small (a load-generator vehicle is one of hundreds in a process), no
# reserve file, the agent's own priorities and TTLs.
SPOOL_POLICY = SpoolPolicy(max_bytes=16 * 1024 * 1024, reserve_bytes=0, memory_bytes=1024 * 1024)
LINK_STOP_S = 3.0
POLL_INTERVAL_S = 30.0


@dataclass(frozen=True, slots=True)
class VehicleSettings:
    """What every vehicle of a run shares: where to connect, its files, its pace."""

    addresses: tuple[tuple[str, int], ...]
    ca_file: Path
    cert_dir: Path  # {vehicle}.pem and {vehicle}.key
    spool_dir: Path
    batch_format: int = 2
    speedup: float = 1.0
    failover_s: float = 5.0
    keepalive_s: int = 5
    link: dict[str, Any] = field(default_factory=dict)  # more CloudLinkConfig options

    def link_config(self, vehicle_id: str, node: int) -> CloudLinkConfig:
        """The cloud-link config of ``vehicle_id`` for address ``node`` (MQTT 3.1.1, mTLS)."""
        host, port = self.addresses[node % len(self.addresses)]
        return CloudLinkConfig.model_validate(
            {
                "host": host,
                "port": port,
                "mqtt_version": "3.1.1",
                "keepalive_s": self.keepalive_s,
                "tls": {
                    "ca_file": self.ca_file,
                    "cert_file": self.cert_dir / f"{vehicle_id}.pem",
                    "key_file": self.cert_dir / f"{vehicle_id}.key",
                },
                **self.link,
            }
        )


@dataclass(slots=True)
class SentBatch:
    """One telemetry batch of a vehicle: its identity and what happened to it."""

    stream: str
    sequence: int
    message_id: str  # the batch's own id (hex), as its envelope carries it
    sends: int = 0
    first_sent: float = 0.0
    last_sent: float = 0.0
    acked_at: float = 0.0


class WatchedSpool(AsyncSpool):
    """The agent's spool, unchanged, telling its vehicle what the uplink leases and acks."""

    vehicle: FleetVehicle | None = None

    async def lease(
        self,
        limit: int = 100,
        *,
        max_bytes: int | None = None,
        priorities: Iterable[SpoolPriority] | None = None,
    ) -> list[SpoolRecord]:
        """See ``AsyncSpool.lease``; the vehicle notes the send time of each record."""
        records = await super().lease(limit, max_bytes=max_bytes, priorities=priorities)
        if self.vehicle is not None:
            self.vehicle.leased(records)
        return records

    async def ack(self, record_ids: Iterable[int]) -> int:
        """See ``AsyncSpool.ack``: called by the uplink only for records the broker PUBACKed."""
        ids = list(record_ids)
        done = await super().ack(ids)
        if self.vehicle is not None:
            self.vehicle.acked(ids)
        return done


@dataclass
class VehicleCounters:
    """What one vehicle did in a run."""

    produced: int = 0
    acked: int = 0
    publishes: int = 0  # leases for a publish, retries included
    connects: int = 0
    failovers: int = 0
    offline_windows: int = 0
    spool_refused: int = 0
    stuck_links: int = 0  # links that did not end when told to (left behind, counted)
    overran: int = 0  # runs cut at the generator's deadline


class FleetVehicle:
    """One vehicle of the load generator (see the module docstring)."""

    def __init__(
        self,
        vehicle_id: str,
        settings: VehicleSettings,
        profile: TrafficProfile,
        *,
        bus: Bus,
        first_node: int = 0,
        seed: int = 0,
    ) -> None:
        self.vehicle_id = vehicle_id
        self.settings = settings
        self.profile = profile
        self.bus = bus
        self.node = first_node
        self.random = random.Random(f"{seed}:{vehicle_id}")
        self.maker = BatchMaker(vehicle_id, profile, batch_format=settings.batch_format)
        self.counters = VehicleCounters()
        self.batches: dict[int, SentBatch] = {}
        self.link: CloudLink | None = None
        self._spool: WatchedSpool | None = None
        self._outbox: Outbox | None = None
        self._uplink: Uplink | None = None
        self._coverage = asyncio.Event()
        self._coverage.set()
        self._wake = asyncio.Event()
        self._stopping = False
        self._all_acked = asyncio.Event()
        self._clock = SystemClock()

    # -- what the spool tells us ----------------------------------------------------------

    def leased(self, records: Sequence[SpoolRecord]) -> None:
        """The uplink is about to publish ``records``: note the send times."""
        now = time.time()
        for record in records:
            batch = self.batches.get(record.id)
            if batch is None:
                continue  # the catalogue, not a batch
            batch.sends += 1
            batch.first_sent = batch.first_sent or now
            batch.last_sent = now
            self.counters.publishes += 1

    def acked(self, record_ids: Sequence[int]) -> None:
        """The broker PUBACKed these records (the uplink acks nothing else here)."""
        now = time.time()
        for record_id in record_ids:
            batch = self.batches.get(record_id)
            if batch is not None and not batch.acked_at:
                batch.acked_at = now
                self.counters.acked += 1
        if self.counters.acked == self.counters.produced:
            self._all_acked.set()

    # -- life -----------------------------------------------------------------------------

    async def open(self) -> None:
        """Open the vehicle's spool (a file in the spool directory) and wire the uplink."""
        path = self.settings.spool_dir / f"{self.vehicle_id}.db"
        spool = WatchedSpool(path, SPOOL_POLICY)
        spool.vehicle = self
        await spool.start()
        self._spool = spool
        self._outbox = Outbox(spool)
        self._uplink = Uplink(
            spool,
            LinkBudgets({"default": _unmetered()}, "default", time.monotonic),
            self.vehicle_id,
            self._outbox.arrived,
            Restamper(StreamRegistry()),
            window=64,
            # The outbox wakes the uplink on every append; the poll is for records other
            # modules append to the spool directly, which a generator vehicle has none of.
            # At the agent's 0.5 s, 1,000 idle vehicles would query their spools 2,000
            # times a second and the generator would measure itself.
            poll_interval_s=POLL_INTERVAL_S,
        )
        if self.maker.catalogue is not None:
            catalogue = self.maker.catalogue
            await self._outbox.send(
                f"catalog/{catalogue.hash_hex}", catalogue.document, SpoolPriority.CONTROL
            )

    async def run(
        self,
        duration_s: float,
        *,
        offline: Sequence[tuple[float, float]] = (),
        drain_timeout_s: float = 60.0,
    ) -> None:
        """Drive for ``duration_s`` (offline in the ``(start, length)`` windows), then drain.

        Draining: production stops, coverage is back, and the vehicle stays connected until
        the broker acknowledged every batch or ``drain_timeout_s`` passed.
        """
        started = time.monotonic()
        connection = asyncio.create_task(self._stay_connected(), name=f"{self.vehicle_id}.link")
        coverage = asyncio.create_task(
            self._follow_coverage(started, offline), name=f"{self.vehicle_id}.coverage"
        )
        try:
            await self._drive(started + duration_s)
            coverage.cancel()
            self._set_coverage(True)
            if self.counters.acked < self.counters.produced:
                self._all_acked.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(drain_timeout_s):
                        await self._all_acked.wait()
        finally:
            coverage.cancel()
            self._stopping = True
            self._wake.set()
            # Bounded: a link that does not end (seen under a connection storm at 2,000
            # vehicles) must not keep the generator from reporting what it counted.
            done, _ = await asyncio.wait([coverage, connection], timeout=LINK_STOP_S * 3)
            if connection not in done:
                self.counters.stuck_links += 1
                connection.cancel()

    async def close(self) -> None:
        """Close the spool (after :meth:`run`)."""
        if self._spool is not None:
            await self._spool.close()

    async def _drive(self, until: float) -> None:
        assert self._outbox is not None
        speedup = self.settings.speedup
        due = {
            s.stream: time.monotonic() + self.random.uniform(0, s.period_s / speedup)
            for s in self.profile.streams
        }
        periods = {s.stream: s.period_s / speedup for s in self.profile.streams}
        priorities = {s.stream: s.priority for s in self.profile.streams}
        sequences = dict.fromkeys(due, 0)
        while True:
            stream = min(due, key=due.__getitem__)
            if due[stream] >= until:
                return
            await asyncio.sleep(max(0.0, due[stream] - time.monotonic()))
            due[stream] += periods[stream]
            sequences[stream] += 1
            batch = self.maker.make(stream, sequences[stream], time.time(), time.monotonic())
            payload = self.maker.encode(batch)
            result = await self._outbox.send(f"telemetry/{stream}", payload, priorities[stream])
            if not result.stored or result.record_id is None:
                self.counters.spool_refused += 1
                continue
            self.batches[result.record_id] = SentBatch(
                stream, batch.sequence, batch.message_id.hex()
            )
            self.counters.produced += 1

    async def _follow_coverage(
        self, started: float, windows: Sequence[tuple[float, float]]
    ) -> None:
        for start, length in sorted(windows):
            await asyncio.sleep(max(0.0, started + start - time.monotonic()))
            self.counters.offline_windows += 1
            self._set_coverage(False)
            await asyncio.sleep(length)
            self._set_coverage(True)

    def _set_coverage(self, covered: bool) -> None:
        if covered:
            self._coverage.set()
        else:
            self._coverage.clear()
        self._wake.set()

    async def _stay_connected(self) -> None:
        """Keep a link up while covered; move to the next node when it stays down."""
        assert self._uplink is not None
        while not self._stopping:
            if not self._coverage.is_set():
                self._wake.clear()
                await self._wake.wait()
                continue
            link = CloudLink(
                self.settings.link_config(self.vehicle_id, self.node),
                vehicle_id=self.vehicle_id,
                bus=self.bus,
                clock=self._clock,
                uplink=self._uplink,
                on_state=self._wake.set,
            )
            self.link = link
            task = asyncio.create_task(link.run(), name=f"{self.vehicle_id}.cloud-link")
            try:
                moved = await self._watch(link)
            finally:
                await self._end(link, task)
            self.counters.connects += link.state.connects
            if moved:
                self.node += 1
                self.counters.failovers += 1

    async def _watch(self, link: CloudLink) -> bool:
        """Until coverage is lost or the run ends (False), or failover is due (True)."""
        down_since = time.monotonic()
        while not self._stopping and self._coverage.is_set():
            self._wake.clear()
            if link.online:
                down_since = time.monotonic()
                await self._wake.wait()
                continue
            left = self.settings.failover_s - (time.monotonic() - down_since)
            # Only after an attempt failed: a connect still in progress (a slow TLS handshake
            # under load) is not a dead node.
            failed = link.state.reason.startswith(("connect failed", "connection lost"))
            if left <= 0 and failed and len(self.settings.addresses) > 1:
                return True
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(left, 0.05)):
                    await self._wake.wait()
        return False

    async def _end(self, link: CloudLink, task: asyncio.Task[None]) -> None:
        # stop() says goodbye (retained offline status) and closes the session, so that the
        # uplink settles (acks what was confirmed, hands back the rest) before the next link.
        with contextlib.suppress(Exception):
            await link.stop()
        done, _ = await asyncio.wait([task], timeout=LINK_STOP_S)
        if not done:  # waiting out a reconnect backoff: no session to settle
            task.cancel()
            await asyncio.wait([task], timeout=LINK_STOP_S)

    # -- results --------------------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        """The vehicle's counters and every batch (acked or not), JSON-ready."""
        return {
            "vehicle": self.vehicle_id,
            **vars(self.counters),
            "batches": [
                [b.stream, b.sequence, b.message_id, b.sends, b.first_sent, b.last_sent, b.acked_at]
                for b in self.batches.values()
            ],
        }


def _unmetered() -> Any:
    from edge_agent.modules.cloud_link.config import LinkProfile

    return LinkProfile()
