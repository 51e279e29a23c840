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

from collections.abc import Sequence

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


def coded_bits(zs: Sequence[int], parameter: int) -> int:
    """Exact length in bits of ``zs`` (already zigzag-mapped) coded with ``parameter``."""
    escape_from = ESCAPE_Q << parameter
    total = 0
    for z in zs:
        total += (z >> parameter) + 1 + parameter if z < escape_from else ESCAPE_Q + 64
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
    low_format = f"0{parameter}b"
    mask = (1 << parameter) - 1
    parts: list[str] = []
    append = parts.append
    for value in values:
        z = zigzag(value)
        if z >= _Z_LIMIT:
            raise ValueError(f"{value} is outside int64")
        q = z >> parameter
        if q < ESCAPE_Q:
            append("1" * q + "0" + (format(z & mask, low_format) if parameter else ""))
        else:
            append(_ESCAPE + format(z, "064b"))
    bits = "".join(parts)
    if not bits:
        return b""
    bits += "0" * (-len(bits) % 8)
    return int(bits, 2).to_bytes(len(bits) // 8, "big")


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
