"""``python -m edge_demo``: choose the CAN mode and run the demo (see :mod:`edge_demo`).

Environment: ``DEMO_SECONDS=N`` stops after N seconds (non-interactive runs, CI);
``DEMO_CAN=vcan|netns|in-process`` forces the CAN mode; ``DEMO_MQTT=HOST:PORT`` uses a
running broker; ``DEMO_OUTAGE=START:END`` moves the scripted link outage.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys

from edge_agent.simulator.rig.netns import NamespaceUnavailable, in_namespace, multicast_namespace
from edge_demo.modes import choose_mode
from edge_demo.orchestrate import DemoOptions, outage_window, run_demo


def _seconds() -> float | None:
    raw = os.environ.get("DEMO_SECONDS", "").strip()
    if not raw or raw == "0":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise SystemExit(f"demo: DEMO_SECONDS={raw!r} is not a number of seconds") from None
    if value <= 0:
        raise SystemExit(f"demo: DEMO_SECONDS={raw!r} must be positive")
    return value


def _in_namespace(seconds: float | None) -> int:
    """Run this demo again inside a fresh multicast namespace; delete it afterwards."""
    try:
        with multicast_namespace("ea-demo") as namespace:
            command = in_namespace(
                namespace, [sys.executable, "-P", "-m", "edge_demo", "--namespace", namespace]
            )
            # The inner demo handles Ctrl-C (same terminal process group) and stops its
            # children; this process only waits for it and then deletes the namespace.
            inner = subprocess.Popen(command, env={**os.environ, "DEMO_CAN": "netns"})
            previous = {
                signal.SIGINT: signal.signal(signal.SIGINT, signal.SIG_IGN),
                signal.SIGTERM: signal.signal(signal.SIGTERM, lambda *_: inner.terminate()),
                signal.SIGHUP: signal.signal(
                    signal.SIGHUP, lambda *_: inner.send_signal(signal.SIGHUP)
                ),
            }
            try:
                return inner.wait()
            finally:
                for signum, handler in previous.items():
                    signal.signal(signum, handler)
    except NamespaceUnavailable as error:
        print(f"demo: cannot create a network namespace ({error}); using in-process mode")
        os.environ["DEMO_CAN"] = "in-process"
        return main([])


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``make demo``."""
    parser = argparse.ArgumentParser(prog="python -m edge_demo")
    parser.add_argument("--namespace", help=argparse.SUPPRESS)  # set when re-run inside one
    args = parser.parse_args(argv)
    seconds = _seconds()
    mode = choose_mode(os.environ.get("DEMO_CAN") or None)
    if mode.name == "netns" and not args.namespace:
        return _in_namespace(seconds)
    outage = outage_window(seconds, os.environ.get("DEMO_OUTAGE"))
    options = DemoOptions(mode=mode, seconds=seconds, outage=outage, namespace=args.namespace)
    return asyncio.run(run_demo(options))


if __name__ == "__main__":
    sys.exit(main())
