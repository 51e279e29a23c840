"""A real agent running the fast path, on a CAN channel other processes can share.

The suite needs the agent in a process of its own (with its fast path in a further child
process, as in a vehicle) and a CAN channel that crosses processes: SocketCAN ``vcan0`` where
the kernel has it, otherwise python-can's ``udp_multicast`` inside a network namespace created
for the run (needs root), so the multicast stays on its loopback, never on the machine's
real network (docs/scenarios.md, "The CAN channel").
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from edge_agent.health import HealthFile, NoAgentRunning
from edge_agent.module_api import ModuleState
from edge_agent.simulator.can_io import inside_network_namespace
from edge_agent.simulator.rig.netns import NamespaceUnavailable, in_namespace, multicast_namespace

VCAN = "vcan0"
MULTICAST_GROUP = "239.74.163.2"
FAST_PATH = "fast-path"
PYTHON = [sys.executable, "-P"]


class ChannelUnavailable(Exception):
    """No cross-process CAN channel can be set up here; the message says why and what to do."""


class AgentFailed(Exception):
    """The agent did not start, or stopped running; the message says why."""


@dataclass(frozen=True, slots=True)
class CanChannel:
    """A CAN channel for the agent and the simulator; ``namespace`` to run both inside."""

    interface: str
    channel: str
    namespace: str | None = None

    def command(self, argv: Sequence[str]) -> list[str]:
        """``argv`` as run on this channel (inside the namespace, if there is one)."""
        return in_namespace(self.namespace, argv) if self.namespace else list(argv)

    def describe(self) -> str:
        """E.g. ``socketcan vcan0`` or ``udp_multicast 239.74.163.2 in namespace ea-...``."""
        where = f" in network namespace {self.namespace}" if self.namespace else ""
        return f"{self.interface} {self.channel}{where}"


def vcan_present(name: str = VCAN) -> bool:
    """Whether the kernel has a CAN interface called ``name`` (e.g. ``vcan0``)."""
    return Path("/sys/class/net", name).exists()


@contextmanager
def cross_process_channel(interface: str | None, channel: str | None) -> Iterator[CanChannel]:
    """The channel to run on: as given, else ``vcan0`` if present, else udp_multicast.

    For ``udp_multicast`` outside a network namespace, a namespace is created (root needed)
    and deleted afterwards; :class:`ChannelUnavailable` says why when that is impossible.
    """
    if interface is None:
        interface = "socketcan" if vcan_present(channel or VCAN) else "udp_multicast"
    if channel is None:
        channel = MULTICAST_GROUP if interface == "udp_multicast" else VCAN
    if interface == "socketcan" and not vcan_present(channel):
        raise ChannelUnavailable(
            f"no SocketCAN interface {channel} (create it: sudo modprobe vcan && sudo ip link "
            f"add {channel} type vcan && sudo ip link set {channel} up)"
        )
    if interface != "udp_multicast" or inside_network_namespace():
        yield CanChannel(interface, channel)
        return
    try:
        namespace_context = multicast_namespace("ea-suite")
        namespace = namespace_context.__enter__()
    except NamespaceUnavailable as error:
        raise ChannelUnavailable(
            f"no vcan0 and no network namespace for udp_multicast: {error} (run as root, "
            "or create vcan0: see docs/simulator.md)"
        ) from None
    try:
        yield CanChannel(interface, channel, namespace)
    finally:
        namespace_context.__exit__(None, None, None)


def agent_config(
    state_dir: Path, channel: CanChannel, *, start_timeout_s: float = 10.0
) -> dict[str, Any]:
    """The agent.toml of a suite run: the fast path alone, in its own process, on ``channel``.

    A mapping, written with ``tomli_w.dumps``. ``start_timeout_s`` bounds the fast path's
    start-up (raise it in an emulated machine).
    """
    fast_path = {
        "required": True,
        "isolation": "process",
        "start_timeout_s": start_timeout_s,
        "config": {"can": {"interface": channel.interface, "channel": channel.channel}},
    }
    return {
        "agent": {
            "vehicle_id": "scenario-suite",
            "state_dir": str(state_dir),
            "log_level": "warning",
            "log_format": "json",
        },
        "modules": {FAST_PATH: fast_path},
    }


def fast_path_status(state_dir: Path) -> dict[str, Any]:
    """The fast path's health entry; :class:`AgentFailed` if the agent or the module is down."""
    try:
        snapshot = HealthFile(state_dir).read(time.time())
    except NoAgentRunning as error:
        raise AgentFailed(str(error)) from None
    module = snapshot.get("modules", {}).get(FAST_PATH)
    if not isinstance(module, dict):
        raise AgentFailed(f"the agent in {state_dir} does not run the {FAST_PATH} module")
    if module.get("state") != ModuleState.RUNNING:
        problem = module.get("last_error") or module.get("reason") or ""
        raise AgentFailed(f"the {FAST_PATH} module is {module.get('state')} {problem}".strip())
    return module


class AgentProcess:
    """``edge-agent run`` with the suite's config in a scratch directory (a context manager)."""

    def __init__(self, channel: CanChannel, *, start_timeout_s: float = 60.0) -> None:
        self.channel = channel
        self.start_timeout_s = start_timeout_s
        self._stack = ExitStack()
        scratch = Path(self._stack.enter_context(tempfile.TemporaryDirectory(prefix="ea-suite-")))
        self.state_dir = scratch / "state"
        self.config_path = scratch / "agent.toml"
        self.log_path = scratch / "agent.log"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> AgentProcess:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self) -> None:
        """Start the agent and return once its fast path runs (:class:`AgentFailed` if not)."""
        self.config_path.write_text(
            tomli_w.dumps(agent_config(self.state_dir, self.channel)), encoding="utf-8"
        )
        argv = [*PYTHON, "-m", "edge_agent", "run", "--config", str(self.config_path)]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.channel.command(argv), stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            self.check()
            try:
                fast_path_status(self.state_dir)
            except AgentFailed as error:
                if time.monotonic() > deadline:
                    raise AgentFailed(
                        f"the agent did not get its fast path running within "
                        f"{self.start_timeout_s:.0f} s ({error}){self.log_tail()}"
                    ) from None
                time.sleep(0.1)
            else:
                return

    def check(self) -> None:
        """Raise :class:`AgentFailed` if the agent process has exited."""
        if self.process is not None and self.process.poll() is not None:
            raise AgentFailed(
                f"the agent exited with status {self.process.returncode}{self.log_tail()}"
            )

    def log_tail(self, lines: int = 15) -> str:
        """The end of the agent's log, indented, for error messages."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        tail = text.strip().splitlines()[-lines:]
        return "".join(f"\n  | {line}" for line in tail)

    def close(self) -> None:
        """Stop the agent (SIGTERM, then SIGKILL after 20 s) and remove its scratch directory."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        self._stack.close()
