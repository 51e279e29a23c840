"""Signal catalogues and batch format v3: round trips, and every bad input a one-line error."""

from __future__ import annotations

import random
import struct
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.modules.telemetry.batch import (
    BatchFormatError,
    ClockQuality,
    MalformedBatch,
    Sample,
    ValueType,
    build_batch,
    decode_batch,
    downsample_encoded,
    encode_batch,
    restamp_encoded,
)
from edge_agent.modules.telemetry.batch.catalogue import (
    MAX_CATALOGUE_BYTES,
    Catalogue,
    CatalogueEntry,
    parse_catalogue,
)
from edge_agent.modules.telemetry.batch.errors import MalformedCatalogue, UnknownCatalogue
from edge_agent.modules.telemetry.batch.frame import seal, unseal

BOOT = "8f9e8d7c-6b5a-4f3e-9d2c-1b0a99887766"
CATALOGUE = Catalogue.of(
    [
        CatalogueEntry("VehicleSpeed", ValueType.FLOAT, "km/h", 0.01, 0.0, "Vehicle.Speed"),
        CatalogueEntry("Gear", ValueType.STR),
        CatalogueEntry("EngineSpeed", ValueType.INT, "rpm"),
    ]
)


def samples(count: int = 40) -> list[Sample]:
    speeds = [
        Sample("VehicleSpeed", 10 + i * 0.01, 1.76e9 + i * 0.01, round(50 + (i % 7) * 0.37, 2))
        for i in range(count)
    ]
    # EngineSpeed shares the speed's timestamps (one CAN frame); Accel is not catalogued.
    engine = [
        Sample("EngineSpeed", s.monotonic, s.wall, 800 + (i * 37) % 50)
        for i, s in enumerate(speeds)
    ]
    return [*speeds, *engine, Sample("Gear", 10.0, 1.76e9, "D"), Sample("Accel", 10.0, 1.76e9, 0.5)]


def batch_of(items: list[Sample], clock: ClockQuality = ClockQuality.TRUSTED) -> Any:
    return build_batch(
        items, vehicle_id="VIN1", stream="chassis", sequence=7, clock=clock, boot_id=BOOT
    )


def v3(items: list[Sample] | None = None, **changes: Any) -> bytes:
    return encode_batch(batch_of(items or samples()), catalogue=CATALOGUE, **changes)


def envelope(data: bytes) -> dict[str, Any]:
    decoded: dict[str, Any] = msgpack.unpackb(unseal(data))
    return decoded


def resealed(envelope_map: dict[str, Any]) -> bytes:
    return seal(msgpack.packb(envelope_map, use_bin_type=True), version=3)


LOOKUP = {CATALOGUE.hash: CATALOGUE}


def test_v3_round_trips_and_names_signals_by_id() -> None:
    original = batch_of(samples())
    data = encode_batch(original, catalogue=CATALOGUE)
    assert data[4] == 3
    decoded = decode_batch(data, catalogues=LOOKUP)
    assert decoded.same_as(original)
    assert decoded.catalogue == CATALOGUE.hash
    assert decoded.version == 3
    columns = envelope(data)["s"]
    assert [c.get("i") for c in columns] == [0, 2, 1, None]  # Accel travels inline
    assert columns[3]["n"] == "Accel"
    assert "T" in columns[1]
    assert "t" not in columns[1]
    assert "s" not in columns[0]  # the catalogue's scale is not repeated
    assert envelope(data)["b"] == bytes.fromhex(BOOT.replace("-", ""))


def test_v3_is_smaller_than_v2_for_the_same_batch() -> None:
    original = batch_of(samples(200))
    assert len(encode_batch(original, catalogue=CATALOGUE)) < len(encode_batch(original))


def test_catalogue_document_round_trips_and_hash_is_content() -> None:
    again = parse_catalogue(CATALOGUE.document, expected_hash=CATALOGUE.hash)
    assert again == CATALOGUE
    assert Catalogue.of(CATALOGUE.entries).hash == CATALOGUE.hash
    longer = CATALOGUE.extended([CatalogueEntry("Accel", ValueType.FLOAT)])
    assert longer.hash != CATALOGUE.hash
    assert longer.entries[:3] == CATALOGUE.entries  # ids kept
    assert CATALOGUE.extended([CATALOGUE.entries[0]]) is CATALOGUE


def test_unknown_catalogue_names_the_hash_and_loses_nothing() -> None:
    data = v3()
    with pytest.raises(UnknownCatalogue, match=CATALOGUE.hash_hex) as caught:
        decode_batch(data)
    assert caught.value.catalogue_hash == CATALOGUE.hash
    assert decode_batch(data, catalogues=LOOKUP).sample_count == 82  # later, all of it


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda e: e["s"][0].update(i=99), r"signal id 99 is not in catalogue"),
        (lambda e: e["s"][0].update(e=0), r"'delta' is not an encoding of float"),
        (lambda e: e["s"][1].update(T=3), r"T: must name an earlier column"),
        (lambda e: e["s"][2].update(e=9), r"unknown encoding code 9"),
        (lambda e: e.update(c=b"\x00" * 3), r"envelope.c: 3 bytes"),
        (lambda e: e.update(k=7), r"unknown clock quality code 7"),
        (lambda e: e.update(vh=""), r"envelope.vehicle: must be 1 to 256"),
        (lambda e: e["s"][3].pop("n"), r"name: expected str"),
        (lambda e: e["s"][0].update(nested={"a": 1}), r"nested structure"),
    ],
)
def test_batch_and_catalogue_disagreeing_is_a_one_line_error(change: Any, message: str) -> None:
    broken = envelope(v3())
    change(broken)
    with pytest.raises(MalformedBatch, match=message) as caught:
        decode_batch(resealed(broken), catalogues=LOOKUP)
    assert "\n" not in str(caught.value)


def test_a_scaled_column_needs_a_scale_from_somewhere() -> None:
    broken = envelope(v3())
    broken["s"][0]["i"] = 1  # Gear: no scale in the catalogue, and the column has none
    with pytest.raises(MalformedBatch):
        decode_batch(resealed(broken), catalogues=LOOKUP)


def test_shared_timestamps_cannot_multiply_past_the_sample_limit() -> None:
    shared = {"i": 2, "e": 0, "T": 0, "v": [0] * 60_000}
    forged = envelope(v3())
    forged["s"] = [{"i": 2, "e": 0, "t": [1] * 60_000, "v": [0] * 60_000}] + [shared] * 40
    with pytest.raises(MalformedBatch, match="samples"):
        decode_batch(resealed(forged), catalogues=LOOKUP)


def test_catalogue_under_another_hash_is_refused() -> None:
    with pytest.raises(MalformedCatalogue, match="hashes to"):
        parse_catalogue(CATALOGUE.document, expected_hash=b"\x00" * 16)


def test_catalogue_over_its_limit_is_refused_both_ways() -> None:
    names = [CatalogueEntry(f"S{i:05d}" + "x" * 1000, ValueType.INT) for i in range(1100)]
    with pytest.raises(ValueError, match="limit"):
        Catalogue.of(names)
    header = b"EACT\x01\x01" + struct.pack(">I", MAX_CATALOGUE_BYTES + 1)
    with pytest.raises(MalformedCatalogue, match="over the"):
        parse_catalogue(header + CATALOGUE.document[10:])


def test_non_canonical_catalogue_is_refused() -> None:
    payload = msgpack.packb(
        {"signals": [{"y": "int", "n": "A"}], "v": 1}, use_bin_type=True
    )  # keys in another order
    document = seal(payload, version=1, magic=b"EACT", limit=MAX_CATALOGUE_BYTES)
    with pytest.raises(MalformedCatalogue, match="canonical"):
        parse_catalogue(document)


def test_transforms_keep_v3_with_the_catalogue_and_leave_it_without() -> None:
    noise = random.Random(1)
    noisy = [
        Sample("VehicleSpeed", 10 + i * 0.01, 1.76e9 + i * 0.01, round(noise.gauss(50, 3), 2))
        for i in range(400)
    ]
    data = encode_batch(batch_of(noisy, ClockQuality.UNTRUSTED), catalogue=CATALOGUE)
    smaller = downsample_encoded(data, catalogues=LOOKUP)
    assert smaller is not None
    assert smaller[4] == 3
    assert decode_batch(smaller, catalogues=LOOKUP).decimation == 1
    assert downsample_encoded(data) is None  # without the catalogue: left as it is
    restamped = restamp_encoded(data, 1000.0, boot_id=BOOT, catalogues=LOOKUP)
    assert restamped is not None
    assert restamped[4] == 3
    assert decode_batch(restamped, catalogues=LOOKUP).clock is ClockQuality.UNTRUSTED_RESTAMPED
    assert restamp_encoded(data, 1000.0, boot_id=BOOT) is None


# -- property tests: structural seeds, then hostile mutations ------------------------------

NAMES = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12)
ENTRY = st.builds(
    CatalogueEntry,
    NAMES,
    st.sampled_from(list(ValueType)),
    st.text(max_size=5),
    st.one_of(st.none(), st.sampled_from([0.01, 0.1, 0.5, 2.0])),
)


@st.composite
def entries(draw: st.DrawFn) -> list[CatalogueEntry]:
    listed = draw(st.lists(ENTRY, max_size=12, unique_by=lambda e: (e.name, e.type)))
    return [
        CatalogueEntry(e.name, e.type, e.unit, e.scale, None if e.scale is None else 0.0)
        for e in listed
    ]


@given(entries())
def test_any_catalogue_round_trips(listed: list[CatalogueEntry]) -> None:
    catalogue = Catalogue.of(listed)
    assert parse_catalogue(catalogue.document, expected_hash=catalogue.hash) == catalogue


SEED_PAYLOAD = unseal(CATALOGUE.document, magic=b"EACT", versions=(1,), what="catalogue")


@settings(max_examples=300)
@given(st.data())
def test_any_mutated_catalogue_is_refused_or_read_never_anything_else(data: st.DataObject) -> None:
    payload = bytearray(SEED_PAYLOAD)
    for _ in range(data.draw(st.integers(1, 4))):
        where = data.draw(st.integers(0, len(payload) - 1))
        payload[where] = data.draw(st.integers(0, 255))
    document = seal(bytes(payload), version=1, magic=b"EACT", limit=MAX_CATALOGUE_BYTES)
    try:
        parsed = parse_catalogue(document)
    except MalformedCatalogue as error:
        problem = str(error)
    else:
        assert parse_catalogue(parsed.document, expected_hash=parsed.hash) == parsed
        return
    assert "\n" not in problem


SEED_V3 = envelope(v3())


@settings(max_examples=300)
@given(st.data())
def test_any_mutated_v3_batch_is_refused_or_decoded_consistently(data: st.DataObject) -> None:
    raw = bytearray(msgpack.packb(SEED_V3, use_bin_type=True))
    for _ in range(data.draw(st.integers(1, 4))):
        where = data.draw(st.integers(0, len(raw) - 1))
        raw[where] = data.draw(st.integers(0, 255))
    forged = seal(bytes(raw), version=3)
    try:
        batch = decode_batch(forged, catalogues=LOOKUP)
    except BatchFormatError as error:
        problem = str(error)
    else:
        again = encode_batch(batch, catalogue=CATALOGUE)
        assert decode_batch(again, catalogues=LOOKUP).same_as(batch)
        return
    assert "\n" not in problem


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["VehicleSpeed", "EngineSpeed", "Gear", "Other"]),
            st.integers(0, 5000),
            st.one_of(st.integers(-1000, 1000), st.floats(allow_nan=False), st.text(max_size=3)),
        ),
        max_size=60,
    )
)
def test_any_samples_round_trip_through_v3(rows: list[tuple[str, int, Any]]) -> None:
    items = [Sample(name, 10 + t / 1000, 1.76e9 + t / 1000, value) for name, t, value in rows]
    original = batch_of(items)
    decoded = decode_batch(encode_batch(original, catalogue=CATALOGUE), catalogues=LOOKUP)
    assert decoded.same_as(original)
