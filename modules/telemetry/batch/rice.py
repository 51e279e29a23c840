"""Rice codes for integer columns (batch format v2, docs/batch-format.md "Packed columns").

A column of noisy integers (a sensor's scaled values or their differences) costs close to its
entropy when each number gets a variable-length code of its own, whereas zstd alone codes
every column's bytes with one shared table. A Rice code with parameter ``rk`` writes a
non-negative integer ``z`` as ``q = z >> rk`` one-bits, a zero-bit, then the ``rk`` low bits
of ``z`` (most significant first). Signed numbers are zigzag-mapped first (0, -1, 1, -2, ...
become 0, 1, 2, 3, ...). A quotient of ``ESCAPE_Q`` or more is written as ``ESCAPE_Q``
one-bits followed by ``z`` in 64 bits, so one outlier costs 88 bits, not millions.
Bits are packed most significant first; the last byte is padded with zero-bits.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from itertools import repeat

ESCAPE_Q = 24
MAX_PARAMETER = 62
_Z_LIMIT = 1 << 64
_ESCAPE = "1" * ESCAPE_Q


class RiceError(ValueError):
    """A Rice-coded field that does not decode to exactly the expected count of numbers."""


def zigzag(value: int) -> int:
    """Map a signed int64 to an unsigned one: 0, -1, 1, -2, ... -> 0, 1, 2, 3, ..."""
    return value << 1 if value >= 0 else (-value << 1) - 1


def unzigzag(z: int) -> int:
    """The inverse of :func:`zigzag`."""
    return z >> 1 if not z & 1 else -((z + 1) >> 1)


def zigzag_all(values: Sequence[int]) -> list[int]:
    """:func:`zigzag` of every value (each within int64), in one pass."""
    # For -2**63 <= v < 2**63, v >> 63 is 0 or -1: (2v) ^ -1 == -2v - 1.
    return [(v << 1) ^ (v >> 63) for v in values]


def coded_bits(zs: Sequence[int], parameter: int) -> int:
    """Exact length in bits of ``zs`` (already zigzag-mapped) coded with ``parameter``."""
    quotients: list[int] = list(map(operator.rshift, zs, repeat(parameter, len(zs))))
    total: int = sum(quotients) + len(zs) * (1 + parameter)
    if quotients and max(quotients) >= ESCAPE_Q:  # outliers: 24 ones and 64 bits instead
        total += sum(ESCAPE_Q + 63 - parameter - q for q in quotients if q >= ESCAPE_Q)
    return total


def best_parameter(zs: Sequence[int]) -> tuple[int, int]:
    """``(parameter, bits)``: the Rice parameter that codes ``zs`` in the fewest bits.

    Starts from the estimate ``log2(mean)`` and walks to the neighbour while it improves,
    so a column costs a few passes, not one per possible parameter.
    """
    if not zs:
        return 0, 0
    mean = sum(zs) // len(zs)
    parameter = min(max(mean.bit_length() - 1, 0), MAX_PARAMETER)
    bits = coded_bits(zs, parameter)
    for step in (-1, 1):
        while 0 <= parameter + step <= MAX_PARAMETER:
            candidate = coded_bits(zs, parameter + step)
            if candidate >= bits:
                break
            parameter, bits = parameter + step, candidate
    return parameter, bits


def encode(values: Sequence[int], parameter: int) -> bytes:
    """Rice-code the signed ``values`` (each within int64) with ``parameter``."""
    if not 0 <= parameter <= MAX_PARAMETER:
        raise ValueError(f"Rice parameter {parameter} is outside [0, {MAX_PARAMETER}]")
    zs = zigzag_all(values)
    if zs and (max(zs) >= _Z_LIMIT or min(zs) < 0):
        raise ValueError("a value is outside int64")
    quotients: list[int] = list(map(operator.rshift, zs, repeat(parameter, len(zs))))
    mask, low_format = (1 << parameter) - 1, f"0{parameter}b"
    codes: list[str] = list(map(_UNARY.__getitem__, map(min, quotients, repeat(ESCAPE_Q))))
    if parameter:  # the low bits, all at once
        lows = map(format, map(operator.and_, zs, repeat(mask)), repeat(low_format))
        codes = list(map(operator.add, codes, lows))
    if quotients and max(quotients) >= ESCAPE_Q:  # outliers: 24 ones, then z in 64 bits
        for index, q in enumerate(quotients):
            if q >= ESCAPE_Q:
                codes[index] = _ESCAPE + format(zs[index], "064b")
    bits = "".join(codes)
    if not bits:
        return b""
    bits += "0" * (-len(bits) % 8)
    return int(bits, 2).to_bytes(len(bits) // 8, "big")


# The unary part of a quotient q < 24; index 24 (an escape) is replaced whole.
_UNARY = (*("1" * q + "0" for q in range(ESCAPE_Q)), "")


def decode(data: bytes, count: int, parameter: int) -> list[int]:
    """Exactly ``count`` signed numbers from ``data``; RiceError if it holds anything else.

    Rejected: too few bits, a whole byte or more left over, or non-zero padding bits.
    """
    if not 0 <= parameter <= MAX_PARAMETER:
        raise RiceError(f"Rice parameter {parameter} is outside [0, {MAX_PARAMETER}]")
    if count < 0 or len(data) * 8 < count * (1 + parameter):
        raise RiceError(f"{len(data)} bytes cannot hold {count} numbers with parameter {parameter}")
    if not data:
        if count:
            raise RiceError(f"no bits for {count} numbers")
        return []
    bits = format(int.from_bytes(data, "big"), f"0{len(data) * 8}b")
    end = len(bits)
    out: list[int] = []
    append = out.append
    position = 0
    for _ in range(count):
        zero = bits.find("0", position, position + ESCAPE_Q)
        if zero < 0:
            if bits[position : position + ESCAPE_Q] != _ESCAPE or position + ESCAPE_Q + 64 > end:
                raise RiceError(f"the bits end inside number {len(out)} of {count}")
            position += ESCAPE_Q
            z = int(bits[position : position + 64], 2)
            position += 64
        else:
            low_end = zero + 1 + parameter
            if low_end > end:
                raise RiceError(f"the bits end inside number {len(out)} of {count}")
            low = int(bits[zero + 1 : low_end], 2) if parameter else 0
            z = ((zero - position) << parameter) | low
            position = low_end
        append(unzigzag(z))
    if end - position >= 8:
        raise RiceError(f"{(end - position) // 8} bytes left over after {count} numbers")
    if "1" in bits[position:]:
        raise RiceError("non-zero padding bits after the last number")
    return out
