"""Pinning a process to CPUs, so the agent's bulk work and the fast path do not share one."""

from __future__ import annotations

import os

from edge_agent.logs import get_logger


def apply_cpu_affinity(cpus: list[int] | None) -> bool:
    """Restrict the calling thread (and the threads it creates later) to ``cpus``.

    Unprivileged: a process may always narrow its own affinity. CPUs the machine does not
    have are ignored; when none is left the affinity is not changed. Returns whether it was.
    """
    if not cpus or not hasattr(os, "sched_setaffinity"):
        return False
    available = os.sched_getaffinity(0)
    wanted = {cpu for cpu in cpus if cpu in available}
    log = get_logger("edge_agent.process")
    if not wanted:
        log.warning("cpu_affinity names no CPU this machine has", wanted=cpus)
        return False
    os.sched_setaffinity(0, wanted)
    log.info("cpu affinity set", cpus=sorted(wanted))
    return True
