"""The telemetry module: decoded CAN values -> collection schemes -> batches -> spool.

It subscribes to decoded messages on the bus (bounded, oldest dropped and counted), applies
each stream's collection schemes and the capture rules, cuts batches by size and age,
encodes them in the batch format (v2, or v1 with ``batch_format = 1``) off the event loop,
and appends them to the agent's spool, where they are durable before they count as
produced. ``snapshot`` requests on the bus (``telemetry/snapshot``) trigger captures now.
New options apply in place. The module owns the batch format, so it registers the format's
degrade and re-stamp transforms for its streams with the agent (``transforms.py``).

Signal catalogue (``catalogues.py``): with ``batch_format = 3`` the module lists every signal
it batches in a catalogue, publishes each new catalogue version on ``cloud/out/catalog/{hash}``
(retained upstream), and writes v3 batches once the cloud acknowledged one on
``cloud/in/catalog/{hash}/ack``; until then v2. Pending catalogues are sent again whenever the
cloud link comes online, and a catalogue the cloud asks for (``cloud/in/catalog/{hash}/request``,
``catalogue_requests.py``: by hash only, rate-limited) is published again.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from edge_agent.bus import Message, OverflowPolicy, Priority
from edge_agent.can.dbc import DbcError
from edge_agent.can.types import DecodedMessage
from edge_agent.clocktrust import WallClockTrust, current_boot_id
from edge_agent.module_api import Module
from edge_agent.modules.telemetry.batch import (
    MICROSECONDS,
    MILLISECONDS,
    Batch,
    ClockQuality,
    Sample,
    build_batch,
    encode_batch,
    new_message_id,
)
from edge_agent.modules.telemetry.batch.catalogue import Catalogue
from edge_agent.modules.telemetry.catalogue_requests import (
    REQUEST_TOPIC,
    RequestLimiter,
    requested_hash,
)
from edge_agent.modules.telemetry.catalogues import CatalogueShelf
from edge_agent.modules.telemetry.collection import CUT_CHECK_S, Collection, Cut
from edge_agent.modules.telemetry.config import TelemetryConfig
from edge_agent.modules.telemetry.scales import load_scale_hints, load_unit_hints
from edge_agent.modules.telemetry.transforms import STREAM_FILTER, batch_transforms
from edge_agent.spool import SpoolPriority
from edge_agent.untrusted import load_json_bounded

SNAPSHOT_TOPIC = "telemetry/snapshot"
CATALOGUE_OUT = "cloud/out/catalog/"
CATALOGUE_ACKS = "cloud/in/catalog/+/ack"
# The cloud's catalogue ack is {"accepted": bool, "reason": str}: bounded like every payload
# from outside (edge_agent.untrusted); anything larger or deeper is an answer it cannot read.
MAX_ACK_BYTES = 4096
MAX_ACK_DEPTH = 4
LINK_TOPIC = "cloud/link"  # the cloud link's state (it says {"state": "online"} on connect)
# sequences.json holds one number per stream; a file far larger is not ours.
MAX_SEQUENCES_BYTES = 1024 * 1024
PRIORITIES = {
    "telemetry-high": SpoolPriority.TELEMETRY_HIGH,
    "telemetry-low": SpoolPriority.TELEMETRY_LOW,
}


class TelemetryModule(Module[TelemetryConfig]):
    """Collects decoded signals into prioritised streams and condition captures."""

    name = "telemetry"
    version = "1.0.0"
    config_model = TelemetryConfig

    async def setup(self) -> None:
        """Build the collection from the config; read the stream sequence numbers."""
        self._spooled = {
            "batches": 0,
            "batch_bytes": 0,
            "refused": 0,
            "no_spool": 0,
            "sequences_not_saved": 0,
        }
        self._sequence_file = self.context.state_dir / "sequences.json"
        self._sequences, problem = _read_sequences(self._sequence_file)
        if problem:  # written by another version, or damaged: those streams start again at 1
            self.context.log.warning("stream sequence numbers not understood", reason=problem)
            self.context.health.set_detail("sequences_reset", problem)
        self._trust = WallClockTrust(self.config.clock_trust)
        self._boot_id = current_boot_id()
        self._shelf = CatalogueShelf(self.context.state_dir / "catalogues", self.context.vehicle_id)
        self._shelf_lock = asyncio.Lock()
        problem = await asyncio.to_thread(self._shelf.load)
        if problem:  # v2 until the cloud acknowledges a catalogue again: nothing is lost
            self.context.log.warning("signal catalogues not understood", reason=problem)
            self.context.health.set_detail("catalogue_problem", problem)
        # Not unregistered on stop: batches stay in the spool after the module is gone.
        self.context.streams.register(
            STREAM_FILTER, batch_transforms(self._boot_id, self._shelf.catalogues)
        )
        self._cutting: set[asyncio.Task[None]] = set()
        self._stream_locks: dict[str, asyncio.Lock] = {}
        self._collection = Collection(self.config)
        self._scales = await asyncio.to_thread(load_scale_hints, self.config.scale_dbc)
        self._units = await asyncio.to_thread(load_unit_hints, self.config.scale_dbc)

    @property
    def counters(self) -> dict[str, int]:
        """Messages, samples and captures collected; batches and bytes the spool took or not."""
        collection = self._collection
        return {
            "messages": collection.messages,
            "samples": collection.samples,
            **self._spooled,
            "captures": collection.captures_sent,
        }

    async def start(self) -> None:
        """Subscribe to decoded messages and answer snapshot requests."""
        self._inbox = self.context.bus.subscribe(
            self.config.source,
            maxsize=self.config.queue_size,
            overflow=OverflowPolicy.DROP_OLDEST,
            name="telemetry.decoded",
        )
        self.context.on_stop(lambda: self.context.bus.unsubscribe(self._inbox))
        self.context.on_stop(self.context.bus.serve(SNAPSHOT_TOPIC, self._snapshot))
        self.context.spawn(self._cut_by_age(), "cut-by-age")
        self._catalogue_news = self.context.bus.subscribe(
            CATALOGUE_ACKS,
            maxsize=64,
            overflow=OverflowPolicy.DROP_OLDEST,  # a lost ack is re-earned on reconnect
            name="telemetry.catalogue-acks",
        )
        self._link_news = self.context.bus.subscribe(
            LINK_TOPIC, maxsize=8, overflow=OverflowPolicy.DROP_OLDEST, name="telemetry.link"
        )
        self._catalogue_requests = self.context.bus.subscribe(
            REQUEST_TOPIC,
            maxsize=16,
            overflow=OverflowPolicy.DROP_OLDEST,  # a flood: the cloud asks again later
            name="telemetry.catalogue-requests",
        )
        self._limiter = RequestLimiter()
        self.context.on_stop(lambda: self.context.bus.unsubscribe(self._catalogue_news))
        self.context.on_stop(lambda: self.context.bus.unsubscribe(self._link_news))
        self.context.on_stop(lambda: self.context.bus.unsubscribe(self._catalogue_requests))
        self.context.spawn(self._take_acknowledgements(), "catalogue-acks")
        self.context.spawn(self._answer_requests(), "catalogue-requests")
        self.context.spawn(self._resend_on_reconnect(), "catalogue-resend")
        await self._publish_pending()

    async def _publish_pending(self) -> None:
        for catalogue in self._shelf.pending:
            await self._publish_catalogue(catalogue)

    async def _publish_catalogue(self, catalogue: Catalogue, *, pending: bool = True) -> None:
        await self.context.bus.publish(
            CATALOGUE_OUT + catalogue.hash_hex, catalogue.document, priority=Priority.CONTROL
        )
        if pending:
            self.context.health.set_detail("catalogue_pending", catalogue.hash_hex)

    async def _take_acknowledgements(self) -> None:
        async for message in self._catalogue_news:
            digest = _acknowledged_hash(message)
            if digest is None:
                # A refusal (or an answer we cannot read): keep writing what the cloud reads.
                reason = bytes(message.payload or b"")[:200].decode(errors="replace")
                self.context.log.warning(
                    "cloud did not accept a catalogue", topic=message.topic, answer=reason
                )
                self.context.health.set_detail("catalogue_refused", reason)
                continue
            async with self._shelf_lock:  # writes with fsync: off the event loop, one at a time
                acknowledged = await asyncio.to_thread(self._shelf.acknowledge, digest)
            if acknowledged:
                self.context.health.set_detail("catalogue", digest.hex())
                self.context.log.info("cloud acknowledged signal catalogue", hash=digest.hex())

    async def _answer_requests(self) -> None:
        async for message in self._catalogue_requests:
            digest = requested_hash(message.topic)  # the payload is never read
            catalogue = self._shelf.catalogues.get(digest) if digest is not None else None
            self._limiter.forget(set(self._shelf.catalogues))
            now = self.context.clock.monotonic()
            if self._limiter.decide(digest, catalogue is not None, now) and catalogue:
                await self._publish_catalogue(catalogue, pending=False)
            for outcome, count in self._limiter.counts.items():
                self.context.health.set_detail(f"catalogue_requests_{outcome}", count)

    async def _resend_on_reconnect(self) -> None:
        async for message in self._link_news:
            payload = message.payload
            if isinstance(payload, dict) and payload.get("state") == "online":
                await self._publish_pending()

    async def run(self) -> None:
        """Turn every decoded message into samples until stopped."""
        async for message in self._inbox:
            payload = message.payload
            if isinstance(payload, DecodedMessage):
                self._ingest(payload)

    def _ingest(self, decoded: DecodedMessage) -> None:
        self._spool_cuts(self._collection.ingest(decoded))

    def _spool_cuts(self, cuts: list[Cut]) -> None:
        for cut in cuts:
            task = asyncio.get_running_loop().create_task(
                self._encode_and_spool(cut), name=f"telemetry.cut[{cut.stream}]"
            )
            self._cutting.add(task)
            task.add_done_callback(self._cutting.discard)

    async def _encode_and_spool(self, cut: Cut) -> None:
        # One cut per stream at a time: batches reach the spool in sequence order.
        lock = self._stream_locks.setdefault(cut.stream, asyncio.Lock())
        async with lock:
            await self._encode_and_spool_in_order(cut.stream, cut.priority, cut.samples)

    async def _encode_and_spool_in_order(
        self, stream: str, priority: str, samples: list[Sample]
    ) -> None:
        sequence = self._sequences.get(stream, 0) + 1
        self._sequences[stream] = sequence
        message_id = new_message_id()
        trusted = self._trust.trusted()
        batch = await asyncio.to_thread(
            build_batch,
            samples,
            vehicle_id=self.context.vehicle_id,
            stream=stream,
            sequence=sequence,
            clock=ClockQuality.TRUSTED if trusted else ClockQuality.UNTRUSTED,
            resolution=MICROSECONDS if self.config.resolution == "us" else MILLISECONDS,
            message_id=message_id,
            boot_id=self._boot_id,
        )
        catalogue = await self._catalogue_for(batch)
        payload = await asyncio.to_thread(
            encode_batch,
            batch,
            scales=self._scales,
            pack=self.config.batch_format >= 2,
            catalogue=catalogue,
        )
        spool = self.context.spool
        if spool is None:
            self._spooled["no_spool"] += 1
            self.context.health.degraded("no spool: batches are not kept")
            return
        result = await spool.append(
            f"telemetry/{stream}", payload, priority=PRIORITIES[priority], message_id=message_id
        )
        if result.stored:
            self._spooled["batches"] += 1
            self._spooled["batch_bytes"] += len(payload)
            try:
                await asyncio.to_thread(
                    _write_sequences, self._sequence_file, dict(self._sequences)
                )
            except OSError:  # a full disk: the batch is kept, its number is not saved
                self._spooled["sequences_not_saved"] += 1
        else:
            self._spooled["refused"] += 1
            self.context.health.set_detail("last_refusal", result.refused)

    async def _catalogue_for(self, batch: Batch) -> Catalogue | None:
        """The acknowledged catalogue to write ``batch`` with (None: v2); learns new signals."""
        if self.config.batch_format < 3:
            return None
        try:
            async with self._shelf_lock:  # writes with fsync: off the event loop, one at a time
                grown = await asyncio.to_thread(
                    self._shelf.learn, batch.signals, self._scales, self._units
                )
        except OSError as error:  # a full disk: new signals travel inline, by name
            self.context.health.set_detail("catalogue_problem", f"not saved: {error}")
            grown = None
        if grown is not None:
            await self._publish_catalogue(grown)
        return self._shelf.writing

    async def _cut_by_age(self) -> None:
        while True:
            await self.context.clock.sleep(CUT_CHECK_S)
            self._spool_cuts(self._collection.tick(self.context.clock.monotonic()))
            self._report()

    def _report(self) -> None:
        health = self.context.health
        for key, value in self.counters.items():
            health.set_detail(key, value)
        health.set_detail("dropped", self._inbox.dropped)
        health.set_detail("buffered", self._collection.buffered)

    async def _snapshot(self, message: Message) -> dict[str, Any]:
        wanted = None
        if isinstance(message.payload, dict):
            wanted = message.payload.get("capture")
        try:
            started = self._collection.trigger(self.context.clock.monotonic(), wanted)
        except KeyError:
            raise ValueError(f"no capture named {wanted!r}") from None
        return {"started": started}

    async def reconfigure(self, config: TelemetryConfig) -> bool:
        """Flush what is buffered under the old rules, then collect by the new ones."""
        if config.source != self.config.source or config.queue_size != self.config.queue_size:
            return False
        if config.scale_dbc != self.config.scale_dbc:
            try:
                self._scales = await asyncio.to_thread(load_scale_hints, config.scale_dbc)
                self._units = await asyncio.to_thread(load_unit_hints, config.scale_dbc)
            except DbcError:
                return False  # a restart reports the unreadable DBC as a start failure
        self.config = config
        self._spool_cuts(self._collection.reconfigure(config))
        return True

    async def stop(self) -> None:
        """Cut every stream's partial batch and wait for the spool to take them."""
        collection: Collection | None = getattr(self, "_collection", None)
        if collection is not None:
            self._spool_cuts(collection.flush())
        if getattr(self, "_cutting", None):
            await asyncio.gather(*self._cutting, return_exceptions=True)


def _acknowledged_hash(message: Message) -> bytes | None:
    """The catalogue hash of an ack on ``cloud/in/catalog/{hash}/ack``, if it accepts it.

    The cloud's ack is JSON ``{"accepted": true}`` (or ``false`` with a ``reason``); an empty
    payload counts as accepted.
    """
    parts = message.topic.split("/")
    if len(parts) != 5 or len(parts[3]) != 32:
        return None
    try:
        digest = bytes.fromhex(parts[3])
        payload = message.payload
        if payload in (b"", None):
            return digest
        answer = load_json_bounded(
            payload, max_bytes=MAX_ACK_BYTES, max_depth=MAX_ACK_DEPTH, what="catalogue ack"
        )
    except (ValueError, TypeError):  # UntrustedDataError is a ValueError
        return None
    if isinstance(answer, dict) and answer.get("accepted") is True:
        return digest
    return None


def _read_sequences(path: Path) -> tuple[dict[str, int], str]:
    """The stored sequence number per stream, and what was not understood ("" if all was).

    Never raises: an entry (or a file) this version cannot read is left out, so that stream
    starts again at 1, which a back end sees as a restart rather than as lost batches.
    """
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_SEQUENCES_BYTES + 1)
        data = json.loads(raw) if len(raw) <= MAX_SEQUENCES_BYTES else None
    except FileNotFoundError:
        return {}, ""
    except (OSError, ValueError, RecursionError) as error:
        return {}, f"{path} unreadable ({type(error).__name__}); every stream starts at 1"
    if not isinstance(data, dict):
        return {}, f"{path} is not a JSON object; every stream starts at 1"
    sequences = {
        str(stream): number
        for stream, number in data.items()
        if isinstance(number, int) and not isinstance(number, bool) and number >= 0
    }
    dropped = sorted(str(stream) for stream in data.keys() - sequences.keys())
    if not dropped:
        return sequences, ""
    return sequences, f"{path}: not understood for {', '.join(dropped[:5])}; they start at 1"


def _write_sequences(path: Path, sequences: dict[str, int]) -> None:
    fd, temporary = tempfile.mkstemp(prefix=".sequences.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(sequences, handle)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
