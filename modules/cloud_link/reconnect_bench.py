"""``edge-agent bench reconnect``: from the end of an outage to the first PUBACK.

A private mosquitto (mutual TLS, a free loopback port) serves the real :class:`CloudLink`
with its uplink and a spool. Each run: the link is online, the broker stops for ``--seconds``
(default 8) while a record waits in the spool, the broker starts again; the time from the
broker listening again to the broker's PUBACK for that record is measured. Both ways in the
same run, alternately: with the reachability probe (``reconnect_probe_interval_s`` 0.5, the
default) and with the backoff alone (0), with the default backoff (1 s doubling, 60 s cap).
``--runs`` (default 3) runs of each; the figures are the median and the worst. It needs the
simulator's broker and certificates (test equipment).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from edge_agent.bench.report import machine
from edge_agent.bus import Bus
from edge_agent.cli.exit_codes import UserError
from edge_agent.clock import SystemClock
from edge_agent.logs import configure_logging
from edge_agent.modules.cloud_link.budget import LinkBudgets
from edge_agent.modules.cloud_link.config import CloudLinkConfig
from edge_agent.modules.cloud_link.link import CloudLink
from edge_agent.modules.cloud_link.restamp import Restamper
from edge_agent.modules.cloud_link.uplink import Uplink
from edge_agent.spool import AsyncSpool, SpoolPriority
from edge_agent.streams import StreamRegistry

VEHICLE = "bench-vehicle"
VARIANTS = {"probe": 0.5, "backoff_only": 0.0}


async def _until(condition: Any, limit_s: float, what: str) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"bench reconnect: {what} not reached within {limit_s} s")
        await asyncio.sleep(0.005)


async def _one_run(
    settings: dict[str, Any], broker: Any, spool_path: Path, outage_s: float
) -> dict[str, Any]:
    """One outage with one link; returns the outage end to first PUBACK and counters."""
    config = CloudLinkConfig.model_validate(settings)
    spool = await AsyncSpool.open(spool_path)
    clock = SystemClock()
    uplink = Uplink(
        spool,
        LinkBudgets(config.links, config.active_link, clock.monotonic),
        VEHICLE,
        asyncio.Event(),
        Restamper(StreamRegistry()),
        window=config.inflight_window,
        poll_interval_s=0.05,
    )
    link = CloudLink(config, vehicle_id=VEHICLE, bus=Bus(), clock=clock, uplink=uplink)
    running = asyncio.create_task(link.run(), name="bench-reconnect.link")
    try:
        await _until(lambda: link.online, 30, "link online")
        await asyncio.to_thread(broker.stop)
        await _until(lambda: not link.online, 30, "link offline")
        await spool.append("events", b"{}", priority=SpoolPriority.EVENTS)
        await asyncio.sleep(outage_s)  # the outage itself: what the backoff grows during
        published = uplink.counters.published
        await asyncio.to_thread(broker.start)
        ended = time.perf_counter()
        counters = uplink.counters
        await _until(
            lambda: counters.published > published or counters.refused_by_broker > 0,
            120,
            "first PUBACK",
        )
        if counters.refused_by_broker:
            raise RuntimeError(f"bench reconnect: {counters.last_refusal}")
        seconds = time.perf_counter() - ended
        return {
            "seconds": seconds,
            "probes": link.return_watch.probes,
            "probe_reconnects": link.state.probe_reconnects,
            "attempts": link.state.attempt,
        }
    finally:
        await link.stop()
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await spool.close()


async def measure(outage_s: float, runs: int, directory: Path) -> dict[str, Any]:
    """``runs`` outages per variant, alternating, against one private broker."""
    from edge_agent.simulator.certs import DevCA
    from edge_agent.simulator.rig.broker import BrokerTls, LocalBroker

    ca = DevCA.create(directory / "pki")
    server = ca.issue_server(directory / "pki", ["127.0.0.1"])
    client = ca.issue_client(directory / "pki", VEHICLE)
    broker = LocalBroker(
        directory / "broker", tls=BrokerTls(ca.cert_file, server.cert_file, server.key_file)
    )
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in VARIANTS}
    broker.start()
    try:
        for run in range(runs):
            for name, interval in VARIANTS.items():
                settings = {
                    "host": "127.0.0.1",
                    "port": broker.port,
                    "reconnect_probe_interval_s": interval,
                    "tls": {
                        "ca_file": str(ca.cert_file),
                        "cert_file": str(client.cert_file),
                        "key_file": str(client.key_file),
                    },
                }
                spool_path = directory / f"spool-{name}-{run}.db"
                results[name].append(await _one_run(settings, broker, spool_path, outage_s))
    finally:
        broker.stop()
    figures: dict[str, Any] = {}
    for name, rows in results.items():
        seconds = [row["seconds"] for row in rows]
        figures[name] = {
            "median_s": round(statistics.median(seconds), 3),
            "max_s": round(max(seconds), 3),
            "runs_s": [round(value, 3) for value in seconds],
            "probe_reconnects": sum(row["probe_reconnects"] for row in rows),
            "attempts": [row["attempts"] for row in rows],
            "probes": sum(row["probes"] for row in rows),
        }
    return {
        **figures,
        "outage_s": outage_s,
        "runs": runs,
        "reconnect_initial_s": CloudLinkConfig.model_fields["reconnect_initial_s"].default,
        "reconnect_max_s": CloudLinkConfig.model_fields["reconnect_max_s"].default,
        "probe_interval_s": VARIANTS["probe"],
        "tls": True,
        "machine": machine(),
    }


def render_text(result: dict[str, Any]) -> str:
    """The figures for people."""
    lines = [
        f"reconnect after a {result['outage_s']} s broker outage "
        f"(outage end to first PUBACK, {result['runs']} runs each):"
    ]
    for name in VARIANTS:
        row = result[name]
        lines.append(
            f"  {name:<13} median {row['median_s']:.3f} s  worst {row['max_s']:.3f} s  "
            f"(probe reconnects {row['probe_reconnects']}, probes {row['probes']})"
        )
    return "\n".join(lines)


def bench_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Entry for ``edge-agent bench reconnect`` (``--seconds``: outage, ``--runs``)."""
    if importlib.util.find_spec("edge_agent.simulator") is None:
        raise UserError("bench reconnect: needs the simulator's private broker (not installed)")
    configure_logging("warning", "json")  # stdout carries the figures only
    outage_s = args.seconds or 8.0
    runs = args.runs or 3
    with tempfile.TemporaryDirectory(prefix="edge-agent-reconnect-") as directory:
        return asyncio.run(measure(outage_s, runs, Path(directory)))
