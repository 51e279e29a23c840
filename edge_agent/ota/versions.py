"""Bundle versions: dotted numbers (``1.4.2``), compared numerically."""

from __future__ import annotations

import re

VERSION_PATTERN = r"^[0-9]{1,9}(\.[0-9]{1,9}){0,3}$"
_VERSION = re.compile(VERSION_PATTERN)


def parse_version(text: str) -> tuple[int, ...]:
    """The comparable form of ``text``; ValueError if it is not 1 to 4 dotted numbers."""
    if not _VERSION.match(text):
        raise ValueError(f"{text!r} is not a version (1 to 4 dotted numbers, e.g. 1.4.2)")
    parts = tuple(int(part) for part in text.split("."))
    return parts + (0,) * (4 - len(parts))


def is_newer(candidate: str, than: str) -> bool:
    """Whether ``candidate`` is strictly newer than ``than``."""
    return parse_version(candidate) > parse_version(than)
