"""The live terminal view: a block of plain lines redrawn in place with ANSI codes.

On a terminal the block is redrawn every refresh; otherwise (CI, a pipe) one compact line
is printed every few seconds instead.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from edge_demo.timeline import STAGES, Tick, Timeline

BOLD, RED, GREEN, YELLOW, DIM, RESET = (
    "\x1b[1m",
    "\x1b[31m",
    "\x1b[32m",
    "\x1b[33m",
    "\x1b[2m",
    "\x1b[0m",
)


def _number(value: Any, unit: str, digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f} {unit}".rstrip()


class LiveView:
    """Renders ticks to ``out``; ``header`` lines (mode, broker) stay on top."""

    def __init__(self, out: TextIO = sys.stdout, *, interactive: bool | None = None) -> None:
        self.out = out
        self.interactive = out.isatty() if interactive is None else interactive
        self._drawn = 0
        self._last_plain = 0.0

    def _paint(self, text: str, colour: str) -> str:
        return f"{colour}{text}{RESET}" if self.interactive else text

    def lines(self, tick: Tick, timeline: Timeline, header: list[str]) -> list[str]:
        """The block for one tick."""
        vehicle = tick.vehicle
        elapsed = tick.wall - timeline.started
        stage = vehicle.get("stage")
        stage_text = "fast path silent" if stage is None else STAGES.get(stage, str(stage))
        if stage in (2, 3):
            stage_text = self._paint(stage_text, RED + BOLD)
        gap = vehicle.get("gap_m") if vehicle.get("in_lane") else None
        radar = "ok" if vehicle.get("radar", True) else self._paint("DROPOUT", YELLOW)
        fast = tick.fast_path
        latency = fast.get("latency_ms", {}) if isinstance(fast.get("latency_ms"), dict) else {}
        fault = fast.get("fault") or ""
        link = tick.link
        link_text = self._paint(link, GREEN if link.startswith("online") else YELLOW)
        spool = "-" if tick.spool_records is None else f"{tick.spool_records} records"
        if tick.spool_bytes:
            spool += f" ({tick.spool_bytes / 1024:.0f} KiB)"
        block = [
            *header,
            f"  time     {elapsed:6.1f} s   route {vehicle.get('t', 0.0):5.1f} s",
            f"  vehicle  speed {_number(vehicle.get('speed_kmh'), 'km/h'):>11}   "
            f"distance {_number(gap, 'm'):>9}   TTC {_number(vehicle.get('ttc_s'), 's'):>7}   "
            f"radar {radar}",
            f"  brake    {stage_text}   requested "
            f"{_number(vehicle.get('brake_request_mps2'), 'm/s²', 2)}   applied "
            f"{_number(vehicle.get('decel_mps2'), 'm/s²', 2)}",
            f"  agent    {tick.agent_state}   fast path {fast.get('state', '-')}"
            f"   p99 {_number(latency.get('p99_ms'), 'ms', 2)}"
            f" ({latency.get('count', 0)} decisions){'   fault: ' + fault if fault else ''}",
            f"  CAN      {_number(tick.can_frames_per_s, 'frames/s', 0)} ({tick.can_source})",
            f"  uplink   link {link_text}   spool {spool}   cloud got {tick.cloud_batches} "
            f"batches, {tick.cloud_events} events",
        ]
        standin = tick.standin
        if standin:
            block.append(
                f"  cloud    stand-in stored {standin.get('batches', 0)} batches "
                f"({standin.get('samples') or 0} samples), {standin.get('events') or 0} events, "
                f"{standin.get('duplicates', 0)} duplicates dropped; vehicle "
                f"{standin.get('status') or '?'}"
            )
        recent = timeline.moments[-4:]
        block += [
            f"  {DIM if self.interactive else ''}{at:6.1f} s  {text}"
            f"{RESET if self.interactive else ''}"
            for at, text in recent
        ]
        return block

    def show(self, tick: Tick, timeline: Timeline, header: list[str]) -> None:
        """Redraw (terminal) or print a line every 5 s (not a terminal)."""
        if not self.interactive:
            if tick.wall - self._last_plain < 5.0:
                return
            self._last_plain = tick.wall
            vehicle = tick.vehicle
            latency = tick.fast_path.get("latency_ms", {})
            p99 = latency.get("p99_ms") if isinstance(latency, dict) else None
            print(
                f"[{tick.wall - timeline.started:5.1f} s] "
                f"speed {_number(vehicle.get('speed_kmh'), 'km/h')}, "
                f"stage {STAGES.get(vehicle.get('stage') or 0)}, "
                f"fast path p99 {_number(p99, 'ms', 2)}, link {tick.link}, "
                f"spool {tick.spool_records}, cloud batches {tick.cloud_batches}",
                file=self.out,
                flush=True,
            )
            return
        block = self.lines(tick, timeline, header)
        up = f"\x1b[{self._drawn}F" if self._drawn else ""
        self.out.write(up + "".join(f"\x1b[2K{line}\n" for line in block) + "\x1b[J")
        self.out.flush()
        self._drawn = len(block)
