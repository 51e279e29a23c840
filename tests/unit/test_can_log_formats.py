"""Every log format python-can's LogReader reads, gzip included, with python-can's frame counts.

Sample files are written by python-can's own writers, so the formats are theirs, not ours;
damaged ones are those files cut short, mislabelled, or compressed to expand without bound.
Property tests use structural seeds: frames of every shape written by each writer, and a real
file cut at any byte.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import can
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.can.gzipped import GzipLimits
from edge_agent.can.logs import SUPPORTED, LogFormatError, LogStats, open_log, why_no_frames
from edge_agent.cli.main import main
from fixtures.can_helpers import BENCH_DBC

WRITTEN = (".asc", ".blf", ".csv", ".db", ".log", ".trc")
COMPRESSIBLE = tuple(suffix for suffix in WRITTEN if suffix != ".db")
FIXTURE_REUSE = HealthCheck.function_scoped_fixture


def frames(count: int) -> list[can.Message]:
    return [
        can.Message(
            timestamp=1_700_000_000 + index * 0.01,
            arbitration_id=0x100 + index % 7,
            data=bytes([index % 256] * (index % 9)),
            is_extended_id=False,
            channel=0,
        )
        for index in range(count)
    ]


def write(path: Path, messages: list[can.Message]) -> Path:
    """``path`` written by python-can's writer for its suffix (gzip'd after, for .gz)."""
    plain = path.with_suffix("") if path.suffix == ".gz" else path
    with can.Logger(str(plain)) as writer:
        for message in messages:
            writer.on_message_received(message)
    if plain != path:
        with plain.open("rb") as source, gzip.open(path, "wb") as target:
            shutil.copyfileobj(source, target)
        plain.unlink()
    return path


def ours(path: Path) -> tuple[int, LogStats]:
    stats = LogStats()
    return sum(1 for _ in open_log(path, stats)), stats


def python_cans(path: Path) -> int:
    with can.LogReader(str(path)) as reader:
        return sum(1 for _ in reader)


@pytest.mark.parametrize(
    "name", [f"drive{suffix}" for suffix in WRITTEN] + [f"drive{s}.gz" for s in COMPRESSIBLE]
)
def test_every_format_reads_as_many_frames_as_python_can(tmp_path: Path, name: str) -> None:
    path = write(tmp_path / name, frames(120))
    count, stats = ours(path)
    assert count == python_cans(path) == 120
    assert stats.malformed == 0


@pytest.mark.parametrize("name", ["cut.asc.gz", "cut.blf.gz", "cut.log.gz", "cut.trc.gz"])
def test_a_truncated_gzip_log_keeps_its_frames_and_names_the_byte(
    tmp_path: Path, name: str
) -> None:
    whole = write(tmp_path / f"whole{name[3:]}", frames(2000))
    cut = tmp_path / name
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    count, stats = ours(cut)
    assert count < 2000
    assert stats.malformed == 1
    assert "gzip stream truncated at byte" in stats.examples[0]


def test_a_gzip_bomb_stops_at_the_inflation_limit(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.log.gz"
    line = b"(1700000000.000000) can0 123#DEADBEEF\n"
    with gzip.open(bomb, "wb", compresslevel=9) as target:
        for _ in range(4096):
            target.write(line * 256)
    stats = LogStats()
    count = sum(1 for _ in open_log(bomb, stats, gzip_limits=GzipLimits(inflated_bytes=1 << 20)))
    assert count < (1 << 20) // len(line) + 1
    assert stats.malformed == 1
    assert "expands past 1048576 bytes" in stats.examples[0]


@pytest.mark.parametrize(
    ("name", "source", "why"),
    [
        ("blf_named.asc", "x.blf", "it is a BLF file, not ASC: rename it to blf_named.blf"),
        ("trc_named.csv", "x.trc", "it is a TRC file, not CSV: rename it to trc_named.trc"),
        ("csv_named.trc", "x.csv", "it is a CSV file, not TRC: rename it to csv_named.csv"),
        ("log_named.asc.gz", "x.log.gz", "it is a candump file, not ASC"),
    ],
)
def test_a_mislabelled_log_says_what_it_is(
    tmp_path: Path, name: str, source: str, why: str
) -> None:
    written = write(tmp_path / source, frames(20))
    path = tmp_path / name
    written.rename(path)
    stats = LogStats()
    count = sum(1 for _ in open_log(path, stats))
    assert count == 0
    assert why_no_frames(path, stats).startswith(why)


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("drive.xyz", b"x", "unknown log kind '.xyz'; supported: "),
        ("drive.db.gz", b"x", "unknown log kind '.db.gz'"),
        ("drive.gz", b"x", "unknown log kind '.gz'"),
        ("plain.asc.gz", b"date Mon Jan 1\n", "not gzip-compressed"),
        ("candump.db", b"(1.0) can0 123#00\n", "no SQLite header"),
    ],
)
def test_unknown_or_unreadable_files_fail_before_the_first_frame(
    tmp_path: Path, name: str, content: bytes, reason: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(LogFormatError, match=reason.replace(".", r"\.")):
        open_log(path, LogStats())


def test_replay_of_an_unknown_kind_is_one_line_naming_the_formats(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "drive.pcap"
    path.write_bytes(b"\xd4\xc3\xb2\xa1")
    assert main(["replay", str(path), "--dbc", str(BENCH_DBC)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert SUPPORTED in err


def test_replay_reads_a_compressed_trc(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "drive.trc.gz", frames(50))
    assert main(["replay", str(path), "--dbc", str(BENCH_DBC)]) == 0
    assert "50 frames" in capsys.readouterr().out


message = st.builds(
    lambda ident, extended, data, stamp: can.Message(
        timestamp=stamp,
        arbitration_id=ident if extended else ident & 0x7FF,
        is_extended_id=extended,
        data=data,
        channel=0,
    ),
    st.integers(0, 0x1FFFFFFF),
    st.booleans(),
    st.binary(max_size=8),
    st.floats(1_600_000_000, 1_800_000_000),
)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    messages=st.lists(message, min_size=1, max_size=30),
    suffix=st.sampled_from(WRITTEN + tuple(f"{s}.gz" for s in COMPRESSIBLE)),
)
def test_any_frames_any_writer_read_back_as_python_can_reads_them(
    tmp_path_factory: pytest.TempPathFactory, messages: list[can.Message], suffix: str
) -> None:
    path = write(tmp_path_factory.mktemp("w") / f"drive{suffix}", messages)
    assert ours(path)[0] == python_cans(path)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    suffix=st.sampled_from((*(f"{s}.gz" for s in COMPRESSIBLE), ".trc", ".csv")),
    fraction=st.floats(0, 1),
)
def test_a_log_cut_anywhere_reads_without_raising(
    tmp_path_factory: pytest.TempPathFactory, suffix: str, fraction: float
) -> None:
    folder = tmp_path_factory.mktemp("c")
    whole = write(folder / f"whole{suffix}", frames(300))
    cut = folder / f"cut{suffix}"
    data = whole.read_bytes()
    cut.write_bytes(data[: int(len(data) * fraction)])
    try:
        count, stats = ours(cut)
    except LogFormatError:
        return  # cut inside the gzip header: refused up front, as it should be
    assert count <= 300
    if count == 0:
        assert why_no_frames(cut, stats)


def with_garbage_lines(path: Path, garbage: int) -> Path:
    """``path``, a TRC file, with ``garbage`` unparseable lines inserted after its header."""
    lines = path.read_text().splitlines(keepends=True)
    first_record = next(i for i, line in enumerate(lines) if not line.startswith(";"))
    lines[first_record:first_record] = ["      0  x\n"] * garbage
    path.write_text("".join(lines))
    return path


def test_lines_python_can_skips_with_a_warning_are_counted_not_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = with_garbage_lines(write(tmp_path / "drive.trc", frames(40)), 300)
    with caplog.at_level("DEBUG"):
        count, stats = ours(path)
    assert not [r for r in caplog.records if r.name.startswith("can.") and r.levelno >= 30]
    assert count == python_cans(path) == 40
    assert stats.malformed == 300
    assert len(stats.examples) == 5
    assert "Failed to parse message" in stats.examples[0]


def test_python_cans_warnings_outside_our_reading_are_still_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = with_garbage_lines(write(tmp_path / "drive.trc", frames(5)), 2)
    ours(path)
    caplog.clear()
    with caplog.at_level("WARNING"), can.LogReader(str(path)) as reader:
        assert sum(1 for _ in reader) == 5
    assert len([r for r in caplog.records if r.name == "can.io.trc"]) == 2


def test_replay_of_a_trc_with_bad_lines_reports_them_without_a_line_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = with_garbage_lines(write(tmp_path / "drive.trc", frames(30)), 200)
    assert main(["replay", str(path), "--dbc", str(BENCH_DBC)]) == 0
    captured = capsys.readouterr()
    assert "30 frames" in captured.out
    assert "malformed records 200" in captured.out
    assert "Failed to parse message" not in captured.err
