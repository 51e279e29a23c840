"""A stateless fleet worker: fetch from the shared durable consumer, write PostgreSQL, then ack.

K workers share the consumer (edge_agent.fleet.streams); each fetches up to ``fetch`` messages,
writes them in one transaction, and acknowledges them only after the commit. Failure policy:

* PostgreSQL unreachable (connection refused or lost, server shutting down): the fetched
  messages stay with this worker (``in_progress`` keeps JetStream from redelivering them),
  and the transaction is retried with capped, jittered backoff (0.2 s doubling to 5 s) until
  it commits; nothing is nak'd, so an outage does not use up ``max_deliver``.
* A message PostgreSQL refuses (a data error): the batch is retried one message per
  transaction, and the one refused is parked with PostgreSQL's reason.
* Undecodable, foreign-vehicle or non-upward messages: parked with the reason, acknowledged.
* A message on its last allowed delivery (``max_deliver``: it has killed or stalled workers
  before): parked unprocessed, acknowledged.
* The worker killed mid-transaction: PostgreSQL rolls back, JetStream redelivers after
  ``ack_wait``, and the identity claims make the second write a no-op where the first
  committed but its ack was lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import random
import signal
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg
import nats
from asyncpg.exceptions._base import DataError as ClientDataError
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout

from edge_agent.fleet.batch_rows import write_batches
from edge_agent.fleet.schema import create_tables, ensure_partitions, prune_received
from edge_agent.fleet.store import park, write_item
from edge_agent.fleet.streams import CONSUMER, MAX_DELIVER, MESSAGES_STREAM, ensure_streams
from edge_agent.fleet.upstream import StoreBatch, interpret, split_subject
from edge_agent.modules.telemetry.batch.catalogue import Catalogue

FETCH = 200
CONNECT_DEADLINE_S = 20.0
STOP_DEADLINE_S = 15.0
MAX_CONFLICT_RETRIES = 5
PARTITION_EVERY_S = 3600.0
BACKOFF_FIRST_S = 0.2
BACKOFF_CAP_S = 5.0
# SQLSTATE classes that mean "the database is not there", not "this message is bad".
_UNREACHABLE_STATES = ("08", "57P01", "57P02", "57P03", "53300")
_RETRY_STATES = ("40001", "40P01")  # serialisation failure, deadlock: just try again


@dataclass
class WorkerStats:
    """What one worker did since it started."""

    outcomes: dict[str, int] = field(default_factory=dict)
    commits: int = 0
    db_retries: int = 0
    redeliveries: int = 0
    last_error: str = ""

    def count(self, outcome: str) -> None:
        """Count one message's outcome."""
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


def _without_password(url: str) -> str:
    scheme, _, rest = url.rpartition("://")
    return f"{scheme}://{rest.rpartition('@')[2]}" if scheme else rest.rpartition("@")[2]


def _split_credentials(urls: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """The URLs without ``user:password@``, and those credentials as connect options.

    As options they also apply to the servers the cluster announces (a node the worker
    reconnects to after another died); inside a URL they apply to that URL only.
    """
    servers: list[str] = []
    credentials: dict[str, str] = {}
    for url in urls:
        parsed = urllib.parse.urlsplit(url)
        if parsed.username and not credentials:
            credentials = {
                "user": urllib.parse.unquote(parsed.username),
                "password": urllib.parse.unquote(parsed.password or ""),
            }
        netloc = parsed.netloc.rpartition("@")[2]
        servers.append(urllib.parse.urlunsplit(parsed._replace(netloc=netloc)))
    return servers, credentials


class DatabaseUnreachable(Exception):
    """PostgreSQL is not reachable right now: keep the messages and retry."""


def _unreachable(error: BaseException) -> bool:
    if isinstance(error, ClientDataError):  # a value asyncpg cannot send: the message's fault
        return False
    if isinstance(error, (OSError, asyncpg.InterfaceError, TimeoutError)):
        return True
    if isinstance(error, asyncpg.PostgresError):
        state = str(getattr(error, "sqlstate", "") or "")
        return state.startswith(_UNREACHABLE_STATES)
    return False


class FleetWorker:
    """One worker process's loop; :meth:`run` until :meth:`stop`."""

    def __init__(
        self,
        nats_urls: Sequence[str],
        dsn: str,
        *,
        name: str = "worker",
        fetch: int = FETCH,
    ) -> None:
        self.nats_urls = list(nats_urls)
        self.dsn = dsn
        self.name = name
        self.fetch = fetch
        self.stats = WorkerStats()
        self.catalogues: dict[bytes, Catalogue] = {}
        self._stopping = asyncio.Event()
        self._db: asyncpg.Connection | None = None
        self._nc: NatsClient | None = None
        self.max_deliver = MAX_DELIVER
        self._partitioned_at = 0.0

    async def _nats_error(self, error: Exception) -> None:
        # nats-py prints a traceback per failed (re)connect otherwise; keep one line.
        self.stats.last_error = f"nats: {str(error) or type(error).__name__}"[:200]

    def _setup_retried(self, error: BaseException) -> None:
        # JetStream not ready yet (leader election after a start or a node loss).
        self.stats.last_error = f"stream setup: {str(error) or type(error).__name__}"[:200]

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stopping.is_set()

    def stop(self) -> None:
        """Finish the current batch (commit and ack), then return from :meth:`run`."""
        self._stopping.set()

    async def run(self) -> None:
        """Connect, make sure the stream, consumer and tables exist, and work until stopped."""
        try:  # the first connection has a deadline; once connected, reconnect for ever
            servers, credentials = _split_credentials(self.nats_urls)
            nc = await asyncio.wait_for(
                nats.connect(
                    servers=servers,
                    **credentials,
                    name=f"edge-agent-fleet-{self.name}",
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    connect_timeout=5,
                    error_cb=self._nats_error,
                ),
                CONNECT_DEADLINE_S,
            )
        except (TimeoutError, OSError, nats.errors.Error) as error:
            raise ConnectionError(
                f"NATS not reachable at {', '.join(_without_password(u) for u in self.nats_urls)}"
                f" ({str(error) or type(error).__name__})"
            ) from error
        self._nc = nc
        try:
            await ensure_streams(nc, on_retry=self._setup_retried)
            consumer = await nc.jetstream().consumer_info(MESSAGES_STREAM, CONSUMER)
            self.max_deliver = int(consumer.config.max_deliver or MAX_DELIVER)
            subscription = await nc.jetstream().pull_subscribe_bind(CONSUMER, MESSAGES_STREAM)
            while not self._stopping.is_set():
                try:
                    messages = await subscription.fetch(self.fetch, timeout=1.0)
                except (NatsTimeout, TimeoutError):
                    continue
                except nats.errors.Error as error:  # between nodes: nats-py reconnects
                    self.stats.last_error = f"fetch: {error}"[:200]
                    await asyncio.sleep(0.5)
                    continue
                await self.handle(messages)
        finally:
            with contextlib.suppress(Exception):
                await nc.close()  # everything handled is acknowledged: nothing to drain
            if self._db is not None:
                with contextlib.suppress(Exception):
                    await self._db.close()

    async def _database(self) -> asyncpg.Connection:
        loop = asyncio.get_running_loop()
        if self._db is None or self._db.is_closed():
            try:
                self._db = await asyncpg.connect(self.dsn, timeout=5)
                if self._partitioned_at == 0.0:
                    await create_tables(self._db)
                    self._partitioned_at = loop.time()
            except Exception as error:
                self._db = None
                if _unreachable(error):
                    raise DatabaseUnreachable(str(error)) from error
                raise
        if loop.time() - self._partitioned_at > PARTITION_EVERY_S:  # hourly upkeep
            await ensure_partitions(self._db)
            await prune_received(self._db)
            self._partitioned_at = loop.time()
        return self._db

    async def handle(self, messages: list[Msg]) -> None:
        """Write ``messages`` (retrying while PostgreSQL is away), then acknowledge them."""
        delay = BACKOFF_FIRST_S
        while True:
            try:
                outcomes = await self._write_all(messages)
                break
            except DatabaseUnreachable as error:
                if self._stopping.is_set():
                    return  # not acknowledged: JetStream hands them to another worker
                self.stats.db_retries += 1
                self.stats.last_error = str(error)[:200]
                for message in messages:  # still ours: do not let JetStream hand them on
                    with contextlib.suppress(Exception):
                        await message.in_progress()
                await asyncio.sleep(random.uniform(delay / 2, delay))
                delay = min(BACKOFF_CAP_S, delay * 2)
        for message, outcome in zip(messages, outcomes, strict=True):
            # Committed: tell the vehicle it may write v3 now, before the message is acked
            # (a worker dying in between leaves it to the redelivery, which tells it again).
            if outcome == "catalogue":
                await self._acknowledge_catalogue(message)
        for message, outcome in zip(messages, outcomes, strict=True):
            self.stats.count(outcome)
            if message.metadata.num_delivered > 1:
                self.stats.redeliveries += 1
            try:
                await message.ack()
            except nats.errors.Error as error:  # lost: redelivered, and found already written
                self.stats.last_error = f"ack: {error}"[:200]

    async def _acknowledge_catalogue(self, message: Msg) -> None:
        """Store ``catalog/{hash}/ack`` for the vehicle the way NATS MQTT stores a QoS 1 publish.

        The vehicle's QoS 1 subscription is a JetStream consumer on ``$MQTT_msgs``; a message
        stored there under ``$MQTT.msgs.<topic>`` with the ``Nmqtt-Pub: 1`` header reaches
        it, even after a reconnect (docs/fleet.md, "Down path").
        """
        js = self._nc.jetstream() if self._nc is not None else None
        if js is None:
            return
        try:
            await js.publish(
                message.subject + ".ack",
                b'{"accepted":true}',
                stream=MESSAGES_STREAM,
                headers={"Nmqtt-Pub": "1"},
            )
        except Exception as error:  # the vehicle sends the catalogue again: count, go on
            self.stats.last_error = f"catalogue ack: {error}"[:200]

    async def _write_all(self, messages: list[Msg], attempt: int = 0) -> list[str]:
        try:
            return await self._transaction(messages)
        except (asyncpg.PostgresError, ClientDataError) as error:
            if _unreachable(error):
                raise DatabaseUnreachable(str(error)) from error
            state = str(getattr(error, "sqlstate", "") or "")
            if state.startswith(_RETRY_STATES) and attempt < MAX_CONFLICT_RETRIES:
                return await self._write_all(messages, attempt + 1)  # deadlock: again
            if len(messages) == 1:
                return [await self._park_refused(messages[0], error)]
        # One message PostgreSQL refuses: find it by writing them one at a time.
        return [outcome for message in messages for outcome in await self._write_all([message])]

    async def _transaction(self, messages: list[Msg]) -> list[str]:
        try:
            db = await self._database()
            async with db.transaction():
                outcomes = await self._write_messages(db, messages)
            self.stats.commits += 1
            return outcomes
        except ClientDataError:
            raise
        except (OSError, asyncpg.InterfaceError, TimeoutError) as error:
            if self._db is not None:
                with contextlib.suppress(Exception):
                    self._db.terminate()
                self._db = None
            raise DatabaseUnreachable(str(error)) from error
        except asyncpg.PostgresError as error:
            if _unreachable(error) and self._db is not None:
                self._db.terminate()
                self._db = None
            raise

    async def _write_messages(self, db: asyncpg.Connection, messages: list[Msg]) -> list[str]:
        """Write one fetch in the caller's transaction: batches in bulk, the rest in order."""
        outcomes = [""] * len(messages)
        batches: list[tuple[int, StoreBatch, datetime.datetime]] = []
        for index, message in enumerate(messages):
            metadata = message.metadata
            stored_at = metadata.timestamp or datetime.datetime.now(datetime.UTC)
            deliveries = metadata.num_delivered
            sequence = metadata.sequence.stream
            if self.max_deliver > 0 and deliveries >= self.max_deliver:
                where = split_subject(message.subject)
                outcomes[index] = await park(
                    db,
                    message.subject,
                    message.data,
                    f"delivered {deliveries} times without an acknowledgement: parked unprocessed",
                    vehicle=where[0] if where else None,
                    deliveries=deliveries,
                    stream_sequence=sequence,
                    stored_at=stored_at,
                )
                continue
            item = interpret(message.subject, message.data, self.catalogues)
            if isinstance(item, StoreBatch):
                batches.append((index, item, stored_at))
                continue
            outcomes[index] = await write_item(
                db,
                item,
                message.subject,
                message.data,
                stored_at,
                self.catalogues,
                deliveries=deliveries,
                stream_sequence=sequence,
            )
        written = await write_batches(db, [(item, stored_at) for _, item, stored_at in batches])
        for (index, _, _), outcome in zip(batches, written, strict=True):
            outcomes[index] = outcome
        return outcomes

    async def _park_refused(self, message: Msg, error: Exception) -> str:
        db = await self._database()
        where = split_subject(message.subject)
        state = getattr(error, "sqlstate", None) or type(error).__name__
        reason = " ".join(f"database refused it: {state} {error}".split())[:300]
        async with db.transaction():
            return await park(
                db,
                message.subject,
                message.data,
                reason,
                vehicle=where[0] if where else None,
                deliveries=message.metadata.num_delivered,
                stream_sequence=message.metadata.sequence.stream,
                stored_at=message.metadata.timestamp or datetime.datetime.now(datetime.UTC),
            )


async def serve_worker(
    nats_urls: Sequence[str], dsn: str, *, name: str, fetch: int = FETCH, every: float = 5.0
) -> int:
    """Run one worker until SIGTERM/SIGINT, printing its stats as a JSON line every ``every`` s."""
    worker = FleetWorker(nats_urls, dsn, name=name, fetch=fetch)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, worker.stop)
    task = asyncio.create_task(worker.run(), name=f"fleet-worker[{name}].run")
    stop_asked: float | None = None
    while not task.done():
        await asyncio.wait([task], timeout=every)
        if worker.stopping and stop_asked is None:
            stop_asked = loop.time()
        if stop_asked is not None and loop.time() - stop_asked > STOP_DEADLINE_S:
            task.cancel()  # stuck (a database that never answers): unacked ones come back
            with contextlib.suppress(asyncio.CancelledError):
                await task
            return 0
        stats = worker.stats
        line = {
            "worker": name,
            "outcomes": stats.outcomes,
            "commits": stats.commits,
            "redeliveries": stats.redeliveries,
            "db_retries": stats.db_retries,
            "last_error": stats.last_error,
        }
        print(json.dumps(line), flush=True)
    await task
    return 0
