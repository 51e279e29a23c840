"""IDS profile files: round trip, and one-line refusals of other versions, edits and junk."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.modules.can_ids.offline import train
from edge_agent.modules.can_ids.profile import (
    ProfileError,
    dump_profile,
    load_profile,
    parse_profile,
    save_profile,
)
from fixtures.ids_traffic import clean_traffic

PROFILE, _ = train(clean_traffic(5.0, seed=1), "unit test")
TEXT = dump_profile(PROFILE)


def refusal(text: str) -> str:
    with pytest.raises(ProfileError) as caught:
        parse_profile(text, "p.json")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("p.json")
    return message


def test_round_trip_through_a_file(tmp_path: Path) -> None:
    path = tmp_path / "bus.json"
    save_profile(PROFILE, path)
    assert load_profile(path) == PROFILE


def test_another_version_is_refused_with_what_to_do() -> None:
    document = json.loads(TEXT)
    for version in (1, 3):  # 1: before counters of any width and checksums
        document["version"] = version
        message = refusal(json.dumps(document))
        assert f"version {version}" in message
        assert "retrain" in message


def test_a_hand_edited_profile_is_refused() -> None:
    document = json.loads(TEXT)
    document["profile"]["max_frames_per_window"] += 1
    assert "edited by hand" in refusal(json.dumps(document))


@pytest.mark.parametrize("text", ["", "not json", "[]", '{"format": "other"}', "{" * 100000])
def test_junk_is_refused(text: str) -> None:
    refusal(text)


def test_missing_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="cannot read"):
        load_profile(tmp_path / "none.json")
    binary = tmp_path / "b.json"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ProfileError):
        load_profile(binary)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    return found


CONTENT = json.loads(TEXT)["profile"]
PATHS = _paths(CONTENT)[1:]


@settings(max_examples=300, deadline=None)
@given(where=st.sampled_from(PATHS), value=json_values)
def test_any_structural_change_with_a_fresh_digest_parses_or_is_refused(
    where: tuple[Any, ...], value: Any
) -> None:
    # Structural seeds: a real profile with one field replaced and its digest recomputed
    # (as a careless tool would), so the content checks themselves are exercised.
    from edge_agent.modules.can_ids import profile as module

    content = json.loads(json.dumps(CONTENT))
    target = content
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = value
    document = {
        "format": module.FORMAT,
        "version": module.VERSION,
        "digest": module._digest(content),
        "profile": content,
    }
    try:
        parse_profile(json.dumps(document), "p.json")
    except ProfileError as error:
        message = str(error)
    else:
        message = ""
    assert "\n" not in message
