"""Structured logging: JSON lines for journald and containers, readable console for people.

A log line is an *event* (a short fixed phrase, ``"bus up"``) plus key=value fields
(``bus="body", bitrate=500000``): ``get_logger("edge_agent.can").info("bus up", bus="body")``.
It is built on the standard library's ``logging``, so third-party loggers (python-can,
aiomqtt) go through the same handler and format. This replaces structlog, which cost the
agent ~2-7 MB of resident memory for features it did not use (docs/reliability.md, "Soak").
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Mapping
from typing import Any, Literal, TextIO

LogFormat = Literal["auto", "json", "console"]
LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
_FIELDS = "edge_agent_fields"


class EventLogger:
    """A logger of events with key=value fields, optionally bound to fixed fields.

    ``bind(module="can-reader")`` returns a logger that adds ``module`` to every line. The
    methods never raise on a field that cannot be serialised: it is written with ``str()``.
    """

    __slots__ = ("_bound", "_logger")

    def __init__(self, logger: logging.Logger, bound: Mapping[str, object] | None = None) -> None:
        self._logger = logger
        self._bound: dict[str, object] = dict(bound or {})

    @property
    def name(self) -> str:
        """The underlying standard-library logger's name."""
        return self._logger.name

    def bind(self, **fields: object) -> EventLogger:
        """A logger that adds ``fields`` to every line (on top of those already bound)."""
        return EventLogger(self._logger, {**self._bound, **fields})

    def debug(self, event: str, **fields: object) -> None:
        """Log ``event`` at debug level."""
        self._emit(logging.DEBUG, event, fields)

    def info(self, event: str, **fields: object) -> None:
        """Log ``event`` at info level."""
        self._emit(logging.INFO, event, fields)

    def warning(self, event: str, **fields: object) -> None:
        """Log ``event`` at warning level."""
        self._emit(logging.WARNING, event, fields)

    def error(self, event: str, **fields: object) -> None:
        """Log ``event`` at error level."""
        self._emit(logging.ERROR, event, fields)

    def exception(self, event: str, **fields: object) -> None:
        """Log ``event`` at error level with the exception being handled (call in ``except``)."""
        self._emit(logging.ERROR, event, fields, exc_info=True)

    def _emit(
        self, level: int, event: str, fields: dict[str, object], exc_info: bool = False
    ) -> None:
        if not self._logger.isEnabledFor(level):
            return
        merged = {**self._bound, **fields} if self._bound else fields
        self._logger.log(level, event, exc_info=exc_info, extra={_FIELDS: merged}, stacklevel=3)


def get_logger(name: str) -> EventLogger:
    """The event logger called ``name`` (a dotted standard-library logger name)."""
    return EventLogger(logging.getLogger(name))


def _timestamp(record: logging.LogRecord) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{seconds}.{int(record.msecs):03d}Z"


def _fields(record: logging.LogRecord) -> Mapping[str, object]:
    fields = getattr(record, _FIELDS, None)
    return fields if isinstance(fields, dict) else {}


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per line: timestamp, level, logger, event, the fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as one line of JSON."""
        line: dict[str, Any] = {
            "timestamp": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in _fields(record).items():
            line.setdefault(key, value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


class ConsoleFormatter(logging.Formatter):
    """Readable lines: ``time [level] event  key=value ...  [logger]`` and any traceback."""

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` for a person at a terminal."""
        fields = "  ".join(f"{key}={value!r}" for key, value in _fields(record).items())
        text = (
            f"{_timestamp(record)} [{record.levelname.lower():<7}] {record.getMessage()}"
            f"{'  ' + fields if fields else ''}  [{record.name}]"
        )
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def configure_logging(
    level: str = "info", log_format: LogFormat = "auto", stream: TextIO | None = None
) -> None:
    """Send the agent's and standard-library logs (python-can, aiomqtt) to ``stream`` (stderr).

    Every line carries a timestamp, level and logger name; module loggers add ``module``.
    ``auto`` is the console format on a terminal and JSON lines otherwise.
    """
    out = stream or sys.stderr
    use_console = log_format == "console" or (log_format == "auto" and out.isatty())
    handler = logging.StreamHandler(out)
    handler.setFormatter(ConsoleFormatter() if use_console else JsonLinesFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    set_log_level(level)


def set_log_level(level: str) -> None:
    """Change the level of every logger at run time: debug, info, warning or error."""
    if level not in LEVELS:
        raise ValueError(f"unknown log level {level!r} (use one of {', '.join(LEVELS)})")
    logging.getLogger().setLevel(LEVELS[level])
