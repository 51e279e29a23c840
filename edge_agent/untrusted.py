"""Parsing data that came from outside: size first, then nesting depth, never by recursion.

``json.loads`` and ``tomllib.loads`` recurse once per nesting level, so a document of
100 000 opening brackets ends in ``RecursionError`` (or worse, a crashed thread) instead of a
clear refusal. Every parser of received data (desired states, commands, OTA jobs, config
files, signed config targets, catalogue and mapping files) goes through the two loaders here:
they refuse a document larger than ``max_bytes`` before reading it, count its nesting with a
flat scan before parsing it, and raise :class:`UntrustedDataError` with one line saying which
limit was exceeded.
"""

from __future__ import annotations

import json
import re
import tomllib
from itertools import accumulate
from typing import Any

DEFAULT_MAX_BYTES = 256 * 1024
DEFAULT_MAX_DEPTH = 32

# Everything but the four bracket bytes, deleted by bytes.translate (a C loop, no recursion).
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
# TOML strings (triple-quoted first, so '''a''' is not read as '' 'a' '') and comments.
_TOML_STRING_OR_COMMENT = re.compile(
    rb'"""(?:[^\\]|\\.)*?"""|\'\'\'.*?\'\'\'|"[^"\\\n]*(?:\\.[^"\\\n]*)*"|\'[^\'\n]*\'|#[^\n]*',
    re.DOTALL,
)


class UntrustedDataError(ValueError):
    """Received data exceeds a limit or does not parse; the message is one line."""


def _bracket_depth(text: bytes) -> int:
    """The deepest bracket nesting in ``text`` (strings already removed), counted flat."""
    brackets = text.translate(None, _NOT_BRACKETS)
    if not brackets:
        return 0
    steps = (1 if b in (0x5B, 0x7B) else -1 for b in brackets)
    return max(accumulate(steps))


def structure_depth(value: Any) -> int:
    """The nesting depth of parsed data (a scalar is 0, ``[]`` and ``{}`` are 1), no recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, depth + 1)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _as_bytes(data: bytes | bytearray | str) -> bytes:
    return data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)


def _check_size(raw: bytes, max_bytes: int, what: str) -> None:
    if len(raw) > max_bytes:
        raise UntrustedDataError(f"{what} is {len(raw)} bytes, more than the limit of {max_bytes}")


def _check_depth(depth: int, max_depth: int, what: str) -> None:
    if depth > max_depth:
        raise UntrustedDataError(f"{what} is nested too deeply (limit: {max_depth} levels)")


def load_json_bounded(
    data: bytes | bytearray | str,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
    what: str = "JSON document",
) -> Any:
    """Parse JSON from outside; UntrustedDataError when it is too big, too deep or invalid."""
    raw = _as_bytes(data)
    _check_size(raw, max_bytes, what)
    _check_depth(_bracket_depth(_JSON_STRING.sub(b"", raw)), max_depth, what)
    try:
        return json.loads(raw)
    except RecursionError:  # cannot happen after the scan; a clear line if it ever does
        raise UntrustedDataError(f"{what} is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise UntrustedDataError(f"not valid JSON: {error}") from None


def load_toml_bounded(
    data: bytes | bytearray | str,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
    what: str = "TOML document",
) -> dict[str, Any]:
    """Parse TOML from outside; UntrustedDataError when it is too big, too deep or invalid.

    Brackets of arrays and inline tables are counted before parsing; dotted keys and table
    headers (which ``tomllib`` handles without recursion) are counted in the result.
    """
    raw = _as_bytes(data)
    _check_size(raw, max_bytes, what)
    _check_depth(_bracket_depth(_TOML_STRING_OR_COMMENT.sub(b"", raw)), max_depth, what)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UntrustedDataError(f"not UTF-8 text (bad byte at offset {error.start})") from None
    try:
        document = tomllib.loads(text)
    except RecursionError:
        raise UntrustedDataError(f"{what} is nested too deeply") from None
    except tomllib.TOMLDecodeError as error:
        raise UntrustedDataError(f"TOML syntax error: {error}") from None
    except ValueError as error:  # e.g. an integer of more digits than Python converts
        raise UntrustedDataError(f"{what}: {str(error).split(';')[0]}") from None
    _check_depth(structure_depth(document), max_depth, what)
    return document
