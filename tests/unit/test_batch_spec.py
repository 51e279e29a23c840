"""docs/batch-format.md stays true: its example bytes and its pseudo-code decoder."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.modules.telemetry.batch import (
    ClockQuality,
    LinearScale,
    Sample,
    build_batch,
    decode_batch,
    encode_batch,
)

SPEC = (Path(__file__).resolve().parents[2] / "docs" / "batch-format.md").read_text()


def section(title: str) -> str:
    start = SPEC.index(title)
    return SPEC[start : SPEC.index("\n## ", start + 1)]


def example_bytes() -> bytes:
    samples = [
        Sample("VehicleSpeed", 100.00, 1760000000.00, 5012 * 0.01),
        Sample("VehicleSpeed", 100.01, 1760000000.01, 5013 * 0.01),
        Sample("VehicleSpeed", 100.02, 1760000000.02, 5015 * 0.01),
        Sample("Gear", 100.015, 1760000000.015, "D"),
    ]
    batch = build_batch(
        samples,
        vehicle_id="VIN123",
        stream="chassis",
        sequence=7,
        clock=ClockQuality.TRUSTED,
        message_id=bytes(range(16)),
    )
    return encode_batch(batch, scales={"VehicleSpeed": LinearScale(0.01)})


def code_blocks(text: str) -> list[str]:
    blocks: list[str] = []
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("```"):
            if current is None:
                current = []
            else:
                blocks.append("\n".join(current))
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def test_the_documented_example_is_what_the_encoder_produces() -> None:
    blocks = code_blocks(section("## 7. Example"))
    dump = next(block for block in blocks if block.startswith("45 41 42 54"))
    documented = bytes.fromhex(re.sub(r"EABT.*", "", dump).replace("\n", " "))
    produced = example_bytes()
    # The compressed bytes may differ between zstd releases; header and content may not.
    assert documented[:10] == produced[:10]
    assert decode_batch(documented).same_as(decode_batch(produced))


def pseudo_code_decoder() -> Any:
    (code,) = code_blocks(section("## 6. Decoding"))
    namespace: dict[str, Any] = {}
    exec(code, namespace)  # our own documentation
    return namespace["decode"]


signal_values = st.one_of(
    st.lists(st.integers(-1000, 1000), min_size=1, max_size=20),
    # long and noisy enough to be packed (format v2)
    st.lists(st.integers(-(10**5), 10**5), min_size=16, max_size=60),
    st.lists(st.integers(-(10**5), 10**5).map(lambda k: k * 0.01), min_size=16, max_size=60),
    st.lists(st.integers(-(10**6), 10**6).map(lambda k: k * 0.01), min_size=1, max_size=20),
    st.lists(st.floats(allow_nan=False), min_size=1, max_size=20),
    st.lists(st.floats(width=32, allow_nan=False), min_size=1, max_size=20),
    st.lists(st.text(max_size=3), min_size=1, max_size=5),
)


packed_seen: set[int] = set()


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.sampled_from(["a", "b", "c"]), signal_values, min_size=1))
def test_the_documented_pseudo_code_decodes_what_we_encode(signals: dict[str, list[Any]]) -> None:
    decode = pseudo_code_decoder()
    samples = [
        Sample(name, 10.0 + i * 0.01, 1.7e9 + i * 0.01, value)
        for name, values in signals.items()
        for i, value in enumerate(values)
    ]
    data = encode_batch(
        build_batch(samples, vehicle_id="V", stream="s", sequence=0, clock=ClockQuality.TRUSTED)
    )
    reference = decode_batch(data)
    by_pseudo_code = decode(data)
    packed_seen.add(data[4])
    for name, values in signals.items():
        assert [value for _, value in by_pseudo_code[name]] == values
    for sample in reference.samples():
        assert any(abs(t - sample.wall) < 1e-6 for t, _ in by_pseudo_code[sample.signal])


def test_the_pseudo_code_met_both_versions() -> None:
    """The property test above decoded version 1 and version 2 (packed) batches."""
    if not packed_seen:
        test_the_documented_pseudo_code_decodes_what_we_encode()
    assert packed_seen == {1, 2}
