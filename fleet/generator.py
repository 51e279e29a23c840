"""The fleet load generator: N vehicles in a few processes, and what they report.

:class:`LoadPlan` says who drives (vehicle ids split into shares, one process each), where
to (the cluster's MQTT addresses), with what (the traffic profile) and for how long.
:class:`FleetLoad` writes the plan to a file, starts one ``python -m
edge_agent.fleet.generator`` process per share, and collects their reports into a
:class:`FleetReport`. Each process runs its vehicles on one event loop
(:mod:`edge_agent.fleet.vehicles`), starting them spread over ``ramp_s`` (a fleet does not
connect in the same millisecond), and writes its report as JSON when every vehicle drained.

Offline windows: ``offline_share`` of the vehicles, drawn with the plan's seed, each lose
coverage once for ``offline_s`` at a random time in the middle of the run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edge_agent.fleet.traffic import TrafficProfile
from edge_agent.fleet.vehicles import FleetVehicle, VehicleSettings
from edge_agent.logs import configure_logging

STAGGER_OPEN = 16  # spools opened at once per process (each opens a SQLite file)
OVERRUN_S = 60.0  # past driving and draining, a vehicle's run is cut (and counted)


@dataclass
class LoadPlan:
    """Everything the generator processes need (written to ``plan.json``)."""

    addresses: list[tuple[str, int]]
    ca_file: str
    cert_dir: str
    spool_dir: str
    profile: TrafficProfile
    shares: list[list[str]]
    duration_s: float
    batch_format: int = 2
    speedup: float = 1.0
    ramp_s: float = 10.0
    drain_timeout_s: float = 120.0
    offline_share: float = 0.1
    offline_s: float = 20.0
    failover_s: float = 5.0
    seed: int = 0
    link: dict[str, Any] = field(default_factory=dict)

    @property
    def vehicles(self) -> int:
        """How many vehicles drive."""
        return sum(len(share) for share in self.shares)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        data = asdict(self)
        data["profile"] = self.profile.to_json()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LoadPlan:
        """The inverse of :meth:`to_json`."""
        fields = dict(data)
        fields["profile"] = TrafficProfile.from_json(data["profile"])
        fields["addresses"] = [(str(h), int(p)) for h, p in data["addresses"]]
        return cls(**fields)

    def settings(self) -> VehicleSettings:
        """What every vehicle shares."""
        return VehicleSettings(
            addresses=tuple(self.addresses),
            ca_file=Path(self.ca_file),
            cert_dir=Path(self.cert_dir),
            spool_dir=Path(self.spool_dir),
            batch_format=self.batch_format,
            speedup=self.speedup,
            failover_s=self.failover_s,
            link=dict(self.link),
        )

    def offline_windows(self, vehicle_id: str) -> list[tuple[float, float]]:
        """The coverage gaps of ``vehicle_id``: none, or one in the middle of the run."""
        draw = random.Random(f"{self.seed}:offline:{vehicle_id}")
        if draw.random() >= self.offline_share or self.duration_s <= self.offline_s:
            return []
        latest = max(0.0, self.duration_s - self.offline_s) * 0.8
        return [(draw.uniform(min(0.2 * self.duration_s, latest), latest), self.offline_s)]


def split(vehicle_ids: Sequence[str], processes: int) -> list[list[str]]:
    """``vehicle_ids`` in ``processes`` shares of (almost) equal size, round robin."""
    count = max(1, min(processes, len(vehicle_ids)))
    return [list(vehicle_ids[i::count]) for i in range(count)]


@dataclass
class FleetReport:
    """What every vehicle of a run reported."""

    vehicles: list[dict[str, Any]]
    process_cpu_s: list[float]
    loop_reports: dict[str, int] = field(default_factory=dict)

    def total(self, key: str) -> int:
        """Sum of a counter over every vehicle."""
        return sum(int(v[key]) for v in self.vehicles)

    def acked_batches(self) -> dict[tuple[str, str], list[Any]]:
        """Every acknowledged batch by (vehicle, message id hex): its row from the vehicle."""
        return {(v["vehicle"], b[2]): b for v in self.vehicles for b in v["batches"] if b[6]}


class FleetLoad:
    """Starts the generator processes of ``plan`` in ``workdir`` and collects their reports."""

    def __init__(self, workdir: Path, plan: LoadPlan) -> None:
        self.workdir = workdir
        self.plan = plan
        self.processes: list[subprocess.Popen[bytes]] = []
        self._logs: list[Any] = []

    @property
    def pids(self) -> list[int]:
        """Process ids of the generator processes (for CPU accounting)."""
        return [p.pid for p in self.processes]

    def start(self) -> None:
        """Write the plan and start one process per share."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        Path(self.plan.spool_dir).mkdir(parents=True, exist_ok=True)
        plan_file = self.workdir / "plan.json"
        plan_file.write_text(json.dumps(self.plan.to_json()))
        for share in range(len(self.plan.shares)):
            log = (self.workdir / f"generator-{share}.log").open("wb")
            self._logs.append(log)
            self.processes.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "edge_agent.fleet.generator",
                        "--plan",
                        str(plan_file),
                        "--share",
                        str(share),
                        "--out",
                        str(self._result_file(share)),
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    # Not the caller's directory: a source checkout there would shadow the
                    # installed package (``python -m`` puts the working directory first).
                    cwd=self.workdir,
                )
            )

    def _result_file(self, share: int) -> Path:
        return self.workdir / f"result-{share}.json"

    def running(self) -> bool:
        """Whether any generator process is still running."""
        return any(p.poll() is None for p in self.processes)

    async def wait(self, timeout_s: float) -> FleetReport:
        """Wait for every process to finish and read their reports.

        Raises RuntimeError naming the process (and its log) that failed or did not finish.
        """
        deadline = time.monotonic() + timeout_s
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                left = max(0.0, deadline - time.monotonic())
                await asyncio.to_thread(process.wait, left)
        self.stop()
        vehicles: list[dict[str, Any]] = []
        cpu: list[float] = []
        loop_reports: Counter[str] = Counter()
        for share, process in enumerate(self.processes):
            result = self._result_file(share)
            if process.returncode != 0 or not result.exists():
                log = self.workdir / f"generator-{share}.log"
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise RuntimeError(
                    f"generator process {share} ended with status {process.returncode} "
                    f"and no report; log {log}: {tail}"
                )
            data = json.loads(result.read_text())
            vehicles.extend(data["vehicles"])
            cpu.append(float(data["cpu_s"]))
            loop_reports.update(data.get("loop_reports", {}))
        return FleetReport(vehicles, cpu, dict(loop_reports))

    def stop(self) -> None:
        """Kill whatever still runs (after a timeout) and close the logs."""
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        for log in self._logs:
            log.close()
        self._logs.clear()


# -- inside one generator process ---------------------------------------------------------


async def run_share(plan: LoadPlan, share: int) -> list[dict[str, Any]]:
    """Open, drive and drain the vehicles of ``share``; their reports."""
    from edge_agent.bus import Bus

    settings = plan.settings()
    ids = plan.shares[share]
    bus = Bus()
    vehicles = [
        FleetVehicle(
            vid,
            settings,
            plan.profile,
            bus=bus,
            first_node=(share + index) % len(plan.addresses),
            seed=plan.seed,
        )
        for index, vid in enumerate(ids)
    ]
    for start in range(0, len(vehicles), STAGGER_OPEN):
        await asyncio.gather(*(v.open() for v in vehicles[start : start + STAGGER_OPEN]))

    async def drive(index: int, vehicle: FleetVehicle) -> None:
        delay = plan.ramp_s * index / max(1, len(vehicles))
        await asyncio.sleep(delay)
        try:
            async with asyncio.timeout(plan.duration_s + plan.drain_timeout_s + OVERRUN_S):
                await vehicle.run(
                    max(0.0, plan.duration_s - delay),
                    offline=[
                        (s - delay, length)
                        for s, length in plan.offline_windows(vehicle.vehicle_id)
                    ],
                    drain_timeout_s=plan.drain_timeout_s,
                )
        except TimeoutError:
            vehicle.counters.overran += 1

    try:
        async with asyncio.TaskGroup() as group:
            for index, vehicle in enumerate(vehicles):
                group.create_task(drive(index, vehicle), name=f"{vehicle.vehicle_id}.drive")
    finally:
        for vehicle in vehicles:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5.0):
                    await vehicle.close()
    return [v.report() for v in vehicles]


def count_loop_reports(loop: asyncio.AbstractEventLoop) -> Counter[str]:
    """Count what reaches ``loop``'s exception handler, by message; still log each.

    A link cut at the wrong moment showed up here at scale ("Future exception was never
    retrieved", an error in a reader or writer callback): the run reports how many.
    """
    reports: Counter[str] = Counter()

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        message = str(context.get("message", "unknown"))
        if message.startswith("Exception in callback"):
            message = "Exception in callback"  # without the callback's repr: one key
        error = context.get("exception")
        reports[message if error is None else f"{message} ({type(error).__name__})"] += 1
        loop.default_exception_handler(context)

    loop.set_exception_handler(handle)
    return reports


def main(argv: Sequence[str] | None = None) -> int:
    """One generator process: ``--plan FILE --share N --out FILE``."""
    parser = argparse.ArgumentParser(prog="python -m edge_agent.fleet.generator")
    parser.add_argument("--plan", required=True, type=Path)
    parser.add_argument("--share", required=True, type=int)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    plan = LoadPlan.from_json(json.loads(args.plan.read_text()))
    # Hundreds of links reconnecting after a node kill: only warnings and errors, as JSON.
    configure_logging("warning", "json")
    if not 0 <= args.share < len(plan.shares):
        print(f"--share must be 0 to {len(plan.shares) - 1}", file=sys.stderr)
        return 2
    loop = asyncio.new_event_loop()
    loop_reports = count_loop_reports(loop)
    vehicles = loop.run_until_complete(run_share(plan, args.share))
    gc.collect()  # an unread future error is reported when the future is collected
    times = os.times()
    report = {
        "vehicles": vehicles,
        "cpu_s": times.user + times.system,
        "loop_reports": dict(loop_reports),
    }
    partial = args.out.with_suffix(".partial")
    partial.write_text(json.dumps(report))
    partial.replace(args.out)
    # Counted and written: leave without joining what a stuck link left in the loop's
    # executor (a blocking connect), which could hold the exit for minutes.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
