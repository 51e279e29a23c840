"""The telemetry module's collection logic without an event loop: decoded messages in, cuts out.

:class:`Collection` applies a :class:`TelemetryConfig` (each stream's collection schemes, the
capture rules, batches cut by size and by age). It is synchronous and takes its time from the
messages, so ``TelemetryModule`` drives it from the bus and its timer, and the uplink
estimator (``edge-agent bench uplink``) drives it from a recorded drive faster than real
time: both cut the same batches because both run this one piece of code.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge_agent.can.types import DecodedMessage
from edge_agent.modules.telemetry.batch import Sample
from edge_agent.modules.telemetry.capture import Capture
from edge_agent.modules.telemetry.config import TelemetryConfig
from edge_agent.modules.telemetry.schemes import Collector
from edge_agent.modules.telemetry.streams import StreamBuffer

CUT_CHECK_S = 0.5
"""How often the module calls :meth:`Collection.tick` (batch ages and capture windows)."""


@dataclass(frozen=True, slots=True)
class Cut:
    """Samples that leave together as one batch on ``telemetry/{stream}``.

    ``capture`` names the capture rule that produced them (None for a stream's batch).
    """

    stream: str
    priority: str
    samples: list[Sample]
    capture: str | None = None


class Collection:
    """Streams, schemes and captures of one telemetry config, driven by message times.

    ``ingest`` takes a decoded message and returns the batches it completed (a full stream
    buffer, a capture whose window closed); ``tick`` is the periodic age check; ``flush``
    cuts what is left, as the module does when it stops. Times are the messages' monotonic
    seconds, so replaying a log gives the same cuts as a drive at real time would. The
    counters (``messages``, ``samples``, ``captures_sent``) survive :meth:`reconfigure`.
    """

    def __init__(self, config: TelemetryConfig) -> None:
        self.messages = 0
        self.samples = 0
        self.captures_sent = 0
        self._build(config)

    def _build(self, config: TelemetryConfig) -> None:
        self.config = config
        self.rules: dict[str, list[tuple[str, Collector]]] = {}
        self.buffers: dict[str, StreamBuffer] = {}
        for stream in config.streams:
            self.buffers[stream.name] = StreamBuffer(
                stream.name, stream.priority, config.batch_max_samples, config.batch_max_age_s
            )
            for rule in stream.signals:
                self.rules.setdefault(rule.signal, []).append((stream.name, Collector(rule)))
        self.captures = [Capture(rule) for rule in config.captures]
        self.capture_signals = frozenset(
            {s for c in config.captures for s in c.signals}
            | {c.when.signal for c in config.captures if c.when is not None}
        )

    @property
    def wanted_signals(self) -> frozenset[str]:
        """Every signal a stream or a capture asks for."""
        return frozenset(self.rules) | self.capture_signals

    @property
    def buffered(self) -> int:
        """Samples waiting in stream buffers for their batch."""
        return sum(len(buffer.samples) for buffer in self.buffers.values())

    def reconfigure(self, config: TelemetryConfig) -> list[Cut]:
        """Cut what is buffered under the old rules, then collect by ``config``'s.

        Captures still recording are dropped with the old rules; the counters carry on.
        """
        cuts = self.flush()
        self._build(config)
        return cuts

    def trigger(self, now: float, capture: str | None = None) -> list[str]:
        """Start capture ``capture`` (every capture if None) at ``now``; name those started.

        Raises KeyError for a name no capture rule has. A capture already recording is not
        restarted (see :meth:`Capture.trigger`).
        """
        if capture is not None and not any(c.rule.name == capture for c in self.captures):
            raise KeyError(capture)
        return [
            c.rule.name for c in self.captures if capture in (None, c.rule.name) and c.trigger(now)
        ]

    def ingest(self, decoded: DecodedMessage) -> list[Cut]:
        """Offer every signal of ``decoded`` to its rules and captures; return finished cuts."""
        self.messages += 1
        cuts: list[Cut] = []
        now = decoded.monotonic
        for signal, value in decoded.signals.items():
            rules = self.rules.get(signal)
            sample: Sample | None = None
            if rules:
                for stream, collector in rules:
                    if collector.offer(now, value):
                        sample = sample or Sample(signal, now, decoded.timestamp, value)
                        self.samples += 1
                        if self.buffers[stream].add(sample, now):
                            cuts.extend(self._cut(stream))
            if signal in self.capture_signals:
                sample = sample or Sample(signal, now, decoded.timestamp, value)
                for capture in self.captures:
                    finished = capture.observe(sample)
                    if finished:
                        cuts.append(self._capture_cut(capture, finished))
        return cuts

    def tick(self, now: float) -> list[Cut]:
        """The periodic check: cut streams whose oldest sample waited ``batch_max_age_s``."""
        cuts: list[Cut] = []
        for name, buffer in self.buffers.items():
            if buffer.due(now):
                cuts.extend(self._cut(name))
        for capture in self.captures:
            finished = capture.poll(now)
            if finished:
                cuts.append(self._capture_cut(capture, finished))
        return cuts

    def flush(self) -> list[Cut]:
        """Cut every stream's partial batch (captures still recording are not sent)."""
        return [cut for name in self.buffers for cut in self._cut(name)]

    def _cut(self, stream: str) -> list[Cut]:
        buffer = self.buffers[stream]
        samples = buffer.take()
        return [Cut(stream, buffer.priority, samples)] if samples else []

    def _capture_cut(self, capture: Capture, samples: list[Sample]) -> Cut:
        self.captures_sent += 1
        rule = capture.rule
        return Cut(rule.stream, rule.priority, samples, capture=rule.name)
