"""Probation: a config change that touches the cloud link is kept only if the link comes back.

Whether the change came signed or as a desired state, a wrong broker, port, certificate or
link module could cut the vehicle off for good. So before such a change is applied, the
layers it replaces are written to ``STATE_DIR/config-probation.json``; the change is kept once
the module declared ``is_cloud_link`` reports ``link_online`` within
``agent.link_probation_s``. Otherwise the previous layers return, and the reason goes
upstream as an event (``kind: config-reverted``, spooled durably) and into the health
snapshot. The record survives a restart: an agent that starts with one resumes the probation
(with a full window), so a reboot cannot make a bad change stick.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_agent.config.desired import store_document
from edge_agent.config.loader import LoadedConfig, ModulePlan
from edge_agent.module_api import LINK_ONLINE_DETAIL, ModuleState

PROBATION_FILE = "config-probation.json"
# Upstream events: the spool stream (= MQTT topic suffix ``vehicles/{vid}/events``) and the
# bus topic modules publish on when they hold no spool (the cloud link spools it).
EVENTS_STREAM = "events"
EVENTS_TOPIC = "cloud/out/" + EVENTS_STREAM


@dataclass(frozen=True)
class ProbationRecord:
    """What is on probation (``change``) and the signed and desired layers it replaced."""

    change: str
    previous_signed: dict[str, Any] | None
    previous_desired: dict[str, Any] | None

    def to_json(self) -> dict[str, Any]:
        """The form kept in ``config-probation.json``."""
        return {
            "change": self.change,
            "previous_signed": self.previous_signed,
            "previous_desired": self.previous_desired,
        }


def save_record(state_dir: Path, record: ProbationRecord | None) -> None:
    """Durably keep ``record`` (None: the probation is over)."""
    store_document(state_dir / PROBATION_FILE, None if record is None else record.to_json())


def load_record(state_dir: Path) -> ProbationRecord | None:
    """The probation an earlier run left unfinished, or None."""
    try:
        data = json.loads((state_dir / PROBATION_FILE).read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    signed, desired = data.get("previous_signed"), data.get("previous_desired")
    return ProbationRecord(
        change=str(data.get("change", "?")),
        previous_signed=signed if isinstance(signed, dict) else None,
        previous_desired=desired if isinstance(desired, dict) else None,
    )


def _link_plans(config: LoadedConfig) -> dict[str, ModulePlan]:
    return {name: plan for name, plan in config.modules.items() if plan.module_class.is_cloud_link}


def touches_link(old: LoadedConfig, new: LoadedConfig) -> bool:
    """Whether going from ``old`` to ``new`` adds, removes or changes a cloud-link module."""
    before, after = _link_plans(old), _link_plans(new)
    if before.keys() != after.keys():
        return True
    return any(
        before[name].module_class is not after[name].module_class
        or before[name].settings != after[name].settings
        or before[name].config != after[name].config
        for name in before
    )


def link_online(runners: dict[str, Any]) -> bool:
    """Whether a running cloud-link module reports its link online right now."""
    for runner in runners.values():
        if not runner.plan.module_class.is_cloud_link or runner.state is not ModuleState.RUNNING:
            continue
        context = runner.context
        if context is not None and context.health.report.details.get(LINK_ONLINE_DETAIL) is True:
            return True
    return False
