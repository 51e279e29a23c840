"""Obstacle/brake fast path: time-to-collision staging, own process, own CAN socket."""

from edge_agent.modules.fast_path.config import FastPathConfig
from edge_agent.modules.fast_path.module import FastPathModule
from edge_agent.modules.fast_path.policy import Decision, PolicyConfig, Stage, decide

__all__ = ["Decision", "FastPathConfig", "FastPathModule", "PolicyConfig", "Stage", "decide"]
