"""The OTA installer's health details as Prometheus metrics: the phase of the current job."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from edge_agent.metrics import Sample, gauge, state_set


def ota_metrics(details: Mapping[str, Any]) -> Iterator[Sample]:
    """The OTA phase as a state set, the bytes downloaded and boot attempts of a trial."""
    ota = details.get("ota")
    if not isinstance(ota, Mapping):
        return
    yield from state_set("ota_phase", ota.get("phase"), "Phase of the OTA job.", "phase")
    progress = ota.get("progress")
    if isinstance(progress, Mapping):
        yield from gauge(
            "ota_download_bytes", progress.get("bytes"), "Bytes of the target downloaded."
        )
        yield from gauge("ota_download_total_bytes", progress.get("total"), "Size of the target.")
    yield from gauge("ota_boot_attempts", ota.get("boot_attempts"), "Boots of a trial version.")
