"""A throw-away network namespace with multicast on loopback, for cross-process CAN timing.

python-can's ``udp_multicast`` interface lets separate processes share a CAN channel on the
host. Inside a namespace of its own, its traffic cannot reach any real network
(docs/simulator.md, "Running"). Creating one needs root (``ip netns add``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager


class NamespaceUnavailable(RuntimeError):
    """A network namespace cannot be made here; the message says why."""


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise NamespaceUnavailable(f"ip {' '.join(args)}: {result.stderr.strip()}")


@contextmanager
def multicast_namespace(prefix: str = "edge-agent") -> Iterator[str]:
    """Create a namespace with loopback up and 224.0.0.0/4 routed to it; delete it afterwards."""
    if shutil.which("ip") is None:
        raise NamespaceUnavailable("the 'ip' command (iproute2) is not installed")
    if os.geteuid() != 0:
        raise NamespaceUnavailable("creating a network namespace needs root")
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    _ip("netns", "add", name)
    try:
        _ip("-n", name, "link", "set", "lo", "up")
        _ip("-n", name, "link", "set", "lo", "multicast", "on")
        _ip("-n", name, "route", "add", "224.0.0.0/4", "dev", "lo")
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], capture_output=True, check=False)


def in_namespace(name: str, command: Sequence[str]) -> list[str]:
    """The command line that runs ``command`` inside namespace ``name``."""
    return ["ip", "netns", "exec", name, *command]


# The multicast group python-can's udp_multicast uses by default for IPv4 is in 239.0.0.0/8;
# any address in 224.0.0.0/4 works inside the namespace.
CHANNEL = "239.74.163.2"
