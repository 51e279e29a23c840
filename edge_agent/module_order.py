"""Dependency order of modules: a stable topological sort with a clear error on cycles."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


class DependencyCycle(ValueError):
    """Modules require each other in a loop; the message names the loop."""


def start_order(requires: Mapping[str, Iterable[str]]) -> list[str]:
    """Return module names so that every module comes after the modules it requires.

    Names unknown to ``requires`` are ignored as dependencies (the config loader reports
    them); ties keep the input order so start-up is deterministic.
    """
    order: list[str] = []
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            loop = [*path[path.index(name) :], name]
            raise DependencyCycle("modules require each other in a loop: " + " -> ".join(loop))
        state[name] = "visiting"
        for needed in requires.get(name, ()):
            if needed in requires:
                visit(needed, [*path, name])
        state[name] = "done"
        order.append(name)

    for name in requires:
        visit(name, [])
    return order
