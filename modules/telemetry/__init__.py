"""Telemetry batcher: collection schemes, condition captures, batch formats v2/v1, spool.

The module class is imported on first use, so that ``edge_agent.modules.telemetry.batch``
(the batch format's reference codec, used by back ends, the cloud stand-in and tools) can
be imported without loading the module's CAN and DBC dependencies.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edge_agent.modules.telemetry.config import TelemetryConfig
    from edge_agent.modules.telemetry.module import TelemetryModule

__all__ = ["TelemetryConfig", "TelemetryModule"]

_LAZY = {
    "TelemetryConfig": "edge_agent.modules.telemetry.config",
    "TelemetryModule": "edge_agent.modules.telemetry.module",
}


def __getattr__(name: str) -> Any:
    """Import ``TelemetryConfig`` and ``TelemetryModule`` when first asked for."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)
