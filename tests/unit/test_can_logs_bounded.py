"""Log readers bound their memory, and a log that yields no frame says why.

Property tests use structural seeds: BLF files built from the format's own structures with
the sizes a hostile or damaged file declares (huge, zero, lying), and a small real file cut
at every byte.
"""

from __future__ import annotations

import contextlib
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.can.blf import NO_COMPRESSION, ZLIB_DEFLATE, BlfLimits
from edge_agent.can.logs import (
    MAX_LINE_CHARS,
    LogFormatError,
    LogStats,
    open_log,
    why_no_frames,
)
from edge_agent.cli.main import main
from fixtures.blf_files import (
    container,
    file_header,
    inflation_bomb,
    inner_object_header,
    real_blf,
)
from fixtures.can_helpers import BENCH_DBC

# What reading one hostile file may allocate (Python heap, zlib output included): the limits
# (4 MiB per container, 1 MiB per object) a few times over, far from the hundreds of MB.
HEAP_BOUND = 40 << 20


def read_all(path: Path, limits: BlfLimits | None = None) -> tuple[int, LogStats]:
    """Frames read and the stats; LogFormatError passes through."""
    stats = LogStats()
    return sum(1 for _ in open_log(path, stats, limits)), stats


def peak_heap(action: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_an_inflation_bomb_is_refused_by_its_declared_size_in_bounded_memory(
    tmp_path: Path,
) -> None:
    bomb = inflation_bomb(tmp_path / "bomb.blf")
    assert bomb.stat().st_size < 320_000
    outcome: list[tuple[int, LogStats]] = []
    assert peak_heap(lambda: outcome.append(read_all(bomb))) < HEAP_BOUND
    frames, stats = outcome[0]
    assert (frames, stats.malformed) == (0, 1)
    assert stats.examples == [
        "the container at byte 144 declares 157286400 bytes inflated (limit 4194304)"
    ]


def test_a_container_that_inflates_beyond_what_it_declares_is_refused(tmp_path: Path) -> None:
    bomb = inflation_bomb(tmp_path / "liar.blf", inflated_each=50 << 20, declared=128 << 10)
    outcome: list[tuple[int, LogStats]] = []
    assert peak_heap(lambda: outcome.append(read_all(bomb))) < HEAP_BOUND
    assert outcome[0][1].examples == [
        "the container at byte 144 inflates to more than the 131072 bytes it declares"
    ]


@pytest.mark.parametrize(
    ("size", "why"),
    [
        (0, "declares 0 bytes"),  # python-can would read this object forever
        (8, "declares 8 bytes"),
        (0xFFFF_FFF0, "declares 4294967280 bytes (limit 1048576)"),
    ],
)
@pytest.mark.timeout(30)
def test_objects_inside_containers_must_declare_a_sane_size(
    tmp_path: Path, size: int, why: str
) -> None:
    inner = inner_object_header(size) + bytes(64)
    path = tmp_path / "objects.blf"
    path.write_bytes(file_header() + container(inner) * 3)
    frames, stats = read_all(path)
    assert frames == 0
    assert why in stats.examples[0]


def small_real(tmp_path: Path) -> bytes:
    return real_blf(tmp_path / "real.blf", frames=12, container_bytes=256).read_bytes()


def test_a_real_file_cut_at_every_byte_is_never_a_clean_success(tmp_path: Path) -> None:
    whole = small_real(tmp_path)
    assert read_all(tmp_path / "real.blf") == (12, LogStats(frames=12))
    cut = tmp_path / "cut.blf"
    for length in range(len(whole)):
        cut.write_bytes(whole[:length])
        if length < 144:  # inside the file header: refused before the first frame
            with pytest.raises(LogFormatError, match=r"empty|truncated at byte"):
                read_all(cut)
            continue
        frames, stats = read_all(cut)
        assert frames <= 12
        assert stats.malformed == 1, (length, frames)
        assert "truncated at byte" in stats.examples[0] or "ends early" in stats.examples[0]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    header_size=st.integers(0, 2**32 - 1) | st.just(144),
    file_size=st.integers(0, 2**64 - 1) | st.just(0),
    declared=st.integers(0, 2**32 - 1),
    method=st.sampled_from([NO_COMPRESSION, ZLIB_DEFLATE, 1, 0xFFFF]),
    inner_size=st.integers(0, 2**32 - 1) | st.sampled_from([0, 16, 48]),
    containers=st.integers(1, 4),
    padding=st.integers(0, 20_000),
)
def test_structurally_hostile_files_raise_only_documented_errors_in_bounded_memory(
    tmp_path_factory: pytest.TempPathFactory,
    header_size: int,
    file_size: int,
    declared: int,
    method: int,
    inner_size: int,
    containers: int,
    padding: int,
) -> None:
    path = tmp_path_factory.mktemp("hostile") / "hostile.blf"
    inner = inner_object_header(inner_size) + bytes(padding)
    one = container(inner, declared=declared, method=method)
    path.write_bytes(file_header(header_size, file_size)[:header_size] + one * containers)

    def read() -> None:
        with contextlib.suppress(LogFormatError):
            read_all(path)

    assert peak_heap(read) < HEAP_BOUND


def test_a_candump_line_without_end_is_cut_at_the_line_limit(tmp_path: Path) -> None:
    path = tmp_path / "endless.log"
    path.write_text("(1.0) vcan0 100#00\n" + "A" * (5 << 20))
    outcome: list[tuple[int, LogStats]] = []
    assert peak_heap(lambda: outcome.append(read_all(path))) < 1 << 20
    frames, stats = outcome[0]
    assert frames == 1
    assert stats.examples == [f"line 2: line 2 is longer than {MAX_LINE_CHARS} characters"]


def test_an_asc_line_without_end_is_cut_at_the_line_limit(tmp_path: Path) -> None:
    path = tmp_path / "endless.asc"
    path.write_text(
        "date Mon Jan 1 00:00:00.000 am 2024\nbase hex  timestamps absolute\n" + "9" * (5 << 20)
    )
    outcome: list[tuple[int, LogStats]] = []
    assert peak_heap(lambda: outcome.append(read_all(path))) < 1 << 20
    assert outcome[0][1].examples == [f"line 3 is longer than {MAX_LINE_CHARS} characters"]


@pytest.mark.parametrize(
    ("name", "content", "why"),
    [
        ("empty.log", b"", "the file is empty"),
        ("empty.asc", b"", "the file is empty"),
        ("empty.blf", b"", "not a readable .blf file: the file is empty"),
        ("header.blf", file_header()[:40], "not a readable .blf file: truncated at byte 40"),
        ("only-header.blf", file_header(), "a BLF file with no CAN frames in it (144 bytes)"),
        ("renamed.log", file_header() + container(b""), "it is a BLF file, not candump"),
        ("renamed.asc", b"(1.0) vcan0 100#00\n", "it is a candump file, not ASC"),
        ("words.log", b"hello\nworld\n", "not a candump file (line 1: not '(TIMESTAMP)"),
        ("bomb.blf", None, "the container at byte 144 declares 157286400 bytes inflated"),
    ],
)
def test_a_log_without_frames_is_exit_2_saying_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: bytes | None, why: str
) -> None:
    path = tmp_path / name
    if content is None:
        inflation_bomb(path)
    else:
        path.write_bytes(content)
    assert main(["replay", str(path), "--dbc", str(BENCH_DBC)]) == 2
    err = capsys.readouterr().err
    assert why in err
    assert len(err.strip().splitlines()) == 1


def test_why_no_frames_names_the_truncation_of_a_cut_blf(tmp_path: Path) -> None:
    whole = small_real(tmp_path)
    cut = tmp_path / "cut.blf"
    cut.write_bytes(whole[:200])  # inside the first container
    frames, stats = read_all(cut)
    assert frames == 0
    assert why_no_frames(cut, stats).startswith("truncated at byte 200")
