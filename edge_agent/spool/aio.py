"""The spool for the event loop: all disk work on one dedicated thread, never on the loop.

Requests pass through a bounded queue (callers wait for a slot when it is full, so memory
stays bounded and producers feel backpressure). Appends that wait in the queue together are
committed as one transaction with one fsync (group commit); each caller is answered only
after that commit.

The worker serves a :class:`~edge_agent.spool.resilient.ResilientSpool`: opening never
fails for the state of the disk (only for another process holding the file), and the
worker wakes on its own to do the repairs that are due.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import queue
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from edge_agent.spool.age import AgeClock
from edge_agent.spool.eviction import DegradeHook
from edge_agent.spool.model import (
    AppendRequest,
    AppendResult,
    SpoolClosed,
    SpoolPolicy,
    SpoolPriority,
    SpoolRecord,
    SpoolStats,
)
from edge_agent.spool.resilient import RETRY_INTERVAL_S, ResilientSpool
from edge_agent.spool.store import Spool

T = TypeVar("T")


@dataclass(slots=True)
class _Request:
    future: asyncio.Future[Any]
    append: AppendRequest | None = None
    call: Callable[[ResilientSpool], Any] | None = None


_STOP = object()
_ALLOW_REPAIRS = object()


class AsyncSpool:
    """A :class:`ResilientSpool` served by one worker thread, with an awaitable API.

    Open it with ``await AsyncSpool.open(path, policy)``; ``close`` finishes the queued
    requests, closes the file and ends the thread. With ``hold_repairs``, a spool that
    opened in memory (or needs a salvage) waits for :meth:`allow_repairs` before it tries
    the disk again: the agent calls it once it is ready, so no repair delays its start.
    """

    def __init__(
        self,
        path: Path | str,
        policy: SpoolPolicy | None = None,
        *,
        now: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        degrade: DegradeHook | None = None,
        age_clock: AgeClock | None = None,
        hold_repairs: bool = False,
        retry_interval: float = RETRY_INTERVAL_S,
        queue_size: int = 256,
        max_group: int = 256,
    ) -> None:
        self.path = Path(path)
        policy = policy or SpoolPolicy()
        in_memory = dataclasses.replace(
            policy, max_bytes=policy.memory_bytes, reserve_bytes=0, max_damaged_copies=0
        )
        self._make_spool: Callable[[], ResilientSpool] = lambda: ResilientSpool(
            self.path,
            policy,
            lambda salvage_on_open: Spool(
                self.path,
                policy,
                now=now,
                monotonic=monotonic,
                degrade=degrade,
                age_clock=age_clock,
                salvage_on_open=salvage_on_open,
            ),
            lambda first_id: Spool(
                self.path,
                in_memory,
                now=now,
                monotonic=monotonic,
                degrade=degrade,
                age_clock=age_clock,
                in_memory=True,
                first_id=first_id,
            ),
            now=now,
            monotonic=monotonic,
            retry_interval=retry_interval,
            repairs_allowed=not hold_repairs,
        )
        self._queue: queue.SimpleQueue[_Request | object] = queue.SimpleQueue()
        self._slots = asyncio.Semaphore(queue_size)
        self._max_group = max_group
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Future[None] | None = None
        self._closing = False

    @classmethod
    async def open(
        cls, path: Path | str, policy: SpoolPolicy | None = None, **options: Any
    ) -> AsyncSpool:
        """Create the worker thread and open the spool on it (in memory if the disk fails)."""
        spool = cls(path, policy, **options)
        await spool.start()
        return spool

    async def start(self) -> None:
        """Start the worker thread; returns once the spool is open (on disk or in memory)."""
        self._loop = asyncio.get_running_loop()
        opened: asyncio.Future[None] = self._loop.create_future()
        self._stopped = self._loop.create_future()
        self._thread = threading.Thread(
            target=self._serve, args=(opened,), name=f"spool:{self.path.name}", daemon=True
        )
        self._thread.start()
        try:
            await opened
        except BaseException:
            self._closing = True
            raise

    # -- the worker thread -----------------------------------------------------------------

    def _deliver(
        self, future: asyncio.Future[Any], result: Any, error: BaseException | None
    ) -> None:
        def settle() -> None:
            if future is not self._stopped:
                self._slots.release()
            if future.done():
                return  # the caller gave up waiting; the work was still done
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)

        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            self._loop.call_soon_threadsafe(settle)

    def _serve(self, opened: asyncio.Future[None]) -> None:
        try:
            spool = self._make_spool()
        except BaseException as error:
            self._deliver_open(opened, error)
            assert self._stopped is not None
            self._deliver(self._stopped, None, None)
            return
        self._deliver_open(opened, None)
        carry: _Request | object | None = None
        try:
            while True:
                request = carry if carry is not None else self._next_request(spool)
                carry = None
                if request is _STOP:
                    break
                if request is _ALLOW_REPAIRS:
                    spool.allow_repairs()
                spool.maintain()
                if not isinstance(request, _Request):
                    continue  # woken up for maintenance only
                if request.append is None:
                    self._run_call(spool, request)
                    continue
                group = [request]
                while len(group) < self._max_group:
                    try:
                        waiting = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if not isinstance(waiting, _Request) or waiting.append is None:
                        carry = waiting
                        break
                    group.append(waiting)
                self._run_group(spool, group)
        finally:
            spool.close()
            assert self._stopped is not None
            self._deliver(self._stopped, None, None)

    def _next_request(self, spool: ResilientSpool) -> _Request | object | None:
        """The next request, or None when a repair falls due first."""
        try:
            return self._queue.get(timeout=spool.wake_in())
        except queue.Empty:
            return None

    def _deliver_open(self, opened: asyncio.Future[None], error: BaseException | None) -> None:
        assert self._loop is not None

        def settle() -> None:
            if opened.done():
                return
            if error is None:
                opened.set_result(None)
            else:
                opened.set_exception(error)

        self._loop.call_soon_threadsafe(settle)

    def _run_call(self, spool: ResilientSpool, request: _Request) -> None:
        assert request.call is not None
        try:
            result = request.call(spool)
        except Exception as error:
            self._deliver(request.future, None, error)
        else:
            self._deliver(request.future, result, None)

    def _run_group(self, spool: ResilientSpool, group: list[_Request]) -> None:
        try:
            results = spool.append_many([r.append for r in group if r.append is not None])
        except Exception as error:
            for request in group:
                self._deliver(request.future, None, error)
            return
        for request, result in zip(group, results, strict=True):
            self._deliver(request.future, result, None)

    # -- the loop side ---------------------------------------------------------------------

    async def _submit(self, request: _Request) -> Any:
        if self._closing or self._thread is None:
            raise SpoolClosed(f"spool {self.path} is closed")
        await self._slots.acquire()
        self._queue.put(request)
        return await request.future

    def _future(self) -> asyncio.Future[Any]:
        assert self._loop is not None
        return self._loop.create_future()

    async def _call(self, call: Callable[[ResilientSpool], T]) -> T:
        result: T = await self._submit(_Request(self._future(), call=call))
        return result

    async def append(
        self,
        stream: str,
        payload: bytes,
        *,
        priority: SpoolPriority = SpoolPriority.TELEMETRY_LOW,
        message_id: bytes | None = None,
    ) -> AppendResult:
        """Store one record; returns after its (possibly shared) commit. See ``Spool.append``."""
        request = AppendRequest(stream, payload, priority, message_id)
        result: AppendResult = await self._submit(_Request(self._future(), append=request))
        return result

    async def append_many(self, requests: Sequence[AppendRequest]) -> list[AppendResult]:
        """Store several records in one transaction (see ``Spool.append_many``)."""
        items = list(requests)
        return await self._call(lambda spool: spool.append_many(items))

    async def lease(
        self,
        limit: int = 100,
        *,
        max_bytes: int | None = None,
        priorities: Iterable[SpoolPriority] | None = None,
    ) -> list[SpoolRecord]:
        """See ``Spool.lease``."""
        wanted = None if priorities is None else list(priorities)
        return await self._call(
            lambda spool: spool.lease(limit, max_bytes=max_bytes, priorities=wanted)
        )

    async def ack(self, record_ids: Iterable[int]) -> int:
        """See ``Spool.ack``."""
        ids = list(record_ids)
        return await self._call(lambda spool: spool.ack(ids))

    async def release(self, record_ids: Iterable[int]) -> None:
        """See ``Spool.release``."""
        ids = list(record_ids)
        await self._call(lambda spool: spool.release(ids))

    async def release_all(self) -> None:
        """See ``Spool.release_all``."""
        await self._call(lambda spool: spool.release_all())

    async def expire(self) -> None:
        """See ``Spool.expire``."""
        await self._call(lambda spool: spool.expire())

    async def stats(self) -> SpoolStats:
        """See ``ResilientSpool.stats``."""
        return await self._call(lambda spool: spool.stats())

    def allow_repairs(self) -> None:
        """Let a spool opened with ``hold_repairs`` reopen, salvage and move to disk now."""
        if not self._closing and self._thread is not None:
            self._queue.put(_ALLOW_REPAIRS)

    async def close(self) -> None:
        """Finish queued requests, close the file, end the thread; safe to call twice."""
        if self._closing or self._thread is None:
            return
        self._closing = True
        self._queue.put(_STOP)
        assert self._stopped is not None
        await self._stopped
        await asyncio.to_thread(self._thread.join)
