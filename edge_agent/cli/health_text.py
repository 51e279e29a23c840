"""The text form of ``edge-agent status``: a health snapshot for people.

The snapshot may come from another version of the agent, so every field is read defensively:
what is missing or of another type shows as ``?``, and a line ``warning: ...`` says what this
version did not understand; rendering never fails.
"""

from __future__ import annotations

from typing import Any, TypeGuard

UNKNOWN = "?"


def render_health(snapshot: dict[str, Any], now: float) -> list[str]:
    """The lines ``edge-agent status`` prints for ``snapshot`` (its ``agent`` is a dict)."""
    agent: dict[str, Any] = snapshot["agent"]
    not_understood: list[str] = []
    started = agent.get("started_at")
    uptime = f"{now - float(started):.0f} s" if _is_number(started) else UNKNOWN
    ready = " (ready)" if agent.get("ready") is True else ""
    lines = [
        f"agent {_text(agent, 'version')} vehicle {_text(agent, 'vehicle_id')} "
        f"pid {_text(agent, 'pid')}: {_text(agent, 'state')}{ready}, up {uptime}, "
        f"loop lag {_text(agent, 'loop_lag_ms')} ms"
    ]
    if agent.get("desired_ignored"):
        lines.append(f"  desired state not applied: {agent['desired_ignored']}")
    modules = snapshot.get("modules")
    if not isinstance(modules, dict):
        not_understood.append("modules")
        modules = {}
    for name, module in modules.items():
        if not isinstance(module, dict):
            not_understood.append(f"modules.{name}")
            continue
        line = f"  {name:<16} {_text(module, 'state'):<12} restarts={_text(module, 'restarts')}"
        if module.get("last_error"):
            line += f" last_error={module['last_error']!r}"
        if module.get("ok") is False and module.get("reason"):
            line += f" degraded: {module['reason']}"
        lines.append(line)
    if not_understood:
        lines.append(
            "  warning: health file from another version; not understood: "
            + ", ".join(not_understood)
        )
    return lines


def _is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _text(table: dict[str, Any], key: str) -> str:
    value = table.get(key)
    if value is None or isinstance(value, dict | list):
        return UNKNOWN
    return str(value)
