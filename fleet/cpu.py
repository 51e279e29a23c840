"""CPU used by the parts of a fleet run, from /proc: which part saturates first.

:class:`CpuMeter` samples the CPU time (user + system) of named groups of processes (the
NATS nodes, the workers, the PostgreSQL backends serving the run's database, the generator
processes) and of the whole machine. A process that ends (a node killed and restarted) keeps
what it used: per group, the last reading of every process ever seen is summed. Figures are
in cores: CPU seconds over wall seconds (2.0 = both cores of a 2-core machine, all the time).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path

PROC = Path("/proc")
TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int) -> tuple[int, float] | None:
    """(start time in ticks, CPU seconds used) of ``pid``, or None when it is gone."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    fields = text[text.rindex(")") + 2 :].split()
    utime, stime, started = int(fields[11]), int(fields[12]), int(fields[19])
    return started, (utime + stime) / TICKS


def machine_busy_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    first = (PROC / "stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in first[:8]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values)
    return (total - idle) / TICKS, total / TICKS


def pids_running(argument: str) -> list[int]:
    """Processes whose command line has an argument containing ``argument``."""
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            arguments = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(argument.encode() in a for a in arguments):
            found.append(int(entry.name))
    return found


class CpuMeter:
    """CPU seconds per group of processes over a run (see the module docstring)."""

    def __init__(self) -> None:
        self._seen: dict[str, dict[tuple[int, int], float]] = {}
        self._first: dict[str, dict[tuple[int, int], float]] = {}
        self._started = time.monotonic()
        self._machine_start = machine_busy_s()
        self._uptime_start = float((PROC / "uptime").read_text().split()[0])
        self._ticks: list[tuple[float, float, dict[str, float]]] = []

    def sample(self, group: str, pids: Iterable[int]) -> None:
        """Read the CPU time of ``pids`` into ``group`` (call it every second or so)."""
        seen = self._seen.setdefault(group, {})
        first = self._first.setdefault(group, {})
        for pid in pids:
            reading = process_cpu_s(pid)
            if reading is None:
                continue
            key = (pid, reading[0])
            # A process started after the meter counts from zero; an older one from now.
            born_after = reading[0] / TICKS >= self._uptime_start
            first.setdefault(key, 0.0 if born_after else reading[1])
            seen[key] = reading[1]

    def used_s(self, group: str) -> float:
        """CPU seconds ``group`` used since the meter started."""
        seen = self._seen.get(group, {})
        return sum(seen[key] - self._first[group][key] for key in seen)

    def tick(self) -> None:
        """Note the totals now (after sampling every group): one point of :meth:`series`."""
        busy, _ = machine_busy_s()
        self._ticks.append(
            (time.monotonic(), busy, {group: self.used_s(group) for group in self._seen})
        )

    def series(self, every_s: float = 10.0) -> list[dict[str, object]]:
        """Cores used per group and by the machine in each ``every_s`` interval."""
        points: list[dict[str, object]] = []
        last = None
        for tick in self._ticks:
            if last is not None and tick[0] - last[0] < every_s:
                continue
            if last is not None:
                span = tick[0] - last[0]
                points.append(
                    {
                        "t": round(tick[0] - self._started),
                        "machine": round((tick[1] - last[1]) / span, 2),
                        **{
                            group: round((used - last[2].get(group, 0.0)) / span, 2)
                            for group, used in tick[2].items()
                        },
                    }
                )
            last = tick
        return points

    def report(self) -> dict[str, object]:
        """Cores used per group since the meter started, and by the machine as a whole."""
        elapsed = max(1e-9, time.monotonic() - self._started)
        groups = {}
        for group in self._seen:
            used = self.used_s(group)
            groups[group] = {"cpu_s": round(used, 2), "cores": round(used / elapsed, 3)}
        busy, total = machine_busy_s()
        cores = os.cpu_count() or 1
        busy_s = busy - self._machine_start[0]
        ours = sum(float(g["cpu_s"]) for g in groups.values())
        return {
            "seconds": round(elapsed, 1),
            "groups": groups,
            "machine_cores": cores,
            "machine_busy_cores": round(busy_s / elapsed, 3),
            "others_cores": round(max(0.0, busy_s - ours) / elapsed, 3),
            "machine_total_s": round(total - self._machine_start[1], 1),
            "series": self.series(),
        }
