"""CPU pinning holds across the process boundary: the agent on its CPU, the child on its own.

The agent pins itself (``agent.cpu_affinity``) before it starts anything, so a module child
process inherits the agent's CPUs. The child must still move to its own
(``modules.X.cpu_affinity``): before this was fixed, the fast path stayed on the agent's CPU
with a warning, while the benchmarks reported it pinned to its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from edge_agent.simulator.rig.agent import Agent
from fixtures.agent_rig import agents, namespace, start_agent
from fixtures.real_parts import missing
from fixtures.waiting import wait_until_sync

__all__ = ["agents", "namespace"]

TESTS = Path(__file__).resolve().parents[1]


def two_cpus() -> None:
    if not {0, 1} <= os.sched_getaffinity(0):
        missing("needs CPUs 0 and 1 (pinning a child to a CPU its parent is not on)")


def allowed_cpus(pid: int) -> str:
    """The kernel's list of CPUs ``pid`` may run on (``Cpus_allowed_list``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Cpus_allowed_list:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no Cpus_allowed_list for {pid}")


def printed_by(script: str) -> list[str]:
    """What ``script`` prints, word by word, run in a process of its own (ours keeps its CPUs)."""
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.split()


def test_a_process_started_on_cpu_0_moves_itself_to_cpu_1() -> None:
    two_cpus()
    script = (
        "import os\n"
        "os.sched_setaffinity(0, {0})\n"
        "from edge_agent.process.affinity import apply_cpu_affinity\n"
        "print(apply_cpu_affinity([1]), sorted(os.sched_getaffinity(0)))\n"
    )
    assert printed_by(script) == ["True", "[1]"]


def test_cpus_the_machine_lacks_change_nothing() -> None:
    script = (
        "import os\n"
        "from edge_agent.process.affinity import apply_cpu_affinity\n"
        "before = os.sched_getaffinity(0)\n"
        "print(apply_cpu_affinity([4096]), os.sched_getaffinity(0) == before)\n"
    )
    assert printed_by(script) == ["False", "True"]


@pytest.mark.slow
def test_the_agent_and_its_module_child_each_run_on_their_own_cpu(
    namespace: str, agents: list[Agent], tmp_path: Path
) -> None:
    two_cpus()
    config = {
        "agent": {"vehicle_id": "veh-1", "state_dir": str(tmp_path / "state"), "cpu_affinity": [0]},
        "modules": {"echo": {"entry_point": "fixtures.isolated:EchoInChild", "cpu_affinity": [1]}},
    }
    search = os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))
    agent = start_agent(agents, namespace, tmp_path, config, env={"PYTHONPATH": search})

    def child_pid() -> int | None:
        pid = agent.module("echo").get("details", {}).get("child_pid")
        return int(pid) if pid else None

    wait_until_sync(lambda: child_pid() is not None, timeout=30, what="the echo child running")
    pid = child_pid()
    assert pid is not None
    assert (allowed_cpus(agent.pid), allowed_cpus(pid)) == ("0", "1")
