"""Built-in modules, each registered in the ``edge_agent.modules`` entry-point group."""
