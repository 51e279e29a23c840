"""Diagnostics on a real SocketCAN vcan0, against the Linux kernel's own ISO-TP (CAN_ISOTP).

Our tester (can-isotp's Python stack on python-can's socketcan bus) reads an ECU that
answers through a kernel ISO-TP socket, single and multi-frame, physically and on the
functional id; and a kernel ISO-TP client reads the simulated ECUs (our own stack on the
other side). Two independent ISO-TP implementations agreeing is the point.

Needs vcan0 and the kernel's can-isotp module: ``scripts/test-vcan`` runs it inside a VM
with Debian's kernel (``TEST_VCAN_PYTEST_ARGS="-k kernel_isotp"`` runs only this file's
tests there). Without CAN_ISOTP in that kernel it skips, saying so.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import can
import isotp
import pytest

from edge_agent.modules.diagnostics import tester as diag_tester
from edge_agent.modules.diagnostics.functional import functional_obd
from edge_agent.simulator.ecus import EcuServer, SimulatedEcu, brake_ecu, engine_ecu

VCAN0 = Path("/sys/class/net/vcan0")
pytestmark = [pytest.mark.socketcan, pytest.mark.timeout(300)]
ENGINE = diag_tester.EcuAddress("engine", 0x7E0, 0x7E8)


def kernel_socket(rxid: int, txid: int) -> isotp.socket:
    """A kernel ISO-TP socket on vcan0 (skips when the kernel has no CAN_ISOTP)."""
    if not VCAN0.exists():
        pytest.skip("no vcan0 interface: run scripts/test-vcan (a VM with a vcan kernel)")
    with contextlib.suppress(OSError):
        subprocess.run(["modprobe", "can-isotp"], capture_output=True, timeout=30, check=False)
    try:
        sock = isotp.socket(timeout=0.1)
        sock.set_opts(txpad=0x00)
        sock.set_fc_opts(bs=0, stmin=0)
        sock.bind("vcan0", isotp.Address(isotp.AddressingMode.Normal_11bits, rxid=rxid, txid=txid))
    except (OSError, NotImplementedError) as error:
        pytest.skip(f"the kernel has no CAN_ISOTP (modprobe can-isotp failed?): {error}")
    return sock


@contextlib.contextmanager
def kernel_ecu(ecu: SimulatedEcu, rxid: int) -> Iterator[None]:
    """Serve ``ecu`` through a kernel ISO-TP socket listening on ``rxid``."""
    sock = kernel_socket(rxid, ecu.response_id)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                request = sock.recv()
            except TimeoutError:
                continue
            except OSError:
                continue  # a transport error the kernel reports on this socket
            for answer in ecu.answer(bytes(request)):
                sock.send(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
        sock.close()


def test_kernel_isotp_ecu_answers_our_tester_physically_and_functionally() -> None:
    engine = engine_ecu()
    engine.set_dtc("P0562")
    with kernel_ecu(engine, ENGINE.request_id), kernel_ecu(engine, 0x7DF):
        bus = can.Bus(interface="socketcan", channel="vcan0")
        tester = diag_tester.Tester(bus, timeout_s=2.0)  # emulated VM: timing means nothing
        try:
            assert tester.read_pid(ENGINE, 0x0C) == b"\x0c\x80"
            with tester.uds(ENGINE) as session:
                # 17 bytes of VIN: a multi-frame answer; the kernel waits for our flow control.
                assert session.read_did(0xF190) == b"EDGEAGENTSIM00001"
                assert [d.code for d in session.read_dtcs()] == ["P0562"]
            # A single-frame answer to the functional id (the kernel socket's flow control
            # would be on 0x7DF, so a multi-frame functional answer is not tried here).
            answers = functional_obd(tester, b"\x01\x0c", expect=[ENGINE.response_id])
            assert answers == {0x7E8: b"\x41\x0c\x0c\x80"}
            assert tester.counters.transport_errors == 0
        finally:
            tester.close()
            bus.shutdown()


def test_a_kernel_isotp_client_reads_the_simulated_ecus() -> None:
    client = kernel_socket(rxid=0x7EA, txid=0x7E2)  # the brake ECU's ids
    bus = can.Bus(interface="socketcan", channel="vcan0")
    try:
        with EcuServer(bus, [engine_ecu(), brake_ecu()]) as server:
            client.settimeout(5.0)
            client.send(b"\x22\xf1\x90")
            assert client.recv() == b"\x62\xf1\x90EDGEAGENTSIM00001"  # multi-frame, our stack
            client.send(b"\x22\xf1\x87")
            assert client.recv() == b"\x62\xf1\x87BRK-0001"
            assert server.transport_errors == 0
    finally:
        client.close()
        bus.shutdown()
