"""Cloud commands: request parsing (property-tested) and the service on a real bus."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.bus import Bus, Message
from edge_agent.modules.cloud_link.command_memory import MEMORY_FILE, CommandMemory
from edge_agent.modules.cloud_link.commands import CommandService, MalformedRequest, parse_request
from edge_agent.spool import SpoolPriority
from fixtures.waiting import wait_until


class FakeOutbox:
    """Collects what would be spooled (the service only needs ``send``)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []
        self.arrived = asyncio.Event()

    async def send(self, stream: str, payload: Any, priority: SpoolPriority | None = None) -> None:
        self.sent.append((stream, payload))
        self.arrived.set()


@given(st.binary(max_size=200))
def test_any_bytes_parse_or_are_refused_with_a_reason(payload: bytes) -> None:
    try:
        command_id, args, timeout = parse_request(payload)
    except MalformedRequest as error:
        assert error.reason  # noqa: PT017 - either outcome is valid; pytest.raises cannot say so
        return
    assert isinstance(command_id, str)
    assert isinstance(args, dict)
    assert timeout is None or timeout > 0


@given(
    st.dictionaries(
        st.sampled_from(["id", "args", "timeout_s", "x"]),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(),
            st.text(max_size=5),
            st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
        ),
    )
)
def test_any_json_object_parses_or_is_refused_keeping_a_readable_id(
    request: dict[str, Any],
) -> None:
    try:
        command_id, _, _ = parse_request(json.dumps(request).encode())
    except MalformedRequest as error:
        if isinstance(request.get("id"), str) and request["id"]:
            assert error.command_id == request["id"]  # noqa: PT017 - as above
        return
    assert command_id == request["id"]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{", "not valid JSON"),
        (b"[1]", "must be a JSON object"),
        (b"{}", "needs an 'id'"),
        (b'{"id": "a", "args": [1]}', "'args' must be a JSON object"),
        (b'{"id": "a", "timeout_s": 0}', "'timeout_s' must be a positive number"),
        (b'{"id": "a", "timeout_s": true}', "'timeout_s' must be a positive number"),
        (b'{"id": "a", "extra": 1}', "unknown request key 'extra'"),
    ],
)
def test_malformed_requests_say_why(payload: bytes, reason: str) -> None:
    with pytest.raises(MalformedRequest, match=reason):
        parse_request(payload)


@pytest.fixture
async def service() -> AsyncIterator[tuple[Bus, CommandService, FakeOutbox]]:
    bus = Bus()
    outbox = FakeOutbox()
    commands = CommandService(
        bus=bus,
        outbox=outbox,
        vehicle_id="v-1",
        timeout_s=1.0,  # type: ignore[arg-type]
        link_summary=lambda: {"state": "online"},
    )
    stop = commands.listen()
    yield bus, commands, outbox
    stop()
    await commands.close()
    await bus.close()


async def run(bus: Bus, outbox: FakeOutbox, name: str, payload: Any) -> dict[str, Any]:
    before = len(outbox.sent)
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    await bus.publish(f"cloud/in/commands/{name}", raw)
    await wait_until(lambda: len(outbox.sent) > before, timeout=5, what=f"the reply to {name}")
    stream, reply = outbox.sent[-1]
    assert stream == f"commands/{name}/reply"
    result: dict[str, Any] = reply
    return result


async def test_ping_and_unknown_and_malformed(
    service: tuple[Bus, CommandService, FakeOutbox],
) -> None:
    bus, _, outbox = service
    reply = await run(bus, outbox, "ping", {"id": "1"})
    assert reply["ok"]
    assert reply["id"] == "1"
    assert reply["result"]["pong"] is True
    reply = await run(bus, outbox, "format_disk", {"id": "2"})
    assert not reply["ok"]
    assert "unknown command 'format_disk'" in reply["error"]
    reply = await run(bus, outbox, "ping", b"not json")
    assert reply == {"id": None, "command": "ping", "ok": False, "error": reply["error"]}
    assert "not valid JSON" in reply["error"]


async def test_set_log_level_checks_its_argument(
    service: tuple[Bus, CommandService, FakeOutbox],
) -> None:
    bus, _, outbox = service
    root = logging.getLogger()
    before = root.level
    try:
        reply = await run(bus, outbox, "set_log_level", {"id": "a", "args": {"level": "loud"}})
        assert not reply["ok"]
        assert root.level == before  # a bad request changes nothing
        reply = await run(bus, outbox, "set_log_level", {"id": "b", "args": {"level": "debug"}})
        assert reply["ok"]
        assert root.level == logging.DEBUG
    finally:
        root.setLevel(before)


async def test_snapshot_needs_a_responder(service: tuple[Bus, CommandService, FakeOutbox]) -> None:
    bus, _, outbox = service
    reply = await run(bus, outbox, "snapshot", {"id": "s1"})
    assert not reply["ok"]
    assert "no module serves telemetry/snapshot" in reply["error"]

    async def capture(message: Message) -> dict[str, Any]:
        return {"captured": True, "reason": message.payload.get("reason")}

    stop = bus.serve("telemetry/snapshot", capture)
    reply = await run(bus, outbox, "snapshot", {"id": "s2", "args": {"reason": "cloud"}})
    stop()
    assert reply["ok"]
    assert reply["result"] == {"captured": True, "reason": "cloud"}


async def test_module_commands_run_once_per_id_and_time_out(
    service: tuple[Bus, CommandService, FakeOutbox],
) -> None:
    bus, _, outbox = service
    runs: list[Any] = []

    async def count(message: Message) -> int:
        runs.append(message.payload)
        return len(runs)

    async def stall(message: Message) -> None:
        await asyncio.Event().wait()  # never answers

    stops = [bus.serve("agent/commands/count", count), bus.serve("agent/commands/stall", stall)]
    first = await run(bus, outbox, "count", {"id": "same"})
    again = await run(bus, outbox, "count", {"id": "same"})  # a QoS 1 redelivery
    assert first == again == {"id": "same", "command": "count", "ok": True, "result": 1}
    assert len(runs) == 1
    reply = await run(bus, outbox, "stall", {"id": "t", "timeout_s": 0.2})
    assert reply["error"] == "timed out after 0.2 s"
    for stop in stops:
        stop()


async def test_command_ids_survive_a_restart(tmp_path: Path) -> None:
    """A redelivery after a restart gets the kept reply; one cut short is refused, not re-run."""
    runs: list[Any] = []

    async def count(message: Message) -> int:
        runs.append(message.payload)
        return len(runs)

    file = tmp_path / MEMORY_FILE
    for restart in range(2):
        bus = Bus()
        outbox = FakeOutbox()
        memory = CommandMemory(file)
        await memory.load()
        commands = CommandService(
            bus=bus,
            outbox=outbox,
            vehicle_id="v-1",
            timeout_s=1.0,
            link_summary=dict,
            memory=memory,
        )
        stops = [commands.listen(), bus.serve("agent/commands/count", count)]
        reply = await run(bus, outbox, "count", {"id": "once"})
        assert reply == {"id": "once", "command": "count", "ok": True, "result": 1}, restart
        if restart == 0:  # a crash after the id was written down, before the reply
            await memory.remember("cut-short", None)
        else:
            reply = await run(bus, outbox, "count", {"id": "cut-short"})
            assert reply["ok"] is False
            assert reply["error"].startswith("duplicate: command cut-short was received before")
        for stop in stops:
            stop()
        await commands.close()
        await bus.close()
    assert len(runs) == 1


async def test_command_memory_is_bounded_and_ignores_a_damaged_file(tmp_path: Path) -> None:
    file = tmp_path / MEMORY_FILE
    memory = CommandMemory(file, capacity=3)
    for number in range(5):
        await memory.remember(f"c{number}", {"ok": True})
    again = CommandMemory(file, capacity=3)
    await again.load()
    assert [i for i in ("c0", "c1", "c2", "c3", "c4") if i in again] == ["c2", "c3", "c4"]
    file.write_bytes(b"[" * 100_000)
    damaged = CommandMemory(file)
    await damaged.load()
    assert "c4" not in damaged
