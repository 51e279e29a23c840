"""Start everything, show it live, script the link outage, stop cleanly, summarise.

Order up: broker, link relay, cloud view and stand-in, agent (until ready), vehicle. Order
down: vehicle, agent (SIGTERM, its staged shutdown), cloud stand-in and view, relay, broker.
Every child runs in a session of its own, so Ctrl-C reaches only the demo, which then stops
them in that order.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from edge_agent.config import ConfigError, validate_config
from edge_demo.agent_config import ROOT, build_config
from edge_demo.broker import Broker, start_broker
from edge_demo.cloud_watch import (
    CloudView,
    follow_standin,
    standin_available,
    standin_command,
    watch,
)
from edge_demo.link import LinkRelay
from edge_demo.modes import CanMode
from edge_demo.report import write_report
from edge_demo.timeline import Timeline
from edge_demo.view import LiveView

WORK = Path(os.environ.get("DEMO_DIR") or ROOT / ".demo")
# What a run leaves in WORK; removed before the next run (and nothing else there is touched).
OUTPUTS = (
    "state",
    "mosquitto",
    "agent.toml",
    "agent.log",
    "vehicle.log",
    "amqtt.log",
    "drive.jsonl",
    "summary.json",
    "drive.png",
)
REFRESH_S = 0.5
DRAIN_GRACE_S = 15.0
PYTHON = [sys.executable, "-P"]


@dataclass
class DemoOptions:
    """What the caller chose: the CAN mode, a time limit, the outage window."""

    mode: CanMode
    seconds: float | None = None
    outage: tuple[float, float] | None = None
    namespace: str | None = None
    notes: list[str] = field(default_factory=list)


def outage_window(seconds: float | None, text: str | None) -> tuple[float, float]:
    """``DEMO_OUTAGE=START:END`` or the default: 35 to 50 s, scaled into a shorter run."""
    if text:
        start, _, end = text.partition(":")
        return float(start), float(end)
    if seconds is None or seconds >= 60:
        return 35.0, 50.0
    return round(seconds * 0.35, 1), round(seconds * 0.6, 1)


async def _spawn(command: list[str], log: Path) -> asyncio.subprocess.Process:
    with log.open("ab") as output:
        return await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=output,
            stderr=output,
            start_new_session=True,
            cwd=ROOT,
        )


async def _terminate(process: asyncio.subprocess.Process | None, grace_s: float) -> int | None:
    if process is None:
        return None
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), grace_s)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
    return process.returncode


async def _wait_ready(timeline: Timeline, agent: asyncio.subprocess.Process, log: Path) -> None:
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline:
        if agent.returncode is not None:
            raise RuntimeError(f"the agent exited with status {agent.returncode}; see {log}")
        timeline.refresh("-", 0, 0)
        if timeline.health.get("agent", {}).get("ready"):
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"the agent did not become ready within 45 s; see {log}")


def _link_text(timeline: Timeline, relay: LinkRelay | None) -> str:
    if relay is None:
        return "none"
    if not relay.up:
        return "CUT (scripted outage)"
    link = timeline.health.get("modules", {}).get("cloud-link", {}).get("details", {}).get("link")
    return str(link.get("state", "?")) if isinstance(link, dict) else "?"


class _Outage:
    """Cuts the relay in its window and notes when the backlog has drained afterwards."""

    def __init__(self, window: tuple[float, float], relay: LinkRelay, timeline: Timeline) -> None:
        self.start, self.end = window
        self.relay, self.timeline = relay, timeline
        self.phase = "before"
        self.baseline = 0
        self.peak = 0
        self.restored_at = 0.0
        self.drained_after_s: float | None = None
        self.online_after_s: float | None = None

    def step(self, elapsed: float, spool_records: int | None, link: str) -> None:
        """Advance the script to ``elapsed`` seconds; ``link`` is the cloud link's state."""
        records = spool_records or 0
        if self.phase == "before" and elapsed >= self.start:
            self.baseline = records
            self.relay.cut()
            self.phase = "cut"
            self.timeline.note(f"link outage: uplink cut (spool holds {records} records)")
        elif self.phase == "cut":
            self.peak = max(self.peak, records)
            if elapsed >= self.end:
                self.relay.restore()
                self.phase = "draining"
                self.restored_at = elapsed
                self.timeline.note(f"link restored: backlog of {records} records draining")
        if self.phase == "draining" and link == "online" and self.online_after_s is None:
            self.online_after_s = round(elapsed - self.restored_at, 1)
            self.timeline.note(f"cloud link online {self.online_after_s} s after the link returned")
        if self.phase in ("before", "cut", "drained"):
            return
        if records > self.baseline or link != "online":
            self.peak = max(self.peak, records)
        else:
            self.phase = "drained"
            self.drained_after_s = round(elapsed - self.restored_at, 1)
            self.timeline.note(f"backlog drained {self.drained_after_s} s after the link came back")


class Demo:
    """One run: set-up, the live loop, the ordered shutdown and the report."""

    def __init__(self, options: DemoOptions) -> None:
        self.options = options
        self.mode, self.notes = options.mode, options.notes
        self.state_dir, self.trace = WORK / "state", WORK / "drive.jsonl"
        self.stop = asyncio.Event()
        self.broker: Broker | None = None
        self.relay: LinkRelay | None = None
        self.watcher: asyncio.Task[None] | None = None
        self.standin: asyncio.subprocess.Process | None = None
        self.standin_reader: asyncio.Task[None] | None = None
        self.agent: asyncio.subprocess.Process | None = None
        self.vehicle: asyncio.subprocess.Process | None = None
        self.outage: _Outage | None = None
        self.timeline = Timeline(self.trace, self.state_dir)
        self.cloud = CloudView()
        self.header: list[str] = []

    async def prepare(self) -> dict[str, Any]:
        """Broker, relay and the agent's config (validated); prints the header."""
        self.broker = await asyncio.to_thread(start_broker, WORK)
        broker = self.broker
        if broker is not None:
            if broker.protocol != "5":
                self.notes.append(
                    f"{broker.kind} speaks MQTT {broker.protocol} only: the cloud link uses "
                    f'mqtt_version = "{broker.protocol}" (no message-id property)'
                )
            self.relay = LinkRelay(broker.host, broker.port)
            await self.relay.start()
        config = build_config(
            self.mode,
            self.state_dir,
            self.trace,
            broker=("127.0.0.1", self.relay.listen_port) if self.relay else None,
            mqtt_version=broker.protocol if broker is not None else "5",
            notes=self.notes,
            seconds=self.options.seconds,
        )
        (WORK / "agent.toml").write_text(tomli_w.dumps(config), encoding="utf-8")
        validate_config(config, source=str(WORK / "agent.toml"))
        mode, options = self.mode, self.options
        where = f" in namespace {options.namespace}" if options.namespace else ""
        header = [
            f"edge-agent demo: route demo-route   mode {mode.name}: {mode.interface} "
            f"{mode.channel}{where}   Ctrl-C stops",
            f"  why      {mode.why}",
            f"  broker   {broker.label if broker else 'none'}"
            + (f" via link relay :{self.relay.listen_port}" if self.relay else ""),
        ]
        if self.relay is not None and "cloud-link" in config["modules"] and options.outage:
            start, end = options.outage
            self.outage = _Outage(options.outage, self.relay, self.timeline)
            header.append(
                f"  script   link outage {start:g}-{end:g} s; route: cruise, obstacle and "
                "automatic brake at ~22 s, radar dropout 65-68 s"
            )
        for line in [*header, *(f"  note     {note}" for note in self.notes)]:
            print(line, flush=True)
        self.header = []  # printed once above; the live block redraws below it
        return config

    async def start(self, config: dict[str, Any]) -> None:
        """Cloud view, the agent (until ready), then the vehicle."""
        broker = self.broker
        if broker is not None and "cloud-link" in config["modules"]:
            vehicle_id = str(config["agent"]["vehicle_id"])
            self.watcher = asyncio.create_task(
                watch(broker.host, broker.port, vehicle_id, broker.protocol, self.cloud)
            )
            await self._start_standin(broker, vehicle_id)
        agent_log = WORK / "agent.log"
        self.agent = await _spawn(
            [
                *PYTHON,
                "-m",
                "edge_agent",
                "--log-format",
                "json",
                "run",
                "--config",
                str(WORK / "agent.toml"),
            ],
            agent_log,
        )
        await _wait_ready(self.timeline, self.agent, agent_log)
        self.timeline.ticks.clear()
        self.timeline.started = time.time()
        self.timeline.note("agent ready; the vehicle starts the route")
        if self.mode.name != "in-process":
            mode = self.mode
            command = [
                *PYTHON,
                "-m",
                "edge_demo.drive",
                "--interface",
                mode.interface,
                "--channel",
                mode.channel,
                "--trace",
                str(self.trace),
            ]
            if self.options.seconds:
                command += ["--seconds", str(self.options.seconds)]
            self.vehicle = await _spawn(command, WORK / "vehicle.log")

    async def _start_standin(self, broker: Broker, vehicle_id: str) -> None:
        if not standin_available():
            self.notes.append(
                "cloud stand-in (edge-agent-cloud) not installed: counting arrivals only"
            )
            return
        command = standin_command(PYTHON, broker.host, broker.port, vehicle_id, WORK / "cloud.db")
        with (WORK / "cloud.log").open("ab") as errors:
            self.standin = await asyncio.create_subprocess_exec(
                *command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=errors, start_new_session=True, cwd=ROOT,
            )  # fmt: skip
        assert self.standin.stdout is not None
        self.standin_reader = asyncio.create_task(
            follow_standin(self.standin.stdout, vehicle_id, self.cloud)
        )

    async def live(self) -> None:
        """Refresh every 0.5 s until Ctrl-C, the time limit, or the route (and backlog) ends."""
        timeline, outage, agent = self.timeline, self.outage, self.agent
        assert agent is not None
        view = LiveView()
        finished_at: float | None = None
        while not self.stop.is_set():
            tick = timeline.refresh(
                _link_text(timeline, self.relay),
                self.cloud.batches,
                self.cloud.events,
                self.cloud.standin,
            )
            elapsed = tick.wall - timeline.started
            if outage is not None:
                outage.step(elapsed, tick.spool_records, tick.link)
            view.show(tick, timeline, self.header)
            if agent.returncode is not None:
                timeline.note(f"the agent exited with status {agent.returncode}")
                return
            if self.options.seconds and elapsed >= self.options.seconds:
                return
            if timeline.result is not None:
                finished_at = finished_at or elapsed
                settled = outage is None or outage.phase in ("before", "drained")
                if settled or elapsed - finished_at > DRAIN_GRACE_S:
                    return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), REFRESH_S)
        timeline.note("Ctrl-C: stopping")

    async def shutdown(self) -> int | None:
        """Vehicle, agent, cloud view, relay, broker, in that order; the agent's exit status."""
        await _terminate(self.vehicle, 5)
        self.timeline.read_trace()
        status = await _terminate(self.agent, 40)
        if self.standin is not None:
            await asyncio.sleep(1.5)  # one more summary with the agent's last messages
            await _terminate(self.standin, 10)
        if self.standin_reader is not None:
            await asyncio.gather(self.standin_reader, return_exceptions=True)
        if self.watcher is not None:
            self.watcher.cancel()
            await asyncio.gather(self.watcher, return_exceptions=True)
        if self.relay is not None:
            await self.relay.close()
        if self.broker is not None:
            await asyncio.to_thread(self.broker.stop)
        return status


def clear_outputs() -> None:
    """Remove what the previous run left in WORK (and nothing else)."""
    WORK.mkdir(parents=True, exist_ok=True)
    for name in OUTPUTS:
        old = WORK / name
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old)
        else:
            old.unlink(missing_ok=True)


async def run_demo(options: DemoOptions) -> int:
    """The whole demo; returns the exit status (the agent's; 1 or 2 when set-up failed)."""
    await asyncio.to_thread(clear_outputs)
    demo = Demo(options)
    loop = asyncio.get_running_loop()
    # SIGHUP too: a closed terminal must not leave the children (own sessions) behind.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(signum, demo.stop.set)
    failure: int | None = None
    try:
        config = await demo.prepare()
        await demo.start(config)
        await demo.live()
    except ConfigError as error:
        print("\n".join(["demo: the derived config is invalid:", *error.lines()]), flush=True)
        failure = 2
    except RuntimeError as error:
        print(f"demo: {error}", flush=True)
        failure = 1
    finally:
        status = await demo.shutdown()
    print()
    outage = demo.outage
    write_report(
        WORK,
        demo.timeline,
        demo.cloud,
        mode=options.mode,
        outage=None
        if outage is None or outage.phase == "before"
        else (outage.start, outage.end, outage.peak, outage.drained_after_s, outage.online_after_s),
        agent_status=failure if failure is not None else status,
        notes=options.notes,
    )
    return failure or status or 0
