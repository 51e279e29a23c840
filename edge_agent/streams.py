"""Per-stream transforms: what the runtime may do to records whose format it does not know.

The spool and the cloud link carry upstream records as opaque bytes. Two things still need
a record's format: shrinking it when the spool must make room (*degrade*), and correcting
its times once the wall clock can be trusted (*re-stamp*). The module that writes a stream
owns its format, so it registers those two transforms for its streams here, through
``ModuleContext.streams``; the spool and the cloud link look them up by stream name.

Policy for a record whose stream has no transform registered (or whose transform declines
by returning None): it is carried as it is. The spool cannot shrink it, so under pressure it
thins and then drops such records oldest-first (its usual ladder, docs/spool.md), and the
cloud link publishes it unchanged.

Transforms run off the event loop (the spool calls ``degrade`` on its worker thread, the
cloud link calls ``restamp`` in a worker thread): they must be pure functions of their
arguments, must not block on the loop, and must keep the record's identity (its message id)
so the cloud can still drop duplicates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from edge_agent.bus.topics import topic_matches, validate_filter

Degrade = Callable[[bytes], bytes | None]
"""Return a smaller payload carrying less detail, or None when it cannot shrink."""

Restamp = Callable[[bytes, float], bytes | None]
"""Given a payload and ``wall - monotonic`` (seconds, measured now on a trusted clock), return
the payload with its times corrected, or None when it needs no correction."""


@dataclass(frozen=True, slots=True)
class StreamTransforms:
    """The format-specific transforms of one family of streams; either may be absent."""

    degrade: Degrade | None = None
    restamp: Restamp | None = None


class StreamRegistry:
    """Which transforms apply to which upstream stream; owned by the agent, shared by modules.

    Streams are matched with bus-style filters (``telemetry/#``, ``diag/+``); when several
    registrations match a stream, the most recent one wins. A registration lasts until its
    unregister callable is called, not only while the module that made it runs: its records
    can outlive it in the spool.
    """

    def __init__(self) -> None:
        # Replaced, never mutated: the spool's thread reads it without a lock.
        self._entries: tuple[tuple[str, StreamTransforms], ...] = ()

    def register(self, stream_filter: str, transforms: StreamTransforms) -> Callable[[], None]:
        """Apply ``transforms`` to streams matching ``stream_filter``; returns the unregister.

        Registering the same filter again replaces the earlier transforms.
        """
        validate_filter(stream_filter)
        entry = (stream_filter, transforms)
        self._entries = (
            *(e for e in self._entries if e[0] != stream_filter),
            entry,
        )

        def unregister() -> None:
            self._entries = tuple(e for e in self._entries if e is not entry)

        return unregister

    def transforms_for(self, stream: str) -> StreamTransforms | None:
        """The transforms that apply to ``stream``, or None when no registration matches."""
        for stream_filter, transforms in reversed(self._entries):
            if topic_matches(stream_filter, stream):
                return transforms
        return None

    def degrade(self, stream: str, payload: bytes) -> bytes | None:
        """``payload`` of ``stream`` made smaller, or None (no transform, or it cannot shrink).

        This is the spool's degrade hook.
        """
        transforms = self.transforms_for(stream)
        if transforms is None or transforms.degrade is None:
            return None
        return transforms.degrade(payload)

    def restamp_for(self, stream: str) -> Restamp | None:
        """The re-stamp transform of ``stream``, or None when its records are sent as they are."""
        transforms = self.transforms_for(stream)
        return None if transforms is None else transforms.restamp

    @property
    def filters(self) -> list[str]:
        """The registered stream filters, oldest first (for health and diagnostics)."""
        return [stream_filter for stream_filter, _ in self._entries]
