"""The agent-side stand-in for a module that runs in its own child process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from edge_agent.bus import OverflowPolicy, Priority, Subscription
from edge_agent.module_api import Module, ModuleContext
from edge_agent.process.launcher import launcher
from edge_agent.process.wire import encode_frame, read_frame

# The child reports liveness every ALIVE_INTERVAL_S; missing it for LIVENESS_TIMEOUT_S makes
# the watchdog check fail.
ALIVE_INTERVAL_S = 0.25
LIVENESS_TIMEOUT_S = 2.0
BRIDGE_QUEUE = 1000
# How long the child may take to apply new options in place before we count it as declined.
RECONFIGURE_TIMEOUT_S = 5.0


class ChildProcessFailed(RuntimeError):
    """The module's child process reported a failure or exited on its own."""


class ProcessModuleProxy(Module[BaseModel]):
    """Runs ``target`` in ``python -m edge_agent.process.host`` and mirrors its lifecycle.

    ``start`` returns when the child's module is ready; ``run`` relays the child's publishes
    to the bus and fails when the child fails or exits; ``reconfigure`` hands new options to
    the child's module, which applies them in place or declines (the process keeps running
    either way); ``stop`` asks the child to stop and kills it when it does not within its
    grace period.
    """

    name = "process-proxy"

    def __init__(
        self,
        target: type[Module[Any]],
        config: BaseModel,
        context: ModuleContext,
        *,
        log_level: str = "info",
        log_format: str = "json",
        stop_grace_s: float = 2.0,
        cpu_affinity: list[int] | None = None,
    ) -> None:
        super().__init__(config, context)
        self.target = target
        self._log_level = log_level
        self._log_format = log_format
        self._stop_grace_s = stop_grace_s
        self._cpu_affinity = cpu_affinity
        self._process: subprocess.Popen[bytes] | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._last_alive = 0.0
        self._write_lock = asyncio.Lock()
        self._reconfigured: asyncio.Future[bool] | None = None

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs."""
        return self._process.pid if self._process else None

    async def _send(self, kind: str, **fields: Any) -> None:
        if self._writer is None or self._writer.is_closing():
            return
        async with self._write_lock:
            self._writer.write(encode_frame(kind, **fields))
            await self._writer.drain()

    async def setup(self) -> None:
        """Start the child process and hand it the module, its config and its context."""
        parent_end, child_end = socket.socketpair()
        try:
            self._process = await launcher().spawn(
                [
                    sys.executable,
                    "-P",  # never let the working directory shadow the installed package
                    "-m",
                    "edge_agent.process.host",
                    str(child_end.fileno()),
                ],
                pass_fds=(child_end.fileno(),),
                stdin=subprocess.DEVNULL,
                # The child must resolve the module class exactly as the agent did.
                env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
            )
        finally:
            child_end.close()
        self.context.on_stop(self._kill_if_running)
        self._reader, self._writer = await asyncio.open_unix_connection(sock=parent_end)
        await self._send(
            "init",
            entry=f"{self.target.__module__}:{self.target.__qualname__}",
            name=self.context.name,
            config=self.config.model_dump(mode="json"),
            state_dir=str(self.context.state_dir),
            vehicle_id=self.context.vehicle_id,
            log_level=self._log_level,
            cpu_affinity=self._cpu_affinity,
            log_format=self._log_format,
        )

    async def start(self) -> None:
        """Wait for the child's ``ready`` (the supervisor bounds this with the start limit)."""
        assert self._reader is not None
        while True:
            frame = await read_frame(self._reader)
            if frame is None:
                raise ChildProcessFailed(f"child exited during start ({await self._exit_text()})")
            if frame["t"] == "ready":
                break
            if frame["t"] == "failed":
                raise ChildProcessFailed(str(frame.get("reason", "unknown")))
            self._handle(frame)
        self._last_alive = time.monotonic()
        self.context.add_liveness_check(self.alive)
        self.context.health.set_detail("pid", self.pid)
        for topic_filter in getattr(self.target, "bridge_subscriptions", ()):
            subscription = self.context.bus.subscribe(
                topic_filter,
                maxsize=BRIDGE_QUEUE,
                overflow=OverflowPolicy.DROP_OLDEST,
                name=f"{self.context.name}.bridge:{topic_filter}",
            )
            self.context.on_stop(_unsubscriber(self.context, subscription))
            self.context.spawn(self._forward(subscription), f"bridge[{topic_filter}]")

    def alive(self) -> bool:
        """Whether the child reported in within the liveness timeout."""
        return time.monotonic() - self._last_alive < LIVENESS_TIMEOUT_S

    async def _forward(self, subscription: Subscription) -> None:
        async for message in subscription:
            await self._send(
                "msg", topic=message.topic, payload=message.payload, priority=int(message.priority)
            )

    def _handle(self, frame: dict[str, Any]) -> None:
        kind = frame["t"]
        if kind == "alive":
            self._last_alive = time.monotonic()
        elif kind == "pub":
            self.context.bus.publish_nowait(
                frame["topic"],
                frame["payload"],
                priority=Priority(frame.get("priority", Priority.BULK)),
                sender=self.context.name,
            )
        elif kind == "reconfigured":
            if self._reconfigured is not None and not self._reconfigured.done():
                self._reconfigured.set_result(frame.get("applied") is True)
        elif kind == "health":
            self._last_alive = time.monotonic()
            health = self.context.health
            if frame.get("ok", True):
                health.healthy()
            else:
                health.degraded(str(frame.get("reason", "")))
            for key, value in dict(frame.get("details", {})).items():
                health.set_detail(key, value)

    async def run(self) -> None:
        """Relay the child's frames until it fails or exits."""
        assert self._reader is not None
        while True:
            frame = await read_frame(self._reader)
            if frame is None:
                raise ChildProcessFailed(f"child process exited ({await self._exit_text()})")
            if frame["t"] == "failed":
                raise ChildProcessFailed(str(frame.get("reason", "unknown")))
            self._handle(frame)

    async def reconfigure(self, config: BaseModel) -> bool:
        """Offer ``config`` to the child's module; True once it applied it in place."""
        process = self._process
        if process is None or process.returncode is not None or self._writer is None:
            return False
        reply: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._reconfigured = reply
        try:
            await self._send("reconfigure", config=config.model_dump(mode="json"))
            async with asyncio.timeout(RECONFIGURE_TIMEOUT_S):
                applied = await reply
        except (TimeoutError, OSError, ConnectionError):
            applied = False
        finally:
            self._reconfigured = None
        if applied:
            self.config = config
        return applied

    async def _exit_text(self) -> str:
        if self._process is None:
            return "never started"
        await self._exited_within(self._process, 1.0)
        code = self._process.returncode
        return "still running" if code is None else f"status {code}"

    async def stop(self) -> None:
        """Ask the child to stop; terminate, then kill it if it does not exit in its grace."""
        process = self._process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(OSError, ConnectionError):
            await self._send("stop")
        if not await self._exited_within(process, self._stop_grace_s):
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            await self._exited_within(process, 0.5)
        await self._kill_if_running()

    @staticmethod
    async def _exited_within(process: subprocess.Popen[bytes], grace_s: float) -> bool:
        """Wait for (and reap) the child for up to ``grace_s``; whether it has exited."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            await asyncio.to_thread(process.wait, grace_s)
        return process.returncode is not None

    async def _kill_if_running(self) -> None:
        process = self._process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await self._exited_within(process, 1.0)
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _unsubscriber(context: ModuleContext, subscription: Subscription) -> Callable[[], None]:
    def unsubscribe() -> None:
        context.bus.unsubscribe(subscription)

    return unsubscribe
