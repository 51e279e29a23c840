"""The ``can-ids`` module: the detectors on the CAN reader's raw frames, incidents upstream.

Each watched bus has its own bounded subscription to ``can/{bus}/raw`` (drop-oldest, counted),
so the IDS can fall behind but never holds the reader up, and it has nothing to do with the
brake fast path, which owns its own socket. Alerts are folded into incidents; an incident's
first alert goes out as an event (``kind`` ``ids.<alert kind>``, severity, the frames leading
up to it from the detector's bounded ring and the frames after it, for which it waits: see
:mod:`edge_agent.modules.can_ids.evidence`) and a summary follows when it closes.
"""

from __future__ import annotations

import asyncio
import functools
import time
from typing import Any

import can

from edge_agent.bus import Message, OverflowPolicy, Priority
from edge_agent.bus.subscription import Subscription, SubscriptionClosed
from edge_agent.can.resources import resolve_data_path
from edge_agent.can.types import raw_topic
from edge_agent.module_api import Module
from edge_agent.modules.can_ids.alerts import Alert
from edge_agent.modules.can_ids.config import CanIdsConfig
from edge_agent.modules.can_ids.detect import Detector
from edge_agent.modules.can_ids.evidence import QUIET_RELEASE_S, EvidenceHold
from edge_agent.modules.can_ids.incidents import Incident, IncidentTracker
from edge_agent.modules.can_ids.offline import frame_of
from edge_agent.modules.can_ids.profile import BusProfile, load_profile

EVENT_PREFIX = "ids."


class BusWatch:
    """One bus under watch: its subscription, detector, incidents and counters."""

    def __init__(self, bus: str, profile: BusProfile, subscription: Subscription, quiet_s: float):
        self.bus = bus
        self.detector = Detector(profile)
        self.incidents = IncidentTracker(quiet_s)
        self.hold = EvidenceHold()
        self.subscription = subscription
        self.foreign = 0

    def details(self) -> dict[str, Any]:
        """Counters for the health report."""
        detector = self.detector
        return {
            "frames": detector.frames,
            "alerts": detector.alerts_total,
            "held_off": detector.suppressed,
            "incidents": self.incidents.count,
            "open_incidents": len(self.incidents.open),
            "dropped": self.subscription.dropped,
            "gaps": detector.gaps,
            "not_frames": self.foreign,
            "evidence_cut_short": self.hold.released_early,
            "degraded": detector.degraded,
        }


class CanIdsModule(Module[CanIdsConfig]):
    """Watches CAN buses for injection, flooding, fuzzing, DLC changes, suspension, masquerade."""

    name = "can-ids"
    version = "1.0.0"
    config_model = CanIdsConfig
    requires = ("can-reader",)

    async def setup(self) -> None:
        """Load every bus's profile (one-line ProfileError if one is unusable)."""
        self.profiles: dict[str, BusProfile] = {}
        for bus, path in self.config.profiles.items():
            profile = await asyncio.to_thread(load_profile, resolve_data_path(path))
            self.profiles[bus] = profile
            self.context.log.info(
                "IDS profile loaded",
                bus=bus,
                profile=path,
                ids=len(profile.ids),
                periodic=len(profile.periodic_ids),
            )

    async def start(self) -> None:
        """Subscribe to each bus's raw frames and start watching."""
        self.watches: dict[str, BusWatch] = {}
        for bus, profile in self.profiles.items():
            subscription = self.context.bus.subscribe(
                raw_topic(bus),
                maxsize=self.config.queue_frames,
                overflow=OverflowPolicy.DROP_OLDEST,
                name=f"{self.name}:{bus}",
            )
            watch = BusWatch(bus, profile, subscription, self.config.incident_quiet_s)
            self.watches[bus] = watch
            self.context.on_stop(functools.partial(self.context.bus.unsubscribe, subscription))
            if watch.detector.degraded:
                self.context.log.warning("IDS degraded", bus=bus, reason=watch.detector.degraded)
            self.context.spawn(self._watch(watch), f"watch[{bus}]")
        self._update_health()

    async def _watch(self, watch: BusWatch) -> None:
        subscription = watch.subscription
        observe = watch.detector.observe
        batch = self.config.batch_frames
        while True:
            try:
                message: Message | None = await self._next(watch)
            except SubscriptionClosed:
                await self._publish_opened(watch, watch.hold.release_all())
                return  # stopping: the subscription went first
            if message is None:  # the bus went quiet: what is held goes with what it has
                await self._publish_opened(watch, watch.hold.release_all())
                continue
            checked = 0
            while message is not None:
                if not isinstance(message.payload, can.Message):
                    watch.foreign += 1  # not a frame: someone else published on the topic
                    message = subscription.get_nowait()
                    continue
                t, key, data, error = frame_of(message.payload)
                raised = observe(t, key, data, error=error)
                if watch.hold:  # frames after the held alerts
                    await self._publish_opened(watch, watch.hold.feed(t, key, data))
                if raised:
                    await self._report(watch, raised)
                checked += 1
                if checked >= batch:
                    break
                message = subscription.get_nowait()
            closing = watch.incidents.closing(watch.detector.last_time)
            if closing:
                await self._publish_opened(watch, watch.hold.release_all())
            for incident in closing:
                await self._publish(watch, _closed_event(watch.bus, incident))
            self._update_health()
            await asyncio.sleep(0)  # others get the loop between batches

    @staticmethod
    async def _next(watch: BusWatch) -> Message | None:
        """The next frame; None if alerts are held and the bus stays quiet for a while."""
        if not watch.hold:
            return await watch.subscription.get()
        try:
            return await asyncio.wait_for(watch.subscription.get(), QUIET_RELEASE_S)
        except TimeoutError:
            return None

    async def _report(self, watch: BusWatch, alerts: Any) -> None:
        """Fold alerts into incidents; an incident's first alert waits for the frames after it."""
        for alert in alerts:
            incident = watch.incidents.add(alert)
            if incident is not None:
                await self._publish_opened(watch, watch.hold.hold(alert, incident))

    async def _publish_opened(self, watch: BusWatch, ready: list[tuple[Alert, Any]]) -> None:
        for alert, incident in ready:
            await self._publish(watch, _opened_event(watch.bus, incident, alert))

    async def _publish(self, watch: BusWatch, event: dict[str, Any]) -> None:
        event["wall_time"] = time.time()
        await self.context.bus.publish(
            self.config.event_topic, event, priority=Priority.CONTROL, sender=self.name
        )
        self.context.log.warning("IDS incident", bus=watch.bus, kind=event["kind"])

    def _update_health(self) -> None:
        health = self.context.health
        watches = getattr(self, "watches", {})
        health.set_detail("buses", {bus: w.details() for bus, w in watches.items()})
        degraded = [
            f"{bus}: {w.detector.degraded}" for bus, w in watches.items() if w.detector.degraded
        ]
        if degraded:
            health.degraded("; ".join(degraded))
        else:
            health.healthy()

    async def reconfigure(self, config: CanIdsConfig) -> bool:
        """Tunable settings apply in place; anything else needs a restart."""
        if config.model_dump(
            exclude={"batch_frames", "incident_quiet_s"}
        ) != self.config.model_dump(exclude={"batch_frames", "incident_quiet_s"}):
            return False
        self.config = config
        for watch in getattr(self, "watches", {}).values():
            watch.incidents.quiet_s = config.incident_quiet_s
        return True


def _opened_event(bus: str, incident: Incident, alert: Alert) -> dict[str, Any]:
    return {
        **alert.as_dict(evidence=True),
        "kind": EVENT_PREFIX + alert.kind.value,
        "source": "can-ids",
        "bus": bus,
        "incident": incident.number,
    }


def _closed_event(bus: str, incident: Incident) -> dict[str, Any]:
    return {
        "kind": EVENT_PREFIX + "incident-closed",
        "source": "can-ids",
        "bus": bus,
        **incident.as_dict(),
        "alert_kind": incident.kind.value,
    }
