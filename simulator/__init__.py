"""Vehicle simulator and cloud stand-in (imported as ``edge_agent.simulator``)."""
