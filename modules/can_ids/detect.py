"""The detectors: one pass over frames in time order, against a learned :class:`BusProfile`.

Pure and synchronous (no clock, no I/O): ``edge-agent ids scan``, the benchmark and the
``can-ids`` module feed the same :class:`Detector`. Time is the frames' own timestamps, so
a recording gives the same alerts as the live bus did. A gap in the traffic or time going
backwards re-arms the timing checks instead of raising alerts (counted in ``gaps``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from edge_agent.modules.can_ids.alerts import Alert, AlertKind
from edge_agent.modules.can_ids.evidence import frame_evidence
from edge_agent.modules.can_ids.integrity import ChecksumCheck, counter_step
from edge_agent.modules.can_ids.learn import MEAN_WINDOW, REORDER_S, TIME_GAP_S
from edge_agent.modules.can_ids.profile import BusProfile, IdProfile, arbitration_rank, id_text

NO_ALERTS: tuple[Alert, ...] = ()
SHORT_INTERVAL_FACTOR = 0.75
"""An interval below this share of the shortest clean one is a frame too many (injection)."""
SILENCE_FACTOR = 3.0
"""A periodic id silent for this many periods (and 1.5x its longest clean gap) is suspended."""
LOAD_BUCKET_S = 0.01
LOAD_MARGIN = 1.5
FLOOD_FRAMES = 3
FLOOD_WINDOW_S = 0.05
ALERT_HOLDOFF_S = 1.0
"""One alert per kind and id per this long; the rest are counted as suppressed."""
MAX_ALERTS_PER_KIND_PER_S = 20
RING_FRAMES = 64
UNKNOWN_TRACKED = 4096
SILENCE_CHECK_S = 0.01

Frame = tuple[float, int, bytes]


@dataclass(slots=True)
class _IdState:
    key: int
    profile: IdProfile
    periodic: bool
    short_limit: float
    silence_limit: float
    regular_limit: float
    period: float
    tolerance: float
    reference: int
    mask: int
    dlcs: frozenset[int]
    counter: tuple[int, int, int] | None
    checksum: ChecksumCheck | None
    ranges: tuple[tuple[int, int, int, int, int], ...]
    last_t: float = -1.0
    last_value: int = 0
    silent: bool = False
    window_sum: float = 0.0
    window_fill: int = 0
    window: deque[float] | None = None


def _state(key: int, profile: IdProfile) -> _IdState:
    period = profile.period_s
    return _IdState(
        key=key,
        profile=profile,
        periodic=profile.periodic,
        short_limit=SHORT_INTERVAL_FACTOR * profile.min_interval_s,
        silence_limit=max(SILENCE_FACTOR * period, 1.5 * profile.max_interval_s),
        regular_limit=1.5 * period,
        period=period,
        tolerance=profile.mean_tolerance_s,
        reference=profile.reference,
        mask=profile.constant_mask,
        dlcs=frozenset(profile.dlcs),
        counter=_counter_field(profile.counter),
        checksum=None if profile.checksum is None else ChecksumCheck(key, profile.checksum),
        # (shift, mask, sign bit or 0, low, high) per DBC signal range
        ranges=tuple(
            (start, (1 << length) - 1, (1 << (length - 1)) if signed else 0, low, high)
            for start, length, signed, low, high in profile.ranges
        ),
        window=deque(maxlen=MEAN_WINDOW) if profile.periodic else None,
    )


def _counter_field(counter: list[int] | None) -> tuple[int, int, int] | None:
    if counter is None:
        return None
    lsb, length, modulus = counter
    return (lsb, length, modulus)


class Detector:
    """Flags injection, flooding, fuzzing, DLC changes, counters, suspension and masquerade.

    ``observe`` takes one frame (time in seconds, id key as in the profile, payload) and
    returns the alerts it raised, usually none. Alerts of one kind and id are held off for
    ``ALERT_HOLDOFF_S`` and capped per kind per second (counted in ``suppressed``).
    """

    def __init__(self, profile: BusProfile) -> None:
        self.profile = profile
        self._ids = {key: _state(key, item) for key, item in profile.ids.items()}
        self._periodic = [state for state in self._ids.values() if state.periodic]
        self.degraded = (
            "" if self._periodic else "no periodic ids in the profile: timing checks off"
        )
        self._lowest_known = min(profile.ids, key=arbitration_rank, default=None)
        self._lowest_rank = (
            1 << 40 if self._lowest_known is None else arbitration_rank(self._lowest_known)
        )
        buckets = max(1, round(profile.load_window_s / LOAD_BUCKET_S))
        self._buckets: deque[int] = deque([0] * buckets, maxlen=buckets)
        self._bucket_index = -1
        self._bucket_frames = 0
        self._bucket_errors = 0
        self._window_frames = 0  # frames of the full buckets in the window
        self._error_window: deque[int] = deque([0] * buckets, maxlen=buckets)
        self._window_errors = 0
        self._load_limit = int(profile.max_frames_per_window * LOAD_MARGIN) + 10
        self._error_limit = profile.max_error_frames_per_window * 2 + 5
        self._unknown: dict[int, tuple[float, int]] = {}
        self._last_alert: dict[tuple[AlertKind, int | None], float] = {}
        self._kind_second: dict[AlertKind, tuple[int, int]] = {}
        self._last_t: float | None = None
        self._next_silence_check = 0.0
        self.ring: deque[Frame] = deque(maxlen=RING_FRAMES)
        self.frames = 0
        self.gaps = 0
        self.suppressed = 0
        self.alerts_total = 0

    @property
    def last_time(self) -> float:
        """Time of the newest frame seen (0 before the first)."""
        return self._last_t or 0.0

    # -- per frame -------------------------------------------------------------------------

    def observe(self, t: float, key: int, data: bytes, *, error: bool = False) -> Sequence[Alert]:
        """Check one frame; return the alerts it raised (an empty tuple almost always)."""
        self.frames += 1
        last = self._last_t
        if last is None or t > last:
            if last is not None and t - last > TIME_GAP_S:
                self._rearm(t)
            self._last_t = t
        elif t < last - REORDER_S:
            self._rearm(t)
            self._last_t = t
        self.ring.append((t, key, data))
        found: list[Alert] | None = None
        bucket = int(t / LOAD_BUCKET_S)
        if bucket != self._bucket_index:
            self._advance_load(bucket)
        self._bucket_frames += 1
        if self._window_frames + self._bucket_frames > self._load_limit:
            found = self._raise(
                found,
                t,
                AlertKind.BUS_LOAD,
                None,
                f"{self._window_frames + self._bucket_frames} frames in "
                f"{self.profile.load_window_s:g} s (clean maximum "
                f"{self.profile.max_frames_per_window})",
            )
        if error:
            self._bucket_errors += 1
            if self._window_errors + self._bucket_errors > self._error_limit:
                found = self._raise(
                    found, t, AlertKind.ERROR_FRAMES, None, "error frames beyond the profile"
                )
            return found or NO_ALERTS
        if t >= self._next_silence_check:
            self._next_silence_check = t + SILENCE_CHECK_S
            found = self._check_silence(t, found)
        state = self._ids.get(key)
        if state is None:
            return self._unknown_id(t, key, found) or NO_ALERTS
        value = int.from_bytes(data, "little")
        if len(data) not in state.dlcs:
            found = self._raise(
                found,
                t,
                AlertKind.DLC_CHANGE,
                key,
                f"length {len(data)}, clean traffic had {sorted(state.dlcs)}",
            )
        elif (value ^ state.reference) & state.mask:
            moved = (value ^ state.reference) & state.mask
            found = self._raise(
                found,
                t,
                AlertKind.PAYLOAD_BITS,
                key,
                f"{moved.bit_count()} payload bits moved that never moved (mask 0x{moved:x})",
            )
        elif state.ranges:
            found = self._ranges(state, t, key, value, found)
        if state.checksum is not None:
            why = state.checksum.mismatch(data)
            if why:
                found = self._raise(found, t, AlertKind.CHECKSUM, key, why)
        if state.periodic:
            found = self._timing(state, t, key, value, found)
        elif state.counter is not None and state.last_t >= 0:
            found = self._counter(state, t, key, value, found)
        state.last_t = t
        state.last_value = value
        state.silent = False
        return found or NO_ALERTS

    def _timing(
        self, state: _IdState, t: float, key: int, value: int, found: list[Alert] | None
    ) -> list[Alert] | None:
        if state.last_t < 0:
            return found
        interval = t - state.last_t
        if interval < state.short_limit:
            self._reset_window(state)  # a frame too many would skew the sender-clock check
            return self._raise(
                found,
                t,
                AlertKind.INJECTION,
                key,
                f"interval {interval * 1000:.2f} ms, period {state.period * 1000:.2f} ms "
                f"(clean minimum {state.profile.min_interval_s * 1000:.2f} ms)",
            )
        if interval > state.regular_limit:
            self._reset_window(state)
            return found
        if state.counter is not None:
            found = self._counter(state, t, key, value, found)
        window = state.window
        assert window is not None
        if len(window) == MEAN_WINDOW:
            state.window_sum -= window[0]
        window.append(interval)
        state.window_sum += interval
        if len(window) == MEAN_WINDOW:
            mean = state.window_sum / MEAN_WINDOW
            if abs(mean - state.period) > state.tolerance:
                self._reset_window(state)
                return self._raise(
                    found,
                    t,
                    AlertKind.MASQUERADE,
                    key,
                    f"mean interval {mean * 1000:.3f} ms over {MEAN_WINDOW} frames, clean "
                    f"{state.period * 1000:.3f} +- {state.tolerance * 1000:.3f} ms: "
                    "another sender's clock",
                )
        return found

    def _counter(
        self, state: _IdState, t: float, key: int, value: int, found: list[Alert] | None
    ) -> list[Alert] | None:
        assert state.counter is not None
        step = counter_step(state.last_value, value, state.counter)
        if step in (1, 2):  # 2: one frame lost on the way is not an attack
            return found
        return self._raise(found, t, AlertKind.COUNTER, key, f"rolling counter stepped by {step}")

    def _ranges(
        self, state: _IdState, t: float, key: int, value: int, found: list[Alert] | None
    ) -> list[Alert] | None:
        for shift, mask, sign, low, high in state.ranges:
            raw = (value >> shift) & mask
            if sign and raw & sign:
                raw -= sign << 1
            if raw < low or raw > high:
                return self._raise(
                    found,
                    t,
                    AlertKind.SIGNAL_RANGE,
                    key,
                    f"signal at bit {shift} raw {raw} outside the DBC's {low}..{high}",
                )
        return found

    @staticmethod
    def _reset_window(state: _IdState) -> None:
        if state.window is not None:
            state.window.clear()
        state.window_sum = 0.0

    def _unknown_id(self, t: float, key: int, found: list[Alert] | None) -> list[Alert] | None:
        seen = self._unknown.get(key)
        if seen is None or t - seen[0] > FLOOD_WINDOW_S:
            if len(self._unknown) >= UNKNOWN_TRACKED:
                self._unknown.clear()
            self._unknown[key] = (t, 1)
            return self._raise(
                found, t, AlertKind.UNKNOWN_ID, key, f"id {id_text(key)} never seen on this bus"
            )
        count = seen[1] + 1
        self._unknown[key] = (seen[0], count)
        if count >= FLOOD_FRAMES and arbitration_rank(key) < self._lowest_rank:
            lowest = "none" if self._lowest_known is None else id_text(self._lowest_known)
            return self._raise(
                found,
                t,
                AlertKind.FLOODING,
                key,
                f"{count} frames of unknown id {id_text(key)} in {t - seen[0]:.3f} s, above "
                f"every known id's priority (lowest known {lowest})",
            )
        return found

    def _advance_load(self, bucket: int) -> None:
        if self._bucket_index >= 0:
            steps = min(bucket - self._bucket_index, len(self._buckets))
            if steps <= 0:  # time went back inside the tolerance: keep counting here
                return
            for index in range(steps):
                frames = self._bucket_frames if index == 0 else 0
                errors = self._bucket_errors if index == 0 else 0
                self._window_frames += frames - self._buckets[0]
                self._window_errors += errors - self._error_window[0]
                self._buckets.append(frames)
                self._error_window.append(errors)
        self._bucket_index = bucket
        self._bucket_frames = self._bucket_errors = 0

    def _check_silence(self, t: float, found: list[Alert] | None) -> list[Alert] | None:
        for state in self._periodic:
            if state.silent or state.last_t < 0:
                continue
            silence = t - state.last_t
            if silence > state.silence_limit:
                state.silent = True
                self._reset_window(state)
                found = self._raise(
                    found,
                    t,
                    AlertKind.SUSPENSION,
                    state.key,
                    f"silent for {silence * 1000:.0f} ms, period {state.period * 1000:.1f} ms",
                )
        return found

    def _rearm(self, t: float) -> None:
        """A gap in the traffic or time going backwards: start the timing over from ``t``."""
        self.gaps += 1
        for state in self._ids.values():
            state.last_t = -1.0
            state.silent = False
            self._reset_window(state)
        self._unknown.clear()
        self._buckets.extend([0] * len(self._buckets))
        self._error_window.extend([0] * len(self._error_window))
        self._window_frames = self._window_errors = 0
        self._bucket_index = -1
        self._bucket_frames = self._bucket_errors = 0
        self._next_silence_check = t

    # -- alerts ----------------------------------------------------------------------------

    def _raise(
        self,
        found: list[Alert] | None,
        t: float,
        kind: AlertKind,
        key: int | None,
        detail: str,
    ) -> list[Alert] | None:
        holdoff_key = (kind, key)
        last = self._last_alert.get(holdoff_key)
        if last is not None and 0 <= t - last < ALERT_HOLDOFF_S:
            self.suppressed += 1
            return found
        second = int(t)
        seen_second, count = self._kind_second.get(kind, (second, 0))
        if seen_second != second:
            count = 0
        if count >= MAX_ALERTS_PER_KIND_PER_S:
            self.suppressed += 1
            return found
        self._kind_second[kind] = (second, count + 1)
        if len(self._last_alert) >= UNKNOWN_TRACKED:
            self._last_alert.clear()
        self._last_alert[holdoff_key] = t
        self.alerts_total += 1
        alert = Alert(t, kind, key, detail, {"frames": [frame_evidence(*f) for f in self.ring]})
        if found is None:
            return [alert]
        found.append(alert)
        return found
