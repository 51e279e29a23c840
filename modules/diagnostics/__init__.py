"""Remote diagnostics: DTCs, OBD-II PIDs and UDS DIDs over ISO-TP (can-isotp, udsoncan)."""

from edge_agent.modules.diagnostics.config import DiagnosticsConfig
from edge_agent.modules.diagnostics.module import DiagnosticsModule

__all__ = ["DiagnosticsConfig", "DiagnosticsModule"]
