"""``python -m edge_agent.simulator.rig.traffic``: steady CAN traffic from a DBC at a set rate.

Cycles through every message of the DBC with changing signal values and sends them on a
python-can channel at ``--rate`` frames per second for ``--seconds``; prints one JSON line with
what it managed to send (a slow machine sends fewer: the figure says so).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from typing import Any

import can
import cantools

from edge_agent.can.resources import resolve_data_path

DEFAULT_DBC = "package:edge_agent.simulator/data/vehicle.dbc"
BURST = 50


def _frames(database: Any, count: int) -> list[can.Message]:
    """Pre-encode ``count`` frames cycling through the DBC's messages with varying values."""
    messages = [m for m in database.messages if m.length <= 8]
    frames: list[can.Message] = []
    for index in range(count):
        message = messages[index % len(messages)]
        values: dict[str, float] = {}
        for signal in message.signals:
            low = signal.minimum if signal.minimum is not None else 0.0
            high = signal.maximum if signal.maximum is not None else low + 100.0
            phase = (math.sin(index / 97.0 + len(values)) + 1) / 2
            values[signal.name] = low + (high - low) * phase
        data = message.encode(values, strict=False)
        frames.append(can.Message(arbitration_id=message.frame_id, data=data, is_extended_id=False))
    return frames


def run(
    interface: str,
    channel: str,
    *,
    rate: float,
    seconds: float,
    dbc: str,
    options: dict[str, Any],
) -> dict[str, Any]:
    """Send at ``rate`` frames/s in bursts for ``seconds``; return what was sent."""
    database: Any = cantools.database.load_file(str(resolve_data_path(dbc)))
    frames = _frames(database, 4096)
    sent = 0
    with can.Bus(
        interface=interface, channel=channel, receive_own_messages=False, **options
    ) as bus:
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < seconds:
            due = int(elapsed * rate)
            if sent >= due:
                time.sleep(min(0.002, (sent + 1) / rate - elapsed))
                continue
            for _ in range(min(BURST, due - sent)):
                bus.send(frames[sent % len(frames)])
                sent += 1
        elapsed = time.monotonic() - started
    return {"frames": sent, "seconds": round(elapsed, 3), "frames_per_s": round(sent / elapsed)}


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: prints what was sent as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--interface", default="udp_multicast")
    parser.add_argument("--channel", required=True)
    parser.add_argument("--rate", type=float, default=20_000.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--dbc", default=DEFAULT_DBC)
    parser.add_argument("--port", type=int, help="UDP port (udp_multicast only)")
    args = parser.parse_args(argv)
    options = {"port": args.port} if args.port else {}
    result = run(
        args.interface,
        args.channel,
        rate=args.rate,
        seconds=args.seconds,
        dbc=args.dbc,
        options=options,
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
