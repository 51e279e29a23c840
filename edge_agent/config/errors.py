"""Configuration errors, each reported as one ``dotted.path: message (got VALUE)`` line."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

_MISSING = object()


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One thing wrong with a configuration: where, what, and the offending value."""

    path: str
    message: str
    value: Any = _MISSING

    def __str__(self) -> str:
        if self.value is _MISSING:
            return f"{self.path}: {self.message}"
        return f"{self.path}: {self.message} (got {_show(self.value)})"


class ConfigError(Exception):
    """A configuration is invalid; ``issues`` lists every problem found."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        super().__init__("; ".join(str(issue) for issue in issues))
        self.issues = issues

    def lines(self) -> list[str]:
        """One line per issue, in the order found."""
        return [str(issue) for issue in self.issues]


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def issues_from_validation(error: ValidationError, prefix: str = "") -> list[ConfigIssue]:
    """Turn a pydantic ValidationError into ConfigIssues with dotted paths under ``prefix``."""
    found: list[ConfigIssue] = []
    for item in error.errors(include_url=False):
        parts = [prefix] if prefix else []
        parts.extend(str(part) for part in item["loc"])
        path = ".".join(parts) or "(root)"
        message = item["msg"]
        if item["type"] == "missing":
            found.append(ConfigIssue(path, "required setting is missing"))
        elif item["type"] == "extra_forbidden":
            found.append(ConfigIssue(path, "unknown setting", item.get("input", _MISSING)))
        else:
            found.append(ConfigIssue(path, message, item.get("input", _MISSING)))
    return found
