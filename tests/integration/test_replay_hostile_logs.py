"""``edge-agent replay`` of a hostile and of a truncated ``.blf``, as an operator runs it.

The hostile file is about 300 KB whose two log containers inflate to 150 MiB each behind an
object that declares 4 GiB; python-can alone took 654 MB of memory to replay it "successfully"
with 0 frames (docs/reliability.md). The peak RSS of the command is measured with wait4.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from fixtures.blf_files import inflation_bomb, real_blf
from fixtures.can_helpers import BENCH_DBC
from fixtures.ota_world import agent_env

EDGE_AGENT = Path(sys.executable).parent / "edge-agent"
# The replay command with cantools and python-can loaded is about 40 MB on the development
# machine; the bomb must not add more than its bounded containers to that.
PEAK_RSS_BOUND_MB = 120


# The replay runs as the child of a small Python process that reports its children's peak
# RSS: measured straight from pytest's own child, ru_maxrss would include the memory of the
# (large) pytest process at fork time, which Linux carries over an exec.
PEAK_OF_CHILD = (
    "import resource, subprocess, sys\n"
    "status = subprocess.run(sys.argv[2:], check=False).returncode\n"
    "with open(sys.argv[1], 'w') as out:\n"
    "    out.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
    "sys.exit(status)\n"
)


def replay(log: Path) -> tuple[int, str, str, float]:
    """Exit status, stdout, stderr and peak RSS (MB) of ``edge-agent replay``."""
    out, err = log.with_suffix(".out"), log.with_suffix(".err")
    peak = log.with_suffix(".peak")
    command = [str(EDGE_AGENT), "replay", str(log), "--dbc", str(BENCH_DBC)]
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.run(
            [sys.executable, "-c", PEAK_OF_CHILD, str(peak), *command],
            stdout=stdout,
            stderr=stderr,
            env=agent_env(),
            check=False,
        )
    return process.returncode, out.read_text(), err.read_text(), int(peak.read_text()) / 1024


def test_a_hostile_blf_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    bomb = inflation_bomb(tmp_path / "hostile.blf")
    assert bomb.stat().st_size < 320_000
    status, out, err, peak_mb = replay(bomb)
    assert status == 2, out
    assert err.strip() == (
        f"edge-agent: {bomb}: no frames: the container at byte 144 declares 157286400 bytes "
        "inflated (limit 4194304)"
    )
    assert peak_mb < PEAK_RSS_BOUND_MB


def test_a_truncated_blf_keeps_its_frames_and_names_the_cut(tmp_path: Path) -> None:
    whole = real_blf(tmp_path / "drive.blf", frames=2000, container_bytes=16 * 1024).read_bytes()
    middle = tmp_path / "cut-in-the-middle.blf"
    middle.write_bytes(whole[: len(whole) // 2])
    status, out, err, _ = replay(middle)
    assert status == 0, err
    assert "errors: 1 (malformed records 1," in out
    assert f"e.g. truncated at byte {len(whole) // 2}" in out
    frames = int(out.splitlines()[0].split(": ")[1].split()[0])
    assert 0 < frames < 2000

    start = tmp_path / "cut-in-the-first-container.blf"
    start.write_bytes(whole[:180])
    status, out, err, _ = replay(start)
    assert status == 2, out
    assert err.strip().startswith(f"edge-agent: {start}: no frames: truncated at byte 180")
