"""The diagnostics module: DTCs and live data from the vehicle's ECUs, paced, read-only.

Its own task reads, in a worker thread (the tester blocks on ISO-TP), every
``signal_interval_s`` the configured PIDs and DIDs, published as a ``DecodedMessage`` on
``can/{bus_name}/decoded/{ecu}`` like decoded CAN signals, and every ``dtc_interval_s`` the
DTCs by status mask; a DTC that appears, changes status or clears is published on
``diag/dtc`` and sent upstream on ``cloud/out/diag/dtc`` (``vehicles/{vid}/diag/dtc``).
Cloud commands ``read_dtcs``, ``read_did``, ``read_pids`` (and ``clear_dtcs`` when a signed
setting allows it and the vehicle is parked) are served on ``agent/commands/{name}``.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import AbstractContextManager
from typing import Any

import can

from edge_agent.bus import Message
from edge_agent.can.types import DecodedMessage, SignalValue, decoded_topic
from edge_agent.module_api import Module, NotReady
from edge_agent.modules.diagnostics.codes import UdsDtc, status_names
from edge_agent.modules.diagnostics.collect import (
    ObdDtcs,
    by_answer_id,
    read_obd_dtcs,
    read_obd_dtcs_of,
    read_pids,
)
from edge_agent.modules.diagnostics.config import DiagnosticsConfig, decode_did
from edge_agent.modules.diagnostics.dtc_events import obd_dtc_changes, uds_dtc_changes
from edge_agent.modules.diagnostics.dtc_table import describe
from edge_agent.modules.diagnostics.obd import PIDS, PIDS_BY_NAME, decode_pid
from edge_agent.modules.diagnostics.outcomes import DiagnosticError
from edge_agent.modules.diagnostics.services import ServiceRefused
from edge_agent.modules.diagnostics.tester import EcuAddress, Tester
from edge_agent.modules.diagnostics.uds_session import UdsSession
from edge_agent.vehicle_state import vehicle_parked

DTC_TOPIC = "diag/dtc"
DTC_UPSTREAM = "cloud/out/diag/dtc"
COMMANDS = ("read_dtcs", "read_did", "read_pids", "clear_dtcs")


class DiagnosticsModule(Module[DiagnosticsConfig]):
    """Reads DTCs, PIDs and DIDs from ECUs and answers diagnostic cloud commands."""

    name = "diagnostics"
    version = "1.0.0"
    config_model = DiagnosticsConfig

    async def setup(self) -> None:
        """Open the bus and the tester; NotReady (retried) when the bus is not there."""
        config = self.config
        try:
            self._bus = can.Bus(interface=config.interface, channel=config.channel)
        except (OSError, can.CanError, ValueError) as error:
            raise NotReady(f"cannot open {config.interface} {config.channel}: {error}") from None
        self.tester = Tester(
            self._bus, bitrate=config.bitrate, share=config.bus_share, timeout_s=config.timeout_s
        )
        self._ecus = {e.name: EcuAddress(e.name, e.request_id, e.response_id) for e in config.ecus}
        self._dtc_source = {e.name: e.dtcs for e in config.ecus}
        self._dtcs: dict[str, dict[str, int]] = {}
        self._obd_dtcs: dict[str, ObdDtcs] = {}
        self._answered: set[int] = set()  # answer ids that answered a functional PID request
        self.context.on_stop(self._close)

    async def _close(self) -> None:
        # The exchange in flight finishes first (in its thread, off the loop): closing the
        # bus under can-isotp's feet would break its send.
        await asyncio.to_thread(self.tester.close)
        self._bus.shutdown()

    async def start(self) -> None:
        """Serve the cloud commands."""
        bus = self.context.bus
        for command in COMMANDS:
            stop = bus.serve(
                f"agent/commands/{command}",
                getattr(self, f"_command_{command}"),
                name=f"diagnostics.{command}",
            )
            self.context.on_stop(stop)

    async def run(self) -> None:
        """Read signals and DTCs on their intervals until cancelled."""
        clock = self.context.clock
        self.context.spawn(self._keep_sessions_open(), "tester-present")
        next_dtcs = clock.monotonic()
        while True:
            await self._read_signals()
            if clock.monotonic() >= next_dtcs:
                await self._read_all_dtcs()
                next_dtcs = clock.monotonic() + self.config.dtc_interval_s
            self.context.health.set_detail("counters", self.tester.counters.as_dict())
            self.context.health.set_detail("bus_share", round(self.tester.share_taken(), 4))
            await clock.sleep(self.config.signal_interval_s)

    async def reconfigure(self, config: DiagnosticsConfig) -> bool:
        """Tunable settings apply in place; anything privileged asks for a restart."""
        fixed = ("interface", "channel", "bus_name", "bitrate", "ecus", "clear_dtcs_when_parked")
        if any(getattr(config, key) != getattr(self.config, key) for key in fixed):
            return False
        self.config = config
        self.tester.pacer.share = config.bus_share
        self.tester.timeout_s = config.timeout_s
        return True

    async def _keep_sessions_open(self) -> None:
        """TesterPresent to every ECU while the extended session is configured."""
        while True:
            if self.config.uds_session == "extended":
                for ecu in self._ecus.values():
                    try:
                        await asyncio.to_thread(self.tester.keep_alive, ecu)
                    except DiagnosticError:
                        continue  # counted; the next read opens the session again
            await self.context.clock.sleep(self.config.keep_alive_s)

    def _session(self, ecu: EcuAddress) -> AbstractContextManager[UdsSession]:
        return self.tester.uds(ecu, extended=self.config.uds_session == "extended")

    # -- periodic reads --------------------------------------------------------------------

    async def _read_signals(self) -> None:
        signals = await asyncio.to_thread(self._poll_signals)
        for ecu in self._ecus.values():
            if not signals.get(ecu.name):
                continue
            message = DecodedMessage(
                bus=self.config.bus_name,
                message=ecu.name,
                frame_id=ecu.response_id,
                timestamp=time.time(),
                monotonic=time.monotonic(),
                signals=signals[ecu.name],
            )
            await self.context.bus.publish(
                decoded_topic(self.config.bus_name, ecu.name), message, sender=self.name
            )

    def _poll_signals(self) -> dict[str, dict[str, SignalValue]]:
        """PIDs from every ECU at once (0x7DF), then each ECU's DIDs (physical, UDS)."""
        pids = [PIDS_BY_NAME[name].number for name in self.config.pids]
        signals = read_pids(self.tester, pids, by_answer_id(self._ecus.values()), self._answered)
        for ecu in self._ecus.values():
            wanted = [d for d in self.config.dids if d.ecu == ecu.name]
            if not wanted:
                continue
            try:
                with self._session(ecu) as session:
                    for did in wanted:
                        try:
                            value = decode_did(did, session.read_did(did.did))
                        except DiagnosticError:
                            continue
                        signals.setdefault(ecu.name, {})[did.signal] = value
            except DiagnosticError:
                pass
        return signals

    async def _read_all_dtcs(self) -> None:
        obd = by_answer_id(e for e in self.config.ecus if e.dtcs != "uds")
        if obd:
            configured = by_answer_id(self._ecus.values())
            now_obd = await asyncio.to_thread(
                read_obd_dtcs, self.tester, obd, self._obd_dtcs, configured
            )
            for name, codes in now_obd.items():
                earlier = self._obd_dtcs.get(name, {})
                self._obd_dtcs[name] = codes
                for event in obd_dtc_changes(name, earlier, codes):
                    await self._send_dtc(event)
        uds = {e.name for e in self.config.ecus if e.dtcs != "obd"}
        for ecu in self._ecus.values():
            if ecu.name not in uds:
                continue
            try:
                dtcs = await asyncio.to_thread(self._uds_dtcs, ecu, self.config.dtc_status_mask)
            except DiagnosticError:
                continue
            now = {dtc.code: dtc.status for dtc in dtcs}
            by_code = {dtc.code: dtc for dtc in dtcs}
            before = self._dtcs.get(ecu.name, {})
            self._dtcs[ecu.name] = now
            for event in uds_dtc_changes(ecu.name, before, now):
                if event["code"] in by_code:
                    details = await asyncio.to_thread(self._details, ecu, by_code[event["code"]])
                    event.update(details)
                await self._send_dtc(event)

    async def _send_dtc(self, event: dict[str, Any]) -> None:
        event["time"] = time.time()
        await self.context.bus.publish(DTC_TOPIC, event, sender=self.name)
        await self.context.bus.publish(DTC_UPSTREAM, event, sender=self.name)
        self.context.log.info(
            "dtc",
            ecu=event["ecu"],
            code=event["code"],
            change=event["change"],
            source=event["source"],
        )

    def _details(self, ecu: EcuAddress, dtc: UdsDtc) -> dict[str, Any]:
        """Snapshot and extended data of ``dtc`` where the ECU keeps them (else left out)."""
        details: dict[str, Any] = {}
        try:
            with self._session(ecu) as session:
                for key, read in (
                    ("snapshot", session.read_snapshot),
                    ("extended_data", session.read_extended_data),
                ):
                    try:
                        details[key] = read(dtc)
                    except DiagnosticError:
                        continue  # counted; not every ECU keeps these records
        except DiagnosticError:
            pass
        return details

    def _uds_dtcs(self, ecu: EcuAddress, mask: int) -> list[UdsDtc]:
        with self._session(ecu) as session:
            return session.read_dtcs(mask)

    # -- cloud commands --------------------------------------------------------------------

    def _ecu(self, args: Any) -> EcuAddress:
        if not isinstance(args, dict) or args.get("ecu") not in self._ecus:
            raise ValueError(f'needs args {{"ecu": one of {", ".join(self._ecus)}}}')
        return self._ecus[args["ecu"]]

    async def _command_read_dtcs(self, message: Message) -> Any:
        ecu = self._ecu(message.payload)
        mask = message.payload.get("status_mask", 0xFF)
        if not isinstance(mask, int) or not 0 < mask <= 0xFF:
            raise ValueError("status_mask must be 1..255")
        if self._dtc_source[ecu.name] == "obd":  # an OBD-only ECU: modes 03/07/0A, physical
            codes = await asyncio.to_thread(read_obd_dtcs_of, self.tester, ecu)
            found = [
                {"code": code, "obd_status": sorted(modes), "description": describe(code)}
                for code, modes in sorted(codes.items())
            ]
            return {"ecu": ecu.name, "dtcs": found}
        dtcs = await asyncio.to_thread(self._uds_dtcs, ecu, mask)
        return {
            "ecu": ecu.name,
            "dtcs": [
                {
                    "code": d.code,
                    "failure_type": d.failure_type,
                    "status": d.status,
                    "status_bits": status_names(d.status),
                    "description": describe(d.code),
                }
                for d in dtcs
            ],
        }

    async def _command_read_did(self, message: Message) -> Any:
        ecu = self._ecu(message.payload)
        did = message.payload.get("did")
        if isinstance(did, str):
            did = int(did, 0)
        if not isinstance(did, int) or not 0 <= did <= 0xFFFF:
            raise ValueError("did must be 0..0xFFFF (a number or '0xF190')")

        def read() -> bytes:
            with self.tester.uds(ecu) as session:
                return session.read_did(did)

        data = await asyncio.to_thread(read)
        decoded = data.decode("ascii", "replace")
        text = decoded if data.isascii() and decoded.isprintable() else None
        return {"ecu": ecu.name, "did": f"0x{did:04X}", "hex": data.hex(), "ascii": text}

    async def _command_read_pids(self, message: Message) -> Any:
        ecu = self._ecu(message.payload)
        asked = message.payload.get("pids") or [p.name for p in PIDS.values()]
        numbers = []
        for pid in asked:
            if isinstance(pid, str) and pid in PIDS_BY_NAME:
                numbers.append(PIDS_BY_NAME[pid].number)
            elif isinstance(pid, int) and 0 < pid < 0x100:
                numbers.append(pid)
            else:
                raise ValueError(f"unknown PID {pid!r}")

        def read() -> dict[str, Any]:
            supported = self.tester.supported_pids(ecu)
            values: dict[str, Any] = {}
            for pid in numbers:
                if pid not in supported:
                    continue
                try:
                    name, value, unit = decode_pid(pid, self.tester.read_pid(ecu, pid))
                except DiagnosticError as error:
                    values[f"pid_{pid:02x}"] = {"error": str(error)}
                    continue
                values[name] = {"value": value, "unit": unit}
            return values

        return {"ecu": ecu.name, "pids": await asyncio.to_thread(read)}

    async def _command_clear_dtcs(self, message: Message) -> Any:
        ecu = self._ecu(message.payload)
        if not self.config.clear_dtcs_when_parked:
            self.tester.counters.refused += 1
            raise ServiceRefused(
                "clear_dtcs refused: diagnostics are read-only unless the signed setting "
                "diagnostics.clear_dtcs_when_parked enables it"
            )
        parked, why = await vehicle_parked(self.context.bus)
        if not parked:
            self.tester.counters.refused += 1
            raise ServiceRefused(f"clear_dtcs refused: {why}")

        def clear() -> None:
            with self.tester.uds(ecu) as session:
                session.clear_dtcs(allowed=True)

        await asyncio.to_thread(clear)
        return {"ecu": ecu.name, "cleared": True}
