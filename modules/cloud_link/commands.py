"""Commands from the cloud: ``commands/{name}`` in, ``commands/{name}/reply`` out.

A request is a JSON object ``{"id": "...", "args": {...}, "timeout_s": 5}`` (``args`` and
``timeout_s`` optional); the reply is ``{"id", "command", "ok": true, "result": ...}`` or
``{"id", "command", "ok": false, "error": "..."}``. Built-ins: ``ping``, ``get_status``,
``set_log_level`` (``{"level": "debug"}``) and ``snapshot`` (asks whoever serves the bus
request ``telemetry/snapshot`` to capture now). Any other name is offered to a module serving
the bus request ``agent/commands/{name}``; with none, it is an unknown command. Unknown
commands and malformed requests get an error reply and change nothing. A repeated id (QoS 1
redelivery, also after a restart: ids are kept on disk, see :mod:`.command_memory`) gets the
first reply again instead of running twice, or a duplicate refusal when the first run was
cut short.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from edge_agent.agent_topics import STATUS_TOPIC
from edge_agent.bus import (
    Bus,
    Message,
    NoResponder,
    OverflowPolicy,
    RequestFailed,
    RequestTimeout,
)
from edge_agent.logs import LEVELS, get_logger, set_log_level
from edge_agent.modules.cloud_link.command_memory import CommandMemory
from edge_agent.modules.cloud_link.outbox import Outbox
from edge_agent.modules.cloud_link.topics import COMMANDS, IN_PREFIX
from edge_agent.untrusted import UntrustedDataError, load_json_bounded
from edge_agent.version import __version__

SNAPSHOT_TOPIC = "telemetry/snapshot"
MODULE_COMMAND_PREFIX = "agent/commands/"
BUILT_INS = ("get_status", "ping", "set_log_level", "snapshot")
MAX_ID_CHARS = 128
MAX_REQUEST_BYTES = 64 * 1024
MAX_REQUEST_DEPTH = 16
MAX_RUNNING = 8
# Commands waiting to be looked at; one more is answered "busy" at once.
COMMAND_QUEUE = 100
_log = get_logger("edge_agent.module.cloud-link")


class CommandError(Exception):
    """A command cannot run or failed; the message is the reply's ``error``."""


class MalformedRequest(Exception):
    """A request that cannot be run: ``reason`` for the reply, and its id when readable."""

    def __init__(self, reason: str, command_id: str | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.command_id = command_id


def parse_request(payload: Any) -> tuple[str, dict[str, Any], float | None]:
    """``(id, args, timeout_s)`` of a request; raises MalformedRequest when it is malformed."""
    if not isinstance(payload, bytes):
        raise MalformedRequest("request must be a JSON object (got no bytes)", None)
    try:
        request = load_json_bounded(
            payload, max_bytes=MAX_REQUEST_BYTES, max_depth=MAX_REQUEST_DEPTH, what="request"
        )
    except UntrustedDataError as error:
        raise MalformedRequest(str(error), None) from None
    if not isinstance(request, dict):
        raise MalformedRequest("request must be a JSON object", None)
    command_id = request.get("id")
    if not isinstance(command_id, str) or not 0 < len(command_id) <= MAX_ID_CHARS:
        raise MalformedRequest(f"request needs an 'id' of 1 to {MAX_ID_CHARS} chars", None)
    unknown = set(request) - {"id", "args", "timeout_s"}
    if unknown:
        raise MalformedRequest(f"unknown request key {sorted(unknown)[0]!r}", command_id)
    args = request.get("args", {})
    if not isinstance(args, dict):
        raise MalformedRequest("'args' must be a JSON object", command_id)
    timeout = request.get("timeout_s")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0
    ):
        raise MalformedRequest("'timeout_s' must be a positive number", command_id)
    return command_id, args, None if timeout is None else float(timeout)


class CommandService:
    """Runs cloud commands (see the module docstring) and spools their replies."""

    def __init__(
        self,
        *,
        bus: Bus,
        outbox: Outbox,
        vehicle_id: str,
        timeout_s: float,
        link_summary: Callable[[], dict[str, Any]],
        memory: CommandMemory | None = None,
    ) -> None:
        self.bus = bus
        self.outbox = outbox
        self.vehicle_id = vehicle_id
        self.timeout_s = timeout_s
        self.link_summary = link_summary
        self.handled = 0
        self._running: set[asyncio.Task[None]] = set()
        self.memory = memory or CommandMemory(None)
        self._built_ins: dict[str, Callable[[dict[str, Any], float], Awaitable[Any]]] = {
            "ping": self._ping,
            "get_status": self._get_status,
            "set_log_level": self._set_log_level,
            "snapshot": self._snapshot,
        }

    def listen(self) -> Callable[[], None]:
        """Start taking commands from the bus; returns the unsubscriber."""
        return self.bus.listen(
            f"{IN_PREFIX}{COMMANDS}/+",
            self._on_command,
            maxsize=COMMAND_QUEUE,
            overflow=OverflowPolicy.DROP_NEWEST,
            name="cloud-link.commands",
            on_drop=self._dropped,
        )

    def _dropped(self, message: Message) -> None:
        """Answer a command the full queue turned away with "busy", never drop it silently.

        The id is not remembered, so the same command can be sent again.
        """
        name = message.topic.rsplit("/", 1)[-1]
        try:
            command_id: str | None = parse_request(message.payload)[0]
        except MalformedRequest as error:
            command_id = error.command_id
        reply = _reply(
            name, command_id, error=f"busy: {COMMAND_QUEUE} commands waiting; send it again"
        )
        task = asyncio.get_running_loop().create_task(
            self._send_reply(name, reply), name="cloud-link.command-busy"
        )
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _on_command(self, message: Message) -> None:
        name = message.topic.rsplit("/", 1)[-1]
        try:
            command_id, args, timeout = parse_request(message.payload)
        except MalformedRequest as error:
            await self._reply(name, error.command_id, error=error.reason)
            return
        if command_id in self.memory:
            earlier = self.memory.reply_for(command_id)
            if earlier is not None:  # a redelivery: answer the same again, do not re-run
                await self.outbox.send(f"{COMMANDS}/{name}/reply", earlier)
            elif not any(t.get_name() == _task_name(name, command_id) for t in self._running):
                # Taken before a restart (or its reply was too big to keep): it may have run.
                await self.outbox.send(
                    f"{COMMANDS}/{name}/reply",
                    _reply(
                        name,
                        command_id,
                        error=f"duplicate: command {command_id} was received before; not run again",
                    ),
                )
            return
        if len(self._running) >= MAX_RUNNING:
            await self._reply(name, command_id, error=f"busy: {MAX_RUNNING} commands running")
            return
        # Written down before it runs: after a crash mid-run, a redelivery is not run again.
        await self.memory.remember(command_id, None)
        task = asyncio.get_running_loop().create_task(
            self._run(name, command_id, args, timeout), name=_task_name(name, command_id)
        )
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _send_reply(self, name: str, reply: dict[str, Any]) -> None:
        await self.outbox.send(f"{COMMANDS}/{name}/reply", reply)

    async def close(self) -> None:
        """Cancel commands still running (the module stops); they get no reply."""
        for task in list(self._running):
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)

    async def _run(
        self, name: str, command_id: str, args: dict[str, Any], asked_s: float | None
    ) -> None:
        limit = min(asked_s or self.timeout_s, self.timeout_s)
        try:
            async with asyncio.timeout(limit):
                result = await self._dispatch(name, args, limit)
        except CommandError as error:
            await self._reply(name, command_id, error=str(error))
        except TimeoutError:
            await self._reply(name, command_id, error=f"timed out after {limit:g} s")
        except Exception as error:  # a failing command must not take the link down
            _log.warning("command failed", command=name, error=repr(error))
            await self._reply(name, command_id, error=f"{type(error).__name__}: {error}")
        else:
            await self._reply(name, command_id, result=result)

    async def _dispatch(self, name: str, args: dict[str, Any], limit: float) -> Any:
        built_in = self._built_ins.get(name)
        if built_in is not None:
            return await built_in(args, limit)
        try:
            reply = await self.bus.request(
                MODULE_COMMAND_PREFIX + name, args, timeout=limit, sender="cloud-link"
            )
        except NoResponder:
            raise CommandError(
                f"unknown command {name!r} (built-in: {', '.join(BUILT_INS)})"
            ) from None
        except RequestFailed as error:
            raise CommandError(str(error)) from None
        except RequestTimeout:
            raise TimeoutError from None
        return reply.payload

    async def _reply(
        self, name: str, command_id: str | None, *, result: Any = None, error: str | None = None
    ) -> None:
        reply = _reply(name, command_id, result=result, error=error)
        if command_id is not None:
            await self.memory.remember(command_id, reply)
        self.handled += 1
        await self.outbox.send(f"{COMMANDS}/{name}/reply", reply)

    # -- built-ins -------------------------------------------------------------------------

    async def _ping(self, args: dict[str, Any], limit: float) -> Any:
        _no_args("ping", args)
        return {
            "pong": True,
            "vehicle_id": self.vehicle_id,
            "agent_version": __version__,
            "time": time.time(),
        }

    async def _get_status(self, args: dict[str, Any], limit: float) -> Any:
        _no_args("get_status", args)
        try:
            reply = await self.bus.request(STATUS_TOPIC, None, timeout=limit, sender="cloud-link")
            status: Any = reply.payload
        except NoResponder:
            status = None
        return {"agent": status, "link": self.link_summary()}

    async def _set_log_level(self, args: dict[str, Any], limit: float) -> Any:
        level = args.get("level")
        if set(args) != {"level"} or level not in LEVELS:
            choices = ", ".join(LEVELS)
            raise CommandError(f'set_log_level needs args {{"level": one of {choices}}}')
        set_log_level(str(level))
        _log.warning("log level changed by cloud command", level=level)
        return {"level": level}

    async def _snapshot(self, args: dict[str, Any], limit: float) -> Any:
        try:
            reply = await self.bus.request(SNAPSHOT_TOPIC, args, timeout=limit, sender="cloud-link")
        except NoResponder:
            raise CommandError(
                f"no module serves {SNAPSHOT_TOPIC}: condition capture is not available "
                "(is the telemetry batcher running?)"
            ) from None
        except RequestFailed as error:
            raise CommandError(f"snapshot failed: {error}") from None
        except RequestTimeout:
            raise TimeoutError from None
        return reply.payload


def _no_args(name: str, args: dict[str, Any]) -> None:
    if args:
        raise CommandError(f"{name} takes no args (got {', '.join(sorted(args))})")


def _task_name(name: str, command_id: str) -> str:
    return f"cloud-link.command[{name}:{command_id}]"


def _reply(
    name: str, command_id: str | None, *, result: Any = None, error: str | None = None
) -> dict[str, Any]:
    reply: dict[str, Any] = {"id": command_id, "command": name, "ok": error is None}
    if error is None:
        reply["result"] = result
    else:
        reply["error"] = error
    return reply
