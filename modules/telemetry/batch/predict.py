"""Predictors for packed integer columns (batch format v2, docs/batch-format.md 3.1).

A packed column stores, for each integer ``K[i]`` after the first, the residual
``K[i] - P[i]`` of a prediction from the values before it. Sensor values are a slowly
changing signal plus noise: predicting from the last value (``last``) doubles the noise's
variance in the residual, the mean of the last few values (``mean4``) adds only a fraction
of it, and a steady slope (``slope``) suits ramps. Every predictor is integer arithmetic,
so any language reproduces it exactly; ``floor`` is floor division (toward minus infinity).

| name | ``P[i]`` for ``i >= 1`` |
|---|---|
| ``zero`` | 0 (the values themselves: checksums, random-looking bytes) |
| ``last`` | ``K[i-1]`` |
| ``slope`` | ``2*K[i-1] - K[i-2]``; ``K[0]`` for ``i = 1`` |
| ``meanN`` (N = 2, 4, 8, 16) | ``floor((K[i-m] + ... + K[i-1]) / m)`` with ``m = min(N, i)`` |
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from itertools import accumulate

MEAN_WINDOWS = {"mean2": 2, "mean4": 4, "mean8": 8, "mean16": 16}
PREDICTORS = ("zero", "last", "slope", *MEAN_WINDOWS)
# |K| bound under which every predictor's intermediate values fit in an int64 (a sum of 16
# values, 2*K[i-1] - K[i-2]) and every residual too.
SAFE_MAGNITUDE = 2**58


def residuals(values: Sequence[int], predictor: str) -> list[int]:
    """``K[i] - P[i]`` for ``i`` from 1 (``K[0]`` travels as it is)."""
    n = len(values)
    if predictor == "zero":
        return list(values[1:])
    if predictor == "last":
        return list(map(operator.sub, values[1:], values[:-1]))
    if predictor == "slope":
        out = [values[1] - values[0]] if n > 1 else []
        out += [c - 2 * b + a for a, b, c in zip(values, values[1:], values[2:], strict=False)]
        return out
    window = MEAN_WINDOWS[predictor]
    # sums[i] = K[0] + ... + K[i-1]; the window before i sums to sums[i] - sums[i - m].
    sums = [0, *accumulate(values)]
    head = [values[i] - sums[i] // i for i in range(1, min(window, n - 1) + 1)]
    tail = [
        k - (now - then) // window
        for k, now, then in zip(
            values[window + 1 :], sums[window + 1 : n], sums[1 : n - window], strict=False
        )
    ]
    return head + tail


def reconstruct(first: int, rest: Sequence[int], predictor: str) -> list[int]:
    """The values ``K`` from ``K[0]`` and the residuals (the inverse of :func:`residuals`)."""
    values = [first]
    append = values.append
    if predictor == "zero":
        values.extend(rest)
    elif predictor == "last":
        current = first
        for residual in rest:
            current += residual
            append(current)
    elif predictor == "slope":
        for i, residual in enumerate(rest, start=1):
            prediction = values[0] if i == 1 else 2 * values[i - 1] - values[i - 2]
            append(prediction + residual)
    else:
        window = MEAN_WINDOWS[predictor]
        total = 0
        for i, residual in enumerate(rest, start=1):
            total += values[i - 1]
            if i > window:
                total -= values[i - 1 - window]
            append(total // min(window, i) + residual)
    return values
