"""``python -m edge_agent.process.host FD``: the child side of a process-isolated module.

It owns an event loop of its own, a local bus, and the module instance; it relays the module's
publishes to the agent and the agent's bridged topics to the module, reports liveness and
health, and exits when told to stop or when the agent goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import inspect
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from edge_agent.bus import Bus, Message, OverflowPolicy, Priority, Subscription
from edge_agent.clock import SystemClock
from edge_agent.discovery import import_module_class
from edge_agent.logs import bind_log_fields, configure_logging, get_logger
from edge_agent.module_api import Module, ModuleContext
from edge_agent.process.affinity import apply_cpu_affinity
from edge_agent.process.proxy import ALIVE_INTERVAL_S
from edge_agent.process.wire import encode_frame, read_frame

_log = get_logger("edge_agent.process.host")
AGENT_SENDER = "agent"
UPSTREAM_QUEUE = 10_000
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Ask Linux to SIGTERM us when the agent dies, even if our loop is busy."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class _Host:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.stop = asyncio.Event()
        self.failure: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.outbox: Subscription | None = None
        self.module: Module[Any] | None = None

    async def send(self, kind: str, **fields: Any) -> None:
        self.writer.write(encode_frame(kind, **fields))
        await self.writer.drain()

    async def receive(self, bus: Bus) -> None:
        while True:
            frame = await read_frame(self.reader)
            if frame is None or frame["t"] == "stop":
                self.stop.set()
                return
            if frame["t"] == "msg":
                bus.publish_nowait(
                    frame["topic"],
                    frame["payload"],
                    priority=Priority(frame.get("priority", Priority.BULK)),
                    sender=AGENT_SENDER,
                )
            elif frame["t"] == "reconfigure":
                await self.send("reconfigured", applied=await self.reconfigure(frame["config"]))

    async def reconfigure(self, options: Any) -> bool:
        """Validate ``options`` with the module's model and offer them to it in place."""
        module = self.module
        if module is None:
            return False
        try:
            config = type(module).config_model.model_validate(options)
            return await module.reconfigure(config) is True
        except Exception as error:  # a module that cannot take it asks for a restart instead
            _log.warning("reconfigure failed", error=f"{type(error).__name__}: {error}")
            return False

    async def upstream(self, bus: Bus) -> None:
        # Bounded: if the agent stops reading, the oldest go first, counted in health.
        self.outbox = bus.subscribe(
            "#", maxsize=UPSTREAM_QUEUE, overflow=OverflowPolicy.DROP_OLDEST
        )
        message: Message
        async for message in self.outbox:
            if message.sender == AGENT_SENDER or message.reply_to is not None:
                continue
            await self.send(
                "pub", topic=message.topic, payload=message.payload, priority=int(message.priority)
            )

    def task_failed(self, task: asyncio.Task[Any]) -> None:
        if not self.failure.done():
            self.failure.set_result(f"task {task.get_name()!r} failed: {task.exception()!r}")

    async def supervise(self, run_task: asyncio.Task[None]) -> str:
        """Wait for run() to end, a stop request, or a failed task; return a failure reason."""
        stop_wait = asyncio.ensure_future(self.stop.wait())
        watched: list[asyncio.Future[Any]] = [run_task, stop_wait, self.failure]
        await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        stop_wait.cancel()
        reason = ""
        if self.failure.done():
            reason = self.failure.result()
        elif run_task.done() and not run_task.cancelled():
            run_error = run_task.exception()
            if run_error is not None:
                reason = f"run failed: {type(run_error).__name__}: {run_error}"
        run_task.cancel()
        await asyncio.gather(run_task, return_exceptions=True)
        return reason

    async def report(self, context: ModuleContext) -> None:
        while True:
            report = context.health.report
            details = dict(report.details)
            if self.outbox is not None:
                details["upstream_dropped"] = self.outbox.dropped
            await self.send("health", ok=report.ok, reason=report.reason, details=details)
            await asyncio.sleep(ALIVE_INTERVAL_S)


async def _serve(fd: int) -> int:
    sock = socket.socket(fileno=fd)
    reader, writer = await asyncio.open_unix_connection(sock=sock)
    init = await read_frame(reader)
    if init is None or init["t"] != "init":
        return 2
    host = _Host(reader, writer)
    configure_logging(init["log_level"], init["log_format"])
    bind_log_fields(module=init["name"])  # as the supervisor does for in-process modules
    apply_cpu_affinity(init.get("cpu_affinity"))
    bus = Bus()
    context = ModuleContext(
        name=init["name"],
        bus=bus,
        state_dir=Path(init["state_dir"]),
        clock=SystemClock(),
        vehicle_id=init["vehicle_id"],
    )
    context.task_failed = host.task_failed
    try:
        module_class = import_module_class(init["name"], init["entry"])
        module = module_class(module_class.config_model.model_validate(init["config"]), context)
    except Exception as error:
        await host.send("failed", reason=f"could not load the module: {error}")
        return 1
    host.module = module
    try:
        await module.setup()
        await module.start()
    except Exception as error:
        await host.send("failed", reason=f"start failed: {type(error).__name__}: {error}")
        return 1
    helpers = [
        asyncio.create_task(host.receive(bus), name="host.receive"),
        asyncio.create_task(host.upstream(bus), name="host.upstream"),
        asyncio.create_task(host.report(context), name="host.report"),
    ]
    await host.send("ready")
    run_task = asyncio.create_task(module.run(), name=f"{init['name']}.run")
    reason = await host.supervise(run_task)
    if reason:
        with contextlib.suppress(OSError, ConnectionError):
            await host.send("failed", reason=reason)
    with contextlib.suppress(Exception):
        await module.stop()
    for callback in context.take_stop_callbacks():
        with contextlib.suppress(Exception):
            result = callback()
            if inspect.isawaitable(result):
                await result
    leftovers = [*context.tasks, *helpers]
    for task in leftovers:
        task.cancel()
    await asyncio.gather(*leftovers, return_exceptions=True)
    await bus.close()
    writer.close()
    return 1 if reason else 0


def main(argv: list[str] | None = None) -> int:
    """Serve one module over the inherited socket whose descriptor is the only argument."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not args[0].isdigit():
        print("usage: python -m edge_agent.process.host FD", file=sys.stderr)
        return 2
    _die_with_parent()
    # SIGINT from a terminal goes to the whole process group; the agent decides when we stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return asyncio.run(_serve(int(args[0])))


if __name__ == "__main__":
    sys.exit(main())
