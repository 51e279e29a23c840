"""`make demo`: run the agent on this laptop and show its health live until Ctrl-C.

Starts `edge-agent run` with deploy/examples/laptop.toml as a child process, prints a one-line
status every second from `edge-agent status --json`, and on Ctrl-C (or DEMO_SECONDS elapsed)
stops the agent with SIGTERM and reports how it exited.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "deploy" / "examples" / "laptop.toml"
STATE = ROOT / "demo-state"
BIN = Path(sys.executable).parent


def main() -> int:
    """Run the demo; return the agent's exit status."""
    limit = float(os.environ.get("DEMO_SECONDS", "0") or 0)
    agent = subprocess.Popen(
        [str(BIN / "edge-agent"), "--log-format", "json", "run", "--config", str(CONFIG)],
        cwd=ROOT,
        stderr=open(STATE.with_suffix(".log"), "w"),  # noqa: SIM115 - lives as long as the agent
    )
    print(f"agent pid {agent.pid}; logs in {STATE.with_suffix('.log')}; Ctrl-C stops")
    started = time.monotonic()
    try:
        while agent.poll() is None:
            time.sleep(1)
            status = subprocess.run(
                [str(BIN / "edge-agent"), "status", "--json", "--state-dir", str(STATE)],
                capture_output=True,
                text=True,
                check=False,
                cwd=ROOT,
            )
            if status.returncode == 0:
                snapshot = json.loads(status.stdout)
                modules = ", ".join(
                    f"{name}={m['state']}" for name, m in snapshot["modules"].items()
                )
                print(f"{time.strftime('%H:%M:%S')} agent {snapshot['agent']['state']}: {modules}")
            if limit and time.monotonic() - started > limit:
                break
    except KeyboardInterrupt:
        print()
    if agent.poll() is None:
        agent.send_signal(signal.SIGTERM)
    code = agent.wait(timeout=30)
    print(f"agent exited with status {code}")
    return code


if __name__ == "__main__":
    sys.exit(main())
