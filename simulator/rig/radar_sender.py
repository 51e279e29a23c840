"""``python -m edge_agent.simulator.rig.radar_sender``: the vehicle side of the fast-path benchmark.

Sends radar frames (and ego speed at half their rate) on a CAN channel at a fixed rate for a
number of seconds, counts the brake request frames that come back, and prints one JSON line.
The situation is steady (an object far ahead, not closing), so every radar frame makes the
fast path decide and send a brake frame without ever braking.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import can
import cantools

from edge_agent.can.resources import resolve_data_path

DEFAULT_DBC = "package:edge_agent.simulator/data/vehicle.dbc"


def run(interface: str, channel: str, rate_hz: float, seconds: float, dbc: str) -> dict[str, Any]:
    """Send for ``seconds`` at ``rate_hz``; return counts of frames sent and brake frames seen."""
    database: Any = cantools.database.load_file(str(resolve_data_path(dbc)))
    radar = database.get_message_by_name("RadarObject")
    ego = database.get_message_by_name("EgoMotion")
    brake_id = database.get_message_by_name("AebBrakeRequest").frame_id
    radar_values = {
        "ObjectDistance": 120.0,
        "ObjectRelativeSpeed": 0.0,
        "ObjectLateralPosition": 0.0,
        "ObjectValid": 1,
        "ObjectInPath": 1,
        "ObjectWidth": 1.8,
        "ObjectId": 0,
        "RadarCounter": 0,
        "RadarChecksum": 0,
    }
    ego_values = {"EgoSpeed": 50.0, "LongitudinalAccel": 0.0, "YawRate": 0.0, "EgoMotionCounter": 0}
    sent = brakes = 0
    period = 1.0 / rate_hz
    with can.Bus(interface=interface, channel=channel, receive_own_messages=False) as bus:
        started = time.monotonic()
        next_send = started
        while (now := time.monotonic()) - started < seconds:
            if now >= next_send:
                if sent % 2 == 0:
                    bus.send(
                        can.Message(
                            arbitration_id=ego.frame_id,
                            data=ego.encode(ego_values),
                            is_extended_id=False,
                        )
                    )
                bus.send(
                    can.Message(
                        arbitration_id=radar.frame_id,
                        data=radar.encode(radar_values),
                        is_extended_id=False,
                    )
                )
                sent += 1
                next_send += period
            frame = bus.recv(timeout=max(0.0, min(period, next_send - time.monotonic())))
            if frame is not None and frame.arbitration_id == brake_id:
                brakes += 1
    return {"radar_frames": sent, "brake_frames": brakes, "rate_hz": rate_hz, "seconds": seconds}


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: prints the counts as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--interface", default="udp_multicast")
    parser.add_argument("--channel", required=True)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--dbc", default=DEFAULT_DBC)
    args = parser.parse_args(argv)
    print(json.dumps(run(args.interface, args.channel, args.rate, args.seconds, args.dbc)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
