"""CAN reader: several python-can buses, lenient DBC decoding, status, counters, a writer."""

from edge_agent.modules.can_reader.config import BusConfig, CanReaderConfig
from edge_agent.modules.can_reader.module import CanReaderModule

__all__ = ["BusConfig", "CanReaderConfig", "CanReaderModule"]
