"""Every parser and codec survives hostile input: only its documented errors ever escape.

The same targets run for 100,000+ inputs each in `scripts/fuzz` (see docs/reliability.md).
"""

from __future__ import annotations

import contextlib

import pytest
from fuzzing.targets import Target, targets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def mutations(seeds: list[bytes]) -> st.SearchStrategy[bytes]:
    """Random bytes, and seeds with bytes flipped, inserted, cut or duplicated."""

    @st.composite
    def mutated(draw: st.DrawFn) -> bytes:
        data = bytearray(draw(st.sampled_from(seeds)))
        for _ in range(draw(st.integers(0, 6))):
            kind = draw(st.integers(0, 3))
            position = draw(st.integers(0, max(len(data) - 1, 0)))
            if kind == 0 and data:
                data[position] = draw(st.integers(0, 255))
            elif kind == 1:
                data[position:position] = draw(st.binary(max_size=8))
            elif kind == 2:
                del data[position : position + draw(st.integers(1, 16))]
            else:
                data += data[position : position + draw(st.integers(1, 64))]
        return bytes(data)

    return st.one_of(st.binary(max_size=512), mutated()) if seeds else st.binary(max_size=512)


@pytest.mark.parametrize("target", targets(), ids=lambda t: t.name)
def test_target_raises_only_documented_errors(target: Target) -> None:
    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(mutations(target.seeds))
    def run(data: bytes) -> None:
        with contextlib.suppress(*target.allowed):
            target.run(data)

    run()


@pytest.mark.parametrize("target", targets(), ids=lambda t: t.name)
def test_seeds_are_accepted(target: Target) -> None:
    """The seeds are valid inputs (so the mutations start from the real code paths)."""
    for seed in target.seeds[:1]:
        target.run(seed)


# Findings of the structural seeds (docs/reliability.md, "Fuzzing") not fixed yet: strict,
# so the marker must go when a parser is fixed. All four found so far are fixed.
STRUCTURAL_FINDINGS: dict[str, str] = {}
# Too slow for the unit suite (tens of seconds each); scripts/fuzz runs them. The DBC
# target's huge signal and frame lengths are refused before cantools sees them
# (edge_agent/can/dbc_bounds.py), so only its 20,000-message seed is left out (below).
SLOW_STRUCTURAL: set[str] = set()


@pytest.mark.parametrize(
    "target",
    [
        pytest.param(
            target,
            marks=pytest.mark.xfail(reason=STRUCTURAL_FINDINGS[target.name], strict=True)
            if target.name in STRUCTURAL_FINDINGS
            else (),
        )
        for target in targets()
        if target.name not in SLOW_STRUCTURAL
    ],
    ids=lambda t: t.name,
)
def test_structural_seeds_raise_only_documented_errors(target: Target) -> None:
    """Deep nesting, huge sizes and extended CAN ids (tests/fuzzing/structure.py)."""
    for data in target.structural():
        if len(data) > 4 << 20 or data.count(b".a") > 20_000 or data.count(b"BO_ ") > 1_000:
            continue  # the largest run in scripts/fuzz (seconds to minutes each)
        with contextlib.suppress(*target.allowed):
            target.run(data)
