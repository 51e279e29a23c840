"""One zstd compression context per setting, shared by threads (the RSS creep of Run 6)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

import zstandard

from edge_agent.modules.telemetry.batch import frame
from edge_agent.modules.telemetry.batch.shared_zstd import SharedCompressor

THREADS = 4
ROUNDS = 30


def _in_threads(work: Callable[[int], None]) -> None:
    """Run ``work(index)`` in THREADS threads that are all alive at once; re-raise a failure."""
    start = threading.Barrier(THREADS)
    failures: list[BaseException] = []

    def run(index: int) -> None:
        try:
            start.wait(timeout=30)
            work(index)
        except BaseException as error:  # handed to the test thread
            failures.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures, failures
    assert not any(thread.is_alive() for thread in threads)


def _payload(index: int, round_: int) -> bytes:
    # Part random, part repeated: a real frame, not a trivially short one (48 KiB).
    return os.urandom(16 * 1024) + bytes([index, round_]) * (16 * 1024)


def test_seal_from_several_threads_builds_one_context_per_level() -> None:
    level = 7  # used by no other test, so the count below is this test's alone
    before, _ = frame.compression_contexts()

    def seal_and_check(index: int) -> None:
        for round_ in range(ROUNDS):
            payload = _payload(index, round_)
            assert frame.unseal(frame.seal(payload, level=level)) == payload

    _in_threads(seal_and_check)
    contexts, size = frame.compression_contexts()
    assert contexts == before + 1
    assert size > 0


def test_a_shared_compressor_gives_every_thread_whole_frames() -> None:
    built: list[zstandard.ZstdCompressor] = []

    def build() -> zstandard.ZstdCompressor:
        built.append(zstandard.ZstdCompressor(level=3, write_content_size=True))
        return built[-1]

    shared = SharedCompressor(build)
    assert (shared.contexts, shared.memory_size()) == (0, 0)
    decompressor_lock = threading.Lock()
    decompressor = zstandard.ZstdDecompressor()

    def compress_and_check(index: int) -> None:
        for round_ in range(ROUNDS):
            payload = _payload(index, round_)
            compressed = shared.compress(payload)
            with decompressor_lock:
                assert decompressor.decompress(compressed) == payload

    _in_threads(compress_and_check)
    assert len(built) == 1
    assert shared.contexts == 1
    assert shared.memory_size() == built[0].memory_size() > 0
