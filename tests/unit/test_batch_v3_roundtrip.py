"""Format v3 (and v2, same columns): every column the encoder chooses decodes back bit for bit.

Structural seeds push the encoder's choices: columns long enough to be packed (noise,
counters, steady runs, a checksum-like byte), extreme integers and timestamps, NaN, infinities
and negative zero, empty and one-sample columns, signals the catalogue lacks.
"""

from __future__ import annotations

import math
import random
from itertools import pairwise

from hypothesis import example, given, settings
from hypothesis import strategies as st

from edge_agent.modules.telemetry.batch import (
    Batch,
    Catalogue,
    CatalogueEntry,
    ClockQuality,
    LinearScale,
    SignalColumn,
    ValueType,
    decode_batch,
    encode_batch,
)

INT64 = (-(2**63), 2**63 - 1)
SHAPES = ("noise", "counter", "steady", "checksum", "ramp", "extreme", "floats", "empty")


def column_of(shape: str, size: int, seed: int, name: str) -> SignalColumn:
    """A column of one shape: the kind of signal that drives one of the encoder's choices."""
    rng = random.Random(seed)
    offsets = tuple(10 * i + rng.choice((0, 0, 1, -1)) for i in range(size))
    values: list[int] | list[float]
    kind = ValueType.INT
    if shape == "noise":  # DBC-scaled floats with sensor noise: packed
        kind = ValueType.FLOAT
        values = [round(50 + 3 * math.sin(i / 20) + rng.gauss(0, 0.05), 2) for i in range(size)]
    elif shape == "counter":
        values = [i % 16 for i in range(size)]
    elif shape == "steady":
        values = [7] * size
    elif shape == "checksum":
        values = [rng.randrange(256) for _ in range(size)]
    elif shape == "ramp":
        values = [1_000_000 + 3 * i for i in range(size)]
    elif shape == "extreme":
        values = [rng.choice([*INT64, 2**64 - 1, 0, -1, 2**58, -(2**58)]) for _ in range(size)]
    elif shape == "floats":
        kind = ValueType.FLOAT
        pool = [math.nan, math.inf, -math.inf, -0.0, 0.0, 5e-324, 1.7976931348623157e308, 0.1]
        values = [rng.choice(pool) for _ in range(size)]
    else:
        values, offsets = [], ()
    return SignalColumn(name, kind, offsets, tuple(values))


@settings(max_examples=60, deadline=None)
@given(
    shapes=st.lists(st.sampled_from(SHAPES), min_size=1, max_size=6),
    size=st.sampled_from([0, 1, 2, 15, 16, 17, 300, 2000]),
    seed=st.integers(0, 2**32),
    base=st.sampled_from([0, 1_760_000_000_000, 2**62, -(2**62)]),
    listed=st.integers(0, 6),
)
@example(shapes=list(SHAPES), size=2000, seed=1, base=2**62, listed=3)
@example(shapes=["floats", "extreme"], size=1, seed=0, base=-(2**62), listed=0)
def test_every_column_shape_round_trips_in_v2_and_v3(
    shapes: list[str], size: int, seed: int, base: int, listed: int
) -> None:
    columns = tuple(
        column_of(shape, size if shape != "empty" else 0, seed + i, f"s{i}.{shape}")
        for i, shape in enumerate(shapes)
    )
    batch = Batch(
        vehicle_id="VIN1",
        stream="chassis",
        sequence=3,
        message_id=bytes(16),
        resolution=1000,
        wall_base=base,
        monotonic_base=-base,
        clock=ClockQuality.TRUSTED,
        signals=columns,
    )
    # The catalogue knows the first ``listed`` signals (with a DBC scale for the noisy ones);
    # the rest travel inline, by name.
    catalogue = Catalogue.of(
        CatalogueEntry(
            c.name,
            c.type,
            scale=0.01 if c.name.endswith("noise") else None,
            offset=0.0 if c.name.endswith("noise") else None,
        )
        for c in columns[:listed]
    )
    hints = {c.name: LinearScale(0.01) for c in columns if c.name.endswith("noise")}
    v3 = decode_batch(
        encode_batch(batch, scales=hints, catalogue=catalogue),
        catalogues={catalogue.hash: catalogue},
    )
    assert v3.same_as(batch)
    assert v3.version == 3
    assert decode_batch(encode_batch(batch, scales=hints)).same_as(batch)


def test_packing_is_chosen_by_measured_size_not_by_a_share_of_zeros() -> None:
    """A one-tick noise (an object width at 0.1 m with 0.1 m noise) leaves many zero residuals,
    which the old rule left to zstd at twice the bytes; a counter still stays an array."""
    from edge_agent.modules.telemetry.batch.columns import encode_column

    rng = random.Random(5)
    width = [round(18 + rng.gauss(0, 1)) for _ in range(1000)]
    offsets = tuple(range(0, 20_000, 20))
    packed = encode_column(SignalColumn("ObjectWidth", ValueType.INT, offsets, tuple(width)))
    plain = encode_column(
        SignalColumn("ObjectWidth", ValueType.INT, offsets, tuple(width)), pack=False
    )
    assert "rk" in packed
    assert sum(1 for a, b in pairwise(width) if a == b) > 200  # many zeros
    assert len(packed["v"]) < len(encode_batch_bytes(plain["v"]))
    counter = encode_column(
        SignalColumn("Counter", ValueType.INT, offsets, tuple(i % 16 for i in range(1000)))
    )
    assert "rk" not in counter


def encode_batch_bytes(array: list[int]) -> bytes:
    import msgpack
    import zstandard

    return zstandard.ZstdCompressor(level=3).compress(msgpack.packb(array))
