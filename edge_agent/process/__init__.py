"""Running a module in a supervised child process of its own, bridged to the agent's bus.

A module whose class sets ``isolation = Isolation.PROCESS`` is not instantiated in the agent.
The supervisor runs a :class:`~edge_agent.process.proxy.ProcessModuleProxy` in its place, which
starts ``python -m edge_agent.process.host`` with a socket pair, and from then on the child is
the module: same config, same lifecycle and restart policy, health and liveness reported back,
and the bus topics it declares in ``bridge_subscriptions`` forwarded to it. Nothing the agent's
event loop does (or fails to do) can delay the child's own loop.
"""
