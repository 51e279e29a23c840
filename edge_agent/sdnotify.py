"""systemd's notify protocol (READY, STATUS, WATCHDOG, STOPPING) over NOTIFY_SOCKET."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping


class SystemdNotifier:
    """Sends sd_notify datagrams; every call is a no-op when NOTIFY_SOCKET is not set."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        # An abstract socket is written with a leading '@' and addressed with a leading NUL.
        self._address = "\0" + address[1:] if address.startswith("@") else address
        self._socket: socket.socket | None = None
        watchdog_usec = env.get("WATCHDOG_USEC", "")
        watchdog_pid = env.get("WATCHDOG_PID", "")
        self.watchdog_interval_s: float | None = None
        if (
            watchdog_usec.isdigit()
            and int(watchdog_usec) > 0
            and (not watchdog_pid or watchdog_pid == str(os.getpid()))
        ):
            self.watchdog_interval_s = int(watchdog_usec) / 1_000_000

    @property
    def enabled(self) -> bool:
        """Whether a service manager listens."""
        return bool(self._address)

    def notify(self, **fields: str) -> bool:
        """Send ``KEY=value`` lines (keys upper-cased); return False when nothing was sent."""
        if not self._address:
            return False
        text = "\n".join(f"{key.upper()}={value}" for key, value in fields.items())
        if self._socket is None:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        try:
            self._socket.sendto(text.encode(), self._address)
        except OSError:
            return False
        return True

    def ready(self, status: str) -> bool:
        """Tell the service manager start-up is complete."""
        return self.notify(ready="1", status=status)

    def status(self, status: str) -> bool:
        """Update the one-line status shown by ``systemctl status``."""
        return self.notify(status=status)

    def watchdog(self) -> bool:
        """Ping the watchdog."""
        return self.notify(watchdog="1")

    def stopping(self, status: str) -> bool:
        """Tell the service manager the agent is shutting down."""
        return self.notify(stopping="1", status=status)

    def close(self) -> None:
        """Close the socket; safe to call twice."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None
