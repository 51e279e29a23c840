"""Attacks on a clean drive, with labels: how the IDS's detection rates are measured.

:func:`mutate` takes a clean recording (frames in time order) and adds one kind of attack in
``windows`` separate time windows, each on a target chosen from the drive's own periodic ids.
Every window comes back as a :class:`AttackLabel` (kind, start, end, target id), so a scan's
alerts can be scored against the truth. Seeded: the same input and seed give the same attack.
"""

from __future__ import annotations

import bisect
import enum
import itertools
import random
import statistics
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from edge_agent.modules.can_ids.profile import EXTENDED_FLAG, id_text

Frame = tuple[float, int, bytes, bool]
"""(time in seconds, id key, payload, is an error frame), as the IDS takes them: an extended
(29-bit) id carries ``EXTENDED_FLAG`` so it never collides with a standard id of its value."""

FLOOD_ID = 0x000
FLOOD_FPS = 4000.0
FUZZ_FPS = 100.0
MAX_PERIOD_S = 0.1
"""Targets are periodic ids of at most this period (a window must hold enough of them)."""
MARGIN_S = 5.0


class AttackKind(enum.StrEnum):
    """The attacks the generator adds (docs/ids.md describes each)."""

    INJECTION = "injection"  # extra frames of a known id: twice its rate, replayed payloads
    FLOODING = "flooding"  # the highest-priority id at 4,000 frames/s
    FUZZING = "fuzzing"  # random ids, lengths and payloads at 100 frames/s
    DLC_CHANGE = "dlc-change"  # a known id's frames with another length
    SUSPENSION = "suspension"  # a periodic id silenced (its ECU knocked off the bus)
    MASQUERADE = "masquerade"  # a periodic id silenced and sent by another node's clock
    SPOOFING = "spoofing"  # a periodic id's frames, on time, with forged content


DURATION_S = {
    AttackKind.INJECTION: 1.0,
    AttackKind.FLOODING: 1.0,
    AttackKind.FUZZING: 1.0,
    AttackKind.DLC_CHANGE: 1.0,
    AttackKind.SUSPENSION: 2.0,
    AttackKind.MASQUERADE: 5.0,
    AttackKind.SPOOFING: 1.0,
}


@dataclass(frozen=True, slots=True)
class AttackLabel:
    """One attack window: what, from its first changed frame to its end (seconds), which id."""

    kind: AttackKind
    start_s: float
    end_s: float
    can_id: int | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (the labels file of ``edge-agent-sim attack``)."""
        return {
            "kind": self.kind.value,
            "start_s": round(self.start_s, 6),
            "end_s": round(self.end_s, 6),
            "can_id": None if self.can_id is None else id_text(self.can_id),
        }


def periodic_ids(frames: list[Frame], max_period_s: float = MAX_PERIOD_S) -> dict[int, float]:
    """Ids of ``frames`` that repeat at a steady period up to ``max_period_s``: id -> period."""
    times: dict[int, list[float]] = {}
    for t, key, _data, error in frames:
        if not error:
            times.setdefault(key, []).append(t)
    periods: dict[int, float] = {}
    for key, stamps in times.items():
        if len(stamps) < 50:
            continue
        period = statistics.median(b - a for a, b in itertools.pairwise(stamps))
        if 0 < period <= max_period_s:
            periods[key] = period
    return periods


def mutate(
    frames: list[Frame],
    kind: AttackKind,
    *,
    windows: int = 10,
    seed: int = 0,
    targets: Collection[int] | None = None,
    margin_s: float = MARGIN_S,
) -> tuple[list[Frame], list[AttackLabel]]:
    """``frames`` with ``windows`` attacks of ``kind`` added; the attacked frames and labels.

    Windows are spread evenly over the drive, ``margin_s`` from either end; each attacks one
    of the drive's periodic ids (only those in ``targets`` if given). On a bus with extended
    ids, fuzzing sends extended ids too, and flooding uses extended id 0 if the bus has no
    standard ids. ValueError if the drive is too short for the windows or has no periodic id
    to attack.
    """
    if not frames:
        raise ValueError("no frames to attack")
    rng = random.Random(f"{seed}-{kind.value}")
    first, last = frames[0][0], frames[-1][0]
    duration = DURATION_S[kind]
    room = last - first - 2 * margin_s
    spacing = room / max(windows, 1)
    if windows < 1 or spacing < duration + 2.0:
        raise ValueError(
            f"{last - first:.0f} s of traffic holds no {windows} {kind.value} windows "
            f"of {duration:g} s"
        )
    periods = periodic_ids(frames)
    if targets is not None:
        periods = {key: period for key, period in periods.items() if key in targets}
    if not periods and kind not in (AttackKind.FLOODING, AttackKind.FUZZING):
        raise ValueError("no periodic id of at most 100 ms to attack")
    keys = {frame[1] for frame in frames if not frame[3]}
    extended = any(key & EXTENDED_FLAG for key in keys)
    standard = any(not key & EXTENDED_FLAG for key in keys)
    ordered = sorted(periods)
    times = [frame[0] for frame in frames]
    change = _Changes()
    labels: list[AttackLabel] = []
    for window in range(windows):
        start = first + margin_s + window * spacing + rng.uniform(0, spacing - duration - 1.0)
        end = start + duration
        target = rng.choice(ordered) if ordered else None
        low = bisect.bisect_left(times, start)
        high = bisect.bisect_left(times, end)
        inside = [i for i in range(low, high) if frames[i][1] == target and not frames[i][3]]
        before = len(change.added)
        window_spec = _Window(frames, inside, start, end, target, periods, rng, extended, standard)
        target = _ATTACKS[kind](window_spec, change)
        # The attack starts with its first changed frame (time to detect is counted from it).
        changed = [frame[0] for frame in change.added[before:]]
        if kind in _REPLACING:
            changed += [frames[i][0] for i in inside]
        if changed:
            labels.append(AttackLabel(kind, min(changed), end, target))
    kept = [
        change.replaced.get(index, frame)
        for index, frame in enumerate(frames)
        if index not in change.removed
    ]
    attacked = sorted(kept + change.added, key=lambda frame: frame[0])
    return attacked, labels


@dataclass
class _Window:
    frames: list[Frame]
    inside: list[int]  # indexes of the target's frames in the window
    start: float
    end: float
    target: int | None
    periods: dict[int, float]
    rng: random.Random
    extended: bool  # the bus carries extended (29-bit) ids
    standard: bool  # the bus carries standard (11-bit) ids


@dataclass
class _Changes:
    added: list[Frame] = field(default_factory=list)
    removed: set[int] = field(default_factory=set)
    replaced: dict[int, Frame] = field(default_factory=dict)


def _injection(w: _Window, change: _Changes) -> int | None:
    if w.target is not None:
        period = w.periods[w.target]
        for index in w.inside:
            t, key, data, _ = w.frames[index]
            change.added.append((t + w.rng.uniform(0.1, 0.9) * period, key, data, False))
    return w.target


def _flooding(w: _Window, change: _Changes) -> int | None:
    # The highest priority there is: id 0, extended on a bus that speaks extended ids only.
    flood = FLOOD_ID if w.standard or not w.extended else FLOOD_ID | EXTENDED_FLAG
    count = int((w.end - w.start) * FLOOD_FPS)
    change.added.extend((w.start + n / FLOOD_FPS, flood, bytes(8), False) for n in range(count))
    return flood


def _fuzzing(w: _Window, change: _Changes) -> int | None:
    for n in range(int((w.end - w.start) * FUZZ_FPS)):
        payload = bytes(w.rng.getrandbits(8) for _ in range(w.rng.randint(0, 8)))
        if w.extended and (not w.standard or w.rng.random() < 0.5):
            key = w.rng.getrandbits(29) | EXTENDED_FLAG
        else:
            key = w.rng.randint(0, 0x7FF)
        change.added.append((w.start + n / FUZZ_FPS, key, payload, False))
    return None


def _dlc_change(w: _Window, change: _Changes) -> int | None:
    for index in w.inside:
        t, key, data, _ = w.frames[index]
        shorter = data[: max(0, len(data) - w.rng.randint(1, 4))] if data else bytes(4)
        change.replaced[index] = (t, key, shorter, False)
    return w.target


def _suspension(w: _Window, change: _Changes) -> int | None:
    change.removed.update(w.inside)
    return w.target


def _masquerade(w: _Window, change: _Changes) -> int | None:
    if w.target is None:
        return None
    change.removed.update(w.inside)
    period = w.periods[w.target] * (1 + w.rng.choice((-1, 1)) * w.rng.uniform(0.01, 0.03))
    moment = w.start + w.rng.uniform(0.0, period)
    while moment < w.end:
        # The impostor sends what the real ECU would have: timing is all it gets wrong.
        nearest = min(w.inside, key=lambda i: abs(w.frames[i][0] - moment), default=None)
        data = w.frames[nearest][2] if nearest is not None else bytes(8)
        change.added.append((moment, w.target, data, False))
        moment += period
    return w.target


def _spoofing(w: _Window, change: _Changes) -> int | None:
    # On the genuine ECU's own times (it was knocked off the bus), an older payload of the id
    # (replayed: its counter goes back) with the first byte forged (a checksum no longer fits).
    if not w.inside:
        return w.target
    lag = w.rng.randint(3, 12)
    first = w.inside[0]
    earlier = [i for i in range(max(0, first - 2000), first) if w.frames[i][1] == w.target]
    sequence = earlier + w.inside
    for position, index in enumerate(w.inside):
        t, key, data, _ = w.frames[index]
        at = len(earlier) + position - lag
        source = w.frames[sequence[at]][2] if at >= 0 else data
        forged = bytes([source[0] ^ w.rng.randint(1, 255)]) + source[1:] if source else source
        change.replaced[index] = (t, key, forged, False)
    return w.target


_REPLACING = frozenset(
    {AttackKind.DLC_CHANGE, AttackKind.SUSPENSION, AttackKind.MASQUERADE, AttackKind.SPOOFING}
)
"""Kinds that change or remove the target's own frames (the first of them starts the attack)."""

_ATTACKS = {
    AttackKind.INJECTION: _injection,
    AttackKind.FLOODING: _flooding,
    AttackKind.FUZZING: _fuzzing,
    AttackKind.DLC_CHANGE: _dlc_change,
    AttackKind.SUSPENSION: _suspension,
    AttackKind.MASQUERADE: _masquerade,
    AttackKind.SPOOFING: _spoofing,
}
