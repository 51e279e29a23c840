"""CAN databases of every format cantools reads: KCD and SYM written by cantools' own dumpers
from the bench DBC, a hand-written ARXML, and files that are no CAN database or are mislabelled.

Property tests use structural seeds: databases of random messages dumped by cantools in each
format, and the bench files cut at any byte.
"""

from __future__ import annotations

import json
from pathlib import Path

import cantools
import pytest
from cantools.database.can import Database, Message, Signal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.can.databases import SUPPORTED_DATABASES, load_database
from edge_agent.can.dbc import PLACEHOLDER, DbcError
from edge_agent.can.decode import FrameDecoder
from edge_agent.cli.main import main
from fixtures.can_helpers import BENCH_DBC, DBC_DIR, frame

RADAR_ARXML = DBC_DIR / "radar.arxml"
FIXTURE_REUSE = HealthCheck.function_scoped_fixture


def dumped(database: Database, path: Path) -> Path:
    cantools.database.dump_file(database, str(path))
    return path


@pytest.fixture
def bench() -> Database:
    database = cantools.database.load_file(str(BENCH_DBC))
    assert isinstance(database, Database)
    return database


@pytest.mark.parametrize("suffix", [".kcd", ".sym", ".dbc"])
def test_every_dumped_format_loads_the_same_messages_and_signals(
    tmp_path: Path, bench: Database, suffix: str
) -> None:
    loaded = load_database(dumped(bench, tmp_path / f"bench{suffix}"))
    assert loaded.strict
    assert sorted(m.name for m in loaded.database.messages) == sorted(
        m.name for m in bench.messages
    )
    assert loaded.signal_count == sum(len(m.signals) for m in bench.messages)


def test_a_hand_written_arxml_loads_and_decodes() -> None:
    loaded = load_database(RADAR_ARXML)
    assert loaded.message_count == 1
    decoded = FrameDecoder(loaded.database).decode(
        frame(0x200, bytes([0x10, 0x02, 0x01]) + bytes(5))
    )
    assert getattr(decoded, "signals", None) == {"ObjectDistance": 528, "ObjectValid": 1}


@pytest.mark.parametrize("command", ["db", "dbc"])
def test_db_inspect_and_its_old_name_read_arxml(
    capsys: pytest.CaptureFixture[str], command: str
) -> None:
    assert main([command, "inspect", str(RADAR_ARXML), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["messages"], report["signals"]) == (1, 2)


def test_replay_decodes_with_a_kcd(
    tmp_path: Path, bench: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    kcd = dumped(bench, tmp_path / "bench.kcd")
    log = tmp_path / "drive.log"
    log.write_text("(1.0) can0 100#0000000000000000\n(1.1) can0 7FF#00\n")
    assert main(["replay", str(log), "--dbc", str(kcd), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["frames"], summary["decoded"], summary["unknown_ids"]) == (2, 1, 1)


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("vehicle.dbc", b"\x89PNG\r\n\x1a\n\x00\x00", "not a CAN database (a binary file)"),
        ("vehicle.kcd", b"", "not a CAN database (an empty file)"),
        ("vehicle.dbc", b"hello, this is a letter\n", "not a CAN database (no DBC statement"),
        ("vehicle.kcd", b"<html><body/></html>", "not a KCD database (no KCD content seen)"),
        ("vehicle.arxml", b"<AUTOSAR><AR-PACKAGES>", "not a readable ARXML database"),
        ("vehicle.dbc", b'<?xml version="1.0"?><NetworkDefinition>', "it is a KCD file, not DBC"),
        ("vehicle.sym", b"<AUTOSAR/>", "it is a ARXML file, not SYM: rename it to vehicle.arxml"),
    ],
)
def test_a_file_that_is_no_usable_database_says_so(
    tmp_path: Path, name: str, content: bytes, reason: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DbcError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        load_database(path)


def test_an_unknown_suffix_is_read_as_what_its_content_is(tmp_path: Path) -> None:
    copy = tmp_path / "radar.xml"
    copy.write_bytes(RADAR_ARXML.read_bytes())
    assert load_database(copy).message_count == 1


def test_the_unknown_suffix_error_names_the_supported_formats(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "vehicle.bin"
    path.write_bytes(bytes(range(256)))
    assert main(["db", "inspect", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert SUPPORTED_DATABASES in err


PLACEHOLDER_BLOCK = f"""BO_ 3221225472 {PLACEHOLDER}: 0 Vector__XXX
 SG_ Orphan : 0|8@1+ (1,0) [0|0] "" Vector__XXX
"""


def test_a_dbc_with_only_the_placeholder_says_so(tmp_path: Path) -> None:
    path = tmp_path / "only.dbc"
    path.write_text(f'VERSION ""\n\nNS_ :\n\nBS_:\n\nBU_:\n\n{PLACEHOLDER_BLOCK}')
    with pytest.raises(DbcError, match=f"only the {PLACEHOLDER} placeholder"):
        load_database(path)


@pytest.mark.parametrize("flaw", ["", 'VAL_ 999 Nothing 0 "x" ;\n'])
def test_the_placeholder_is_discarded_like_cantools_with_a_note(tmp_path: Path, flaw: str) -> None:
    path = tmp_path / "with.dbc"
    path.write_text(BENCH_DBC.read_text() + "\n" + PLACEHOLDER_BLOCK + flaw)
    loaded = load_database(path)
    strict = cantools.database.load_file(str(BENCH_DBC))
    assert sorted(m.name for m in loaded.database.messages) == sorted(
        m.name for m in strict.messages
    )
    assert any(note.message == PLACEHOLDER for note in loaded.notes)
    assert not any(PLACEHOLDER in s.reason or s.message == PLACEHOLDER for s in loaded.skipped)


signal_spec = st.tuples(st.integers(1, 16), st.booleans())


@st.composite
def databases(draw: st.DrawFn) -> Database:
    messages = []
    for index, specs in enumerate(
        draw(st.lists(st.lists(signal_spec, min_size=1, max_size=4), min_size=1, max_size=4))
    ):
        start, signals = 0, []
        for number, (length, signed) in enumerate(specs):
            if start + length > 64:
                break
            signals.append(Signal(f"S{index}_{number}", start, length, is_signed=signed))
            start += length
        frame_id = draw(st.integers(1, 0x7FF)) if index == 0 else 0x100 + index
        messages.append(Message(frame_id, f"M{index}", 8, signals, strict=False))
    unique = {m.frame_id: m for m in messages}
    return Database(list(unique.values()), strict=False)


@settings(max_examples=30, deadline=None, suppress_health_check=[FIXTURE_REUSE])
@given(database=databases(), suffix=st.sampled_from([".dbc", ".kcd", ".sym"]))
def test_any_dumped_database_loads_as_cantools_loads_it(
    tmp_path_factory: pytest.TempPathFactory, database: Database, suffix: str
) -> None:
    path = dumped(database, tmp_path_factory.mktemp("db") / f"any{suffix}")
    theirs = cantools.database.load_file(str(path))
    ours = load_database(path).database
    assert [(m.frame_id, len(m.signals)) for m in ours.messages] == [
        (m.frame_id, len(m.signals)) for m in theirs.messages
    ]


@settings(max_examples=40, deadline=None, suppress_health_check=[FIXTURE_REUSE])
@given(source=st.sampled_from([RADAR_ARXML, BENCH_DBC]), fraction=st.floats(0, 1))
def test_a_database_cut_anywhere_loads_or_says_why_in_one_line(
    tmp_path_factory: pytest.TempPathFactory, source: Path, fraction: float
) -> None:
    data = source.read_bytes()
    cut = tmp_path_factory.mktemp("cut") / source.name
    cut.write_bytes(data[: int(len(data) * fraction)])
    try:
        loaded = load_database(cut)
    except DbcError as error:
        reason = str(error)
    else:
        reason = ""
        assert loaded.message_count >= 1
    assert "\n" not in reason
