"""Publishes a beat on the bus at a fixed interval, with a counter and the agent's uptime."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from edge_agent.config.classes import privileged, tunable
from edge_agent.module_api import Module


class HeartbeatConfig(BaseModel):
    """Options of the heartbeat module."""

    model_config = ConfigDict(extra="forbid")

    interval_s: float = tunable(default=1.0, gt=0, le=3600, description="Seconds between beats.")
    topic: str = privileged(
        default="agent/heartbeat", min_length=1, description="Where beats go (a bus route)."
    )


class HeartbeatModule(Module[HeartbeatConfig]):
    """Publishes ``{"beat": n, "uptime_s": s}`` on its topic every ``interval_s`` seconds.

    Downstream modules (or the cloud link) can treat a missing beat as a stalled agent.
    """

    name = "heartbeat"
    version = "1.0.0"
    config_model = HeartbeatConfig

    async def start(self) -> None:
        """Remember when we started; the first beat goes out at once in ``run``."""
        self._started = self.context.clock.monotonic()
        self._beats = 0

    async def run(self) -> None:
        """Beat until cancelled."""
        clock = self.context.clock
        while True:
            self._beats += 1
            uptime = clock.monotonic() - self._started
            await self.context.bus.publish(
                self.config.topic,
                {"beat": self._beats, "uptime_s": round(uptime, 3)},
                sender=self.name,
            )
            self.context.health.set_detail("beats", self._beats)
            await clock.sleep(self.config.interval_s)

    async def reconfigure(self, config: HeartbeatConfig) -> bool:
        """Interval and topic can change in place; the next beat uses them."""
        self.config = config
        return True
