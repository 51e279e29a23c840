"""The signal catalogue: what a vehicle's signals are, sent once, named by its content hash.

A version-3 batch carries signal ids and values only; the names, value types, units, DBC
scales and VSS paths live in a :class:`Catalogue`, published once per vehicle and catalogue
version on ``vehicles/{vid}/catalog/{hash}`` (docs/batch-format.md, section 3.2). The
document has the batch's outer layer with its own magic (``EACT``, version 1, zstd with
checksum) around a msgpack map. Its hash is the first 16 bytes of SHA-256 over the
decompressed payload, so the same entries always give the same hash and a receiver checks a
document against the hash it was published under.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgpack

from edge_agent.modules.telemetry.batch.errors import BatchFormatError, MalformedCatalogue
from edge_agent.modules.telemetry.batch.frame import seal, unseal
from edge_agent.modules.telemetry.batch.model import ValueType
from edge_agent.modules.telemetry.batch.packing import packb

CATALOGUE_MAGIC = b"EACT"
CATALOGUE_DOCUMENT_VERSION = 1
HASH_BYTES = 16
MAX_CATALOGUE_BYTES = 1 << 20  # decompressed payload
MAX_ENTRIES = 1 << 14  # as many as a batch may have columns
MAX_NAME_CHARS = 1024
MAX_UNIT_CHARS = 64
_ENTRY_KEYS = frozenset({"n", "y", "u", "s", "o", "p"})
_DOCUMENT_KEYS = frozenset({"v", "vh", "signals"})
MAX_VEHICLE_CHARS = 256


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    """One signal of a catalogue: its name and value type, and what is known about it.

    ``scale``/``offset`` are its DBC conversion (a ``scaled`` column that omits them uses
    these); ``unit`` its DBC unit; ``vss`` its COVESA VSS path where one is mapped.
    """

    name: str
    type: ValueType
    unit: str = ""
    scale: float | None = None
    offset: float | None = None
    vss: str = ""


@dataclass(frozen=True, slots=True)
class Catalogue:
    """An ordered list of signals; a signal's id is its position. Immutable, hashed by content.

    Build one with :meth:`of` (or :meth:`extended` to add signals keeping every id), read one
    with :func:`parse_catalogue`.
    """

    entries: tuple[CatalogueEntry, ...]
    document: bytes
    hash: bytes
    ids: Mapping[tuple[str, ValueType], int] = field(repr=False)
    vehicle: str = ""

    @classmethod
    def of(cls, entries: Iterable[CatalogueEntry], *, vehicle: str = "") -> Catalogue:
        """The catalogue of ``entries`` (in this order). Raises ValueError past a limit.

        ``vehicle``: the vehicle id it belongs to; its v3 batches then leave their own out
        (the hash they carry covers it).
        """
        listed = tuple(entries)
        if len(vehicle) > MAX_VEHICLE_CHARS:
            raise ValueError(f"vehicle id must be at most {MAX_VEHICLE_CHARS} characters")
        for entry in listed:
            _check_entry(entry)
        if len(listed) > MAX_ENTRIES:
            raise ValueError(f"a catalogue holds at most {MAX_ENTRIES} signals")
        ids: dict[tuple[str, ValueType], int] = {}
        for index, entry in enumerate(listed):
            if ids.setdefault((entry.name, entry.type), index) != index:
                raise ValueError(f"signal {entry.name!r} ({entry.type}) is listed twice")
        document_map: dict[str, Any] = {"v": CATALOGUE_DOCUMENT_VERSION}
        if vehicle:
            document_map["vh"] = vehicle
        document_map["signals"] = [_entry_map(e) for e in listed]
        payload = packb(document_map)
        if len(payload) > MAX_CATALOGUE_BYTES:
            raise ValueError(f"catalogue is over the {MAX_CATALOGUE_BYTES}-byte limit")
        document = seal(
            payload,
            19,  # sent once per vehicle and version: the best compression is worth it
            CATALOGUE_DOCUMENT_VERSION,
            magic=CATALOGUE_MAGIC,
            limit=MAX_CATALOGUE_BYTES,
        )
        return cls(listed, document, catalogue_hash(payload), ids, vehicle)

    def extended(self, entries: Iterable[CatalogueEntry]) -> Catalogue:
        """A catalogue of these signals plus the ``entries`` they lack, appended (same ids)."""
        new = [e for e in entries if (e.name, e.type) not in self.ids]
        unique = list({(e.name, e.type): e for e in new}.values())
        if not unique:
            return self
        return Catalogue.of((*self.entries, *unique), vehicle=self.vehicle)

    @property
    def hash_hex(self) -> str:
        """The hash as 32 hex digits, as it appears in the MQTT topic."""
        return self.hash.hex()

    def __len__(self) -> int:
        return len(self.entries)


def catalogue_hash(payload: bytes) -> bytes:
    """The content hash of a catalogue's decompressed payload (16 bytes of SHA-256)."""
    return hashlib.sha256(payload).digest()[:HASH_BYTES]


def parse_catalogue(document: bytes, *, expected_hash: bytes | None = None) -> Catalogue:
    """Read a catalogue document; raises ``MalformedCatalogue`` (one line) for anything else.

    ``expected_hash`` is the hash it was published under: a document whose content hashes
    otherwise is refused, so nobody can slip other signal names under a known hash.
    """
    try:
        payload = unseal(
            document,
            MAX_CATALOGUE_BYTES,
            magic=CATALOGUE_MAGIC,
            versions=(CATALOGUE_DOCUMENT_VERSION,),
            what="catalogue",
        )
    except BatchFormatError as error:
        raise MalformedCatalogue(str(error)) from None
    digest = catalogue_hash(payload)
    if expected_hash is not None and digest != expected_hash:
        raise MalformedCatalogue(
            f"catalogue: content hashes to {digest.hex()}, not {expected_hash.hex()}"
        )
    try:
        raw = msgpack.unpackb(
            payload,
            raw=False,
            strict_map_key=True,
            max_str_len=1 << 16,
            max_bin_len=0,
            max_array_len=MAX_ENTRIES,
            max_map_len=16,
            max_ext_len=0,
        )
    except Exception as error:  # msgpack raises several unrelated types on hostile input
        kind = type(error).__name__
        raise MalformedCatalogue(f"catalogue: unreadable msgpack ({kind})") from None
    entries, vehicle = _entries(raw)
    try:
        parsed = Catalogue.of(entries, vehicle=vehicle)
    except ValueError as error:
        raise MalformedCatalogue(f"catalogue: {error}") from None
    if parsed.hash != digest:
        # Same entries, other bytes (key order, number forms): a writer that is not canonical.
        raise MalformedCatalogue("catalogue: payload is not in canonical form")
    return parsed


def _entries(raw: object) -> tuple[list[CatalogueEntry], str]:
    if not isinstance(raw, dict) or set(raw) - _DOCUMENT_KEYS or not {"v", "signals"} <= set(raw):
        raise MalformedCatalogue("catalogue: expected a map of 'v', 'signals' and maybe 'vh'")
    vehicle = raw.get("vh", "")
    if type(vehicle) is not str or len(vehicle) > MAX_VEHICLE_CHARS:
        raise MalformedCatalogue(
            f"catalogue.vh: must be a vehicle id of at most {MAX_VEHICLE_CHARS} characters"
        )
    if raw["v"] != CATALOGUE_DOCUMENT_VERSION or type(raw["v"]) is not int:
        raise MalformedCatalogue(f"catalogue.v: {raw['v']!r}, this reader knows version 1")
    signals = raw["signals"]
    if not isinstance(signals, list):
        raise MalformedCatalogue("catalogue.signals: expected an array")
    listed = [_entry(item, f"catalogue.signals[{index}]") for index, item in enumerate(signals)]
    return listed, vehicle


def _entry(item: object, where: str) -> CatalogueEntry:
    if not isinstance(item, dict):
        raise MalformedCatalogue(f"{where}: expected a map")
    unknown = set(item) - _ENTRY_KEYS
    if unknown:
        raise MalformedCatalogue(f"{where}: unknown key {sorted(map(str, unknown))[0][:40]!r}")
    name, type_name = item.get("n"), item.get("y")
    if type(name) is not str or type(type_name) is not str:
        raise MalformedCatalogue(f"{where}: 'n' (name) and 'y' (type) must be strings")
    try:
        value_type = ValueType(type_name)
    except ValueError:
        raise MalformedCatalogue(f"{where}.y: unknown value type {type_name[:40]!r}") from None
    unit, vss = item.get("u", ""), item.get("p", "")
    scale, offset = item.get("s"), item.get("o")
    if type(unit) is not str or type(vss) is not str:
        raise MalformedCatalogue(f"{where}: 'u' (unit) and 'p' (VSS path) must be strings")
    if (scale is None) != (offset is None) or not all(
        v is None or type(v) is float for v in (scale, offset)
    ):
        raise MalformedCatalogue(f"{where}: 's' and 'o' must both be floats, or both absent")
    entry = CatalogueEntry(name, value_type, unit, scale, offset, vss)
    try:
        _check_entry(entry)
    except ValueError as error:
        raise MalformedCatalogue(f"{where}: {error}") from None
    return entry


def _check_entry(entry: CatalogueEntry) -> None:
    if not 0 < len(entry.name) <= MAX_NAME_CHARS:
        raise ValueError(f"signal name must be 1 to {MAX_NAME_CHARS} characters")
    if len(entry.unit) > MAX_UNIT_CHARS or len(entry.vss) > MAX_NAME_CHARS:
        raise ValueError(f"signal {entry.name[:40]!r}: unit or VSS path too long")
    if (entry.scale is None) != (entry.offset is None):
        raise ValueError(f"signal {entry.name[:40]!r}: scale and offset go together")
    if entry.scale is not None and not (
        math.isfinite(entry.scale) and entry.scale != 0.0 and math.isfinite(entry.offset or 0.0)
    ):
        raise ValueError(f"signal {entry.name[:40]!r}: scale must be finite and non-zero")


def _entry_map(entry: CatalogueEntry) -> dict[str, Any]:
    fields: dict[str, Any] = {"n": entry.name, "y": entry.type.value}
    if entry.unit:
        fields["u"] = entry.unit
    if entry.scale is not None:
        fields["s"] = float(entry.scale)
        fields["o"] = float(entry.offset or 0.0)
    if entry.vss:
        fields["p"] = entry.vss
    return fields
