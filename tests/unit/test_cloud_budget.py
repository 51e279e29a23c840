"""Per-link byte budgets: telemetry is held back by cost, events and control never are."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from edge_agent.clock import ManualClock
from edge_agent.modules.cloud_link.budget import LinkBudgets, publish_cost
from edge_agent.modules.cloud_link.config import CloudLinkConfig, LinkProfile
from edge_agent.spool import SpoolPriority as P


def budgets(clock: ManualClock, **cellular: object) -> LinkBudgets:
    profiles = {
        "cellular": LinkProfile(
            budget_bytes=1000, window_s=100.0, low_priority_share=0.3, **cellular
        ),  # type: ignore[arg-type]
        "wifi": LinkProfile(),
    }
    return LinkBudgets(profiles, "cellular", clock.monotonic)


def test_unmetered_link_sends_everything() -> None:
    clock = ManualClock(monotonic=0.0)
    links = budgets(clock)
    assert links.switch("wifi")
    links.spend(10**9)
    assert links.allowed() == list(P)
    assert links.remaining() is None


def test_low_priority_stops_first_then_high_events_and_control_never() -> None:
    clock = ManualClock(monotonic=0.0)
    links = budgets(clock)
    assert links.allowed() == list(P)
    links.spend(301)  # low-priority telemetry may use only the top 30 %
    assert P.TELEMETRY_LOW not in links.allowed()
    assert P.TELEMETRY_HIGH in links.allowed()
    links.spend(699)  # budget spent
    assert links.allowed() == [P.EVENTS, P.CONTROL]
    links.spend(5000)  # events keep going (and keep counting)
    assert links.allowed() == [P.EVENTS, P.CONTROL]
    assert links.remaining() == 0


def test_budget_refills_evenly_over_its_window() -> None:
    clock = ManualClock(monotonic=0.0)
    links = budgets(clock)
    links.spend(1000)
    assert links.remaining() == 0
    clock.advance_to(10.0)  # a tenth of the window: a tenth of the budget back
    assert links.remaining() == 100
    assert P.TELEMETRY_HIGH in links.allowed()
    clock.advance_to(1000.0)
    assert links.remaining() == 1000  # never above the budget


def test_switching_links_keeps_each_buckets_level() -> None:
    clock = ManualClock(monotonic=0.0)
    links = budgets(clock)
    links.spend(1000)
    assert links.switch("wifi")
    links.spend(50_000)
    assert links.allowed() == list(P)
    assert links.switch("cellular")
    assert links.allowed() == [P.EVENTS, P.CONTROL]  # no fresh budget for going back
    assert not links.switch("satellite")
    assert links.active == "cellular"
    summary = links.summary()
    assert summary["active"] == "cellular"
    assert summary["held_back"] == ["telemetry_high", "telemetry_low"]


def test_reconfigure_keeps_levels_and_caps_them() -> None:
    clock = ManualClock(monotonic=0.0)
    links = budgets(clock)
    links.spend(200)
    links.reconfigure({"cellular": LinkProfile(budget_bytes=500)}, "cellular")
    assert links.remaining() == 500  # 800 left, capped at the new budget
    with pytest.raises(ValueError, match="unknown link"):
        links.reconfigure({"wifi": LinkProfile()}, "cellular")


def test_publish_cost_counts_topic_and_overhead() -> None:
    assert publish_cost("vehicles/v/events", 100) > 100 + len("vehicles/v/events")


def test_config_needs_known_active_link_and_tls_is_on_by_default() -> None:
    config = CloudLinkConfig(host="broker")
    assert config.tls is not False
    assert config.port == 8883
    with pytest.raises(ValidationError, match="active_link 'lte' is not one of the links"):
        CloudLinkConfig(host="broker", active_link="lte")
    plain = CloudLinkConfig.model_validate({"host": "localhost", "tls": False, "port": 1883})
    assert plain.tls is False
    with pytest.raises(ValidationError):
        CloudLinkConfig.model_validate({"host": "localhost", "tls": True})
    with pytest.raises(ValidationError):
        CloudLinkConfig.model_validate(
            {"host": "b", "reconnect_initial_s": 5, "reconnect_max_s": 1}
        )


def test_same_connection_tells_live_options_from_reconnecting_ones() -> None:
    base = CloudLinkConfig(host="broker")
    assert base.same_connection(base.model_copy(update={"inflight_window": 8}))
    assert not base.same_connection(base.model_copy(update={"keepalive_s": 30}))
