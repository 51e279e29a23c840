"""``edge-agent-cloud``: the cloud stand-in (reference back-end consumer) and fleet control.

Sub-commands: ``serve`` (consume a fleet's topics into SQLite, dropping duplicates, with a
live summary), ``summary`` (what a database holds), ``desired``, ``command`` and ``ota``
(send to one vehicle; ``--mqtt-version 3.1.1`` for NATS's MQTT listener), ``certs`` (a
development PKI for a bench), ``worker`` (the fleet back end's NATS-to-PostgreSQL worker,
docs/fleet.md). See docs/cloud.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import enum
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edge_agent.simulator.arguments import OneLineParser
from edge_agent.simulator.certs import DevCA
from edge_agent.simulator.cloud_consumer import (
    BrokerAccess,
    ConsumerStats,
    consume,
    send_command,
    send_desired,
    send_ota_job,
)
from edge_agent.simulator.cloud_store import CloudStore

PROG = "edge-agent-cloud"


class Exit(enum.IntEnum):
    """Exit statuses of ``edge-agent-cloud``."""

    OK = 0
    COMMAND_FAILED = 1
    BAD_INPUT = 2
    NO_REPLY = 3
    BROKER_UNREACHABLE = 4
    INTERRUPTED = 130


def _access(args: argparse.Namespace) -> BrokerAccess:
    mqtt5 = args.mqtt_version == "5"
    if args.no_tls:
        print(f"{PROG}: WARNING: plaintext MQTT (--no-tls): local bench only", file=sys.stderr)
        return BrokerAccess(args.host, args.port, mqtt5=mqtt5)
    if not (args.ca and args.cert and args.key):
        raise ValueError("--ca, --cert and --key are needed (or --no-tls for a local bench)")
    return BrokerAccess(
        args.host, args.port, Path(args.ca), Path(args.cert), Path(args.key), mqtt5=mqtt5
    )


def _json_argument(text: str) -> dict[str, Any]:
    """A JSON object from ``text``, ``@FILE`` or ``-`` (stdin)."""
    if text == "-":
        text = sys.stdin.read()
    elif text.startswith("@"):
        text = Path(text[1:]).read_text()
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("expected a JSON object")  # noqa: TRY004 - reported as bad input
    return value


# -- sub-commands ------------------------------------------------------------------------------


def _summary_line(summary: dict[str, Any], stats: ConsumerStats) -> str:
    totals = {
        key: sum(v[key] or 0 for v in summary.values())
        for key in ("batches", "samples", "events", "duplicates", "rejected")
    }
    vehicles = ", ".join(
        f"{vid}:{v['status'] or '?'}/desired={v['desired_version']}" for vid, v in summary.items()
    )
    return (
        f"{time.strftime('%H:%M:%S')} vehicles={len(summary)} "
        + " ".join(f"{k}={n}" for k, n in totals.items())
        + f" connects={stats.connects} | {vehicles}"
    )


async def _serve(args: argparse.Namespace) -> int:
    access = _access(args)
    store = CloudStore(args.db)
    stats = ConsumerStats()
    task = asyncio.create_task(
        consume(
            store,
            access,
            client_id=args.client_id,
            fleet=args.fleet,
            share_group=args.share_group,
            stats=stats,
        )
    )
    try:
        while not task.done():
            await asyncio.sleep(args.summary_every)
            summary = await asyncio.to_thread(store.summary)
            if args.json:
                print(json.dumps({"vehicles": summary, "outcomes": stats.outcomes}), flush=True)
            else:
                print(_summary_line(summary, stats), flush=True)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        store.close()
    return int(Exit.OK)


def _show_summary(args: argparse.Namespace) -> int:
    store = CloudStore(args.db)
    try:
        print(json.dumps(store.summary(), indent=None if args.json else 2))
    finally:
        store.close()
    return int(Exit.OK)


async def _command(args: argparse.Namespace) -> int:
    try:
        reply = await send_command(
            _access(args),
            args.vehicle,
            args.name,
            _json_argument(args.args),
            timeout_s=args.timeout,
        )
    except TimeoutError:
        print(f"{PROG}: no reply from {args.vehicle} within {args.timeout:g} s", file=sys.stderr)
        return int(Exit.NO_REPLY)
    print(json.dumps(reply))
    return int(Exit.OK if reply.get("ok") else Exit.COMMAND_FAILED)


async def _desired(args: argparse.Namespace) -> int:
    document = _json_argument(args.document)
    await send_desired(_access(args), args.vehicle, document)
    print(f"desired state {document.get('version')!r} sent to {args.vehicle} (retained)")
    return int(Exit.OK)


async def _ota(args: argparse.Namespace) -> int:
    await send_ota_job(_access(args), args.vehicle, _json_argument(args.job))
    print(f"OTA job sent to {args.vehicle}")
    return int(Exit.OK)


async def _worker(args: argparse.Namespace) -> int:
    # Imported here: nats-py and asyncpg are the optional `fleet` extra (the SQLite
    # stand-in and `make demo` work without them).
    from edge_agent.fleet.worker import serve_worker

    urls = [url.strip() for url in args.nats.split(",") if url.strip()]
    if not urls or args.fetch < 1:
        raise ValueError("--nats needs at least one URL and --fetch at least 1")
    try:
        return await serve_worker(
            urls, args.db, name=args.name, fetch=args.fetch, every=args.stats_every
        )
    except ConnectionError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return int(Exit.BROKER_UNREACHABLE)


def _certs(args: argparse.Namespace) -> int:
    out = Path(args.out)
    ca = DevCA.create(out, name="fleet dev CA")
    server = ca.issue_server(out, args.host or ["localhost", "127.0.0.1"])
    for identity in [*args.vehicle, "cloud"]:
        ca.issue_client(out, identity)
    print(f"CA: {ca.cert_file}\nbroker: {server.cert_file} {server.key_file}")
    print(f"clients: {', '.join(f'{v}.pem/.key' for v in [*args.vehicle, 'cloud'])} in {out}")
    return int(Exit.OK)


# -- parser ------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The ``edge-agent-cloud`` argument parser."""
    parser = OneLineParser(prog=PROG, description="Cloud stand-in for edge-agent fleets.")
    broker = OneLineParser(add_help=False)
    broker.add_argument("--host", default="localhost")
    broker.add_argument("--port", type=int, default=8883)
    broker.add_argument("--ca", help="CA certificate of the broker")
    broker.add_argument("--cert", help="the cloud identity's certificate (CN=cloud)")
    broker.add_argument("--key", help="the cloud identity's private key")
    broker.add_argument("--no-tls", action="store_true", help="plaintext (local bench only)")
    broker.add_argument(
        "--mqtt-version",
        choices=("5", "3.1.1"),
        default="5",
        help="3.1.1 for a broker without MQTT 5, such as NATS's MQTT listener (docs/fleet.md)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", parents=[broker], help="consume a fleet into a database")
    serve.add_argument("--db", required=True, help="SQLite file (created if missing)")
    serve.add_argument("--fleet", default="+", help="one vehicle id, or + for all")
    serve.add_argument("--share-group", help="consume through $share/GROUP/... (scale-out)")
    serve.add_argument("--client-id", default="cloud-consumer")
    serve.add_argument("--summary-every", type=float, default=2.0, metavar="SECONDS")
    serve.add_argument("--json", action="store_true", help="summaries as JSON lines")
    serve.set_defaults(run=_serve)

    summary = sub.add_parser("summary", help="what a database holds")
    summary.add_argument("--db", required=True)
    summary.add_argument("--json", action="store_true")
    summary.set_defaults(call=_show_summary)

    command = sub.add_parser("command", parents=[broker], help="run a command on a vehicle")
    command.add_argument("vehicle")
    command.add_argument("name", help="ping, get_status, set_log_level, snapshot, ...")
    command.add_argument("--args", default="{}", help="JSON object, @FILE or -")
    command.add_argument("--timeout", type=float, default=10.0)
    command.set_defaults(run=_command)

    desired = sub.add_parser("desired", parents=[broker], help="set a vehicle's desired state")
    desired.add_argument("vehicle")
    desired.add_argument("document", help='{"version": ..., "modules": {...}}, @FILE or -')
    desired.set_defaults(run=_desired)

    ota = sub.add_parser("ota", parents=[broker], help="send an OTA job")
    ota.add_argument("vehicle")
    ota.add_argument("job", help="JSON object, @FILE or -")
    ota.set_defaults(run=_ota)

    worker = sub.add_parser(
        "worker", help="a fleet worker: NATS JetStream to PostgreSQL (docs/fleet.md)"
    )
    worker.add_argument("--nats", required=True, help="nats://[user:password@]host:port[,...]")
    worker.add_argument("--db", required=True, help="postgresql://... (the fleet database)")
    worker.add_argument("--name", default="worker", help="this worker's name in logs and stats")
    worker.add_argument("--fetch", type=int, default=200, help="messages per transaction")
    worker.add_argument("--stats-every", type=float, default=5.0, metavar="SECONDS")
    worker.set_defaults(run=_worker)

    certs = sub.add_parser("certs", help="make a development PKI (CA, broker, clients)")
    certs.add_argument("--out", required=True)
    certs.add_argument("--vehicle", action="append", default=[], help="repeat per vehicle")
    certs.add_argument("--host", action="append", help="broker host names/IPs")
    certs.set_defaults(call=_certs)

    _add_fleet_commands(sub)
    return parser


def _add_fleet_commands(sub: Any) -> None:
    # fleet-bench and fleet-accounts (docs/fleet.md); heavy imports happen when they run.
    from edge_agent.fleet.bench_cli import add_fleet_bench

    add_fleet_bench(sub)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``edge-agent-cloud``; return its exit status."""
    args = build_parser().parse_args(argv)
    try:
        if hasattr(args, "run"):
            return int(asyncio.run(args.run(args)))
        return int(args.call(args))
    except KeyboardInterrupt:
        return int(Exit.INTERRUPTED)
    except (ValueError, OSError) as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return int(Exit.BAD_INPUT)
    except Exception as error:  # aiomqtt.MqttError and friends: say what, no traceback
        print(f"{PROG}: broker: {error}", file=sys.stderr)
        return int(Exit.BROKER_UNREACHABLE)


if __name__ == "__main__":
    sys.exit(main())
