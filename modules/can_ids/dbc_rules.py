"""What a DBC adds to a learned profile: counters, checksums and signal value ranges."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from edge_agent.modules.can_ids.integrity import IntegrityHints
from edge_agent.modules.can_ids.profile import EXTENDED_FLAG, BusProfile

COUNTER_NAMES = ("COUNTER", "CNT", "ALIVE", "ROLLING")
CHECKSUM_NAMES = ("CHECKSUM", "CHKSUM", "CRC", "CSUM")
"""Signal names (upper-cased, anywhere in the name) that mark counters and checksums."""


@dataclass(slots=True)
class DbcRules:
    """What a DBC says per frame id: counter and checksum fields, raw value ranges."""

    hints: dict[int, IntegrityHints] = field(default_factory=dict)
    ranges: dict[int, list[list[int]]] = field(default_factory=dict)

    @property
    def counters(self) -> int:
        """Counter fields named."""
        return sum(len(h.counters) for h in self.hints.values())

    @property
    def checksums(self) -> int:
        """Checksum bytes named."""
        return sum(len(h.checksum_bytes) for h in self.hints.values())


def load_dbc_rules(dbc_path: str) -> DbcRules:
    """The counters, checksums and value ranges of the DBC at ``dbc_path``.

    A counter is a 2- to 16-bit integer signal whose name holds COUNTER, CNT, ALIVE or ROLLING;
    a checksum an 8-bit signal on a byte whose name holds CHECKSUM, CHKSUM, CRC or CSUM. Both
    may be little-endian or (inside one byte) big-endian. A range is a little-endian
    integer-coded signal with a minimum and maximum, kept as raw bounds. ValueError (one
    line) if the DBC cannot be loaded.
    """
    from edge_agent.can.dbc import DbcError, load_dbc
    from edge_agent.can.resources import resolve_data_path

    try:
        database = load_dbc(resolve_data_path(dbc_path)).database
    except (DbcError, OSError) as error:
        raise ValueError(f"{dbc_path}: {error}") from None
    rules = DbcRules()
    for message in database.messages:
        if message.is_multiplexed():
            continue
        key = int(message.frame_id) | (EXTENDED_FLAG if message.is_extended_frame else 0)
        counters: list[tuple[int, int, int]] = []
        checksums: list[int] = []
        ranges: list[list[int]] = []
        for signal in message.signals:
            if signal.is_float:
                continue
            name = signal.name.upper()
            lsb = _lowest_bit(signal)
            if any(word in name for word in CHECKSUM_NAMES):
                if lsb is not None and signal.length == 8 and lsb % 8 == 0:
                    checksums.append(lsb // 8)
                continue
            if any(word in name for word in COUNTER_NAMES):
                if lsb is not None and 2 <= signal.length <= 16:
                    counters.append((lsb, signal.length, _modulus(signal)))
                continue
            if signal.byte_order != "little_endian":
                continue
            bounds = _raw_bounds(signal)
            if bounds is not None:
                ranges.append([signal.start, signal.length, int(signal.is_signed), *bounds])
        if counters or checksums:
            rules.hints[key] = IntegrityHints(tuple(counters), tuple(checksums))
        if ranges:
            rules.ranges[key] = ranges
    return rules


def apply_ranges(profile: BusProfile, rules: DbcRules) -> int:
    """Give the ids of ``profile`` the DBC's signal ranges; return how many were added."""
    added = 0
    for key, ranges in rules.ranges.items():
        item = profile.ids.get(key)
        if item is not None:
            item.ranges = [list(r) for r in ranges]
            added += len(ranges)
    return added


def _lowest_bit(signal: Any) -> int | None:
    """Bit of the payload's little-endian integer where the field's lowest bit sits."""
    if signal.byte_order == "little_endian":
        return int(signal.start)
    lowest = int(signal.start) - int(signal.length) + 1
    if lowest >= 0 and lowest // 8 == int(signal.start) // 8:
        return lowest  # big-endian inside one byte: same bits
    return None


def _modulus(signal: Any) -> int:
    full = 1 << int(signal.length)
    maximum = getattr(signal, "maximum", None)
    if maximum is not None and signal.scale == 1 and signal.offset == 0:
        top = int(maximum) + 1
        if 4 <= top < full:
            return top
    return full


def _raw_bounds(signal: object) -> tuple[int, int] | None:
    """Raw integer bounds of a signal's physical [minimum, maximum], if narrower than its bits."""
    minimum = getattr(signal, "minimum", None)
    maximum = getattr(signal, "maximum", None)
    scale = float(getattr(signal, "scale", 1) or 1)
    offset = float(getattr(signal, "offset", 0) or 0)
    length = int(getattr(signal, "length", 0))
    signed = bool(getattr(signal, "is_signed", False))
    if minimum is None or maximum is None or length <= 0 or length > 64:
        return None
    ends = sorted(((float(minimum) - offset) / scale, (float(maximum) - offset) / scale))
    low, high = math.ceil(ends[0] - 1e-9), math.floor(ends[1] + 1e-9)
    if signed:
        bit_low, bit_high = -(1 << (length - 1)), (1 << (length - 1)) - 1
    else:
        bit_low, bit_high = 0, (1 << length) - 1
    if low <= bit_low and high >= bit_high:
        return None  # the range allows every value the bits can carry: nothing to check
    return max(low, bit_low), min(high, bit_high)
