"""Bounds a DBC file must keep before cantools sees it.

cantools builds a bit-level codec for every message while it parses, so one signal that
claims 2^31-1 bits (or starts past the end of any frame) costs it a minute and gigabytes
(docs/reliability.md, "Structural seeds"). No CAN or CAN FD frame holds more than 64 bytes
and no DBC signal is wider than 64 bits, so such a line can only be damage or an attack.
:func:`screen` blanks those lines (keeping line numbers for later reports) and says what it
left out; the loader then treats the rest as usual. Its tokenizer also holds about 200
bytes per byte of a quoted string (a 16 MiB comment took 3.5 GB), so a string (a comment or
an attribute value) longer than :data:`MAX_STRING_CHARS` is cut to that length, and a file
over :data:`MAX_DBC_CHARS` is refused whole (the largest real databases are a few MiB).
"""

from __future__ import annotations

import re

MAX_SIGNAL_BITS = 64
MAX_FRAME_BYTES = 64  # CAN FD
MAX_STRING_CHARS = 64 * 1024
MAX_DBC_CHARS = 32 * 1024 * 1024
# Unrolled (no alternation per character): linear time, no backtracking stack on 16 MiB.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_MESSAGE = re.compile(r"^\s*BO_\s+\d+\s+(\w+)\s*:\s*(\d+)")
# SG_ NAME [multiplexing] : START|LENGTH@...
_SIGNAL = re.compile(r"^\s*SG_\s+(\w+)(?:\s+\w+)?\s*:\s*(\d+)\s*\|\s*(\d+)\s*@")


def screen(text: str) -> tuple[str, list[tuple[str, str]]]:
    """``text`` with out-of-bounds messages and signals blanked, and (name, reason) for each.

    A message longer than :data:`MAX_FRAME_BYTES` is left out with its signals; a signal
    wider than :data:`MAX_SIGNAL_BITS` or starting past the last bit of the largest frame is
    left out alone. Text within the bounds comes back unchanged (the same object).
    """
    left_out: list[tuple[str, str]] = []
    original = text
    text = _cut_long_strings(text, left_out)
    lines = text.splitlines(keepends=True)
    message = "(database)"
    dropping = False
    changed = text is not original
    for number, line in enumerate(lines, start=1):
        header = _MESSAGE.match(line)
        if header:
            message = header.group(1)
            dropping = int(header.group(2)) > MAX_FRAME_BYTES
            if dropping:
                left_out.append(
                    (
                        message,
                        f"line {number}: length {header.group(2)} bytes is over "
                        f"{MAX_FRAME_BYTES} (no CAN FD frame is longer); left out",
                    )
                )
                lines[number - 1] = _blank(line)
                changed = True
            continue
        signal = _SIGNAL.match(line)
        if signal is None:
            if dropping and not line.strip():
                dropping = False  # the blank line after a BO_ block ends it
            continue
        if dropping:
            lines[number - 1] = _blank(line)
            continue
        start, length = int(signal.group(2)), int(signal.group(3))
        if length > MAX_SIGNAL_BITS or start >= MAX_FRAME_BYTES * 8:
            left_out.append(
                (
                    message,
                    f"line {number}: signal {signal.group(1)} at bit {start}, {length} bits: "
                    f"over {MAX_SIGNAL_BITS} bits or past bit {MAX_FRAME_BYTES * 8 - 1}; "
                    "left out",
                )
            )
            lines[number - 1] = _blank(line)
            changed = True
    return ("".join(lines) if changed else text), left_out


def _blank(line: str) -> str:
    """An empty line with ``line``'s own ending, so line numbers stay."""
    return line[len(line.rstrip("\r\n")) :]


def _cut_long_strings(text: str, left_out: list[tuple[str, str]]) -> str:
    """``text`` with every quoted string over :data:`MAX_STRING_CHARS` cut (newlines kept)."""
    if len(text) <= MAX_STRING_CHARS:
        return text
    pieces: list[str] = []
    position = 0
    for match in _STRING.finditer(text):
        if match.end() - match.start() - 2 <= MAX_STRING_CHARS:
            continue
        inner = match.group()[1:-1]
        line = text.count("\n", 0, match.start()) + 1
        kept = inner[:MAX_STRING_CHARS]
        newlines = inner.count("\n", MAX_STRING_CHARS)
        pieces += [text[position : match.start()], '"', kept, "\n" * newlines, '"']
        position = match.end()
        left_out.append(
            (
                "(database)",
                f"line {line}: a quoted string of {len(inner):,} characters cut to "
                f"{MAX_STRING_CHARS:,}",
            )
        )
    if not pieces:
        return text
    pieces.append(text[position:])
    return "".join(pieces)
