"""The highest keyframe quality whose bytes fit a budget, in few codings.

Rate control's planning (the keyframes alone) and the floor (every frame keyframe-only) both
ask: which is the highest quality ``q`` in ``lo..hi`` with ``size(q) <= budget``, where every
``size(q)`` is a whole coding of the video at that quality (seconds to minutes at 720p) and grows
with ``q``? A bisection answers in about log2(hi - lo) codings. A classical codec's bytes fall
by a nearly constant factor per quantiser step, so the logarithm of the size is close to linear
in the quality: interpolating it between measured qualities lands next to the answer, and one
more coding on the other side confirms it. The answer is the bisection's (both keep the same
bracket, ``size(a) <= budget`` and nothing above ``b`` fits); only the qualities probed differ.
A guess that does not halve the bracket twice in a row gives way to the midpoint, so the worst
case stays logarithmic.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping


def highest_fitting(
    size: Callable[[int], int],
    lo: int,
    hi: int,
    budget: float,
    *,
    known: Mapping[int, int] | None = None,
    start: int | None = None,
) -> int | None:
    """The highest quality in ``lo..hi`` whose ``size`` is at most ``budget``, or None when not
    even ``lo``'s is.

    Args:
        size: bytes at a quality (measured once per quality by the caller's cache), growing
            with the quality.
        known: sizes already measured (a live view: the caller's cache), used for the guesses.
        start: a quality to try first (a prediction of the answer).
    """
    known = known if known is not None else {}
    measured: dict[int, int] = {}

    def at(quality: int) -> int:
        measured[quality] = size(quality)
        return measured[quality]

    a, b = lo, hi  # the answer lies in a..b, if anywhere; at(a) is not known to fit yet
    if start is not None and lo <= start <= hi:
        if at(start) <= budget:
            a = start
        else:
            b = start - 1
    if a > b or at(a) > budget:
        return None
    slow = 0  # guesses in a row that did not halve the bracket
    while a < b:
        width = b - a
        m = (a + b + 1) // 2 if slow >= 2 else _guess({**known, **measured}, a, b, budget)
        if at(m) <= budget:
            a = m
        else:
            b = m - 1
        slow = slow + 1 if b - a > width // 2 else 0
    return a


def _guess(sizes: Mapping[int, int], a: int, b: int, budget: float) -> int:
    """A quality in ``a + 1 .. b`` to code next: where log(size) reaches log(budget) on the line
    through the two measured qualities nearest that crossing (the midpoint with fewer than two)."""
    points = sorted((q, s) for q, s in sizes.items() if s > 0)
    if len(points) < 2:
        return (a + b + 1) // 2
    below = [p for p in points if p[1] <= budget]
    above = [p for p in points if p[1] > budget]
    if below and above:
        (q1, s1), (q2, s2) = below[-1], above[0]
    else:
        (q1, s1), (q2, s2) = (points[-2], points[-1]) if below else (points[0], points[1])
    if q1 == q2 or s1 == s2:
        return (a + b + 1) // 2
    crossing = q1 + (math.log(budget) - math.log(s1)) * (q2 - q1) / (math.log(s2) - math.log(s1))
    return min(b, max(a + 1, math.floor(crossing)))
