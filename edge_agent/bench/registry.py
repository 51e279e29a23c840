"""The benchmarks ``edge-agent bench`` knows: the ``edge_agent.benchmarks`` entry-point group.

Whoever owns what a benchmark measures contributes it, as modules are contributed: the
runtime its bus and spool, each module its own, the test rig those that need its
equipment. An entry point names a function that takes the command line's parsed arguments
(``--json --messages --runs --seconds --log --dbc --config --hours-per-day``) and returns
the JSON-ready result; a ``render_text(result) -> str`` beside it in the same module gives
the human-readable form. Nothing is imported until a benchmark runs.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

ENTRY_POINT_GROUP = "edge_agent.benchmarks"
# Sub-commands of ``edge-agent bench`` itself; an entry point cannot take these names.
RESERVED_NAMES = frozenset({"all", "list"})

BenchmarkFunction = Callable[[argparse.Namespace], dict[str, Any]]
Renderer = Callable[[dict[str, Any]], str]


class BenchmarkLoadError(Exception):
    """A benchmark is unknown or failed to import; the message names it and says why."""


@dataclass(frozen=True, slots=True)
class BenchmarkEntry:
    """One installed benchmark as the entry-point table describes it (nothing imported)."""

    name: str
    value: str
    distribution: str
    distribution_version: str

    @property
    def module_path(self) -> str:
        """The dotted module the entry point lives in."""
        return self.value.partition(":")[0]

    @property
    def origin(self) -> str:
        """Where it comes from, for messages: entry point and distribution."""
        return f"entry point {self.value!r} of distribution {self.distribution!r}"


def _present(module_path: str) -> bool:
    """Whether ``module_path`` is on disk, importing at most its parent packages.

    An install may leave a package out on purpose (a vehicle install drops the test rig)
    while its distribution's metadata still names the benchmarks inside it.
    """
    try:
        return importlib.util.find_spec(module_path) is not None
    except ModuleNotFoundError as error:
        missing = error.name or ""
        if module_path == missing or module_path.startswith(f"{missing}."):
            return False
        raise


def installed_benchmarks() -> dict[str, BenchmarkEntry]:
    """Every benchmark registered and present, by name; the benchmarks are not imported.

    Entries whose package is not installed are left out; entries with a reserved name
    (``all``, ``list``) are reported by :func:`reserved_entries` instead.
    """
    return {
        entry.name: entry
        for entry in _entries()
        if entry.name not in RESERVED_NAMES and _listed(entry)
    }


def reserved_entries() -> list[BenchmarkEntry]:
    """Entry points that use a name of ``edge-agent bench`` itself and so cannot be run."""
    return [entry for entry in _entries() if entry.name in RESERVED_NAMES]


def _entries() -> list[BenchmarkEntry]:
    entries: list[BenchmarkEntry] = []
    for point in entry_points(group=ENTRY_POINT_GROUP):
        dist = point.dist
        entries.append(
            BenchmarkEntry(
                name=point.name,
                value=point.value,
                distribution=dist.name if dist is not None else "?",
                distribution_version=dist.version if dist is not None else "?",
            )
        )
    return entries


def _listed(entry: BenchmarkEntry) -> bool:
    try:
        return _present(entry.module_path)
    except Exception:
        return True  # there, but broken: listed, and running it says what is wrong


def find_benchmark(name: str) -> BenchmarkEntry:
    """The installed benchmark called ``name``; BenchmarkLoadError listing the others if none."""
    installed = installed_benchmarks()
    entry = installed.get(name)
    if entry is None:
        known = ", ".join(sorted(installed)) or "none"
        raise BenchmarkLoadError(f"unknown benchmark {name!r} (installed: {known})")
    return entry


@dataclass(frozen=True, slots=True)
class Benchmark:
    """An imported benchmark: its function and, if its module has one, its text renderer."""

    entry: BenchmarkEntry
    run: BenchmarkFunction
    render: Renderer | None


def load_benchmark(entry: BenchmarkEntry) -> Benchmark:
    """Import ``entry``'s function and its module's ``render_text``, if any.

    Any import failure becomes one BenchmarkLoadError naming the benchmark and the cause.
    """
    module_path, _, attribute = entry.value.partition(":")
    if not module_path or not attribute:
        raise BenchmarkLoadError(
            f"benchmark {entry.name!r} ({entry.origin}) must look like 'package.module:function'"
        )
    try:
        module = importlib.import_module(module_path)
        target: Any = module
        for part in attribute.split("."):
            target = getattr(target, part)
    except Exception as error:
        raise BenchmarkLoadError(
            f"benchmark {entry.name!r} ({entry.origin}) failed to import: "
            f"{type(error).__name__}: {error}"
        ) from error
    if not callable(target):
        raise BenchmarkLoadError(f"benchmark {entry.name!r} ({entry.origin}) is not a function")
    render: Renderer | None = getattr(module, "render_text", None)
    return Benchmark(entry, target, render)


def run_benchmark(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Import and run the installed benchmark ``name``; return its JSON-ready result."""
    return load_benchmark(find_benchmark(name)).run(args)
