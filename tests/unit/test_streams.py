"""The agent's registry of per-stream transforms: matching, replacing, unregistering."""

from __future__ import annotations

import pytest

from edge_agent.bus import TopicError
from edge_agent.streams import StreamRegistry, StreamTransforms


def halve(payload: bytes) -> bytes | None:
    return payload[: len(payload) // 2] or None


def shift(payload: bytes, offset: float) -> bytes | None:
    return payload + f"@{offset:g}".encode()


def test_a_stream_without_a_registration_is_opaque() -> None:
    streams = StreamRegistry()
    assert streams.transforms_for("telemetry/chassis") is None
    assert streams.degrade("telemetry/chassis", b"abcd") is None
    assert streams.restamp_for("telemetry/chassis") is None


def test_filters_match_like_bus_subscriptions() -> None:
    streams = StreamRegistry()
    streams.register("telemetry/#", StreamTransforms(degrade=halve, restamp=shift))
    assert streams.degrade("telemetry/chassis", b"abcd") == b"ab"
    assert streams.restamp_for("telemetry/chassis") is shift
    assert streams.degrade("events", b"abcd") is None
    assert streams.restamp_for("state/reported") is None


def test_a_missing_transform_means_carried_as_is() -> None:
    streams = StreamRegistry()
    streams.register("diag/+", StreamTransforms(restamp=shift))
    assert streams.degrade("diag/dtc", b"abcd") is None
    assert streams.restamp_for("diag/dtc") is shift


def test_the_most_recent_matching_registration_wins() -> None:
    streams = StreamRegistry()
    streams.register("#", StreamTransforms(degrade=halve))
    streams.register("telemetry/+", StreamTransforms(degrade=lambda _: b"t"))
    assert streams.degrade("telemetry/chassis", b"abcd") == b"t"
    assert streams.degrade("events", b"abcd") == b"ab"


def test_registering_a_filter_again_replaces_it() -> None:
    streams = StreamRegistry()
    first = streams.register("telemetry/#", StreamTransforms(degrade=halve))
    streams.register("telemetry/#", StreamTransforms(degrade=lambda _: b"new"))
    assert streams.filters == ["telemetry/#"]
    assert streams.degrade("telemetry/a", b"abcd") == b"new"
    first()  # the replaced registration's unregister leaves the new one alone
    assert streams.degrade("telemetry/a", b"abcd") == b"new"


def test_unregister_removes_exactly_that_registration() -> None:
    streams = StreamRegistry()
    telemetry = streams.register("telemetry/#", StreamTransforms(degrade=halve))
    streams.register("diag/#", StreamTransforms(degrade=halve))
    telemetry()
    telemetry()  # safe twice
    assert streams.filters == ["diag/#"]
    assert streams.degrade("telemetry/a", b"abcd") is None


@pytest.mark.parametrize("bad", ["", "telemetry/#/x", "tele+metry"])
def test_a_malformed_filter_is_refused(bad: str) -> None:
    with pytest.raises(TopicError):
        StreamRegistry().register(bad, StreamTransforms())
