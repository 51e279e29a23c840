"""How the demo's processes share a CAN channel, chosen by what this machine allows.

* ``vcan``: a SocketCAN ``vcan0`` exists (``sudo modprobe vcan`` and ``ip link add``): the
  simulator, the CAN reader and the fast path (own process) each open it, as in a vehicle.
* ``netns``: no vcan, but root and iproute2: python-can's ``udp_multicast`` confined to a
  network namespace the demo creates; every demo process runs inside it, so the multicast
  never leaves the namespace's loopback.
* ``in-process``: neither: python-can's ``virtual`` bus, which only connects buses of one
  process, so the simulated vehicle runs inside the agent and the fast path in its event
  loop. It still brakes, but without the process isolation that protects its latency.

``DEMO_CAN=vcan|netns|in-process`` forces a mode.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from edge_agent.simulator.rig.netns import CHANNEL as MULTICAST_CHANNEL

VCAN = "vcan0"


@dataclass(frozen=True, slots=True)
class CanMode:
    """The chosen mode: the python-can interface and channel every participant opens."""

    name: str
    interface: str
    channel: str
    why: str

    @property
    def fast_path_isolation(self) -> str:
        """The fast path runs in its own process unless the bus cannot cross processes."""
        return "in-loop" if self.name == "in-process" else "process"


def _vcan_up() -> bool:
    flags = Path(f"/sys/class/net/{VCAN}/flags")
    try:
        return bool(int(flags.read_text().strip(), 16) & 0x1)  # IFF_UP
    except (OSError, ValueError):
        return False


def _namespaces_possible() -> str:
    """Empty when a network namespace can be made here, else why not."""
    if shutil.which("ip") is None:
        return "no 'ip' command (apt-get install iproute2)"
    if os.geteuid() != 0:
        return "creating a network namespace needs root"
    probe = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        return f"ip netns does not work here: {probe.stderr.strip()}"
    return ""


VCAN_HINT = "sudo modprobe vcan && sudo ip link add vcan0 type vcan && sudo ip link set vcan0 up"


def choose_mode(forced: str | None = None) -> CanMode:
    """The best mode this machine allows (or ``forced``), with the reason in words."""
    vcan = CanMode("vcan", "socketcan", VCAN, f"SocketCAN {VCAN} is up")
    netns = CanMode(
        "netns",
        "udp_multicast",
        MULTICAST_CHANNEL,
        "no vcan0; python-can udp_multicast inside a private network namespace",
    )
    if forced == "vcan" or (forced is None and _vcan_up()):
        if not _vcan_up():
            raise SystemExit(f"demo: DEMO_CAN=vcan but {VCAN} is not up; run: {VCAN_HINT}")
        return vcan
    problem = _namespaces_possible()
    if forced == "netns" or (forced is None and not problem):
        if problem:
            raise SystemExit(f"demo: DEMO_CAN=netns but {problem}")
        return netns
    if forced not in (None, "in-process"):
        raise SystemExit(f"demo: DEMO_CAN={forced!r}: use vcan, netns or in-process")
    reason = problem or "forced"
    return CanMode(
        "in-process",
        "virtual",
        "demo",
        f"no vcan0 and no network namespace ({reason}); for the real set-up run: {VCAN_HINT}",
    )
