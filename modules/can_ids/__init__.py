"""CAN intrusion detection: learn a bus's clean traffic; flag injection, flooding, fuzzing and more.

``edge-agent ids train/scan`` (offline) and the ``can-ids`` module (live) run the same
:class:`~edge_agent.modules.can_ids.detect.Detector`; docs/ids.md has the figures.
"""

from edge_agent.modules.can_ids.config import CanIdsConfig
from edge_agent.modules.can_ids.module import CanIdsModule

__all__ = ["CanIdsConfig", "CanIdsModule"]
