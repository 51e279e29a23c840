"""The supervisor: module lifecycle, restart policy, health, watchdog and shutdown."""

from edge_agent.module_order import DependencyCycle, start_order
from edge_agent.supervisor.lifecycle import TRANSITIONS, IllegalTransition, check_transition
from edge_agent.supervisor.runner import ModuleRunner
from edge_agent.supervisor.supervisor import Supervisor

__all__ = [
    "TRANSITIONS",
    "DependencyCycle",
    "IllegalTransition",
    "ModuleRunner",
    "Supervisor",
    "check_transition",
    "start_order",
]
