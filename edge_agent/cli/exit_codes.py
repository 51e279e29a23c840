"""How the ``edge-agent`` commands fail: :class:`UserError`, and the :class:`Exit` statuses.

The statuses themselves are defined once, in :mod:`edge_agent.exit_codes` (the supervisor and
modules use them too); they are re-exported here for the commands.
"""

from __future__ import annotations

from edge_agent.exit_codes import Exit

__all__ = ["Exit", "UserError"]


class UserError(Exception):
    """An expected failure: printed as one line, exits with ``code``, no traceback."""

    def __init__(self, message: str, code: Exit = Exit.BAD_INPUT) -> None:
        super().__init__(message)
        self.code = code
