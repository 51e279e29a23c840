"""Heartbeat: the smallest useful module, and the template for module authors."""

from edge_agent.modules.heartbeat.module import HeartbeatConfig, HeartbeatModule

__all__ = ["HeartbeatConfig", "HeartbeatModule"]
