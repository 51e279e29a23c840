"""Catalogue requests from the cloud: only a hash the vehicle keeps, at most once per interval."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.modules.telemetry.catalogue_requests import RequestLimiter, requested_hash

DIGEST = bytes(range(16))


def test_a_request_names_a_catalogue_by_its_hash_only() -> None:
    assert requested_hash(f"cloud/in/catalog/{DIGEST.hex()}/request") == DIGEST


@pytest.mark.parametrize(
    "topic",
    [
        "cloud/in/catalog/../request",
        "cloud/in/catalog/..%2F..%2Fetc%2Fpasswd/request",
        f"cloud/in/catalog/{DIGEST.hex().upper()}/request",  # one spelling per hash
        f"cloud/in/catalog/{DIGEST.hex()[:-1]}/request",
        f"cloud/in/catalog/{DIGEST.hex()}0/request",
        f"cloud/in/catalog/{DIGEST.hex()[:-1]}g/request",
        f"cloud/in/catalog/{DIGEST.hex()}/ack",
        f"cloud/in/catalog/{DIGEST.hex()}/request/extra",
        f"cloud/in/ota/{DIGEST.hex()}/request",
        f"cloud/in/catalog/ {DIGEST.hex()}/request",
        "",
    ],
)
def test_anything_but_a_lowercase_32_digit_hash_is_no_request(topic: str) -> None:
    assert requested_hash(topic) is None


def test_each_catalogue_is_answered_once_per_interval() -> None:
    limiter = RequestLimiter(interval_s=30.0)
    assert limiter.decide(DIGEST, True, 100.0)
    assert not limiter.decide(DIGEST, True, 110.0)  # a flood within the interval: once
    assert not limiter.decide(DIGEST, True, 129.9)
    assert limiter.decide(DIGEST, True, 130.0)
    other = bytes(16)
    assert limiter.decide(other, True, 110.0)  # another catalogue has its own interval
    assert limiter.counts == {"answered": 3, "unknown": 0, "too_soon": 2, "malformed": 0}


def test_unknown_and_malformed_requests_are_counted_never_answered() -> None:
    limiter = RequestLimiter()
    assert not limiter.decide(DIGEST, False, 0.0)
    assert not limiter.decide(None, False, 0.0)
    assert limiter.answered == {}  # nothing remembered for what the vehicle does not keep
    assert limiter.counts["unknown"] == 1
    assert limiter.counts["malformed"] == 1


def test_the_limiter_forgets_catalogues_the_shelf_dropped() -> None:
    limiter = RequestLimiter()
    limiter.decide(DIGEST, True, 0.0)
    limiter.decide(bytes(16), True, 0.0)
    limiter.forget({DIGEST})
    assert set(limiter.answered) == {DIGEST}


@given(
    st.one_of(
        st.text(max_size=200),
        st.builds(
            lambda middle, tail: f"cloud/in/catalog/{middle}/{tail}",
            st.text(alphabet="0123456789abcdefABCDEF./%+#\\\x00 ", max_size=40),
            st.sampled_from(["request", "request/", "ack", "", "request\x00"]),
        ),
        st.builds(
            lambda depth: "cloud/in/catalog/" + "a/" * depth + "request", st.integers(0, 2000)
        ),
    )
)
def test_any_topic_is_a_hash_request_or_nothing(topic: str) -> None:
    digest = requested_hash(topic)
    if digest is not None:
        assert len(digest) == 16
        assert topic == f"cloud/in/catalog/{digest.hex()}/request"
