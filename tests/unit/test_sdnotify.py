"""sd_notify: datagrams on NOTIFY_SOCKET (path or abstract), a no-op without it."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.sdnotify import SystemdNotifier


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A datagram socket bound in tmp_path, as systemd's would be."""
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    yield sock, str(path)
    sock.close()


def test_without_notify_socket_everything_is_a_no_op() -> None:
    notifier = SystemdNotifier(environ={})
    assert not notifier.enabled
    assert notifier.ready("up") is False
    assert notifier.status("x") is False
    assert notifier.watchdog() is False
    assert notifier.stopping("bye") is False
    assert notifier.watchdog_interval_s is None
    notifier.close()
    notifier.close()


def test_datagrams_reach_a_path_socket(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    notifier = SystemdNotifier(environ={"NOTIFY_SOCKET": path})
    assert notifier.enabled
    assert notifier.status("starting 3 modules")
    assert notifier.ready("running 3/3 modules")
    assert notifier.watchdog()
    assert notifier.stopping("stopping modules")
    received = [sock.recv(4096).decode() for _ in range(4)]
    assert received == [
        "STATUS=starting 3 modules",
        "READY=1\nSTATUS=running 3/3 modules",
        "WATCHDOG=1",
        "STOPPING=1\nSTATUS=stopping modules",
    ]
    notifier.close()
    notifier.close()


def test_abstract_socket_addressing_with_at_sign() -> None:
    name = f"edge-agent-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(5)
    try:
        notifier = SystemdNotifier(environ={"NOTIFY_SOCKET": "@" + name})
        assert notifier.ready("ok")
        assert sock.recv(4096) == b"READY=1\nSTATUS=ok"
        notifier.close()
    finally:
        sock.close()


def test_a_vanished_socket_does_not_raise(tmp_path: Path) -> None:
    notifier = SystemdNotifier(environ={"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    assert notifier.enabled
    assert notifier.watchdog() is False
    notifier.close()


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"WATCHDOG_USEC": "200000"}, 0.2),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}, 30.0),
        ({"WATCHDOG_USEC": "200000", "WATCHDOG_PID": "1"}, None),  # meant for another process
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({}, None),
    ],
)
def test_watchdog_interval_from_environment(
    environ: dict[str, str], expected: float | None
) -> None:
    notifier = SystemdNotifier(environ={"NOTIFY_SOCKET": "/run/x", **environ})
    assert notifier.watchdog_interval_s == expected


def test_reads_the_process_environment_by_default(
    monkeypatch: pytest.MonkeyPatch, listener: tuple[socket.socket, str]
) -> None:
    sock, path = listener
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.setenv("WATCHDOG_USEC", "500000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    notifier = SystemdNotifier()
    assert notifier.watchdog_interval_s == 0.5
    assert notifier.watchdog()
    assert sock.recv(4096) == b"WATCHDOG=1"
    notifier.close()
