"""The async facade: disk work on one worker thread, group commit, bounded queue."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from edge_agent.spool import (
    AppendRequest,
    AsyncSpool,
    Spool,
    SpoolClosed,
    SpoolLocked,
    SpoolPriority,
)
from fixtures.waiting import wait_until


async def test_concurrent_appends_are_group_committed_and_all_durable(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    spool = await AsyncSpool.open(path, queue_size=64)
    try:
        results = await asyncio.gather(
            *(spool.append(f"s{i % 3}", bytes([i]) * 10) for i in range(200))
        )
        assert all(result.stored for result in results)
        assert len({result.record_id for result in results}) == 200
        stats = await spool.stats()
        assert stats.records == 200
    finally:
        await spool.close()
    with Spool(path) as reopened:
        assert reopened.stats().records == 200


async def test_lease_ack_release_through_the_facade(tmp_path: Path) -> None:
    spool = await AsyncSpool.open(tmp_path / "spool.db")
    try:
        await spool.append_many([AppendRequest("s", bytes([i])) for i in range(5)])
        await spool.append("e", b"event", priority=SpoolPriority.EVENTS)
        first = await spool.lease(3)
        assert [r.payload for r in first] == [b"event", b"\x00", b"\x01"]
        assert await spool.ack([first[0].id]) == 1
        await spool.release([first[1].id])
        await spool.release_all()
        again = await spool.lease(10)
        assert [r.payload for r in again] == [bytes([i]) for i in range(5)]
        await spool.expire()
    finally:
        await spool.close()


async def test_sqlite_work_never_runs_on_the_event_loop_thread(tmp_path: Path) -> None:
    loop_thread = threading.get_ident()
    seen: list[int] = []
    spool = await AsyncSpool.open(tmp_path / "spool.db", degrade=None)
    try:
        original = Spool.append_many

        def spy(self: Spool, requests: list[AppendRequest]) -> object:
            seen.append(threading.get_ident())
            return original(self, requests)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(Spool, "append_many", spy)
            await spool.append("s", b"x")
        assert seen
        assert loop_thread not in seen
    finally:
        await spool.close()


async def test_the_request_queue_is_bounded(tmp_path: Path) -> None:
    spool = await AsyncSpool.open(tmp_path / "spool.db", queue_size=4)
    gate = threading.Event()
    in_worker = threading.Event()
    original = Spool.append_many

    def held(self: Spool, requests: list[AppendRequest]) -> object:
        in_worker.set()
        gate.wait(10)
        return original(self, requests)

    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(Spool, "append_many", held)
            tasks = [asyncio.create_task(spool.append("s", b"x")) for _ in range(50)]
            await wait_until(
                lambda: in_worker.is_set() and spool._slots.locked(),
                what="a request held in the worker and every slot taken",
            )
            # Four requests hold the four slots; the other 46 producers wait for room.
            assert spool._queue.qsize() <= 4
            assert not any(task.done() for task in tasks)
            gate.set()
            results = await asyncio.gather(*tasks)
        assert all(result.stored for result in results)
    finally:
        gate.set()
        await spool.close()


async def test_a_cancelled_append_still_completes_and_frees_its_slot(tmp_path: Path) -> None:
    spool = await AsyncSpool.open(tmp_path / "spool.db", queue_size=2)
    try:
        task = asyncio.create_task(spool.append("s", b"cancelled"))
        await asyncio.sleep(0)  # one turn: the append takes its slot, then is cancelled
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(5):  # would hang if the slot leaked
            assert (await asyncio.wait_for(spool.append("s", b"next"), 10)).stored
    finally:
        await spool.close()


async def test_open_errors_surface_and_close_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    holder = Spool(path)
    try:
        with pytest.raises(SpoolLocked):
            await AsyncSpool.open(path)
    finally:
        holder.close()
    spool = await AsyncSpool.open(path)
    await spool.close()
    await spool.close()
    with pytest.raises(SpoolClosed):
        await spool.append("s", b"x")
