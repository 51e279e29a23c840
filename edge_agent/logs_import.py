"""structlog, imported so that it does not load rich (and pygments with it).

``import structlog`` imports ``structlog.dev``, which imports rich at once wherever rich is
installed (a development environment usually has it: pytest and amqtt's CLI bring it), whether
or not rich is then used. That cost the agent 6.7 MB of resident memory in the soak
(docs/reliability.md). The agent renders tracebacks with ``structlog.dev.plain_traceback``, so
while structlog is first imported, rich is marked as absent: ``structlog.dev`` then finds no
rich, as in a vehicle install, where rich is not in the dependency closure at all. Code that
imports rich later still gets it; only structlog's optional use of it is turned off.
"""

from __future__ import annotations

import sys

# Optional imports of structlog.dev that pull in large libraries when present.
_HIDDEN = ("rich",)


def _import_structlog_without_rich() -> None:
    hidden = [name for name in _HIDDEN if name not in sys.modules]
    for name in hidden:
        # None in sys.modules makes `import rich` raise ImportError (the import system's
        # documented way to block an import); structlog.dev catches it.
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        import structlog  # noqa: F401 - imported for its side effect on sys.modules
    finally:
        for name in hidden:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]


_import_structlog_without_rich()

import structlog  # noqa: E402 - only after the import above has kept rich out

__all__ = ["structlog"]
