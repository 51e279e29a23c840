"""One metric value as a module reports it, without a dependency on the Prometheus client."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

Kind = Literal["counter", "gauge", "summary", "histogram"]
COUNTER: Final = "counter"
GAUGE: Final = "gauge"
SUMMARY: Final = "summary"
HISTOGRAM: Final = "histogram"
PREFIX = "edge_agent_"


@dataclass(frozen=True, slots=True)
class Sample:
    """One value of a metric family: ``name`` without the ``edge_agent_`` prefix.

    Counters end in ``_total``; names carry their unit (``_seconds``, ``_bytes``). A summary
    is given as its quantile samples (label ``quantile``) plus ``NAME_count``/``NAME_sum``
    samples of the same kind, all with the family's ``name`` in ``family``; a histogram as
    its cumulative ``NAME_bucket`` samples (label ``le``, the last ``+Inf``) plus
    ``NAME_count``/``NAME_sum``, likewise.
    """

    name: str
    value: float
    kind: Kind = GAUGE
    help: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    family: str = ""

    @property
    def family_name(self) -> str:
        """The family's full name (with prefix; counters without their ``_total``)."""
        base = self.family or self.name
        if self.kind == COUNTER and base.endswith("_total"):
            base = base[: -len("_total")]
        return PREFIX + base


def number(value: Any) -> float | None:
    """``value`` as a float when it is a number (bools count as 0/1); None otherwise."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    return None


def table(value: Any) -> Mapping[str, Any]:
    """``value`` when it is a mapping, else an empty one: details are free-form JSON."""
    return value if isinstance(value, Mapping) else {}


def counter(name: str, value: Any, help_text: str, **labels: str) -> Iterator[Sample]:
    """A counter sample, when ``value`` is a number (nothing otherwise)."""
    if not name.endswith("_total"):
        raise ValueError(f"counter {name} must end in _total")
    amount = number(value)
    if amount is not None:
        yield Sample(name, amount, COUNTER, help_text, labels)


def gauge(name: str, value: Any, help_text: str, **labels: str) -> Iterator[Sample]:
    """A gauge sample, when ``value`` is a number (nothing otherwise)."""
    amount = number(value)
    if amount is not None:
        yield Sample(name, amount, GAUGE, help_text, labels)


def state_set(
    name: str, current: Any, help_text: str, label: str, **labels: str
) -> Iterator[Sample]:
    """A gauge of value 1 with the current state in ``label`` (the Prometheus state-set idiom)."""
    if isinstance(current, str) and current:
        yield Sample(name, 1.0, GAUGE, help_text, {**labels, label: current})
