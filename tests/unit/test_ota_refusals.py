"""The install log under a flood of refusals: a quota per window, one summary line, rotation."""

from __future__ import annotations

from pathlib import Path

from edge_agent.bus import Bus, Message, OverflowPolicy
from edge_agent.ota.errors import Code, OtaError
from edge_agent.ota.refusals import RefusalLog
from edge_agent.ota.state import InstallLog


class Ticks:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_refusals_beyond_the_quota_are_counted_into_one_summary_line(tmp_path: Path) -> None:
    log = InstallLog(tmp_path / "install.log")
    clock = Ticks()
    refusals = RefusalLog(log, per_window=5, window_s=60.0, clock=clock)
    busy = OtaError(Code.BUSY, "job j0 is downloading; try later")
    written = [refusals.record(f"flood-{n}", "1.0.0", "9.9.9", busy) for n in range(1000)]
    assert written.count(True) == 5
    assert len(log.records()) == 5  # nothing of the rest yet: the window is still open
    clock.now = 61.0
    refusals.flush()
    records = log.records()
    assert len(records) == 6
    summary = records[-1]
    assert summary["result"] == "refusals-suppressed"
    assert summary["suppressed"] == 995
    assert summary["job_id"] == "flood-999"
    # A new window has its full quota again.
    assert refusals.record("after", "1.0.0", "9.9.9", busy)
    refusals.flush(force=True)
    assert len(log.records()) == 7


def test_the_install_log_is_rotated_and_keeps_k_files(tmp_path: Path) -> None:
    log = InstallLog(tmp_path / "install.log", max_bytes=2000, keep=2)
    for number in range(200):
        log.append(
            job_id=f"j{number}", old_version="1", new_version="2", result="refused", durable=False
        )
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["install.log", "install.log.1", "install.log.2"]
    assert all(p.stat().st_size <= 2000 + 300 for p in tmp_path.iterdir())
    records = log.records()
    assert records[-1]["job_id"] == "j199"
    numbers = [int(r["job_id"][1:]) for r in records]
    assert numbers == sorted(numbers)  # oldest first across the rotated files
    assert numbers[0] > 0  # the oldest are gone


async def test_a_dropped_message_is_handed_to_on_drop() -> None:
    bus = Bus()
    dropped: list[Message] = []
    subscription = bus.subscribe(
        "jobs", maxsize=2, overflow=OverflowPolicy.DROP_NEWEST, on_drop=dropped.append
    )
    for number in range(5):
        bus.publish_nowait("jobs", number)
    assert [m.payload for m in dropped] == [2, 3, 4]
    assert subscription.dropped == 3
    await bus.close()
