"""Topic names and MQTT-style filters (MQTT 3.1.1 section 4.7 semantics)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.bus import TopicError, topic_matches, validate_filter, validate_topic


@pytest.mark.parametrize(
    ("topic_filter", "topic", "expected"),
    [
        ("vehicles/v1/telemetry", "vehicles/v1/telemetry", True),
        ("vehicles/v1/telemetry", "vehicles/v1/events", False),
        ("vehicles/+/telemetry", "vehicles/v1/telemetry", True),
        ("vehicles/+/telemetry", "vehicles/v1/x/telemetry", False),
        ("vehicles/+", "vehicles", False),
        ("vehicles/+", "vehicles/", True),  # an empty level is still a level
        ("+/+", "/finance", True),
        ("+", "/finance", False),
        ("vehicles/#", "vehicles", True),  # '#' includes the parent level
        ("vehicles/#", "vehicles/v1/can/raw", True),
        ("vehicles/#", "vehicle", False),
        ("vehicles/+/#", "vehicles/v1", True),
        ("vehicles/+/#", "vehicles", False),
        ("#", "anything/at/all", True),
        ("can/raw", "can/raw/extra", False),
        ("can/raw/extra", "can/raw", False),
        # '$' topics are never matched by a filter starting with a wildcard ...
        ("#", "$SYS/broker/load", False),
        ("+/broker/load", "$SYS/broker/load", False),
        ("+", "$SYS", False),
        # ... but by filters naming the '$' level literally.
        ("$SYS/#", "$SYS/broker/load", True),
        ("$SYS/+/load", "$SYS/broker/load", True),
        ("$SYS", "$SYS", True),
        # '$' further down is an ordinary character.
        ("a/+", "a/$b", True),
        ("a/#", "a/$b/c", True),
    ],
)
def test_topic_matching(topic_filter: str, topic: str, expected: bool) -> None:
    validate_filter(topic_filter)
    validate_topic(topic)
    assert topic_matches(topic_filter, topic) is expected


@pytest.mark.parametrize(
    ("topic_filter", "rule"),
    [
        ("", "must not be empty"),
        ("a/#/b", "'#' must be a whole level and the last one"),
        ("a/b#", "'#' must be a whole level and the last one"),
        ("#/a", "'#' must be a whole level and the last one"),
        ("a/+b", "'+' must be a whole level"),
        ("a+/b", "'+' must be a whole level"),
        ("a/\x00", "must not contain NUL"),
    ],
)
def test_invalid_filters_say_which_rule_they_break(topic_filter: str, rule: str) -> None:
    with pytest.raises(TopicError, match=re.escape(rule)):
        validate_filter(topic_filter)


@pytest.mark.parametrize(
    ("topic", "rule"),
    [
        ("", "must not be empty"),
        ("a/+/b", "must not contain wildcards"),
        ("a/#", "must not contain wildcards"),
        ("a+", "must not contain wildcards"),
        ("a/\x00", "must not contain NUL"),
    ],
)
def test_invalid_topics_say_which_rule_they_break(topic: str, rule: str) -> None:
    with pytest.raises(TopicError, match=re.escape(rule)):
        validate_topic(topic)


def test_topic_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        validate_topic("")


@pytest.mark.parametrize("topic_filter", ["#", "+", "+/+/#", "a/+/c", "/", "a//b", "$SYS/#"])
def test_valid_filters_pass(topic_filter: str) -> None:
    validate_filter(topic_filter)


# -- properties ------------------------------------------------------------------------------

# A level without wildcards, NUL, or a leading '$' (those are tested on their own).
level = st.text(
    alphabet=st.characters(blacklist_characters="/+#$\x00", blacklist_categories=("Cs",)),
    max_size=6,
)
# The empty string is no topic; a single empty level would be one.
topic_levels = st.lists(level, min_size=1, max_size=6).filter(lambda levels: levels != [""])


def _join(levels: list[str]) -> str:
    return "/".join(levels)


@given(topic_levels)
def test_a_topic_matches_itself_and_hash(levels: list[str]) -> None:
    topic = _join(levels)
    validate_topic(topic)
    validate_filter(topic)  # every topic is also a valid filter
    assert topic_matches(topic, topic)
    assert topic_matches("#", topic)


@given(topic_levels, st.data())
def test_replacing_any_level_with_plus_still_matches(
    levels: list[str], data: st.DataObject
) -> None:
    index = data.draw(st.integers(0, len(levels) - 1))
    topic_filter = _join([*levels[:index], "+", *levels[index + 1 :]])
    validate_filter(topic_filter)
    assert topic_matches(topic_filter, _join(levels))


@given(topic_levels, st.data())
def test_replacing_every_level_with_plus_matches(levels: list[str], data: st.DataObject) -> None:
    mask = data.draw(st.lists(st.booleans(), min_size=len(levels), max_size=len(levels)))
    topic_filter = _join(["+" if wild else part for part, wild in zip(levels, mask, strict=True)])
    assert topic_matches(topic_filter, _join(levels))


@given(topic_levels, st.data())
def test_replacing_a_suffix_with_hash_matches(levels: list[str], data: st.DataObject) -> None:
    keep = data.draw(st.integers(0, len(levels)))  # keep == len(levels): '#' as the parent
    topic_filter = _join([*levels[:keep], "#"])
    validate_filter(topic_filter)
    assert topic_matches(topic_filter, _join(levels))


@given(topic_levels, st.data())
def test_a_different_literal_level_never_matches(levels: list[str], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(levels) - 1))
    other = data.draw(level.filter(lambda text: text != levels[index]))
    topic_filter = _join([*levels[:index], other, *levels[index + 1 :]])
    assert not topic_matches(topic_filter, _join(levels))


@given(topic_levels, topic_levels)
def test_plus_only_filters_match_exactly_their_level_count(
    levels: list[str], other: list[str]
) -> None:
    topic_filter = _join(["+"] * len(levels))
    assert topic_matches(topic_filter, _join(other)) is (len(other) == len(levels))


@given(topic_levels)
def test_dollar_topics_hide_from_leading_wildcards(levels: list[str]) -> None:
    topic = _join(["$" + levels[0], *levels[1:]])
    validate_topic(topic)
    assert not topic_matches("#", topic)
    assert not topic_matches(_join(["+", *levels[1:]]), topic)
    assert topic_matches(_join([f"${levels[0]}", "#"]), topic)
    assert topic_matches(topic, topic)


@given(st.text(alphabet="ab/+#$", max_size=12), st.text(alphabet="ab/$", max_size=12))
def test_matching_agrees_with_a_reference_implementation(topic_filter: str, topic: str) -> None:
    """For any valid pair, the result equals a plain recursive reading of the MQTT rules."""
    try:
        validate_filter(topic_filter)
        validate_topic(topic)
    except TopicError:
        return

    def reference(filter_levels: list[str], topic_levels: list[str]) -> bool:
        if not filter_levels:
            return not topic_levels
        head, *rest = filter_levels
        if head == "#":
            return True
        if not topic_levels:
            return False
        return head in ("+", topic_levels[0]) and reference(rest, topic_levels[1:])

    expected = reference(topic_filter.split("/"), topic.split("/"))
    if topic.startswith("$") and topic_filter[0] in "+#":
        expected = False
    assert topic_matches(topic_filter, topic) is expected
