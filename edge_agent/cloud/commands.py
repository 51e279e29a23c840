"""Commands from the cloud: ``commands/{name}`` in, ``commands/{name}/reply`` out.

A request is a JSON object ``{"id": "...", "args": {...}, "timeout_s": 5}`` (``args`` and
``timeout_s`` optional); the reply is ``{"id", "command", "ok": true, "result": ...}`` or
``{"id", "command", "ok": false, "error": "..."}``. Built-ins: ``ping``, ``get_status``,
``set_log_level`` (``{"level": "debug"}``) and ``snapshot`` (asks whoever serves the bus
request ``telemetry/snapshot`` to capture now). Any other name is offered to a module serving
the bus request ``agent/commands/{name}``; with none, it is an unknown command. Unknown
commands and malformed requests get an error reply and change nothing. A repeated id (QoS 1
redelivery) gets the first reply again instead of running twice.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from edge_agent.bus import Bus, Message, NoResponder, RequestFailed, RequestTimeout
from edge_agent.cloud.outbox import Outbox
from edge_agent.cloud.topics import COMMANDS, IN_PREFIX
from edge_agent.logs import LEVELS, get_logger, set_log_level
from edge_agent.supervisor.services import STATUS_TOPIC
from edge_agent.version import __version__

SNAPSHOT_TOPIC = "telemetry/snapshot"
MODULE_COMMAND_PREFIX = "agent/commands/"
BUILT_INS = ("get_status", "ping", "set_log_level", "snapshot")
MAX_ID_CHARS = 128
MAX_REQUEST_BYTES = 64 * 1024
MAX_RUNNING = 8
REMEMBERED_IDS = 256
_log = get_logger("edge_agent.cloud")


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
    if len(payload) > MAX_REQUEST_BYTES:
        raise MalformedRequest(f"request larger than {MAX_REQUEST_BYTES} bytes", None)
    try:
        request = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as error:
        raise MalformedRequest(f"request is not valid JSON: {error}", None) from None
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
    ) -> None:
        self.bus = bus
        self.outbox = outbox
        self.vehicle_id = vehicle_id
        self.timeout_s = timeout_s
        self.link_summary = link_summary
        self.handled = 0
        self._running: set[asyncio.Task[None]] = set()
        self._replies: OrderedDict[str, dict[str, Any] | None] = OrderedDict()
        self._built_ins: dict[str, Callable[[dict[str, Any], float], Awaitable[Any]]] = {
            "ping": self._ping,
            "get_status": self._get_status,
            "set_log_level": self._set_log_level,
            "snapshot": self._snapshot,
        }

    def listen(self) -> Callable[[], None]:
        """Start taking commands from the bus; returns the unsubscriber."""
        return self.bus.listen(
            f"{IN_PREFIX}{COMMANDS}/+", self._on_command, maxsize=100, name="cloud-link.commands"
        )

    async def _on_command(self, message: Message) -> None:
        name = message.topic.rsplit("/", 1)[-1]
        try:
            command_id, args, timeout = parse_request(message.payload)
        except MalformedRequest as error:
            await self._reply(name, error.command_id, error=error.reason)
            return
        if command_id in self._replies:
            earlier = self._replies[command_id]
            if earlier is not None:  # a redelivery: answer the same again, do not re-run
                await self.outbox.send(f"{COMMANDS}/{name}/reply", earlier)
            return
        if len(self._running) >= MAX_RUNNING:
            await self._reply(name, command_id, error=f"busy: {MAX_RUNNING} commands running")
            return
        self._remember(command_id, None)
        task = asyncio.get_running_loop().create_task(
            self._run(name, command_id, args, timeout), name=f"cloud-link.command[{name}]"
        )
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def close(self) -> None:
        """Cancel commands still running (the module stops); they get no reply."""
        for task in list(self._running):
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)

    def _remember(self, command_id: str, reply: dict[str, Any] | None) -> None:
        self._replies[command_id] = reply
        self._replies.move_to_end(command_id)
        while len(self._replies) > REMEMBERED_IDS:
            self._replies.popitem(last=False)

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
        reply: dict[str, Any] = {"id": command_id, "command": name, "ok": error is None}
        if error is None:
            reply["result"] = result
        else:
            reply["error"] = error
        if command_id is not None:
            self._remember(command_id, reply)
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
