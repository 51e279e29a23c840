"""A private mosquitto for benchmarks and tests: own port, config, certificates, ACL, data dir.

Never the machine's system broker: every instance listens on a free loopback port with a
config written into its own directory, and can be killed and restarted on the same port
(with or without its persistence file) to play a broker crash.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

MOSQUITTO = "/usr/sbin/mosquitto"
# The fleet ACL shipped in deploy/mosquitto/acl (a unit test keeps the two equal): the user
# "cloud" writes what goes down and reads what comes up, every vehicle the reverse.
UPSTREAM = (
    "telemetry/#",
    "events",
    "state/reported",
    "commands/+/reply",
    "ota/status",
    "status",
    # One level only: catalog/{hash} goes up, catalog/{hash}/ack comes down.
    "catalog/+",
    "diag/#",
)
DOWNSTREAM = ("state/desired", "commands/+", "ota/jobs", "catalog/+/ack", "catalog/+/request")
FLEET_ACL = [
    "user cloud",
    *(f"topic read vehicles/+/{suffix}" for suffix in UPSTREAM),
    *(f"topic write vehicles/+/{suffix}" for suffix in DOWNSTREAM),
    "",
    *(f"pattern write vehicles/%u/{suffix}" for suffix in UPSTREAM),
    *(f"pattern read vehicles/%u/{suffix}" for suffix in DOWNSTREAM),
]


class BrokerError(RuntimeError):
    """The private broker could not be started; the message says why (and where its log is)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def mosquitto_binary() -> str | None:
    """The mosquitto executable, or None when it is not installed."""
    if os.access(MOSQUITTO, os.X_OK):
        return MOSQUITTO
    return shutil.which("mosquitto")


@dataclass(frozen=True, slots=True)
class BrokerTls:
    """The broker's side of mutual TLS: the CA clients must chain to, and its own certificate."""

    ca_file: Path
    cert_file: Path
    key_file: Path


class LocalBroker:
    """One mosquitto process with its own configuration in ``directory``.

    With ``tls`` it requires client certificates and takes the certificate's common name as
    the username; ``acl_lines`` (default: :data:`FLEET_ACL`, directions split between the
    vehicles and the user ``cloud``) then confine each client. ``max_packet_size`` (bytes,
    0: mosquitto's default) makes the broker refuse larger packets from any client. Without
    ``tls`` it is a plaintext, anonymous broker for local benchmarks only.
    """

    def __init__(
        self,
        directory: Path,
        *,
        tls: BrokerTls | None = None,
        port: int | None = None,
        persistence: bool = False,
        acl_lines: list[str] | None = None,
        max_queued_messages: int = 1_000_000,
        max_packet_size: int = 0,
    ) -> None:
        self.directory = directory
        self.tls = tls
        self.port = port or free_port()
        self.persistence = persistence
        self.acl_lines = acl_lines
        self.max_queued_messages = max_queued_messages
        self.max_packet_size = max_packet_size
        self.process: subprocess.Popen[bytes] | None = None
        self.log_file = directory / "mosquitto.log"
        self.config_file = directory / "mosquitto.conf"

    # -- configuration ---------------------------------------------------------------------

    def _config(self) -> str:
        lines = [
            f"listener {self.port} 127.0.0.1",
            f"max_queued_messages {self.max_queued_messages}",
            "max_inflight_messages 0",
            f"log_dest file {self.log_file}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self.directory}/",
            "autosave_interval 3600",
        ]
        if self.max_packet_size:
            lines.append(f"max_packet_size {self.max_packet_size}")
        if os.geteuid() == 0:
            # Started as root, mosquitto would switch to the user "mosquitto", who cannot
            # read our private directory; stay who we are instead.
            lines.append("user root")
        if self.tls is None:
            lines.append("allow_anonymous true")
            return "\n".join(lines) + "\n"
        acl = self.acl_lines if self.acl_lines is not None else FLEET_ACL
        acl_file = self.directory / "acl"
        acl_file.write_text("\n".join(acl) + "\n")
        lines += [
            f"cafile {self.tls.ca_file}",
            f"certfile {self.tls.cert_file}",
            f"keyfile {self.tls.key_file}",
            "require_certificate true",
            "use_identity_as_username true",
            f"acl_file {acl_file}",
        ]
        return "\n".join(lines) + "\n"

    # -- life ------------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> None:
        """Write the config, start mosquitto and return once its port accepts connections."""
        binary = mosquitto_binary()
        if binary is None:
            raise BrokerError("mosquitto is not installed (apt-get install mosquitto)")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(self._config())
        self.process = subprocess.Popen(
            [binary, "-c", str(self.config_file)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                error = (
                    self.process.stderr.read().decode(errors="replace")
                    if (self.process.stderr)
                    else ""
                )
                raise BrokerError(
                    f"mosquitto exited with {self.process.returncode}: {error.strip()} "
                    f"(log: {self.log_file})"
                )
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2),
            ):
                return
            if time.monotonic() > deadline:
                self.kill()
                raise BrokerError(f"mosquitto did not listen on {self.port} within {timeout} s")
            time.sleep(0.02)

    def save(self, timeout: float = 5.0) -> None:
        """Make mosquitto write its persistence file now (SIGUSR1) and wait until it has."""
        assert self.process is not None
        assert self.persistence
        database = self.directory / "mosquitto.db"
        before = database.stat().st_mtime_ns if database.exists() else -1
        self.process.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while not database.exists() or database.stat().st_mtime_ns == before:
            if time.monotonic() > deadline:
                raise BrokerError("mosquitto did not write its persistence file")
            time.sleep(0.01)

    def kill(self) -> None:
        """Kill the broker at once (SIGKILL): no goodbye to clients, nothing saved."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self._close_pipes()

    def stop(self) -> None:
        """Stop the broker politely (SIGTERM); safe to call twice."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._close_pipes()

    def _close_pipes(self) -> None:
        if self.process is not None and self.process.stderr is not None:
            self.process.stderr.close()

    def restart(self) -> None:
        """Start again on the same port (after ``kill`` or ``stop``)."""
        self.kill()
        self.start()

    @property
    def running(self) -> bool:
        """Whether the mosquitto process is alive."""
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        """What mosquitto logged so far (for test failure messages)."""
        try:
            return self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def __enter__(self) -> LocalBroker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
