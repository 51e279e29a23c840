"""The agent's structured logger: JSON lines and console lines from events with fields."""

from __future__ import annotations

import asyncio
import contextvars
import io
import json
import logging
import re
from collections.abc import Iterator

import can
import pytest

from edge_agent.logs import (
    bind_log_fields,
    configure_logging,
    get_logger,
    log_context,
    set_log_level,
)


@pytest.fixture(autouse=True)
def _restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_carry_event_fields_and_bound_fields() -> None:
    out = io.StringIO()
    configure_logging("info", "json", out)
    log = get_logger("edge_agent.test").bind(module="can-reader")
    log.info("bus up", bus="body", bitrate=500_000)
    log.debug("not shown")
    line = json.loads(out.getvalue())
    assert line["event"] == "bus up"
    assert line["level"] == "info"
    assert line["logger"] == "edge_agent.test"
    assert (line["module"], line["bus"], line["bitrate"]) == ("can-reader", "body", 500_000)
    assert line["timestamp"].endswith("Z")
    assert "T" in line["timestamp"]
    assert out.getvalue().count("\n") == 1


def test_unserialisable_fields_and_percent_signs_do_not_break_a_line() -> None:
    out = io.StringIO()
    configure_logging("info", "json", out)
    get_logger("edge_agent.test").warning("100% full", path=io.BytesIO, raw=b"\x00")
    line = json.loads(out.getvalue())
    assert line["event"] == "100% full"
    assert "BytesIO" in line["path"]
    assert line["raw"] == "b'\\x00'"


def test_exception_is_logged_with_its_traceback() -> None:
    out = io.StringIO()
    configure_logging("info", "json", out)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        get_logger("edge_agent.test").exception("module failed", module="x")
    line = json.loads(out.getvalue())
    assert line["level"] == "error"
    assert "RuntimeError: boom" in line["exception"]


# structlog's console layout: time [level] event [logger] key=value ...
CONSOLE_LINE = re.compile(
    r"^(?P<time>\S+Z) \[(?P<level>\w+)\s*\] (?P<event>.+?)\s+\[(?P<logger>[\w.]+)\](?P<fields>.*)$"
)


def test_console_format_and_foreign_loggers_share_the_handler() -> None:
    out = io.StringIO()
    configure_logging("debug", "console", out)
    get_logger("edge_agent.test").debug("spool opened", records=3)
    logging.getLogger("can.interfaces").warning("plain %s", "stdlib")
    first, second = (CONSOLE_LINE.match(line) for line in out.getvalue().splitlines())
    assert first is not None
    assert second is not None
    assert (first["level"], first["event"], first["logger"]) == (
        "debug",
        "spool opened",
        "edge_agent.test",
    )
    assert first["fields"].split() == ["records=3"]
    assert (second["level"], second["event"], second["logger"]) == (
        "warning",
        "plain stdlib",
        "can.interfaces",
    )
    assert second["fields"] == ""
    assert "\x1b[" not in out.getvalue(), "no colour codes when the stream is not a terminal"


def test_console_shows_a_plain_traceback_under_the_line() -> None:
    out = io.StringIO()
    configure_logging("info", "console", out)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        get_logger("edge_agent.test").exception("module failed", module="x")
    line, *traceback = out.getvalue().splitlines()
    match = CONSOLE_LINE.match(line)
    assert match is not None
    assert (match["level"], match["event"], match["fields"].split()) == (
        "error",
        "module failed",
        ["module=x"],
    )
    assert traceback[0] == "Traceback (most recent call last):"
    assert traceback[-1] == "RuntimeError: boom"


def test_json_line_keys_come_first_in_a_fixed_order() -> None:
    out = io.StringIO()
    configure_logging("info", "json", out)
    get_logger("edge_agent.test").bind(module="ota").info("slot switched", slot="b")
    assert list(json.loads(out.getvalue())) == [
        "timestamp",
        "level",
        "logger",
        "event",
        "module",
        "slot",
    ]


def test_stdlib_records_come_out_as_the_same_json_lines() -> None:
    out = io.StringIO()
    configure_logging("info", "json", out)
    get_logger("edge_agent.test").warning("ours", n=1)
    logging.getLogger("aiomqtt").warning("theirs %d", 2)
    try:
        raise OSError("link down")
    except OSError:
        logging.getLogger("aiomqtt").exception("lost")
    ours, theirs, failed = (json.loads(x) for x in out.getvalue().splitlines())
    assert set(ours) - {"n"} == set(theirs) == {"timestamp", "level", "logger", "event"}
    assert (theirs["level"], theirs["logger"], theirs["event"]) == (
        "warning",
        "aiomqtt",
        "theirs 2",
    )
    assert theirs["timestamp"].endswith("Z")
    assert failed["level"] == "error"
    assert "OSError: link down" in failed["exception"]


def test_python_can_records_come_out_as_json_lines() -> None:
    # A real virtual bus: python-can logs its bus configuration and a repeated shutdown.
    out = io.StringIO()
    configure_logging("debug", "json", out)
    bus = can.Bus(interface="virtual", channel="test-logs-python-can")
    bus.shutdown()
    bus.shutdown()
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    from_can = [line for line in lines if line["logger"].split(".")[0] == "can"]
    assert any("already shut down" in line["event"] for line in from_can)
    for line in from_can:
        assert line["level"] == "debug"
        assert line["timestamp"].endswith("Z")
        assert list(line)[:4] == ["timestamp", "level", "logger", "event"]


async def test_fields_bound_to_a_task_context_ride_on_its_lines_and_its_childrens() -> None:
    out = io.StringIO()
    configure_logging("info", "json", out)
    ours, theirs = get_logger("edge_agent.test"), logging.getLogger("can.test")

    async def child() -> None:
        ours.info("child")

    async def module_task() -> None:
        ours.info("ours")
        theirs.info("theirs")
        await asyncio.get_running_loop().create_task(child())
        ours.info("overridden", module="explicit")

    loop = asyncio.get_running_loop()
    await loop.create_task(module_task(), context=log_context(module="can-reader"))
    ours.info("outside")
    lines = {line["event"]: line for line in map(json.loads, out.getvalue().splitlines())}
    assert [lines[event]["module"] for event in ("ours", "theirs", "child")] == ["can-reader"] * 3
    assert lines["overridden"]["module"] == "explicit", "a field given in the call wins"
    assert "module" not in lines["outside"], "the binding stays with the task"


def test_bound_log_fields_reach_later_lines_in_the_same_context() -> None:
    out = io.StringIO()
    configure_logging("info", "json", out)

    def in_a_child_process() -> None:
        bind_log_fields(module="fast-path")
        logging.getLogger("can.test").info("stdlib")
        get_logger("edge_agent.test").info("ours")

    contextvars.copy_context().run(in_a_child_process)
    get_logger("edge_agent.test").info("outside")
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert [line.get("module") for line in lines] == ["fast-path", "fast-path", None]


def test_level_changes_at_run_time_and_rejects_unknown_levels() -> None:
    out = io.StringIO()
    configure_logging("warning", "json", out)
    log = get_logger("edge_agent.test")
    log.info("hidden")
    set_log_level("info")
    log.info("shown")
    assert [json.loads(x)["event"] for x in out.getvalue().splitlines()] == ["shown"]
    with pytest.raises(ValueError, match="unknown log level 'loud'"):
        set_log_level("loud")
