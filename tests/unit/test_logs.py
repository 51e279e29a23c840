"""The agent's structured logger: JSON lines and console lines from events with fields."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from edge_agent.logs import configure_logging, get_logger, set_log_level


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


def test_console_format_and_foreign_loggers_share_the_handler() -> None:
    out = io.StringIO()
    configure_logging("debug", "console", out)
    get_logger("edge_agent.test").debug("spool opened", records=3)
    logging.getLogger("can.interfaces").warning("plain %s", "stdlib")
    first, second = out.getvalue().splitlines()
    assert "[debug  ] spool opened  records=3  [edge_agent.test]" in first
    assert "plain stdlib" in second
    assert "[can.interfaces]" in second


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
