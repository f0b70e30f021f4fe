"""Integer frequency tables for the entropy models: the part both ends must compute identically.

Every ANS-coded model of :mod:`bitstream.entropy` reduces to a vector of non-negative integer
*weights*, one per symbol of the alphabet ``[min, max]``. The weights are handed to
constriction's ``Categorical(weights_as_float64, perfect=False)``, which quantises them to
24-bit frequencies with a fixed IEEE-754 formula (:func:`quantized_frequencies` repeats it in
numpy, ``docs/FORMAT.md`` states it normatively). Weights are integers below 2**53 in total, so
converting them to float64 is exact and the model is bit-identical on every machine.

The parametric tables (Laplace, Gaussian) are computed with integer arithmetic only, from
parameters stored as integers: no ``exp`` or ``erf`` whose last bit could differ between
platforms.
"""

from __future__ import annotations

import math

import numpy as np

from bitstream.errors import FormatError

PRECISION = 24  # bits of the quantised frequencies (constriction's default for Categorical)
MAX_ALPHABET = 1 << 16  # largest alphabet an ANS model may use


def alphabet_allowed(n: int, count: int) -> bool:
    """ANS models need ``2 <= n <= MAX_ALPHABET`` and ``n <= 2 * count + 256``: the work of
    building a model is then bounded by the symbols it decodes, not by a few parameter bytes."""
    return 2 <= n <= MAX_ALPHABET and n <= 2 * count + 256


ONE = 1 << 32  # fixed-point one of the parametric decay parameters


def quantized_frequencies(weights: np.ndarray) -> np.ndarray:
    """The 24-bit frequencies constriction derives from ``weights`` (``perfect=False``).

    ``left[i] = floor(C[i] * scale) + i`` with ``C[i]`` the exclusive prefix sum of the weights
    (exact in float64), ``scale = float64(2**24 - n) / float64(sum)``; ``freq[i] =
    left[i+1] - left[i]`` with ``left[n] = 2**24``. Every frequency is at least 1.

    Args:
        weights: non-negative integer weights, 2 <= n <= MAX_ALPHABET, positive sum < 2**53.

    Returns:
        int64 frequencies summing to 2**24.
    """
    w = np.asarray(weights, dtype=np.int64)
    n = w.size
    cum = np.zeros(n, dtype=np.int64)
    np.cumsum(w[:-1], out=cum[1:])
    scale = float(2**PRECISION - n) / float(int(w.sum()))
    left = np.floor(cum.astype(np.float64) * scale).astype(np.int64) + np.arange(n)
    right = np.empty_like(left)
    right[:-1] = left[1:]
    right[-1] = 2**PRECISION
    return right - left


def check_weights(weights: np.ndarray, what: str) -> None:
    """Raise FormatError unless ``weights`` can define a model (see quantized_frequencies)."""
    n = weights.size
    if n < 2 or n > MAX_ALPHABET:
        raise FormatError(f"{what}: alphabet of {n} symbols outside [2, {MAX_ALPHABET}]")
    total = int(weights.sum())
    if total <= 0 or total >= 1 << 53:
        raise FormatError(f"{what}: weights sum to {total}, must be in [1, 2**53)")


def cost_bits(counts: np.ndarray, weights: np.ndarray) -> float:
    """Ideal code length in bits of symbols with histogram ``counts`` under ``weights``."""
    freq = quantized_frequencies(weights)
    used = counts > 0
    return float(np.sum(counts[used] * (PRECISION - np.log2(freq[used]))))


def laplace_weights(n: int, center: int, decay: int) -> np.ndarray:
    """Two-sided geometric weights ``W(|i - center|)`` for i in 0..n-1.

    ``W(0) = 2**32`` and ``W(k+1) = (W(k) * decay) >> 32``: the quantised Laplace with
    ``decay / 2**32 = exp(-1/b)``, in integer arithmetic.
    """
    _check_params(n, center, decay)
    span = max(center, n - 1 - center)
    table = [0] * (span + 1)
    w = ONE
    for k in range(span + 1):
        if w == 0:
            break
        table[k] = w
        w = (w * decay) >> 32
    return _mirror(np.array(table, dtype=np.int64), n, center)


def gaussian_weights(n: int, center: int, decay: int) -> np.ndarray:
    """Weights ``G(|i - center|)`` with ``G(k) ~ 2**32 * q**(k*k)``, ``q = decay / 2**32``.

    ``G(0) = 2**32``, ``M(0) = decay``, ``q2 = (decay * decay) >> 32``;
    ``G(k+1) = (G(k) * M(k)) >> 32`` and ``M(k+1) = (M(k) * q2) >> 32``. With
    ``q = exp(-1 / (2 sigma**2))`` this is the quantised Gaussian, in integer arithmetic.
    """
    _check_params(n, center, decay)
    span = max(center, n - 1 - center)
    table = [0] * (span + 1)
    g, m, q2 = ONE, decay, (decay * decay) >> 32
    for k in range(span + 1):
        if g == 0:
            break
        table[k] = g
        g = (g * m) >> 32
        m = (m * q2) >> 32
    return _mirror(np.array(table, dtype=np.int64), n, center)


def _check_params(n: int, center: int, decay: int) -> None:
    if not 2 <= n <= MAX_ALPHABET:
        raise FormatError(f"parametric model: alphabet of {n} symbols outside [2, {MAX_ALPHABET}]")
    if not 0 <= center < n:
        raise FormatError(f"parametric model: center {center} outside the alphabet [0, {n})")
    if not 1 <= decay < ONE:
        raise FormatError(f"parametric model: decay {decay} outside [1, 2**32)")


def _mirror(one_sided: np.ndarray, n: int, center: int) -> np.ndarray:
    return one_sided[np.abs(np.arange(n) - center)]


def fit_laplace(counts: np.ndarray) -> list[tuple[int, int]]:
    """Candidate (center, decay) pairs for a histogram over 0..n-1 (encoder side only)."""
    idx = np.arange(counts.size)
    total = counts.sum()
    center = int(np.searchsorted(np.cumsum(counts), (total + 1) // 2))
    b = max(float(np.sum(counts * np.abs(idx - center))) / float(total), 1e-3)
    return [(center, _decay(math.exp(-1.0 / (b * f)))) for f in (0.7, 0.85, 1.0, 1.2, 1.45)]


def fit_gaussian(counts: np.ndarray) -> list[tuple[int, int]]:
    """Candidate (center, decay) pairs for a histogram over 0..n-1 (encoder side only)."""
    idx = np.arange(counts.size)
    total = float(counts.sum())
    mean = float(np.sum(counts * idx)) / total
    var = max(float(np.sum(counts * (idx - mean) ** 2)) / total, 1e-3)
    center = min(max(int(round(mean)), 0), counts.size - 1)
    return [(center, _decay(math.exp(-1.0 / (2 * var * f)))) for f in (0.7, 0.85, 1.0, 1.2, 1.45)]


def _decay(value: float) -> int:
    return min(max(int(round(value * ONE)), 1), ONE - 1)


def scaled_counts(counts: np.ndarray, bits: int | None) -> np.ndarray:
    """Counts rescaled so the largest is ``2**bits - 1`` (None: unchanged); non-zero stays >= 1."""
    counts = counts.astype(np.int64)
    if bits is None:
        return counts
    top = (1 << bits) - 1
    cmax = int(counts.max())
    if cmax <= top:
        return counts
    scaled = (counts * top + cmax // 2) // cmax
    return np.where(counts > 0, np.maximum(scaled, 1), 0)
