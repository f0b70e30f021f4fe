"""The search for the highest quality that fits a budget (dnerv_codec.ratecontrol.search): the
bisection's answer on any growing size, in fewer codings where sizes are near log-linear."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dnerv_codec.ratecontrol.search import highest_fitting


def _bisection(size, lo, hi, budget, start=None):
    a, b = lo, hi
    if start is not None and lo <= start <= hi:
        a, b = (start, b) if size(start) <= budget else (a, start - 1)
    if a > b or size(a) > budget:
        return None
    while a < b:
        m = (a + b + 1) // 2
        a, b = (m, b) if size(m) <= budget else (a, m - 1)
    return a


def _counted(sizes: dict[int, int]):
    probes: list[int] = []

    def size(q: int) -> int:
        probes.append(q)
        return sizes[q]

    return size, probes


@settings(max_examples=300, deadline=None)
@given(
    steps=st.lists(st.integers(0, 5000), min_size=1, max_size=51),
    budget=st.integers(0, 120_000),
    start=st.one_of(st.none(), st.integers(-2, 55)),
)
def test_same_answer_as_a_bisection_on_any_growing_size(steps, budget, start):
    sizes = dict(enumerate(np.cumsum(steps).tolist(), start=1))  # non-decreasing, qualities 1..n
    lo, hi = 1, len(sizes)
    size, _ = _counted(sizes)
    assert highest_fitting(size, lo, hi, budget, start=start) == _bisection(
        sizes.__getitem__, lo, hi, budget, start
    )


def test_fewer_codings_than_a_bisection_where_bytes_fall_geometrically():
    """A classical codec's bytes: about 12 % fewer per quantiser step, with some wobble."""
    rng = np.random.default_rng(0)
    worse, total_ours, total_bisection = 0, 0, 0
    for _ in range(200):
        factor = rng.uniform(1.08, 1.2)
        sizes = {
            q: int(1000 * factor**q * math.exp(rng.normal(0, 0.02)) + 10 * q) for q in range(1, 35)
        }
        sizes = dict(zip(sizes, np.maximum.accumulate(list(sizes.values())).tolist(), strict=True))
        budget = float(rng.uniform(sizes[1], sizes[34]))
        ours, probes = _counted(sizes)
        theirs, bisected = _counted(sizes)
        assert highest_fitting(ours, 1, 34, budget) == _bisection(theirs, 1, 34, budget)
        total_ours, total_bisection = (
            total_ours + len(set(probes)),
            total_bisection + len(set(bisected)),
        )
        worse += len(set(probes)) > len(set(bisected))
    assert total_ours < 0.75 * total_bisection and worse < 20


def test_known_sizes_guide_the_first_guess():
    sizes = {q: int(1000 * 1.15**q) for q in range(1, 35)}
    size, probes = _counted(sizes)
    known = {1: sizes[1], 34: sizes[34]}  # measured by an earlier search of the same cache
    assert highest_fitting(size, 1, 34, sizes[20] + 1, known=known) == 20
    assert len(probes) <= 3  # lo, then the crossing and its neighbour
