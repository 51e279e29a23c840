"""Rolling counters and checksums: which fields carry them, learned from clean traffic.

A counter is a bit field that steps by one per frame and wraps (named by the DBC, such as
``...Counter``/``...CNT``/``...Alive``, or found in traffic: a nibble or byte that counted up in
98 % of frames). A checksum is a byte the sender computes from the rest of the payload: the
algorithm is identified from traffic among the common ones (:data:`CHECKSUMS`). Where the DBC
names a checksum byte but no known algorithm fits, the IDS runs degraded (:data:`CONSISTENT`):
it only checks that a payload seen again carries the same checksum byte as before.
"""

from __future__ import annotations

import functools
import itertools
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from edge_agent.modules.can_ids.profile import EXTENDED_FLAG

SAMPLE_FRAMES = 1024
"""Payloads kept per id while learning (the first ones, consecutive): bounded memory."""
MIN_SAMPLE = 64
"""Fewer frames of an id than this: no counter or checksum is learned for it."""
COUNTER_OK_SHARE = 0.98
COUNTER_STEP_SHARE = 0.9
MIN_MODULUS = 4
CHECKSUM_SHARE = 0.995
MIN_CHECKSUM_VALUES = 16
CONSISTENT_REMEMBERED = 256
"""Payloads remembered per id in the degraded checksum mode (then forgotten: bounded)."""
CONSISTENT = "consistent"
"""Degraded checksum mode: the algorithm is unknown; the same payload must carry the same byte."""


def _id_bytes(key: int) -> tuple[int, int]:
    """Sum and xor of the bytes of the arbitration id (as a sender's checksum covers it)."""
    ident = key & ~EXTENDED_FLAG
    parts = ident.to_bytes(4 if key & EXTENDED_FLAG else 2, "big")
    return sum(parts), functools.reduce(operator.xor, parts, 0)


Checksum = Callable[[bytes, int, int], int]
"""(payload, checksum byte index, id key) -> the checksum byte the sender would have put there."""


def _others_sum(data: bytes, at: int) -> int:
    return sum(data) - data[at]


def _others_xor(data: bytes, at: int) -> int:
    return functools.reduce(operator.xor, data, 0) ^ data[at]


CHECKSUMS: dict[str, Checksum] = {
    "sum": lambda d, at, key: _others_sum(d, at) & 0xFF,
    "inverted-sum": lambda d, at, key: 0xFF - (_others_sum(d, at) & 0xFF),
    "xor": lambda d, at, key: _others_xor(d, at),
    "sum-with-id": lambda d, at, key: (_others_sum(d, at) + _id_bytes(key)[0]) & 0xFF,
    "inverted-sum-with-id": lambda d, at, key: (
        0xFF - ((_others_sum(d, at) + _id_bytes(key)[0]) & 0xFF)
    ),
    "sum-with-id-and-length": lambda d, at, key: (
        (_others_sum(d, at) + _id_bytes(key)[0] + len(d)) & 0xFF
    ),
    "xor-with-id": lambda d, at, key: _others_xor(d, at) ^ _id_bytes(key)[1],
}
"""The checksum algorithms the IDS can identify; the others of the byte, 8 bits, mod 256.
``inverted-sum-with-id`` is the simulator's (0xFF minus the bytes and both id bytes)."""


@dataclass(frozen=True, slots=True)
class IntegrityHints:
    """What a DBC says about one id: counter fields ``(lsb, length, modulus)``, checksum bytes."""

    counters: tuple[tuple[int, int, int], ...] = ()
    checksum_bytes: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Integrity:
    """The counter and checksum learned for one id (any may be None)."""

    counter: tuple[int, int, int] | None = None
    checksum: tuple[int, int, str] | None = None
    """(byte index, frame length, algorithm name or :data:`CONSISTENT`)."""


def counter_step(old: int, new: int, counter: tuple[int, int, int]) -> int:
    """How far the counter field moved from payload value ``old`` to ``new`` (mod its modulus)."""
    lsb, length, modulus = counter
    mask = (1 << length) - 1
    return (((new >> lsb) & mask) - ((old >> lsb) & mask)) % modulus


def learn_integrity(key: int, sample: Sequence[bytes], hints: IntegrityHints | None) -> Integrity:
    """The counter and checksum of id ``key`` from its first clean payloads (``sample``)."""
    if len(sample) < MIN_SAMPLE:
        return Integrity()
    values = [int.from_bytes(data, "little") for data in sample]
    counter = None
    if hints is not None and hints.counters:
        counter = _best_counter(values, list(hints.counters), named=True)
    if counter is None:
        width = min(len(data) for data in sample)
        fields = [(n * 4, 4, 16) for n in range(width * 2)]
        fields += [(n * 8, 8, 256) for n in range(width)]
        counter = _best_counter(values, fields, named=False)
    return Integrity(counter, _checksum(key, sample, hints, counter))


def _best_counter(
    values: list[int], fields: list[tuple[int, int, int]], *, named: bool
) -> tuple[int, int, int] | None:
    best: tuple[int, int, int] | None = None
    pairs = len(values) - 1
    for lsb, length, modulus in fields:
        mask = (1 << length) - 1
        field = [(value >> lsb) & mask for value in values]
        steps = sum(1 for a, b in itertools.pairwise(field) if b == a + 1)
        wraps = sum(1 for a, b in itertools.pairwise(field) if b == 0 and a >= 3)
        top = max(field) + 1
        if steps < COUNTER_STEP_SHARE * pairs or steps + wraps < COUNTER_OK_SHARE * pairs:
            continue
        if top < MIN_MODULUS:
            continue
        # Named by the DBC: the DBC's range; found in traffic: the highest value seen, plus one.
        learned = (lsb, length, modulus if named else top)
        if best is None or learned[2] > best[2] or (learned[2] == best[2] and length < best[1]):
            best = learned
    return best


def _checksum(
    key: int,
    sample: Sequence[bytes],
    hints: IntegrityHints | None,
    counter: tuple[int, int, int] | None,
) -> tuple[int, int, str] | None:
    length = max(set(map(len, sample)), key=[len(d) for d in sample].count)
    frames = [data for data in sample if len(data) == length]
    if length < 2 or len(frames) < MIN_SAMPLE:
        return None
    named = [at for at in (hints.checksum_bytes if hints else ()) if at < length]
    counter_bytes = set()
    if counter is not None:
        counter_bytes = set(range(counter[0] // 8, (counter[0] + counter[1] - 1) // 8 + 1))
    # A sum or xor relation holds for every byte it covers: the last byte is taken (where most
    # senders put it); any byte gives the same check.
    positions = named or [at for at in reversed(range(length)) if at not in counter_bytes]
    for at in positions:
        if len({data[at] for data in frames}) < MIN_CHECKSUM_VALUES:
            continue
        for name, algorithm in CHECKSUMS.items():
            hits = sum(1 for data in frames if algorithm(data, at, key) == data[at])
            if hits >= CHECKSUM_SHARE * len(frames):
                return (at, length, name)
    for at in named:
        if _consistent(frames, at):
            return (at, length, CONSISTENT)
    return None


def _consistent(frames: list[bytes], at: int) -> bool:
    """Whether every payload seen twice carried the same byte ``at`` (a function of the rest)."""
    seen: dict[bytes, int] = {}
    for data in frames:
        rest = data[:at] + data[at + 1 :]
        if seen.setdefault(rest, data[at]) != data[at]:
            return False
    return True


class ChecksumCheck:
    """Checks one id's checksum byte on every frame of the learned length."""

    __slots__ = ("algorithm", "at", "key", "length", "name", "seen")

    def __init__(self, key: int, checksum: Sequence[int | str]) -> None:
        at, length, name = checksum
        self.key = key
        self.at = int(at)
        self.length = int(length)
        self.name = str(name)
        self.algorithm = CHECKSUMS.get(self.name)
        self.seen: dict[bytes, int] = {}  # degraded mode: payload (without the byte) -> byte

    def mismatch(self, data: bytes) -> str:
        """Why the checksum of ``data`` is wrong, or an empty string if it is right."""
        if len(data) != self.length:
            return ""  # another length is the DLC check's business
        found = data[self.at]
        if self.algorithm is not None:
            wanted = self.algorithm(data, self.at, self.key)
            if wanted == found:
                return ""
            return f"checksum byte {self.at} is 0x{found:02X}, {self.name} gives 0x{wanted:02X}"
        rest = data[: self.at] + data[self.at + 1 :]
        if len(self.seen) >= CONSISTENT_REMEMBERED:
            self.seen.clear()
        earlier = self.seen.setdefault(rest, found)
        if earlier == found:
            return ""
        return (
            f"checksum byte {self.at} is 0x{found:02X}; the same payload carried 0x{earlier:02X} "
            "(algorithm unknown: degraded check)"
        )
