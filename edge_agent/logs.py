"""Structured logging through structlog: JSON lines for machines, console lines for people.

A log line is an *event* (a short fixed phrase, ``"bus up"``) plus key=value fields
(``bus="body", bitrate=500000``): ``get_logger("edge_agent.can").info("bus up", bus="body")``.
structlog is configured once, the first time a logger is asked for. Its lines and the standard
library's (python-can, aiomqtt) meet in one handler on the root logger, whose
``structlog.stdlib.ProcessorFormatter`` renders both the same way. Fields bound to a task's
context (``log_context``, ``structlog.contextvars``) ride on every line that task and the tasks
it starts write, the standard library's included: the supervisor runs each module's tasks with
``module=<name>`` bound.
"""

from __future__ import annotations

import contextvars
import logging
import sys
from typing import Any, Literal, Protocol, TextIO

from edge_agent.logs_import import structlog

LogFormat = Literal["auto", "json", "console"]
LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
# The JSON line's own keys, first in every line in this order; the event's fields follow.
_LINE_KEYS = ("timestamp", "level", "logger", "event")


class EventLogger(Protocol):
    """What the agent's code logs through: a structlog ``BoundLogger`` over a stdlib logger.

    ``bind(module="can-reader")`` returns a logger that adds ``module`` to every line. A field
    that cannot be serialised is written with ``str()``; it never stops the line.
    """

    @property
    def name(self) -> str:
        """The underlying standard-library logger's name."""
        ...

    def bind(self, **fields: Any) -> EventLogger:
        """A logger that adds ``fields`` to every line (on top of those already bound)."""
        ...

    def debug(self, event: str, **fields: Any) -> Any:
        """Log ``event`` at debug level."""
        ...

    def info(self, event: str, **fields: Any) -> Any:
        """Log ``event`` at info level."""
        ...

    def warning(self, event: str, **fields: Any) -> Any:
        """Log ``event`` at warning level."""
        ...

    def error(self, event: str, **fields: Any) -> Any:
        """Log ``event`` at error level."""
        ...

    def exception(self, event: str, **fields: Any) -> Any:
        """Log ``event`` at error level with the exception being handled (call in ``except``)."""
        ...


# Run for our events before they become stdlib records, and for stdlib records (python-can,
# aiomqtt) in the formatter: both end up with the same keys.
_SHARED: list[structlog.typing.Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_logger_name,
    structlog.stdlib.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]
_configured = False


def _configure_structlog() -> None:
    """Configure structlog once: the processors are fixed, only the handler changes later."""
    global _configured  # noqa: PLW0603 - structlog's configuration is process-wide by design
    if _configured:
        return
    structlog.configure(
        # filter_by_level first: a line below the level is dropped before any other processor.
        processors=[
            structlog.stdlib.filter_by_level,
            *_SHARED,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Safe because nothing above changes after this call: configure_logging swaps the
        # stdlib handler, not structlog's configuration. Saves rebuilding a logger per line.
        cache_logger_on_first_use=True,
    )
    _configured = True


def get_logger(name: str) -> EventLogger:
    """The event logger called ``name`` (a dotted standard-library logger name)."""
    _configure_structlog()
    logger: EventLogger = structlog.stdlib.get_logger(name)
    return logger


def log_context(**fields: object) -> contextvars.Context:
    """A copy of the current context with ``fields`` bound for every line logged in it.

    Pass it to ``loop.create_task(..., context=...)``: the task, and every task it starts, adds
    ``fields`` to its lines, including those of standard-library loggers (python-can, aiomqtt).
    """
    context = contextvars.copy_context()
    context.run(structlog.contextvars.bind_contextvars, **fields)
    return context


def bind_log_fields(**fields: object) -> None:
    """Add ``fields`` to every line logged from now on in this context (task or thread).

    Tasks started afterwards inherit them; use ``log_context`` for a task of its own instead.
    """
    structlog.contextvars.bind_contextvars(**fields)


def _line_keys_first(
    _logger: object, _method: str, event_dict: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    """Put timestamp, level, logger and event first, as people reading journald expect."""
    return {**{key: event_dict[key] for key in _LINE_KEYS if key in event_dict}, **event_dict}


def _formatter(console: bool, colors: bool) -> logging.Formatter:
    renderer: list[structlog.typing.Processor]
    if console:
        # Named, not left to structlog's default, which is rich's wherever rich is importable.
        renderer = [
            structlog.dev.ConsoleRenderer(
                colors=colors, exception_formatter=structlog.dev.plain_traceback
            )
        ]
    else:
        renderer = [
            structlog.processors.format_exc_info,
            _line_keys_first,
            # default=str: a field json cannot encode (bytes, a path) is written as its str().
            structlog.processors.JSONRenderer(default=str, ensure_ascii=False),
        ]
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderer],
    )


def configure_logging(
    level: str = "info", log_format: LogFormat = "auto", stream: TextIO | None = None
) -> None:
    """Send the agent's and standard-library logs (python-can, aiomqtt) to ``stream`` (stderr).

    Every line carries a timestamp, level and logger name; module loggers add ``module``.
    ``auto`` is the console format on a terminal and JSON lines otherwise.
    """
    _configure_structlog()
    out = stream or sys.stderr
    terminal = out.isatty()
    use_console = log_format == "console" or (log_format == "auto" and terminal)
    handler = logging.StreamHandler(out)
    handler.setFormatter(_formatter(use_console, colors=terminal))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    set_log_level(level)


def set_log_level(level: str) -> None:
    """Change the level of every logger at run time: debug, info, warning or error."""
    if level not in LEVELS:
        raise ValueError(f"unknown log level {level!r} (use one of {', '.join(LEVELS)})")
    logging.getLogger().setLevel(LEVELS[level])
