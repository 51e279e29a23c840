"""Bounded parsing of received JSON and TOML: size first, depth without recursion, one line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.cli.main import main as cli_main
from edge_agent.config import ConfigError, parse_desired
from edge_agent.modules.cloud_link.commands import MalformedRequest, parse_request
from edge_agent.modules.ota.job import parse_job
from edge_agent.ota.errors import Code, OtaError
from edge_agent.untrusted import (
    UntrustedDataError,
    load_json_bounded,
    load_toml_bounded,
    structure_depth,
)

DEEP = 100_000


def _nested_json(depth: int, opener: str = "[", closer: str = "]") -> str:
    return opener * depth + closer * depth


def _one_line(error: BaseException) -> str:
    text = str(error)
    assert "\n" not in text
    return text


# -- structural seeds ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "document",
    [
        _nested_json(DEEP),
        '{"a":' * DEEP + "1" + "}" * DEEP,
        _nested_json(DEEP)[: DEEP + 10],  # unbalanced: still refused for depth, not recursion
        "[" * DEEP,
    ],
)
def test_deep_json_is_refused_in_one_line_without_recursion(document: str) -> None:
    with pytest.raises(
        UntrustedDataError, match=r"nested too deeply \(limit: 32 levels\)"
    ) as caught:
        load_json_bounded(document, max_bytes=10 * DEEP)
    _one_line(caught.value)


def test_size_is_checked_before_anything_is_parsed() -> None:
    huge = '"' + "x" * (2 * 1024 * 1024) + '"'
    with pytest.raises(UntrustedDataError, match="more than the limit of 262144") as caught:
        load_json_bounded(huge)
    _one_line(caught.value)


def test_brackets_inside_strings_do_not_count() -> None:
    document = json.dumps({"note": "[" * 1000 + '\\"{' * 500, "list": [[1]]})
    assert load_json_bounded(document, max_depth=3)["list"] == [[1]]


def test_many_keys_within_the_limits_parse() -> None:
    document = {f"key{i}": i for i in range(10_000)}
    assert load_json_bounded(json.dumps(document)) == document


def test_deep_toml_is_refused_for_arrays_inline_tables_and_dotted_keys() -> None:
    cases = [
        "a = " + _nested_json(DEEP),
        "a = " + "{b = " * DEEP + "1" + "}" * DEEP,
        "a" + ".b" * 200 + " = 1",
        "[" + ".".join(["t"] * 200) + "]\nx = 1",
    ]
    for text in cases:
        with pytest.raises(UntrustedDataError, match="nested too deeply") as caught:
            load_toml_bounded(text, max_bytes=10 * DEEP)
        _one_line(caught.value)


def test_toml_strings_and_comments_do_not_count() -> None:
    text = "a = \"[[[[[[\" # ]]]]{{{{\nb = '''\n[[[[[[\n'''\nc = [[1]]\n"
    assert load_toml_bounded(text, max_depth=3)["c"] == [[1]]


# -- properties ------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=30,
)


@given(json_values)
def test_any_document_within_the_limits_parses_to_itself(value: Any) -> None:
    text = json.dumps(value)
    assert load_json_bounded(text, max_depth=64) == value


@given(json_values, st.integers(min_value=0, max_value=8))
def test_depth_limit_agrees_with_the_parsed_structure(value: Any, limit: int) -> None:
    text = json.dumps(value)
    if structure_depth(value) <= limit:
        assert load_json_bounded(text, max_depth=limit) == value
    else:
        with pytest.raises(UntrustedDataError):
            load_json_bounded(text, max_depth=limit)


@given(st.binary(max_size=2000))
def test_arbitrary_bytes_give_a_value_or_one_line_error(data: bytes) -> None:
    try:
        load_json_bounded(data)
    except UntrustedDataError as error:
        _one_line(error)
    try:
        load_toml_bounded(data)
    except UntrustedDataError as error:
        _one_line(error)


@settings(max_examples=25, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(min_value=33, max_value=DEEP),
    st.sampled_from(["[", '{"k":']),
    st.text(alphabet='[]{}",:x\\', max_size=50),
)
def test_deep_prefixes_never_recurse(depth: int, opener: str, tail: str) -> None:
    with pytest.raises(UntrustedDataError):
        load_json_bounded(opener * depth + tail, max_bytes=10 * DEEP)


# -- every receiver refuses with its own one-line error ---------------------------------------


def test_desired_state_command_and_job_refuse_deep_nesting() -> None:
    deep = ('{"version": 1, "modules": ' + _nested_json(40_000, '{"a":', "}")).encode()
    with pytest.raises(ConfigError, match="nested too deeply"):
        parse_desired(deep)
    request = ('{"id": "c1", "args": ' + _nested_json(DEEP) + "}").encode()
    with pytest.raises(MalformedRequest, match="more than the limit of 65536"):
        parse_request(request)
    with pytest.raises(MalformedRequest, match="nested too deeply"):
        parse_request(('{"id": "c1", "args": {"a": ' + _nested_json(40) + "}}").encode())
    with pytest.raises(OtaError) as caught:
        parse_job(('{"id": "j1", "version": "1.0.0", "x": ' + _nested_json(100) + "}").encode())
    assert caught.value.code is Code.BAD_JOB
    assert "nested too deeply" in caught.value.reason


def test_check_config_on_a_deeply_nested_file_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "agent.toml"
    base = tomli_w.dumps({"agent": {"vehicle_id": "veh-1", "state_dir": str(tmp_path)}})
    path.write_text(base + "deep = " + _nested_json(DEEP) + "\n")
    assert cli_main(["check-config", str(path)]) == 2
    captured = capsys.readouterr()
    output = (captured.out + captured.err).strip()
    assert "nested too deeply (limit" in output
    assert "Traceback" not in output
    assert len([line for line in output.splitlines() if "nested" in line]) == 1
