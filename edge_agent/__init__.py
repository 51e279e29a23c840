"""edge-agent: an in-vehicle edge runtime.

The public module API is re-exported here; everything else is implementation.
"""

from edge_agent.bus import Bus, Message, OverflowPolicy, Priority, Subscription
from edge_agent.clock import Clock, SystemClock
from edge_agent.module_api import (
    EmptyConfig,
    Isolation,
    Module,
    ModuleContext,
    ModuleState,
    NotReady,
    RestartPolicy,
)
from edge_agent.streams import StreamRegistry, StreamTransforms
from edge_agent.version import __version__

__all__ = [
    "Bus",
    "Clock",
    "EmptyConfig",
    "Isolation",
    "Message",
    "Module",
    "ModuleContext",
    "ModuleState",
    "NotReady",
    "OverflowPolicy",
    "Priority",
    "RestartPolicy",
    "StreamRegistry",
    "StreamTransforms",
    "Subscription",
    "SystemClock",
    "__version__",
]
