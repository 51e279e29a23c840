"""Batch format v3: signals by catalogue id, short keys, shared timestamp columns.

A v3 batch names its :class:`~edge_agent.modules.telemetry.batch.catalogue.Catalogue` by
hash and carries, per column, the signal's id in it instead of its name and type; a scaled
column whose conversion is the catalogue's omits it; a column whose timestamps equal an
earlier column's (signals of one CAN frame) refers to that column instead of repeating them.
Values are encoded exactly as in v2 (``columns.py``): this module only renames the wire keys
(docs/batch-format.md, section 3.2) and reuses v2's checks on the way back.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from edge_agent.modules.telemetry.batch.catalogue import HASH_BYTES, Catalogue
from edge_agent.modules.telemetry.batch.columns import (
    LinearScale,
    check_extra_keys,
    decode_column,
    encode_column,
    typed_field,
)
from edge_agent.modules.telemetry.batch.errors import MalformedBatch, UnknownCatalogue
from edge_agent.modules.telemetry.batch.model import (
    MILLISECONDS,
    Batch,
    ClockQuality,
    SignalColumn,
)

ENCODING_CODES = ("delta", "raw", "scaled", "decimal", "f32", "f64")
PREDICTOR_CODES = ("zero", "last", "slope", "mean2", "mean4", "mean8", "mean16")
CLOCK_CODES = (ClockQuality.TRUSTED, ClockQuality.UNTRUSTED, ClockQuality.UNTRUSTED_RESTAMPED)
ENVELOPE_KEYS = frozenset({"v", "c", "vh", "st", "sq", "id", "r", "w", "m", "k", "b", "x", "s"})
_COLUMN_KEYS = frozenset({"i", "n", "y", "e", "t", "T", "v", "s", "o", "d", "k", "p", "f"})
# v2 column key -> v3 column key, for everything that keeps its meaning.
_RENAMED = {"v": "v", "scale": "s", "offset": "o", "digits": "d", "rk": "k", "v0": "f"}

CatalogueLookup = Mapping[bytes, Catalogue]


def envelope_v3(
    batch: Batch, columns: list[dict[str, Any]], catalogue: Catalogue
) -> dict[str, Any]:
    """The v3 envelope map of ``batch`` around its already compacted ``columns``.

    Fields at their defaults are left out (vehicle: the catalogue's; resolution: ms; clock:
    trusted; decimation: 0; boot: none); nothing that identifies or checks a batch is.
    """
    envelope: dict[str, Any] = {"v": 3, "c": catalogue.hash}
    if batch.vehicle_id != catalogue.vehicle:
        envelope["vh"] = batch.vehicle_id
    envelope |= {"st": batch.stream, "sq": batch.sequence, "id": batch.message_id}
    if batch.resolution != MILLISECONDS:
        envelope["r"] = batch.resolution
    envelope |= {"w": batch.wall_base, "m": batch.monotonic_base}
    if batch.clock is not ClockQuality.TRUSTED:
        envelope["k"] = CLOCK_CODES.index(batch.clock)
    if batch.boot_id:
        envelope["b"] = _boot_on_wire(batch.boot_id)
    if batch.decimation:
        envelope["x"] = batch.decimation
    envelope["s"] = columns
    return envelope


def compact_columns(
    batch: Batch,
    catalogue: Catalogue,
    hints: Mapping[str, LinearScale],
    *,
    pack: bool,
) -> list[dict[str, Any]]:
    """Every column of ``batch`` in its v3 form (ids from ``catalogue``; inline if absent)."""
    out: list[dict[str, Any]] = []
    seen_times: dict[tuple[int, ...], int] = {}
    for index, column in enumerate(batch.signals):
        signal_id = catalogue.ids.get((column.name, column.type))
        entry = catalogue.entries[signal_id] if signal_id is not None else None
        hint = hints.get(column.name)
        if hint is None and entry is not None and entry.scale is not None:
            hint = LinearScale(entry.scale, entry.offset or 0.0)
        wide = encode_column(column, hint, pack=pack)
        fields: dict[str, Any] = (
            {"i": signal_id} if signal_id is not None else {"n": column.name, "y": column.type}
        )
        fields["e"] = ENCODING_CODES.index(wide["enc"])
        same = seen_times.setdefault(column.offsets, index) if column.offsets else index
        if same != index:
            fields["T"] = same
        else:
            fields["t"] = wide["t"]
        for long_key, short_key in _RENAMED.items():
            if long_key in wide:
                fields[short_key] = wide[long_key]
        if "pred" in wide:
            fields["p"] = PREDICTOR_CODES.index(wide["pred"])
        if (
            entry is not None
            and wide["enc"] == "scaled"
            and (entry.scale, entry.offset) == (wide["scale"], wide["offset"])
        ):
            del fields["s"], fields["o"]  # the catalogue's conversion: do not repeat it
        out.append(fields)
    return out


def batch_from_v3(
    envelope: dict[str, Any],
    catalogues: CatalogueLookup | None,
    *,
    max_columns: int,
    max_samples: int,
) -> Batch:
    """The batch a v3 envelope describes; raises ``UnknownCatalogue`` or ``MalformedBatch``.

    Header fields are taken as they are: the caller checks them (``v2_view``).
    """
    check_extra_keys(envelope, ENVELOPE_KEYS, "envelope")
    digest = typed_field(envelope, "c", bytes, "envelope")
    if len(digest) != HASH_BYTES:
        raise MalformedBatch(f"envelope.c: {len(digest)} bytes, a catalogue hash has 16")
    catalogue = (catalogues or {}).get(digest)
    if catalogue is None:
        raise UnknownCatalogue(
            f"batch: names catalogue {digest.hex()}, which this decoder does not have", digest
        )
    clock_code = typed_field(envelope, "k", int, "envelope") if "k" in envelope else 0
    if not 0 <= clock_code < len(CLOCK_CODES):
        raise MalformedBatch(f"envelope.k: unknown clock quality code {clock_code}")
    boot = envelope.get("b", "")
    if type(boot) is bytes and len(boot) == 16:
        boot = str(uuid.UUID(bytes=boot))
    elif type(boot) is not str:
        raise MalformedBatch("envelope.b: expected str or 16 bytes")
    raw_columns = typed_field(envelope, "s", list, "envelope")
    if len(raw_columns) > max_columns:
        raise MalformedBatch(f"envelope.s: {len(raw_columns)} columns, limit {max_columns}")
    columns: list[SignalColumn] = []
    wide_times: list[object] = []
    samples = 0
    for index, raw in enumerate(raw_columns):
        where = f"envelope.s[{index}]"
        wide = _widen(raw, catalogue, wide_times, where)
        wide_times.append(wide["t"])
        # Shared timestamps cost nothing on the wire: count them before decoding any.
        samples += len(wide["t"]) if isinstance(wide["t"], list) else 0
        if samples > max_samples:
            raise MalformedBatch(f"envelope.s: over {max_samples} samples")
        columns.append(decode_column(wide, where, packed_allowed=True))
    return Batch(
        vehicle_id=envelope.get("vh"),  # type: ignore[arg-type]  # checked by the caller
        stream=envelope.get("st"),  # type: ignore[arg-type]
        sequence=envelope.get("sq"),  # type: ignore[arg-type]
        message_id=envelope.get("id"),  # type: ignore[arg-type]
        resolution=envelope.get("r"),  # type: ignore[arg-type]
        wall_base=envelope.get("w"),  # type: ignore[arg-type]
        monotonic_base=envelope.get("m"),  # type: ignore[arg-type]
        clock=CLOCK_CODES[clock_code],
        boot_id=boot,
        decimation=envelope.get("x", 0),
        version=3,
        catalogue=digest,
        signals=tuple(columns),
    )


def v2_view(envelope: dict[str, Any], catalogue: Catalogue | None) -> dict[str, Any]:
    """The v3 envelope's header fields under their v2 names (for the shared header checks).

    Defaults filled in: the catalogue's vehicle, ms resolution.
    """
    names = {"vh": "vehicle", "st": "stream", "sq": "seq", "id": "id", "r": "res"}
    names |= {"w": "wall", "m": "mono", "x": "decim"}
    view = {long: envelope[short] for short, long in names.items() if short in envelope}
    view.setdefault("res", MILLISECONDS)
    if "vehicle" not in view and catalogue is not None:
        view["vehicle"] = catalogue.vehicle
    boot = envelope.get("b", "")
    view["boot"] = str(uuid.UUID(bytes=boot)) if type(boot) is bytes and len(boot) == 16 else boot
    return view


def _widen(raw: object, catalogue: Catalogue, times: list[object], where: str) -> dict[str, Any]:
    """A v3 column map rewritten as the v2 map ``decode_column`` checks and reads."""
    if not isinstance(raw, dict):
        raise MalformedBatch(f"{where}: expected a map, got {type(raw).__name__}")
    check_extra_keys(raw, _COLUMN_KEYS, where)
    wide: dict[str, Any] = {}
    entry = None
    if "i" in raw:
        signal_id = typed_field(raw, "i", int, where)
        if not 0 <= signal_id < len(catalogue):
            raise MalformedBatch(
                f"{where}.i: signal id {signal_id} is not in catalogue "
                f"{catalogue.hash_hex} ({len(catalogue)} signals)"
            )
        entry = catalogue.entries[signal_id]
        wide["name"], wide["type"] = entry.name, entry.type.value
    else:
        wide["name"], wide["type"] = raw.get("n"), raw.get("y")
    code = typed_field(raw, "e", int, where)
    if not 0 <= code < len(ENCODING_CODES):
        raise MalformedBatch(f"{where}.e: unknown encoding code {code}")
    wide["enc"] = ENCODING_CODES[code]
    if "T" in raw:
        same = typed_field(raw, "T", int, where)
        if not 0 <= same < len(times) or "t" in raw:
            raise MalformedBatch(f"{where}.T: must name an earlier column, and replace 't'")
        wide["t"] = times[same]
    else:
        wide["t"] = raw.get("t")
    for long_key, short_key in _RENAMED.items():
        if short_key in raw:
            wide[long_key] = raw[short_key]
    if "p" in raw:
        predictor = typed_field(raw, "p", int, where)
        if not 0 <= predictor < len(PREDICTOR_CODES):
            raise MalformedBatch(f"{where}.p: unknown predictor code {predictor}")
        wide["pred"] = PREDICTOR_CODES[predictor]
    if wide["enc"] == "scaled" and "scale" not in wide and "offset" not in wide:
        if entry is None or entry.scale is None:
            raise MalformedBatch(
                f"{where}: a scaled column without 's'/'o' needs a catalogue signal with a scale"
            )
        wide["scale"], wide["offset"] = entry.scale, entry.offset
    return wide


def _boot_on_wire(boot_id: str) -> str | bytes:
    # systemd boot ids are UUIDs: 16 bytes instead of 36 characters, when that is exact.
    try:
        parsed = uuid.UUID(boot_id)
    except ValueError:
        return boot_id
    return parsed.bytes if str(parsed) == boot_id else boot_id
