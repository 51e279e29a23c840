"""Finding modules: the ``edge_agent.modules`` entry-point group, imported lazily."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from edge_agent.module_api import Module

ENTRY_POINT_GROUP = "edge_agent.modules"


class ModuleLoadError(Exception):
    """A module could not be found or imported; the message names it and says why."""


@dataclass(frozen=True, slots=True)
class ModuleEntry:
    """One installed module as the entry-point table describes it (nothing imported yet)."""

    name: str
    value: str
    distribution: str
    distribution_version: str


def installed_modules() -> dict[str, ModuleEntry]:
    """Every module registered in the entry-point group, by name, without importing any."""
    found: dict[str, ModuleEntry] = {}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        dist = point.dist
        found[point.name] = ModuleEntry(
            name=point.name,
            value=point.value,
            distribution=dist.name if dist is not None else "?",
            distribution_version=dist.version if dist is not None else "?",
        )
    return found


def _import_target(value: str) -> object:
    module_path, _, attribute = value.partition(":")
    if not module_path or not attribute:
        raise ModuleLoadError(f"entry point {value!r} must look like 'package.module:ClassName'")
    target: object = importlib.import_module(module_path)
    for part in attribute.split("."):
        target = getattr(target, part)
    return target


def load_module_class(name: str, entry_point: str | None = None) -> type[Module[Any]]:
    """Import and return the module class registered as ``name`` (or at ``entry_point``).

    Any import failure is wrapped in one ModuleLoadError naming the module and the cause.
    """
    if entry_point is None:
        entry = installed_modules().get(name)
        if entry is None:
            known = ", ".join(sorted(installed_modules())) or "none"
            raise ModuleLoadError(f"unknown module {name!r} (installed: {known})")
        value = entry.value
        origin = f"entry point {value!r} of distribution {entry.distribution!r}"
    else:
        value = entry_point
        origin = f"entry point {value!r} from the config"
    return _checked_import(name, value, origin)


def import_module_class(name: str, entry_point: str) -> type[Module[Any]]:
    """Import the module class at ``entry_point`` ('package.module:Class') for module ``name``."""
    return _checked_import(name, entry_point, f"entry point {entry_point!r}")


def _checked_import(name: str, value: str, origin: str) -> type[Module[Any]]:
    try:
        target = _import_target(value)
    except ModuleLoadError:
        raise
    except Exception as error:
        raise ModuleLoadError(
            f"module {name!r} ({origin}) failed to import: {type(error).__name__}: {error}"
        ) from error
    if not (isinstance(target, type) and issubclass(target, Module)):
        raise ModuleLoadError(f"module {name!r} ({origin}) is not an edge_agent Module subclass")
    return target
