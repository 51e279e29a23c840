"""OTA installer: TUF-verified, resumable, A/B (or RAUC) updates with guard and health gate."""

from edge_agent.modules.ota.config import OtaConfig
from edge_agent.modules.ota.module import OtaInstallerModule

__all__ = ["OtaConfig", "OtaInstallerModule"]
