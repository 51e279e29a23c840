"""Format v2: Rice codes and Rice-packed integer columns, round trips and hostile input."""

from __future__ import annotations

import random
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.modules.telemetry.batch import (
    BatchFormatError,
    ClockQuality,
    LinearScale,
    MalformedBatch,
    Sample,
    decode_batch,
    encode_samples,
    predict,
    rice,
)
from edge_agent.modules.telemetry.batch.frame import seal, unseal

INT64 = st.integers(-(2**63), 2**63 - 1)


@settings(max_examples=300, deadline=None)
@given(st.lists(INT64, max_size=60), st.integers(0, rice.MAX_PARAMETER))
def test_rice_round_trips_every_int64(values: list[int], parameter: int) -> None:
    data = rice.encode(values, parameter)
    assert rice.decode(data, len(values), parameter) == values
    assert len(data) == -(-rice.coded_bits([rice.zigzag(v) for v in values], parameter) // 8)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-5000, 5000), min_size=1, max_size=80))
def test_best_parameter_is_the_cheapest(values: list[int]) -> None:
    zs = [rice.zigzag(v) for v in values]
    parameter, bits = rice.best_parameter(zs)
    assert bits == rice.coded_bits(zs, parameter)
    assert bits == min(rice.coded_bits(zs, k) for k in range(rice.MAX_PARAMETER + 1))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(-predict.SAFE_MAGNITUDE, predict.SAFE_MAGNITUDE), min_size=1),
    st.sampled_from(predict.PREDICTORS),
)
def test_every_predictor_is_undone_exactly(values: list[int], predictor: str) -> None:
    rest = predict.residuals(values, predictor)
    assert len(rest) == len(values) - 1
    assert all(abs(r) < 2**63 for r in rest)
    assert predict.reconstruct(values[0], rest, predictor) == values


def test_mean_predictors_floor_toward_minus_infinity() -> None:
    # -3 // 2 == -2 (floor), not -1 (truncation): the spec says floor.
    assert predict.residuals([-1, -2, 0], "mean2") == [-2 - (-1), 0 - (-3 // 2)]


def test_zigzag_interleaves_signs() -> None:
    assert [rice.zigzag(v) for v in (0, -1, 1, -2, 2)] == [0, 1, 2, 3, 4]
    assert rice.zigzag(-(2**63)) == 2**64 - 1
    assert all(rice.unzigzag(rice.zigzag(v)) == v for v in (-(2**63), -7, 0, 7, 2**63 - 1))


def test_an_outlier_costs_an_escape_not_a_long_unary_run() -> None:
    data = rice.encode([0, 2**62, 0], 2)
    assert len(data) * 8 <= 3 + 24 + 64 + 3 + 7
    assert rice.decode(data, 3, 2) == [0, 2**62, 0]


@pytest.mark.parametrize(
    ("data", "count", "parameter", "reason"),
    [
        (rice.encode([5, 6, 7], 2)[:-1], 3, 2, "cannot hold|end inside"),
        (rice.encode([5, 6, 7], 2) + b"\x00", 3, 2, "left over"),
        (bytes([0b00000001]), 1, 0, "padding"),
        (b"\xff" * 3, 1, 0, "end inside"),
        (b"", 1, 0, "cannot hold|no bits"),
        (b"\x00", 1, 63, "outside"),
    ],
)
def test_rice_decode_rejects_what_is_not_exactly_count_numbers(
    data: bytes, count: int, parameter: int, reason: str
) -> None:
    with pytest.raises(rice.RiceError, match=reason):
        rice.decode(data, count, parameter)


def noisy_drive(n: int = 400, seed: int = 3) -> list[Sample]:
    noise = random.Random(seed)
    samples = []
    for i in range(n):
        t = i * 0.01
        samples.append(Sample("Accel", t, 1.7e9 + t, round(1.5 + noise.gauss(0, 0.03), 3)))
        samples.append(
            Sample("Speed", t, 1.7e9 + t, round(20 + i * 0.01 + noise.gauss(0, 0.03), 2))
        )
        samples.append(Sample("Checksum", t, 1.7e9 + t, noise.randrange(256)))
        samples.append(Sample("Counter", t, 1.7e9 + t, i % 16))
    return samples


def encoded(samples: list[Sample], **scales: LinearScale) -> bytes:
    return encode_samples(
        samples,
        vehicle_id="VIN1",
        stream="chassis",
        sequence=1,
        clock=ClockQuality.TRUSTED,
        message_id=bytes(16),
        scales=scales,
    )


def columns_of(data: bytes) -> dict[str, dict[str, Any]]:
    envelope = msgpack.unpackb(unseal(data))
    return {column["name"]: column for column in envelope["signals"]}


def test_noisy_columns_are_packed_steady_ones_stay_arrays() -> None:
    data = encoded(noisy_drive(), Accel=LinearScale(0.001))
    assert data[4] == 2  # header version: packed columns need v2
    columns = columns_of(data)
    assert type(columns["Accel"]["v"]) is bytes
    assert columns["Accel"]["enc"] in ("scaled", "decimal")
    assert columns["Accel"]["rk"] >= 1
    assert columns["Speed"]["enc"] == "decimal"
    assert type(columns["Speed"]["v"]) is bytes
    assert columns["Accel"]["pred"].startswith("mean")  # noise around a steady value
    # Random bytes: packed as values (never differences, which would double their spread).
    assert columns["Checksum"]["enc"] == "raw"
    assert columns["Checksum"]["pred"] not in ("last", "slope")
    assert type(columns["Counter"]["v"]) is list  # zstd does better with repeating runs
    assert "rk" not in columns["Counter"]
    batch = decode_batch(data)
    assert batch.version == 2
    by_name = {column.name: column for column in batch.signals}
    for sample, value in zip(
        [s for s in noisy_drive() if s.signal == "Accel"], by_name["Accel"].values, strict=True
    ):
        assert sample.value == value


def test_packing_makes_noisy_batches_smaller() -> None:
    from edge_agent.modules.telemetry.batch import build_batch, encode_batch

    batch = build_batch(
        noisy_drive(2000), vehicle_id="V", stream="s", sequence=1, clock=ClockQuality.TRUSTED
    )
    from edge_agent.modules.telemetry.batch.columns import encode_column

    packed = len(encode_batch(batch))
    unpacked_payload = msgpack.packb(
        {
            "v": 1,
            "signals": [encode_column(column, pack=False) for column in batch.signals],
        },
        use_bin_type=True,
    )
    assert packed < len(seal(unpacked_payload))


def test_a_batch_without_noise_is_still_written_as_v1() -> None:
    samples = [Sample("Speed", i * 0.01, 1.7e9 + i * 0.01, i * 0.5) for i in range(100)]
    assert encoded(samples)[4] == 1


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.integers(-(2**40), 2**40), min_size=16, max_size=200),
    st.sampled_from([None, LinearScale(0.01), LinearScale(0.001, -40.0)]),
)
def test_packed_columns_round_trip_bit_for_bit(ints: list[int], scale: LinearScale | None) -> None:
    if scale is None:
        values: list[Any] = ints
    else:
        values = [k * scale.scale + scale.offset for k in ints]
    samples = [Sample("x", i * 0.01, 1.7e9 + i * 0.01, v) for i, v in enumerate(values)]
    data = encoded(samples, **({"x": scale} if scale else {}))
    (column,) = decode_batch(data).signals
    assert list(column.values) == values
    assert [type(v) for v in column.values] == [type(v) for v in values]


PACKED = encoded(noisy_drive(), Accel=LinearScale(0.001))
PACKED_ENVELOPE: dict[str, Any] = msgpack.unpackb(unseal(PACKED))
ACCEL = next(i for i, c in enumerate(PACKED_ENVELOPE["signals"]) if c["name"] == "Accel")


def forged(key: str, value: object, version: int = 2) -> bytes:
    envelope = dict(PACKED_ENVELOPE, v=version)
    envelope["signals"] = [dict(column) for column in PACKED_ENVELOPE["signals"]]
    envelope["signals"][ACCEL][key] = value
    return seal(msgpack.packb(envelope, use_bin_type=True), version=version)


@pytest.mark.parametrize(
    ("key", "value", "version", "reason"),
    [
        ("rk", 70, 2, r"Rice parameter 70 is outside"),
        ("rk", "3", 2, r"\.rk: expected int"),
        ("pred", "mean3", 2, r"\.pred: unknown predictor 'mean3'"),
        ("pred", 4, 2, r"\.pred: expected str"),
        ("v0", 2**62, 2, r"\.v0: outside"),
        ("v", b"\x00", 2, r"\.v: .*cannot hold"),
        ("t", [0, 10], 2, r"\.v: .*left over"),
        ("t", [], 2, r"empty column cannot be packed"),
        ("rk", 3, 1, r"\.v: expected an array"),  # v1 has no packed columns
    ],
)
def test_forged_packed_columns_are_rejected_with_a_reason(
    key: str, value: object, version: int, reason: str
) -> None:
    data = forged(key, value, version)
    if key == "rk" and version == 1:
        data = forged("rk", PACKED_ENVELOPE["signals"][ACCEL]["rk"], 1)
    with pytest.raises(MalformedBatch, match=reason):
        decode_batch(data)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["rk", "pred", "v0", "v", "t", "enc", "type"]),
    st.one_of(INT64, st.binary(max_size=40), st.lists(st.integers(-5, 5), max_size=5), st.text()),
)
def test_any_forged_packed_field_decodes_or_fails_cleanly(key: str, value: object) -> None:
    # How fast such input is refused is measured by `edge-agent bench batch` (hostile).
    message = ""
    try:
        decode_batch(forged(key, value))
    except BatchFormatError as error:
        message = str(error)
    assert "\n" not in message
