"""A read-only UDS session with one ECU (udsoncan), on a stack the :class:`Tester` lends.

The session opens in the default diagnostic session or the extended one, keeps it open with
TesterPresent, and reads DTCs (with their snapshot and extended data records) and DIDs. Every
request passes the tester's allow-list and pacer first; its outcome is counted in the
tester's counters, the "pending" answers udsoncan waits through included.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import isotp
import udsoncan
from udsoncan.client import Client
from udsoncan.common.DidCodec import DidCodec
from udsoncan.connections import PythonIsoTpConnection
from udsoncan.exceptions import (
    InvalidResponseException,
    NegativeResponseException,
    TimeoutException,
    UnexpectedResponseException,
)
from udsoncan.typing import ClientConfig

from edge_agent.modules.diagnostics.codes import UdsDtc
from edge_agent.modules.diagnostics.outcomes import RESPONSE_PENDING, DiagCounters, DiagnosticError
from edge_agent.modules.diagnostics.services import ServiceRefused

if TYPE_CHECKING:
    from edge_agent.modules.diagnostics.tester import EcuAddress, Tester

DEFAULT_SESSION = 0x01
EXTENDED_SESSION = 0x03
# Snapshot DIDs and their lengths when the configuration names none (the simulated ECUs').
DEFAULT_SNAPSHOT_DIDS = {0xDD01: 1, 0xDD02: 2}
# Extended data record length (the occurrence counter of the simulated ECUs).
EXTENDED_DATA_SIZE = 1


class _RawCodec(DidCodec):
    """A DID's bytes as they come; decoding them is the caller's business."""

    def encode(self, *values: Any) -> bytes:
        return bytes(values[0])

    def decode(self, payload: bytes) -> bytes:
        return bytes(payload)

    def __len__(self) -> int:
        raise DidCodec.ReadAllRemainingData


class _FixedCodec(DidCodec):
    """A DID of known length inside a snapshot record, kept as its bytes."""

    def __init__(self, size: int) -> None:
        self._size = size

    def encode(self, *values: Any) -> bytes:
        return bytes(values[0])

    def decode(self, payload: bytes) -> bytes:
        return bytes(payload)

    def __len__(self) -> int:
        return self._size


def _client_config(timeout_s: float, snapshot_dids: dict[int, int]) -> ClientConfig:
    config = cast(ClientConfig, dict(udsoncan.configs.default_client_config))
    config.update(
        {
            "request_timeout": timeout_s * 10,
            "p2_timeout": timeout_s,
            "p2_star_timeout": timeout_s * 10,
            "use_server_timing": False,
            "data_identifiers": {
                "default": _RawCodec(),
                **{did: _FixedCodec(size) for did, size in snapshot_dids.items()},
            },
            "extended_data_size": EXTENDED_DATA_SIZE,
        }
    )
    return config


class _CountingConnection(PythonIsoTpConnection):
    """udsoncan's ISO-TP connection, counting the "pending" answers udsoncan waits through."""

    def __init__(self, layer: isotp.TransportLayer, counters: DiagCounters, name: str) -> None:
        super().__init__(layer, name=name)
        self._counters = counters

    def specific_wait_frame(self, timeout: float | None = None) -> bytes | None:
        frame: bytes | None = super().specific_wait_frame(timeout=timeout)
        pending = frame is not None and len(frame) == 3 and frame[0] == 0x7F
        if pending and frame is not None and frame[2] == RESPONSE_PENDING:
            self._counters.pending += 1
        return frame


def uds_client(
    stack: isotp.TransportLayer,
    counters: DiagCounters,
    ecu_name: str,
    timeout_s: float,
    snapshot_dids: dict[int, int],
) -> Client:
    """A udsoncan client over ``stack``: our timeouts, DIDs as bytes, "pending" counted."""
    connection = _CountingConnection(stack, counters, ecu_name)
    return Client(connection, config=_client_config(timeout_s, snapshot_dids))


class UdsSession:
    """Read-only UDS requests to one ECU through a udsoncan ``Client``; outcomes counted."""

    def __init__(self, tester: Tester, ecu: EcuAddress, client: Client) -> None:
        self._tester = tester
        self.ecu = ecu
        self._client = client

    def _call(
        self, service: int, request: Callable[[], Any], *, clear_allowed: bool = False
    ) -> Any:
        counters = self._tester.counters
        self._tester.check(service, clear_allowed=clear_allowed)
        self._tester._pace()
        counters.requests += 1
        try:
            result = request()
        except NegativeResponseException as error:
            code = error.response.code
            counters.negative[f"0x{code:02X}"] += 1
            raise DiagnosticError(
                f"{self.ecu.name}: negative response 0x{code:02X} ({error.response.code_name})"
            ) from None
        except TimeoutException:
            counters.timeouts += 1
            raise DiagnosticError(f"{self.ecu.name}: no answer in time") from None
        except (InvalidResponseException, UnexpectedResponseException, ValueError) as error:
            counters.malformed += 1
            raise DiagnosticError(f"{self.ecu.name}: malformed answer: {error}") from None
        counters.answers += 1
        return result

    def tester_present(self) -> None:
        """TesterPresent, positive answer suppressed: the ECU keeps its session open."""

        def send() -> None:
            with self._client.suppress_positive_response(wait_nrc=False):
                self._client.tester_present()

        self._call(0x3E, send)

    def change_session(self, session: int) -> None:
        """DiagnosticSessionControl to the default (1) or extended (3) session only."""
        if session not in (DEFAULT_SESSION, EXTENDED_SESSION):
            self._tester.counters.refused += 1
            raise ServiceRefused(f"session 0x{session:02X} refused: only default and extended")
        self._call(0x10, lambda: self._client.change_session(session))

    def read_dtcs(self, status_mask: int = 0xFF) -> list[UdsDtc]:
        """DTCs whose status matches ``status_mask`` (ReadDTCInformation 0x02)."""
        response = self._call(0x19, lambda: self._client.get_dtc_by_status_mask(status_mask))
        return [
            UdsDtc.from_id(dtc.id, dtc.status.get_byte_as_int())
            for dtc in response.service_data.dtcs
        ]

    def read_snapshot(self, dtc: UdsDtc) -> dict[str, str]:
        """The DIDs (hex) of ``dtc``'s snapshot records; empty when the ECU keeps none."""
        response = self._call(
            0x19, lambda: self._client.get_dtc_snapshot_by_dtc_number(dtc.dtc_id, 0xFF)
        )
        return {
            f"0x{snapshot.did:04X}": bytes(snapshot.data).hex()
            for found in response.service_data.dtcs
            for snapshot in found.snapshots
        }

    def read_extended_data(self, dtc: UdsDtc) -> dict[str, str]:
        """``dtc``'s extended data records (hex) by record number; empty when none."""
        response = self._call(
            0x19, lambda: self._client.get_dtc_extended_data_by_dtc_number(dtc.dtc_id, 0xFF)
        )
        return {
            f"0x{record.record_number:02X}": bytes(record.raw_data).hex()
            for found in response.service_data.dtcs
            for record in found.extended_data
        }

    def read_did(self, did: int) -> bytes:
        """The raw bytes of data identifier ``did`` (ReadDataByIdentifier)."""
        response = self._call(0x22, lambda: self._client.read_data_by_identifier([did]))
        return bytes(response.service_data.values[did])

    def clear_dtcs(self, *, allowed: bool) -> None:
        """ClearDiagnosticInformation: only when the privileged path said ``allowed``."""
        self._call(0x14, lambda: self._client.clear_dtc(0xFFFFFF), clear_allowed=allowed)
