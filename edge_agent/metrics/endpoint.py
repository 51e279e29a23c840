"""Starting the metrics endpoint for the supervisor, with the registry it serves."""

from __future__ import annotations

from collections.abc import Callable

from edge_agent.config.model import MetricsSettings
from edge_agent.logs import EventLogger
from edge_agent.metrics.collector import AgentCollector
from edge_agent.metrics.server import MetricsServer
from edge_agent.metrics.view import MetricsView


def start_endpoint(
    settings: MetricsSettings, source: Callable[[], MetricsView | None], log: EventLogger
) -> MetricsServer | None:
    """Serve the agent's metrics as ``settings`` say; None (logged) if the address is unusable.

    An endpoint that cannot bind (port taken, address not on this host) must not stop a
    vehicle's agent: it runs on without metrics and says why.
    """
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    registry.register(AgentCollector(source))
    try:
        server = MetricsServer(
            settings.host,
            settings.port,
            registry,
            max_scrapes=settings.max_scrapes,
            timeout_s=settings.timeout_s,
        )
    except OSError as error:
        log.warning(
            "metrics endpoint not started",
            listen=settings.listen,
            error=error.strerror or str(error),
        )
        return None
    host, port = server.address
    log.info("metrics endpoint serving", listen=f"{host}:{port}", path="/metrics")
    return server
