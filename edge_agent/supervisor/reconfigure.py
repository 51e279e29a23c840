"""Applying a new configuration to a running agent without touching unaffected modules."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from edge_agent.config import LoadedConfig, ModulePlan
from edge_agent.module_api import ModuleState
from edge_agent.module_order import start_order
from edge_agent.vehicle_state import vehicle_parked

if TYPE_CHECKING:
    from edge_agent.supervisor.supervisor import Supervisor


@dataclass
class ApplyReport:
    """What applying a configuration did to each module.

    ``deferred`` modules (declared ``restart_only_when_parked``) needed a stop or restart
    while the vehicle was not parked (``waiting`` says why): they keep running as they are
    until it is, then the change is applied again.
    """

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    restarted: list[str] = field(default_factory=list)
    reconfigured: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)
    waiting: str = ""


def _same_supervision(old: ModulePlan, new: ModulePlan) -> bool:
    return old.module_class is new.module_class and old.settings.model_dump(
        exclude={"config"}
    ) == new.settings.model_dump(exclude={"config"})


async def _hold_until_parked(
    supervisor: Supervisor, names: list[str], report: ApplyReport
) -> list[str]:
    """``names`` without the parked-only modules when the vehicle is not parked now."""
    guarded = [
        name
        for name in names
        if supervisor.runners[name].plan.module_class.restart_only_when_parked
    ]
    if not guarded:
        return names
    parked, why = await vehicle_parked(supervisor.bus)
    if parked:
        return names
    report.deferred.extend(guarded)
    report.waiting = why
    return [name for name in names if name not in guarded]


async def apply_config(supervisor: Supervisor, new: LoadedConfig) -> ApplyReport:
    """Move the running modules to ``new``'s module set.

    Removed modules stop (dependents first); added ones start; a module whose supervision
    settings or class changed restarts; one whose options alone changed is offered the new
    options through ``reconfigure`` and restarts only if it declines. A module declared
    ``restart_only_when_parked`` is stopped or restarted only while the vehicle is parked;
    otherwise it is left running and reported ``deferred``. The others are left alone. The
    ``[agent]`` and ``[spool]`` tables are never changed at run time (they are local).
    """
    report = ApplyReport()
    old_plans = {name: runner.plan for name, runner in supervisor.runners.items()}
    order = start_order({n: p.module_class.requires for n, p in new.modules.items()})
    to_stop = [name for name in reversed(list(supervisor.runners)) if name not in new.modules]
    to_restart: list[str] = []
    for name in order:
        if name not in old_plans:
            continue
        old, plan = old_plans[name], new.modules[name]
        if not _same_supervision(old, plan):
            to_restart.append(name)
        elif old.config == plan.config:
            report.unchanged.append(name)
        else:
            runner = supervisor.runners[name]
            module = runner.module
            applied = False
            if module is not None and runner.state is ModuleState.RUNNING:
                applied = await module.reconfigure(plan.config)
            if applied:
                runner.plan = plan
                report.reconfigured.append(name)
            else:
                to_restart.append(name)
    to_stop = await _hold_until_parked(supervisor, to_stop, report)
    to_restart = await _hold_until_parked(supervisor, to_restart, report)
    for name in to_stop + list(reversed(to_restart)):
        await supervisor.retire(name)
    report.removed = to_stop
    report.restarted = to_restart
    for name in order:
        if name in supervisor.runners:
            continue
        supervisor.runners[name] = supervisor.make_runner(new.modules[name])
        if name not in old_plans:
            report.added.append(name)
    # Keep runners in dependency order so shutdown stops dependents first; a removal that
    # waits for parked keeps its runner (last, so it stops first) until it can go.
    kept = [name for name in supervisor.runners if name not in new.modules]
    supervisor.runners = {name: supervisor.runners[name] for name in [*order, *kept]}
    for name in report.added + report.restarted:
        supervisor.launch(name)
    supervisor.config = new
    return report
