"""The metrics endpoint: a small HTTP server in its own threads, bounded against bad scrapers.

prometheus_client's ``start_http_server`` has no limit on concurrent requests and no socket
timeout, so a client that opens many connections, or sends its request a byte a minute,
holds threads forever. This server serves ``GET /metrics`` (and ``/``) from the registry,
answers at most :attr:`MetricsServer.max_scrapes` requests at a time (503 beyond, at once),
and gives every connection :attr:`MetricsServer.timeout_s` to send its request and take the
answer. It never touches the event loop: the collector reads a published snapshot.
"""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

PATHS = frozenset({"/metrics", "/"})


class _Handler(BaseHTTPRequestHandler):
    server: _BoundedServer
    protocol_version = "HTTP/1.0"  # one request per connection: nothing kept open

    def setup(self) -> None:
        self.request.settimeout(self.server.timeout_s)  # for every read and write
        super().setup()

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] not in PATHS:
            self._answer(404, b"not found: scrape /metrics\n", "text/plain; charset=utf-8")
            return
        try:
            body = generate_latest(self.server.registry)
        except Exception:  # a collector bug: say so, keep serving
            self._answer(500, b"metrics collection failed\n", "text/plain; charset=utf-8")
            return
        self._answer(200, body, CONTENT_TYPE_LATEST)

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: one line per scrape would flood the agent's log."""


class _BoundedServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 16

    def __init__(
        self,
        address: tuple[str, int],
        registry: CollectorRegistry,
        max_scrapes: int,
        timeout_s: float,
    ) -> None:
        self.registry = registry
        self.timeout_s = timeout_s
        self.slots = threading.BoundedSemaphore(max_scrapes)
        self.refused = 0
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.acquire(blocking=False):
            self.refused += 1
            _busy(request)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except Exception:
            self.slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


def _busy(request: socket.socket) -> None:
    try:
        request.settimeout(0.5)
        request.sendall(
            b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\nRetry-After: 1\r\n\r\n"
        )
    except OSError:
        pass


class MetricsServer:
    """Serves ``registry`` on ``host:port`` from a thread of its own until :meth:`close`."""

    def __init__(
        self,
        host: str,
        port: int,
        registry: CollectorRegistry,
        *,
        max_scrapes: int = 4,
        timeout_s: float = 5.0,
    ) -> None:
        self.max_scrapes = max_scrapes
        self.timeout_s = timeout_s
        self._server = _BoundedServer((host, port), registry, max_scrapes, timeout_s)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="agent.metrics", daemon=True
        )
        self._thread.start()

    @property
    def address(self) -> tuple[str, int]:
        """The address actually bound (port 0 in the config picks a free one)."""
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def refused(self) -> int:
        """Requests answered 503 because every scrape slot was busy."""
        return self._server.refused

    def close(self) -> None:
        """Stop serving and release the port; safe to call twice."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=self.timeout_s)
        self._server.server_close()
