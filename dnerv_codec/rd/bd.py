"""Bjontegaard deltas between two RD curves (``bjontegaard`` package, pchip interpolation).

BD-rate: the mean difference of log-rate over the quality range both curves cover, as a
percentage (negative = the test codec needs fewer bits for the same quality). BD-PSNR: the mean
quality difference over the log-rate range both cover (positive = better).

Overlap: the length of the shared range over the length of the union of both ranges (the
``bjontegaard`` package's definition). When it is below ``min_overlap`` (default 0.5), or a
curve has fewer than two distinct points, the delta is not computed: the functions return NaN
and issue a :class:`BDOverlapWarning` that says why. Tables print such values as "n/a".

Example:
    >>> a = {"results": {"bpp": [0.1, 0.2, 0.4, 0.8], "psnr-rgb": [30.0, 33.0, 36.0, 39.0]}}
    >>> t = {"results": {"bpp": [0.09, 0.18, 0.36, 0.72], "psnr-rgb": [30.0, 33.0, 36.0, 39.0]}}
    >>> round(bd_rate(a, t), 6)
    -10.0
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

MIN_OVERLAP = 0.5


class BDOverlapWarning(UserWarning):
    """A Bjontegaard delta was not computed (NaN): the curves share too little range."""


def _points(curve: dict[str, Any], metric: str) -> tuple[np.ndarray, np.ndarray]:
    results = curve.get("results", curve)
    if metric not in results:
        raise KeyError(f"curve {curve.get('name', '?')!r} has no {metric!r} results")
    rate = np.asarray(results["bpp"], dtype=np.float64)
    quality = np.asarray([np.nan if q is None else q for q in results[metric]], np.float64)
    keep = np.isfinite(rate) & np.isfinite(quality) & (rate > 0)
    return rate[keep], quality[keep]


def overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Shared length of the ranges of ``a`` and ``b`` over the length of their union (0..1)."""
    if len(a) == 0 or len(b) == 0:
        return 0.0
    union = max(a.max(), b.max()) - min(a.min(), b.min())
    shared = min(a.max(), b.max()) - max(a.min(), b.min())
    return float(max(shared, 0.0) / union) if union > 0 else 0.0


def bd_overlap(anchor: dict[str, Any], test: dict[str, Any], metric: str = "psnr-rgb") -> float:
    """Overlap (0..1) of the two curves' quality ranges, the one BD-rate integrates over."""
    return overlap(_points(anchor, metric)[1], _points(test, metric)[1])


def _delta(
    anchor: dict[str, Any], test: dict[str, Any], metric: str, kind: str, min_overlap: float
) -> float:
    import bjontegaard

    rate_a, qual_a = _points(anchor, metric)
    rate_t, qual_t = _points(test, metric)
    names = f"{test.get('name', 'test')!r} against {anchor.get('name', 'anchor')!r}"
    if len(np.unique(qual_a)) < 2 or len(np.unique(qual_t)) < 2:
        warnings.warn(f"BD-{kind} of {names}: fewer than 2 distinct points", BDOverlapWarning, 3)
        return math.nan
    axis_a, axis_t = (qual_a, qual_t) if kind == "rate" else (np.log10(rate_a), np.log10(rate_t))
    shared = overlap(axis_a, axis_t)
    if shared < min_overlap:
        what = metric if kind == "rate" else "log-rate"
        warnings.warn(
            f"BD-{kind} of {names}: the curves share {shared:.0%} of their {what} range, "
            f"less than the {min_overlap:.0%} required; result is NaN",
            BDOverlapWarning,
            3,
        )
        return math.nan
    func = bjontegaard.bd_rate if kind == "rate" else bjontegaard.bd_psnr
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = func(
                rate_a,
                qual_a,
                rate_t,
                qual_t,
                method="pchip",
                require_matching_points=False,
                min_overlap=0.0,
            )
    except ValueError as exc:
        warnings.warn(f"BD-{kind} of {names}: {exc}; result is NaN", BDOverlapWarning, 3)
        return math.nan
    return float(value)


def bd_rate(
    anchor: dict[str, Any],
    test: dict[str, Any],
    metric: str = "psnr-rgb",
    min_overlap: float = MIN_OVERLAP,
) -> float:
    """BD-rate (%) of ``test`` against ``anchor`` (curves in the results schema).

    Args:
        anchor: the reference curve (``{"results": {"bpp": [...], metric: [...]}}``).
        test: the curve to compare.
        metric: the quality key (``psnr-rgb``, ``psnr-yuv``, ``ms-ssim-rgb``...).
        min_overlap: the smallest quality-range overlap (0..1) for a result.

    Returns:
        The percentage, or NaN (with a :class:`BDOverlapWarning`) when the curves share too
        little range or have fewer than two distinct points.

    Raises:
        KeyError: a curve lacks ``metric``.
    """
    return _delta(anchor, test, metric, "rate", min_overlap)


def bd_psnr(
    anchor: dict[str, Any],
    test: dict[str, Any],
    metric: str = "psnr-rgb",
    min_overlap: float = MIN_OVERLAP,
) -> float:
    """BD-PSNR (in the metric's unit, dB for PSNR) of ``test`` against ``anchor``.

    Same arguments and NaN rule as :func:`bd_rate`, with the overlap taken over log-rate.
    """
    return _delta(anchor, test, metric, "psnr", min_overlap)


def bracket(curve: dict[str, Any], low: float, high: float, key: str = "bpp") -> dict[str, Any]:
    """``curve`` restricted to the points that cover ``low``..``high`` of ``key``.

    Keeps the points with ``key`` (bpp by default, or a metric) inside the range and the
    nearest one on each side of it, so a long anchor sweep is compared with a short test curve
    over the rates (or qualities) the test spans (the Bjontegaard overlap is measured on what
    remains). Every list in ``results`` and ``points`` is cut the same way; the rest of the
    curve is kept.
    """
    results = curve["results"]
    bpp = np.asarray([np.nan if v is None else v for v in results[key]], dtype=np.float64)
    order = [i for i in np.argsort(bpp) if np.isfinite(bpp[i])]
    below = [i for i in order if bpp[i] < low]
    above = [i for i in order if bpp[i] > high]
    keep = [i for i in order if low <= bpp[i] <= high]
    keep = sorted(set(keep + below[-1:] + above[:1]), key=lambda i: bpp[i])
    out = dict(curve)
    out["results"] = {k: [v[i] for i in keep] for k, v in results.items() if isinstance(v, list)}
    if isinstance(curve.get("points"), list) and len(curve["points"]) == len(bpp):
        out["points"] = [curve["points"][i] for i in keep]
    return out
