"""Pinning a process to CPUs, so the agent's bulk work and the fast path do not share one."""

from __future__ import annotations

import os

from edge_agent.logs import get_logger


def apply_cpu_affinity(cpus: list[int] | None) -> bool:
    """Run the calling thread (and the threads it creates later) on ``cpus`` only.

    A process may set its own affinity to any CPU its cgroup's cpuset allows, wider than the
    set it inherited too: a module process started by an agent pinned to CPU 0 inherits CPU 0
    and must still be able to move to CPU 1. CPUs the machine does not have are ignored; when
    none is left, or the cpuset allows none of them, the affinity is not changed. Returns
    whether it was.
    """
    if not cpus or not hasattr(os, "sched_setaffinity"):
        return False
    log = get_logger("edge_agent.process")
    wanted = {cpu for cpu in cpus if 0 <= cpu < (os.cpu_count() or 1)}
    if not wanted:
        log.warning("cpu_affinity names no CPU this machine has", wanted=cpus)
        return False
    try:
        os.sched_setaffinity(0, wanted)
    except OSError as error:  # EINVAL: the cpuset (a container's) allows none of them
        log.warning("cpu_affinity not applied", wanted=sorted(wanted), error=str(error))
        return False
    effective = sorted(os.sched_getaffinity(0))
    if set(effective) != wanted:  # the kernel kept only what the cpuset allows
        log.warning("cpu_affinity narrowed by the cpuset", wanted=sorted(wanted), cpus=effective)
    else:
        log.info("cpu affinity set", cpus=effective)
    return True
