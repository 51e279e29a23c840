"""Telemetry batcher: collection schemes, condition captures, batch formats v2/v1, spool."""

from edge_agent.modules.telemetry.config import TelemetryConfig
from edge_agent.modules.telemetry.module import TelemetryModule

__all__ = ["TelemetryConfig", "TelemetryModule"]
