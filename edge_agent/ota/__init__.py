"""OTA building blocks shared by the installer module and the ``edge-agent ota`` commands.

Layout and state machine (:mod:`.layout`, :mod:`.state`; a state written by another version
is settled by :mod:`.settle`), TUF repository tooling (:mod:`.repo`) and client
(:mod:`.client`), resumable downloads (:mod:`.download`), bundles, their signed file lists and
safe extraction (:mod:`.bundle`, :mod:`.slot_files`, :mod:`.extract`), system updaters
(:mod:`.installers`) and the health gate (:mod:`.gate`). See docs/ota.md.
"""

from edge_agent.ota.errors import Code, OtaError
from edge_agent.ota.layout import OtaLayout
from edge_agent.ota.state import InstallLog, OtaState, Phase, StateStore

__all__ = ["Code", "InstallLog", "OtaError", "OtaLayout", "OtaState", "Phase", "StateStore"]
