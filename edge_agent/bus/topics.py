"""Topic names and MQTT-style filters for the in-process bus.

A topic is a ``/``-separated string of non-empty-or-empty levels without wildcards. A filter
may use ``+`` (exactly one level) and ``#`` (this level and every level below it, only last),
with the same meaning as in MQTT 3.1.1 section 4.7, so a filter written for the bus can be
reused for the cloud link unchanged.
"""

from __future__ import annotations


class TopicError(ValueError):
    """A topic or filter is malformed; the message says which rule it broke."""


def validate_topic(topic: str) -> None:
    """Raise :class:`TopicError` unless ``topic`` is a publishable topic name."""
    if not topic:
        raise TopicError("topic must not be empty")
    if "+" in topic or "#" in topic:
        raise TopicError(f"topic {topic!r} must not contain wildcards '+' or '#'")
    if "\x00" in topic:
        raise TopicError(f"topic {topic!r} must not contain NUL")


def validate_filter(topic_filter: str) -> None:
    """Raise :class:`TopicError` unless ``topic_filter`` is a valid subscription filter."""
    if not topic_filter:
        raise TopicError("filter must not be empty")
    if "\x00" in topic_filter:
        raise TopicError(f"filter {topic_filter!r} must not contain NUL")
    levels = topic_filter.split("/")
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != len(levels) - 1):
            raise TopicError(f"filter {topic_filter!r}: '#' must be a whole level and the last one")
        if "+" in level and level != "+":
            raise TopicError(f"filter {topic_filter!r}: '+' must be a whole level")


def topic_matches(topic_filter: str, topic: str) -> bool:
    """Return whether ``topic`` matches ``topic_filter`` under MQTT wildcard rules.

    Both arguments are assumed valid (see :func:`validate_filter`, :func:`validate_topic`).
    Topics beginning with ``$`` are not matched by a filter beginning with a wildcard,
    as in MQTT.
    """
    if topic_filter == topic:
        return True
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    filter_levels = topic_filter.split("/")
    topic_levels = topic.split("/")
    for index, wanted in enumerate(filter_levels):
        if wanted == "#":
            return True
        if index >= len(topic_levels):
            return False
        if wanted not in ("+", topic_levels[index]):
            return False
    return len(filter_levels) == len(topic_levels)
