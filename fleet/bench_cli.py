"""The fleet bench's command lines: ``edge-agent-cloud fleet-bench``, ``edge-agent bench fleet``.

Importing this module imports nothing heavy (``bench list`` must stay cheap): the bench
itself, nats-py and asyncpg are imported when it runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

PROG = "edge-agent-cloud fleet-bench"
FAILED = 1  # acknowledged batches lost, or duplicate rows
BAD_INPUT = 2
PARTS_FAILED = 4  # the cluster, the database or a worker could not be run


def add_fleet_bench(sub: Any) -> None:
    """Add ``fleet-bench`` (and ``fleet-accounts``) to ``edge-agent-cloud``'s parser."""
    bench = sub.add_parser(
        "fleet-bench",
        help="the fleet back end under load, a NATS node and a worker killed (docs/fleet.md)",
    )
    bench.add_argument("--json", action="store_true", help="print the report as one JSON line")
    bench.add_argument("--vehicles", type=int, default=1000)
    bench.add_argument("--workers", type=int, default=2)
    bench.add_argument("--nodes", type=int, default=3, help="NATS nodes it starts")
    bench.add_argument("--minutes", type=float, default=3.0, help="driving time")
    bench.add_argument("--processes", type=int, default=4, help="generator processes")
    bench.add_argument("--profile", choices=("fleet", "native"), default="fleet")
    bench.add_argument("--speedup", type=float, default=1.0, help="send N times as often")
    bench.add_argument("--batch-format", type=int, choices=(2, 3), default=2)
    bench.add_argument("--no-kill", action="store_true", help="kill no node and no worker")
    bench.add_argument("--offline-share", type=float, default=0.1)
    bench.add_argument("--nats", help="NATS URLs of a running cluster (comma-separated)")
    bench.add_argument("--mqtt", help="with --nats: host:port of its MQTT listeners, comma-sep.")
    bench.add_argument("--ca", type=Path, help="with --nats: CA of the MQTT listeners")
    bench.add_argument("--certs", type=Path, help="with --nats: dir of {vehicle}.pem/.key")
    bench.add_argument("--db", help="postgresql://... (default: a scratch database)")
    bench.add_argument("--workdir", type=Path, help="keep files here (default: temporary)")
    bench.set_defaults(run=fleet_bench_command)
    from edge_agent.fleet.deploy_config import add_fleet_accounts

    add_fleet_accounts(sub)


def options_from_args(args: argparse.Namespace) -> Any:
    """BenchOptions from parsed arguments; ValueError (one line) for impossible values."""
    from edge_agent.fleet.bench import BenchOptions

    if args.vehicles < 1 or args.workers < 0 or args.nodes < 1 or args.processes < 1:
        raise ValueError("--vehicles, --nodes and --processes must be at least 1, --workers 0+")
    if not 0 < args.minutes <= 24 * 60 or not 0 < args.speedup <= 1000:
        raise ValueError("--minutes must be in (0, 1440] and --speedup in (0, 1000]")
    if not 0 <= args.offline_share <= 1:
        raise ValueError("--offline-share must be between 0 and 1")
    if args.nats and not (args.mqtt and args.ca and args.certs):
        raise ValueError("--nats needs --mqtt, --ca and --certs (the vehicles' side)")
    mqtt = None
    if args.mqtt:
        mqtt = []
        for item in args.mqtt.split(","):
            host, _, port = item.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"--mqtt: {item!r} is not host:port")
            mqtt.append((host, int(port)))
    return BenchOptions(
        vehicles=args.vehicles,
        workers=args.workers,
        nodes=args.nodes,
        minutes=args.minutes,
        processes=args.processes,
        profile=args.profile,
        speedup=args.speedup,
        batch_format=args.batch_format,
        kill=not args.no_kill,
        nats=[u for u in args.nats.split(",") if u] if args.nats else None,
        mqtt=mqtt,
        ca_file=args.ca,
        cert_dir=args.certs,
        db=args.db,
        workdir=args.workdir,
        offline_share=args.offline_share,
    )


async def fleet_bench_command(args: argparse.Namespace) -> int:
    """Run the bench, print the report; 1 when an acked batch is lost or a row is doubled."""
    from edge_agent.fleet.bench import run_bench

    try:
        options = options_from_args(args)
    except ValueError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return BAD_INPUT
    try:
        result = await run_bench(options)
    except (RuntimeError, OSError) as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return PARTS_FAILED
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    if result["lost"] or result["duplicate_rows"]:
        print(
            f"{PROG}: {result['lost']} acknowledged batches lost, "
            f"{result['duplicate_rows']} duplicate rows",
            file=sys.stderr,
        )
        return FAILED
    return 0


def bench_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """``edge-agent bench fleet``: a small run (``--messages`` vehicles, ``--seconds``).

    Defaults: 200 vehicles for 60 s, 2 workers, 3 nodes, node and worker killed. Needs
    nats-server and a local PostgreSQL (docs/fleet.md); the full-size run is
    ``edge-agent-cloud fleet-bench``.
    """
    from edge_agent.fleet.bench import BenchOptions, run_bench

    seconds = getattr(args, "seconds", None) or 60.0
    vehicles = getattr(args, "messages", None) or 200
    options = BenchOptions(vehicles=vehicles, minutes=seconds / 60.0, processes=2)
    result: dict[str, Any] = asyncio.run(run_bench(options))
    return result
