"""Generic CAN tooling of the runtime: DBC loading, frame decoding, log files (no vehicle)."""
