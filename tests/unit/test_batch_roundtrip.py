"""Batch format v1 and v2 (the default encoder): every batch it can build decodes back to itself."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.modules.telemetry.batch import (
    MICROSECONDS,
    MILLISECONDS,
    Batch,
    ClockQuality,
    LinearScale,
    Sample,
    SignalColumn,
    ValueType,
    build_batch,
    decode_batch,
    encode_batch,
    encode_samples,
)
from edge_agent.modules.telemetry.batch.frame import unseal

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
names = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=8)
values = st.one_of(
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.floats(width=32),
    st.booleans(),
    text,
    st.binary(max_size=12),
)
# Steps between samples: regular, irregular, huge gaps and backward jumps of the wall clock.
steps = st.one_of(
    st.just(0.01),
    st.floats(0, 0.5),
    st.floats(-3600, 86_400 * 30),
)


@st.composite
def sample_lists(draw: st.DrawFn) -> list[Sample]:
    signal_names = draw(st.lists(names, min_size=1, max_size=5, unique=True))
    monotonic = draw(st.floats(0, 1e6))
    wall = draw(st.floats(0, 4e9))
    samples = []
    for _ in range(draw(st.integers(0, 40))):
        monotonic += abs(draw(steps))
        wall += draw(steps)
        samples.append(Sample(draw(st.sampled_from(signal_names)), monotonic, wall, draw(values)))
    return samples


def same_value(a: object, b: object) -> bool:
    if type(a) is float and type(b) is float:
        return struct.pack("<d", a) == struct.pack("<d", b)
    return type(a) is type(b) and a == b


@settings(max_examples=300, deadline=None)
@given(
    samples=sample_lists(),
    clock=st.sampled_from(ClockQuality),
    resolution=st.sampled_from([MILLISECONDS, MICROSECONDS]),
)
def test_samples_survive_encode_and_decode(
    samples: list[Sample], clock: ClockQuality, resolution: int
) -> None:
    batch = build_batch(
        samples, vehicle_id="VIN1", stream="chassis", sequence=7, clock=clock, resolution=resolution
    )
    decoded = decode_batch(encode_batch(batch))
    assert decoded.same_as(batch)
    assert decoded.sample_count == len(samples)
    # Per signal, values come back in order with their times (to half a tick).
    by_signal: dict[str, list[tuple[float, object]]] = {}
    for sample in decoded.samples():
        by_signal.setdefault(sample.signal, []).append((sample.wall, sample.value))
    first = samples[0] if samples else None
    for name, got in by_signal.items():
        sent = [s for s in samples if s.signal == name]
        assert len(got) == len(sent)
        for (wall, value), original in zip(sorted_like(got, sent), sent, strict=True):
            assert same_value(value, original.value)
            assert first is not None
            if clock is ClockQuality.TRUSTED:
                expected = original.wall
            else:
                expected = first.wall + (original.monotonic - first.monotonic)
            assert abs(wall - expected) <= 2 / resolution + abs(expected) * 1e-15


def sorted_like(got: list[tuple[float, object]], sent: list[Sample]) -> list[tuple[float, object]]:
    """Columns split a signal by value type; put decoded samples back in sending order."""
    by_type: dict[type, list[tuple[float, object]]] = {}
    for item in got:
        by_type.setdefault(type(item[1]), []).append(item)
    return [by_type[type(s.value)].pop(0) for s in sent]


@settings(max_examples=200, deadline=None)
@given(
    raw=st.lists(st.integers(-(2**31), 2**31), min_size=1, max_size=50),
    scale=st.sampled_from([0.1, 0.01, 0.05, 0.4, 0.03125, 1 / 3, 0.0625]),
    offset=st.sampled_from([0.0, -40.0, 273.15, -0.5]),
)
def test_dbc_scaled_floats_travel_as_integers_and_come_back_exact(
    raw: list[int], scale: float, offset: float
) -> None:
    samples = [Sample("sig", i, 1.7e9 + i, k * scale + offset) for i, k in enumerate(raw)]
    data = encode_samples(
        samples,
        vehicle_id="V",
        stream="s",
        sequence=0,
        clock=ClockQuality.TRUSTED,
        scales={"sig": LinearScale(scale, offset)},
    )
    import msgpack

    column = msgpack.unpackb(unseal(data))["signals"][0]
    assert column["enc"] == "scaled"
    decoded = decode_batch(data)
    pairs = zip(decoded.signals[0].values, samples, strict=True)
    assert all(same_value(value, sample.value) for value, sample in pairs)


def test_float_encoding_choice_is_the_smallest_exact_one() -> None:
    import msgpack

    def encoding_of(values: list[float]) -> str:
        samples = [Sample("x", i, 1.7e9 + i, v) for i, v in enumerate(values)]
        data = encode_samples(
            samples, vehicle_id="V", stream="s", sequence=0, clock=ClockQuality.TRUSTED
        )
        encoding: str = msgpack.unpackb(unseal(data))["signals"][0]["enc"]
        return encoding

    assert encoding_of([k * 0.01 for k in range(100)]) == "scaled"  # cantools' raw * scale
    assert encoding_of([round(k * 0.37, 2) for k in range(100)]) == "decimal"
    assert encoding_of([48.1371543, 48.1371544]) == "decimal"
    assert encoding_of([3.0, -7.0]) == "decimal"
    assert encoding_of([0.123456789123, 1.5]) == "f64"
    assert encoding_of([0.15625, -2.75, float("inf")]) == "f32"
    assert encoding_of([math.pi, float("nan")]) == "f64"
    assert encoding_of([-0.0]) == "f32"  # 0 * scale would lose the sign


def test_empty_batch_and_empty_columns_round_trip() -> None:
    empty = build_batch([], vehicle_id="VIN", stream="s", sequence=0, clock=ClockQuality.UNTRUSTED)
    assert decode_batch(encode_batch(empty)).same_as(empty)
    columns = tuple(SignalColumn(f"c{t.value}", t, (), ()) for t in ValueType)
    with_empty = Batch(
        vehicle_id="VIN",
        stream="s",
        sequence=1,
        message_id=bytes(16),
        resolution=MILLISECONDS,
        wall_base=0,
        monotonic_base=0,
        clock=ClockQuality.TRUSTED,
        signals=columns,
    )
    assert decode_batch(encode_batch(with_empty)).same_as(with_empty)


def test_message_id_is_kept_and_fresh_ids_are_unique() -> None:
    sample = [Sample("a", 1.0, 1.7e9, 1)]
    kwargs = {"vehicle_id": "V", "stream": "s", "sequence": 3, "clock": ClockQuality.TRUSTED}
    given_id = bytes(range(16))
    assert (
        decode_batch(encode_samples(sample, message_id=given_id, **kwargs)).message_id == given_id
    )  # type: ignore[arg-type]
    ids = {build_batch(sample, **kwargs).message_id for _ in range(100)}  # type: ignore[arg-type]
    assert len(ids) == 100


@pytest.mark.parametrize(
    ("value", "problem"),
    [(2**64, "outside int64/uint64"), (object(), "cannot encode"), (-(2**63) - 1, "outside")],
)
def test_encoder_refuses_values_the_format_cannot_carry(value: object, problem: str) -> None:
    with pytest.raises((ValueError, TypeError), match=problem):
        build_batch(
            [Sample("a", 0.0, 0.0, value)],  # type: ignore[arg-type]
            vehicle_id="V",
            stream="s",
            sequence=0,
            clock=ClockQuality.TRUSTED,
        )


def test_encoder_refuses_bad_envelope_fields() -> None:
    base = {"stream": "s", "sequence": 0, "clock": ClockQuality.TRUSTED}
    with pytest.raises(ValueError, match="vehicle_id"):
        build_batch([], vehicle_id="", **base)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="message_id"):
        build_batch([], vehicle_id="V", message_id=b"short", **base)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="resolution"):
        build_batch([], vehicle_id="V", resolution=10, **base)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="finite"):
        build_batch([Sample("a", math.nan, 0.0, 1)], vehicle_id="V", **base)  # type: ignore[arg-type]


def test_v1_and_v2_are_much_smaller_than_compressed_json_rows() -> None:
    from edge_agent.modules.telemetry.batch_bench import compare_encodings

    sizes = compare_encodings(seconds=2.0)
    assert sizes["v1_ms_dbc_scales"] * 3 < sizes["json_rows_zstd"]
    assert sizes["v1_ms_dbc_scales"] < sizes["columns_float64_ms_zstd"]
    # Packing the noisy columns (format v2) shrinks the same drive further.
    assert sizes["v2_ms_dbc_scales"] < sizes["v1_ms_dbc_scales"]
    assert sizes["v2_us_dbc_scales"] < sizes["v1_us_dbc_scales"]
