"""Starting module child processes from a thread that keeps the agent's original priority.

Linux keeps a nice value per thread and a child inherits the value of the thread that forks
it. The agent may lower its own priority (``agent.nice``) so its bulk work (decoding,
compression, spool, uploads) yields the CPU to the fast path, but process-isolated modules
must not inherit that: they are started by this launcher thread, created before the agent
renices itself, so they run at the priority the agent was started with. No privilege is
needed: any thread may raise its own nice value.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import queue
import subprocess
import threading
from collections.abc import Sequence
from typing import Any, cast

_Request = tuple[list[str], dict[str, Any], "concurrent.futures.Future[subprocess.Popen[bytes]]"]


class Launcher:
    """A thread that runs ``subprocess.Popen`` on request."""

    def __init__(self) -> None:
        self._requests: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name="edge-agent.launcher", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while (request := self._requests.get()) is not None:
            args, options, future = request
            if not future.set_running_or_notify_cancel():
                continue
            try:
                child = subprocess.Popen(args, **options)
                future.set_result(cast("subprocess.Popen[bytes]", child))
            except BaseException as error:
                future.set_exception(error)

    async def spawn(self, args: Sequence[str], **options: Any) -> subprocess.Popen[bytes]:
        """Start ``args`` from the launcher thread; options as for ``subprocess.Popen``."""
        future: concurrent.futures.Future[subprocess.Popen[bytes]] = concurrent.futures.Future()
        self._requests.put((list(args), options, future))
        return await asyncio.wrap_future(future)


_LAUNCHER: Launcher | None = None
_LOCK = threading.Lock()


def launcher() -> Launcher:
    """The process-wide launcher, created on first use."""
    global _LAUNCHER  # noqa: PLW0603 - one launcher thread per process, by design
    with _LOCK:
        if _LAUNCHER is None:
            _LAUNCHER = Launcher()
        return _LAUNCHER


def lower_agent_priority(increment: int) -> int:
    """Create the launcher, then raise this thread's nice value by ``increment``; return it."""
    launcher()
    if increment <= 0:
        return os.nice(0)
    return os.nice(increment)
