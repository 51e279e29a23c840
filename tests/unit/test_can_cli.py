"""``edge-agent dbc inspect`` and ``edge-agent replay``: output and exit statuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_agent.cli.main import main
from fixtures.can_helpers import BENCH_DBC, BROKEN_DBC, REAL_DBCS, needs_real_dbcs


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_inspect_json_lists_what_was_skipped(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "dbc", "inspect", str(BROKEN_DBC), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert set(report) == {"file", "messages", "signals", "skipped"}
    assert report["file"] == str(BROKEN_DBC)
    assert (report["messages"], report["signals"]) == (4, 8)
    assert {"message": "Garbled", "reason": report["skipped"][1]["reason"]} in report["skipped"]
    assert all(set(item) == {"message", "reason"} for item in report["skipped"])


def test_inspect_text_says_why_strict_failed(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "dbc", "inspect", str(BROKEN_DBC))
    assert code == 0
    assert "4 messages, 8 signals usable" in out
    assert "strict load failed" in out
    assert "note Overlap" in out


def test_inspect_a_package_resource(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "dbc", "inspect", "package:edge_agent.simulator/data/vehicle.dbc", "--json"
    )
    assert code == 0
    assert json.loads(out)["skipped"] == []


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "file not found"),
        ("", "not a CAN database (an empty file)"),
        ('BO_ 1 X: 8 A\n SG_ s : 0|8@1+ (1,0) [0|255 "" A\n', "no usable message"),
    ],
)
def test_inspect_unusable_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: str | None, expected: str
) -> None:
    path = tmp_path / "bad.dbc"
    if content is not None:
        path.write_text(content)
    code, out, err = run(capsys, "dbc", "inspect", str(path), "--json")
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert expected in err
    assert "Traceback" not in err


@needs_real_dbcs
def test_inspect_the_real_dbc_that_fails_strictly(capsys: pytest.CaptureFixture[str]) -> None:
    tesla = next(p for p in REAL_DBCS if p.name == "tesla_can.dbc")
    code, out, _ = run(capsys, "dbc", "inspect", str(tesla), "--json")
    assert code == 0
    assert json.loads(out)["skipped"][0]["message"] == "UI_driverAssistRoadSign"


def test_replay_json_counts_and_malformed_lines(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    log = tmp_path / "drive.log"
    log.write_text(
        "(1.000) vcan0 100#0000000000000000\n"
        "(1.001) vcan0 7AB#00\n"
        "this line is garbage\n"
        "(1.002) vcan0 101#00\n"
    )
    code, out, err = run(capsys, "replay", str(log), "--dbc", str(BENCH_DBC), "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert {k: summary[k] for k in ("frames", "decoded", "unknown_ids", "errors")} == {
        "frames": 3,
        "decoded": 1,
        "unknown_ids": 1,
        "errors": 2,
    }
    assert summary["duration_s"] >= 0
    assert summary["frames_per_s"] >= 0


def test_replay_text_and_speed(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    log = tmp_path / "drive.log"
    log.write_text("(1.000) vcan0 100#0000000000000000\n(1.010) vcan0 100#0000000000000000\n")
    code, out, _ = run(capsys, "replay", str(log), "--dbc", str(BENCH_DBC), "--speed", "10")
    assert code == 0
    assert "2 frames" in out
    assert "decoded: 2" in out


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["replay", "missing.log", "--dbc", str(BENCH_DBC)], "file not found"),
        (["replay", "drive.pcap", "--dbc", str(BENCH_DBC)], "unknown log kind"),
        (["replay", "drive.log", "--dbc", "missing.dbc"], "CAN database unusable"),
        (["replay", "drive.log", "--dbc", str(BENCH_DBC), "--speed", "-1"], "--speed"),
    ],
)
def test_replay_bad_input_exits_2(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    expected: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "drive.log").write_text("(1.0) vcan0 100#00\n")
    (tmp_path / "drive.csv").write_text("x")
    code, _, err = run(capsys, *args)
    assert code == 2
    assert expected in err
    assert err.count("\n") == 1
