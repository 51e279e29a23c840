"""``edge-agent bench``: list the installed benchmarks, run one, or run them all."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from edge_agent.cli.exit_codes import Exit, UserError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``bench`` to the command line."""
    bench = sub.add_parser(
        "bench", help="run a benchmark (prints JSON), 'all' of them, or 'list' them"
    )
    bench.add_argument(
        "name", nargs="?", metavar="NAME", help="an installed benchmark, 'all' or 'list' (default)"
    )
    bench.add_argument("--list", action="store_true", help="list the installed benchmarks")
    bench.add_argument("--json", action="store_true", help="one JSON line")
    bench.add_argument("--messages", type=int, help="messages or frames per run")
    bench.add_argument("--runs", type=int, help="repetitions (the median is reported)")
    bench.add_argument("--seconds", type=float, help="duration of timed benchmarks")
    bench.add_argument(
        "--log", help="recorded drive (any log python-can reads: .log, .asc, .blf, .trc, ...)"
    )
    bench.add_argument("--dbc", help="CAN database for --log (.dbc, .kcd, .sym, .arxml)")
    bench.add_argument("--config", help="agent.toml whose settings apply")
    bench.add_argument(
        "--hours-per-day", type=float, help="driving hours per day for monthly figures (uplink: 2)"
    )
    bench.set_defaults(handler=run_bench)


def run_bench(args: argparse.Namespace) -> int:
    """``edge-agent bench [NAME | all | list]``: run benchmarks and print their figures."""
    from edge_agent.bench.registry import BenchmarkLoadError, find_benchmark, load_benchmark

    if args.list or args.name in (None, "list"):
        return list_benchmarks(json_out=args.json)
    if args.name == "all":
        from edge_agent.bench.everything import bench_all

        _print(bench_all(), None, json_out=args.json)
        return Exit.OK
    try:
        benchmark = load_benchmark(find_benchmark(args.name))
    except BenchmarkLoadError as error:
        raise UserError(f"bench: {error}") from None
    result = benchmark.run(args)
    text = None if args.json or benchmark.render is None else benchmark.render(result)
    _print(result, text, json_out=args.json)
    return Exit.OK


def _print(result: dict[str, Any], text: str | None, *, json_out: bool) -> None:
    if json_out:
        print(json.dumps(result))
    elif text is not None:
        print(text)
    else:
        json.dump(result, sys.stdout, indent=2)
        print()


def list_benchmarks(*, json_out: bool) -> int:
    """``edge-agent bench list``: name, distribution and entry point of each, none imported."""
    from edge_agent.bench.registry import installed_benchmarks, reserved_entries

    rows = [
        {
            "name": entry.name,
            "distribution": f"{entry.distribution} {entry.distribution_version}",
            "entry_point": entry.value,
        }
        for entry in sorted(installed_benchmarks().values(), key=lambda e: e.name)
    ]
    clashes = [
        f"{entry.name!r} ({entry.origin}): the name is a sub-command of 'edge-agent bench'; "
        "rename the entry point"
        for entry in reserved_entries()
    ]
    if json_out:
        print(json.dumps(rows, indent=2))
    else:
        print(f"{'NAME':<12} {'DISTRIBUTION':<24} ENTRY POINT")
        for row in rows:
            print(f"{row['name']:<12} {row['distribution']:<24} {row['entry_point']}")
        print(f"{'all':<12} {'':<24} every benchmark above, one JSON object")
    for clash in clashes:
        print(f"edge-agent: bench: ignored {clash}", file=sys.stderr)
    return Exit.OK
