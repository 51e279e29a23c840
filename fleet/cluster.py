"""A NATS JetStream cluster on loopback ports: the fleet back end's engine, for a bench or a test.

:class:`NatsCluster` starts ``nodes`` ``nats-server`` processes (Debian's binary), clustered,
JetStream on, each with an MQTT listener doing mutual TLS and ``verify_and_map`` (the client
certificate's subject is the NATS user), one user per vehicle confined to its own topics
(:mod:`edge_agent.fleet.permissions`), the MQTT user ``cloud``, and a password user
``worker`` for the workers on the plain NATS port (loopback only; docs/fleet.md says what a
deployment uses instead). Nodes can be killed (SIGKILL) and restarted on the same ports and
store, to prove that nothing acknowledged is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from edge_agent.fleet.permissions import checked_vehicle_id
from edge_agent.fleet.server_config import (
    CLOUD_IDENTITY,
    WORKER_USER,
    MqttTls,
    NodePorts,
    render_node,
)
from edge_agent.simulator.certs import DevCA, Issued

ORGANISATION = "edge-agent development"  # what edge_agent.simulator.certs writes into O=


class ClusterError(RuntimeError):
    """The cluster could not be started or did not become ready."""


def nats_server_binary() -> str | None:
    """The ``nats-server`` executable (PATH, then Debian's /usr/sbin), or None."""
    return shutil.which("nats-server") or shutil.which("nats-server", path="/usr/sbin:/usr/bin")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class FleetPki:
    """A development PKI for the cluster: CA, the listeners' certificate, client certificates."""

    directory: Path
    ca: DevCA
    server: Issued

    @classmethod
    def create(cls, directory: Path) -> FleetPki:
        """Make a CA and a server certificate for 127.0.0.1/localhost in ``directory``."""
        ca = DevCA.create(directory, name="fleet dev CA")
        server = ca.issue_server(directory, ["127.0.0.1", "localhost"], stem="nats")
        return cls(directory, ca, server)

    @property
    def ca_file(self) -> Path:
        """The CA certificate clients verify the listeners with."""
        return self.ca.cert_file

    def client(self, identity: str) -> Issued:
        """The client certificate of ``identity`` (a vehicle id or ``cloud``), made once."""
        issued = Issued(self.directory / f"{identity}.pem", self.directory / f"{identity}.key")
        if not issued.cert_file.exists():
            issued = self.ca.issue_client(self.directory, identity)
        return issued


class NatsCluster:
    """``nodes`` clustered ``nats-server`` processes with JetStream and MQTT (mutual TLS).

    Use as an async context manager; :meth:`wait_ready` is awaited on entry. The processes
    are stopped (SIGTERM, then SIGKILL) on exit; their stores stay in ``workdir``.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        nodes: int = 3,
        pki: FleetPki | None = None,
        vehicles: Sequence[str] = (),
        ready_timeout_s: float = 60.0,
    ) -> None:
        if nodes < 1:
            raise ValueError("a cluster needs at least one node")
        self.workdir = workdir
        self.vehicles = [checked_vehicle_id(vehicle) for vehicle in vehicles]
        self.pki = pki or FleetPki.create(workdir / "pki")
        self.worker_user = WORKER_USER
        self.worker_password = secrets.token_urlsafe(18)
        self.ready_timeout_s = ready_timeout_s
        self._ports = [NodePorts(*(_free_port() for _ in range(4))) for _ in range(nodes)]
        self._processes: list[subprocess.Popen[bytes] | None] = [None] * nodes
        self._binary = nats_server_binary()

    # -- addresses ------------------------------------------------------------------------

    @property
    def mqtt_addresses(self) -> list[tuple[str, int]]:
        """(host, port) of each node's MQTT listener (mutual TLS)."""
        return [("127.0.0.1", ports.mqtt) for ports in self._ports]

    @property
    def nats_urls(self) -> list[str]:
        """Each node's NATS URL, with the worker user's credentials (loopback bench only)."""
        return [
            f"nats://{self.worker_user}:{self.worker_password}@127.0.0.1:{ports.client}"
            for ports in self._ports
        ]

    @property
    def monitor_urls(self) -> list[str]:
        """Each node's HTTP monitoring endpoint (``/healthz``, ``/jsz``, ...)."""
        return [f"http://127.0.0.1:{ports.monitor}" for ports in self._ports]

    def config_file(self, index: int) -> Path:
        """Node ``index``'s configuration file."""
        return self.workdir / f"node-{index}" / "nats.conf"

    def log_file(self, index: int) -> Path:
        """Node ``index``'s log file."""
        return self.workdir / f"node-{index}" / "nats.log"

    def client_tls(self, identity: str) -> Issued:
        """A client certificate for ``identity`` (a vehicle id or ``cloud``)."""
        if identity != CLOUD_IDENTITY:
            checked_vehicle_id(identity)
        return self.pki.client(identity)

    # -- life cycle -----------------------------------------------------------------------

    async def __aenter__(self) -> NatsCluster:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Write every node's configuration, start them all and wait until ready.

        A port taken between choosing it and binding it (another process on the machine)
        makes a node exit at once: the cluster then starts again on new ports, up to 3 times.
        """
        if self._binary is None:
            raise ClusterError("nats-server is not installed (Debian: apt-get install nats-server)")
        for attempt in range(3):
            self._write_configs()
            for index in range(len(self._ports)):
                self._spawn(index)
            try:
                await self.wait_ready()
                return
            except ClusterError:
                if attempt == 2 or not self._port_taken():
                    await self.stop()
                    raise
                await self.stop()
                self._ports = [NodePorts(*(_free_port() for _ in range(4))) for _ in self._ports]

    def _port_taken(self) -> bool:
        return any(
            "address already in use" in self.log_file(index).read_text(errors="replace")
            for index in range(len(self._ports))
            if self.log_file(index).exists()
        )

    def _write_configs(self) -> None:
        tls = MqttTls(self.pki.ca_file, self.pki.server.cert_file, self.pki.server.key_file)
        for index in range(len(self._ports)):
            node = self.workdir / f"node-{index}"
            node.mkdir(parents=True, exist_ok=True)
            text = render_node(
                index,
                self._ports,
                node / "jetstream",
                tls,
                self.vehicles,
                self.worker_password,
                ORGANISATION,
            )
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
            descriptor = os.open(self.config_file(index), flags, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                handle.write(text)
            self.log_file(index).unlink(missing_ok=True)

    def _spawn(self, index: int) -> None:
        assert self._binary is not None
        log = self.log_file(index).open("ab")
        try:
            self._processes[index] = subprocess.Popen(
                [self._binary, "-c", str(self.config_file(index))],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        finally:
            log.close()

    async def wait_ready(
        self,
        *,
        timeout_s: float | None = None,
        server_only: bool = False,
        node: int | None = None,
    ) -> None:
        """Return once every started node (or only ``node``) reports healthy JetStream.

        ``server_only``: the node's JetStream is up and knows the meta leader, without every
        stream and consumer being current (what a node restarted after a kill can promise
        soon: an MQTT session's consumer left behind by the dead node may never catch up).
        """
        deadline = asyncio.get_running_loop().time() + (timeout_s or self.ready_timeout_s)
        for index, process in enumerate(self._processes):
            if process is None or node not in (None, index):
                continue
            while not await asyncio.to_thread(self._healthy, index, server_only):
                if process.poll() is not None:
                    raise ClusterError(
                        f"nats-server node {index} exited with {process.returncode}; "
                        f"see {self.log_file(index)}"
                    )
                if asyncio.get_running_loop().time() > deadline:
                    raise ClusterError(
                        f"nats-server node {index} not ready; see {self.log_file(index)}"
                    )
                await asyncio.sleep(0.1)

    def _healthy(self, index: int, server_only: bool = False) -> bool:
        query = "?js-server-only=true" if server_only else ""
        url = f"{self.monitor_urls[index]}/healthz{query}"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our loopback
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def running(self, index: int) -> bool:
        """Whether node ``index``'s process is alive."""
        process = self._processes[index]
        return process is not None and process.poll() is None

    async def kill(self, index: int) -> None:
        """SIGKILL node ``index`` (a crash: no goodbye to the cluster) and reap it."""
        process = self._processes[index]
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(process.wait)

    async def restart(self, index: int) -> None:
        """Start node ``index`` again (same ports, same store) and wait until it is ready."""
        await self.kill(index)
        self._spawn(index)
        await self.wait_ready(server_only=True, node=index)

    async def stop(self) -> None:
        """Stop every node (SIGTERM, SIGKILL after 10 s); safe to call twice."""
        for process in self._processes:
            if process is not None and process.poll() is None:
                process.terminate()
        for index, process in enumerate(self._processes):
            if process is None:
                continue
            try:
                await asyncio.to_thread(process.wait, 10)
            except subprocess.TimeoutExpired:
                process.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    await asyncio.to_thread(process.wait, 5)
            self._processes[index] = None
