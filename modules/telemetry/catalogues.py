"""The vehicle's signal catalogues: which exist, which the cloud acknowledged, kept on disk.

The telemetry module learns its catalogue from the batches it cuts: a signal (name and value
type) it has not listed yet extends the newest catalogue (ids already given never change;
its VSS path where known, ``vss_paths.py``), which is then published once on
``catalog/{hash}`` (retained, QoS 1) and stays *pending* until the cloud acknowledges it on
``catalog/{hash}/ack`` (or asks for it again on ``catalog/{hash}/request``). Batches are
written as v3 with the newest *acknowledged* catalogue (signals it lacks travel inline), or
as v2 while there is none. Every catalogue a spooled batch may still name is kept, so the
spool's transforms (downsample, re-stamp) can re-encode v3 batches after a restart.

Layout of the state directory: one ``{hash}.eact`` document per catalogue and
``shelf.json`` (``{"order": [hash, ...], "acknowledged": [hash, ...]}``, oldest first).
Anything unreadable there is left out with a reason: the agent then writes v2 until a
catalogue is acknowledged again, and never loses a batch over it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path

from edge_agent.durable import write_bytes_atomic
from edge_agent.modules.telemetry.batch import BatchFormatError, LinearScale, SignalColumn
from edge_agent.modules.telemetry.batch.catalogue import (
    Catalogue,
    CatalogueEntry,
    parse_catalogue,
)
from edge_agent.modules.telemetry.vss_paths import vss_path

MAX_KEPT = 16  # catalogues kept for batches still in the spool; older ones are forgotten
MAX_SHELF_BYTES = 64 * 1024
CATALOGUE_SUFFIX = ".eact"


class CatalogueShelf:
    """Catalogues of one vehicle in a directory; ``catalogues`` is the live hash lookup.

    Not thread-safe: call it from the event loop (files are written whole, then renamed).
    """

    def __init__(self, directory: Path, vehicle_id: str = "") -> None:
        self.directory = directory
        self.vehicle_id = vehicle_id
        self.catalogues: dict[bytes, Catalogue] = {}
        self.order: list[bytes] = []
        self.acknowledged: set[bytes] = set()
        self.problem = ""

    def load(self) -> str:
        """Read what is on disk; returns what was not understood ("" if all was). Never raises.

        A directory that cannot be made (a full disk) only means v2 until a catalogue can be
        kept: learning tries again at every batch.
        """
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            self.problem = f"{self.directory} cannot be made ({error.strerror}); writing v2"
            return self.problem
        path = self.directory / "shelf.json"
        try:
            raw = path.read_bytes()[: MAX_SHELF_BYTES + 1]
            data = json.loads(raw) if len(raw) <= MAX_SHELF_BYTES else None
        except FileNotFoundError:
            return ""
        except (OSError, ValueError, RecursionError) as error:
            self.problem = f"{path} unreadable ({type(error).__name__}); writing v2 until acked"
            return self.problem
        order = data.get("order") if isinstance(data, dict) else None
        acked = data.get("acknowledged") if isinstance(data, dict) else None
        if not isinstance(order, list) or not isinstance(acked, list):
            self.problem = f"{path} is not a catalogue shelf; writing v2 until acked"
            return self.problem
        skipped = []
        for name in order[-MAX_KEPT:]:
            catalogue = self._read(name)
            if catalogue is None:
                skipped.append(str(name)[:40])
                continue
            self.catalogues[catalogue.hash] = catalogue
            self.order.append(catalogue.hash)
        self.acknowledged = {h for h in self.order if h.hex() in acked}
        if skipped:
            self.problem = f"catalogues unreadable, left out: {', '.join(skipped[:3])}"
        return self.problem

    def _read(self, name: object) -> Catalogue | None:
        if not isinstance(name, str) or len(name) != 32:
            return None
        try:
            digest = bytes.fromhex(name)
            document = (self.directory / f"{name}{CATALOGUE_SUFFIX}").read_bytes()
            return parse_catalogue(document, expected_hash=digest)
        except (ValueError, OSError, BatchFormatError):
            return None

    @property
    def newest(self) -> Catalogue | None:
        """The catalogue listing every signal seen so far (acknowledged or not)."""
        return self.catalogues[self.order[-1]] if self.order else None

    @property
    def writing(self) -> Catalogue | None:
        """The newest catalogue the cloud acknowledged: v3 batches use it; None means v2."""
        for digest in reversed(self.order):
            if digest in self.acknowledged:
                return self.catalogues[digest]
        return None

    @property
    def pending(self) -> list[Catalogue]:
        """Catalogues published but not acknowledged, oldest first (re-sent on reconnect)."""
        newest = self.newest
        if newest is None or newest.hash in self.acknowledged:
            return []
        return [newest]

    def learn(
        self,
        columns: Iterable[SignalColumn],
        scales: Mapping[str, LinearScale],
        units: Mapping[str, str],
    ) -> Catalogue | None:
        """Extend the newest catalogue with signals it lacks; the new one, or None if none.

        The new catalogue is written to disk before it is returned (to be published); raises
        OSError when it cannot be (a full disk: the new signals then travel inline).
        """
        newest = self.newest
        known = newest.ids if newest is not None else {}
        fresh = [
            _entry(column, scales.get(column.name), units.get(column.name, ""))
            for column in columns
            if (column.name, column.type) not in known
        ]
        if not fresh:
            return None
        try:
            if newest is not None and newest.vehicle == self.vehicle_id:
                grown = newest.extended(fresh)
            else:  # the first, or the vehicle was renamed: a catalogue of its own
                grown = Catalogue.of(
                    [*(newest.entries if newest else ()), *fresh], vehicle=self.vehicle_id
                )
        except ValueError:  # past a catalogue's limits: the rest travel inline, by name
            return None
        self._keep(grown)
        return grown

    def acknowledge(self, digest: bytes) -> bool:
        """Record the cloud's acknowledgement of ``digest``; False for a hash we never sent.

        Kept in memory even when the disk refuses it (it is then asked for again after a
        restart: the vehicle re-publishes the catalogue and writes v2 until the new ack).
        """
        if digest not in self.catalogues:
            return False
        if digest not in self.acknowledged:
            self.acknowledged.add(digest)
            try:
                self._save()
            except OSError as error:
                self.problem = f"acknowledgement not saved ({error.strerror})"
        return True

    def _keep(self, catalogue: Catalogue) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(
            self.directory / f"{catalogue.hash_hex}{CATALOGUE_SUFFIX}", catalogue.document
        )
        self.catalogues[catalogue.hash] = catalogue
        self.order.append(catalogue.hash)
        while len(self.order) > MAX_KEPT:
            gone = self.order.pop(0)
            self.catalogues.pop(gone, None)
            self.acknowledged.discard(gone)
            (self.directory / f"{gone.hex()}{CATALOGUE_SUFFIX}").unlink(missing_ok=True)
        self._save()

    def _save(self) -> None:
        shelf = {
            "order": [digest.hex() for digest in self.order],
            "acknowledged": [digest.hex() for digest in self.order if digest in self.acknowledged],
        }
        write_bytes_atomic(self.directory / "shelf.json", json.dumps(shelf).encode())


def _entry(column: SignalColumn, hint: LinearScale | None, unit: str) -> CatalogueEntry:
    if hint is not None and not (math.isfinite(hint.scale) and math.isfinite(hint.offset)):
        hint = None
    if hint is not None and hint.scale == 0.0:
        hint = None
    return CatalogueEntry(
        column.name,
        column.type,
        unit=unit[:64],
        scale=hint.scale if hint else None,
        offset=hint.offset if hint else None,
        vss=vss_path(column.name),
    )
