"""Evidence around an alert: the frames before it and after it, bounded in frames and time."""

from __future__ import annotations

from edge_agent.modules.can_ids.alerts import Alert, AlertKind
from edge_agent.modules.can_ids.detect import RING_FRAMES
from edge_agent.modules.can_ids.evidence import AFTER_FRAMES, MAX_HELD, EvidenceHold
from edge_agent.modules.can_ids.offline import scan, train
from fixtures.ids_traffic import clean_traffic


def alert_at(t: float) -> Alert:
    return Alert(t, AlertKind.INJECTION, 0x100, "test", {"frames": [[t, "0x100", "00"]]})


def test_an_alert_waits_for_the_frames_after_it() -> None:
    hold = EvidenceHold()
    assert hold.hold(alert_at(10.0), "incident 1") == []
    released = []
    for n in range(AFTER_FRAMES + 5):
        released += hold.feed(10.0 + n * 0.001, 0x180, bytes([n]))
    assert len(released) == 1
    alert, tag = released[0]
    assert tag == "incident 1"
    frames = alert.evidence["frames"]
    assert alert.evidence["raised_at"] == 0
    assert alert.evidence["after"] == AFTER_FRAMES
    assert [f[2] for f in frames[1:]] == [bytes([n]).hex() for n in range(AFTER_FRAMES)]
    assert len(hold) == 0


def test_bus_time_limits_the_wait_and_quiet_releases_what_is_held() -> None:
    hold = EvidenceHold(after_s=0.1)
    hold.hold(alert_at(10.0), 1)
    assert hold.feed(10.05, 0x180, b"\x01") == []
    released = hold.feed(10.2, 0x180, b"\x02")  # beyond 100 ms: released without it
    assert [a.evidence["after"] for a, _ in released] == [1]
    hold.hold(alert_at(11.0), 2)
    ((alert, tag),) = hold.release_all()
    assert tag == 2
    assert alert.evidence["after"] == 0


def test_at_most_so_many_alerts_wait() -> None:
    hold = EvidenceHold()
    pushed = []
    for n in range(MAX_HELD + 3):
        pushed += hold.hold(alert_at(10.0 + n * 0.001), n)
    assert [tag for _, tag in pushed] == [0, 1, 2]
    assert len(hold) == MAX_HELD
    assert hold.released_early == 3


def test_detector_alerts_carry_the_ring_up_to_the_frame_that_raised_them() -> None:
    profile, _ = train(clean_traffic(30.0, seed=1))
    frames = clean_traffic(5.0, seed=2)
    frames.append((frames[-1][0] + 0.0001, 0x7AB, b"\x01", False))  # an id never seen
    (alert,) = scan(frames, profile, evidence=True).alerts
    evidence = alert.evidence["frames"]
    assert len(evidence) == RING_FRAMES
    assert evidence[-1][1:] == ["0x7AB", "01"]
    assert alert.kind is AlertKind.UNKNOWN_ID
