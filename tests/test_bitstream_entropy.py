"""Entropy coding: exact round trips for every model and array shape, the cheapest-model choice,
malformed payloads, and an independent pure-Python ANS coder written from docs/FORMAT.md that
must produce the same words as constriction (so the spec, not the library, defines the bits)."""

from __future__ import annotations

import bisect
import math
import struct
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bitstream import DnervError, FormatError, LimitError, TruncatedError, tables
from bitstream.entropy import _parse_header, _read_weights, decode_symbols, describe, encode_symbols


def _make(kind: str, size: int, seed: int, scale: float, shift: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "uniform":
        return rng.integers(-int(scale) - 1, int(scale) + 1, size) + shift
    if kind == "laplace":
        return np.round(rng.laplace(0, scale, size)).astype(np.int64) + shift
    if kind == "skewed":
        return rng.geometric(1 / (1 + scale), size).astype(np.int64) - 1 + shift
    if kind == "sparse":
        return np.where(rng.random(size) < 0.02, rng.integers(-3, 4, size), 0) + shift
    return rng.integers(np.iinfo(np.int64).min, np.iinfo(np.int64).max, size, dtype=np.int64)


@settings(max_examples=80, deadline=None)
@given(
    kind=st.sampled_from(["uniform", "laplace", "skewed", "sparse", "wide"]),
    size=st.one_of(st.integers(0, 40), st.integers(0, 100_000)),
    seed=st.integers(0, 2**32 - 1),
    scale=st.floats(0.01, 3000),
    shift=st.integers(-(2**40), 2**40),
)
def test_round_trip_random_arrays(kind, size, seed, scale, shift):
    x = _make(kind, size, seed, scale, shift)
    data = encode_symbols(x)
    y = decode_symbols(data)
    assert y.dtype == np.int64
    np.testing.assert_array_equal(y, x)
    info = describe(data)
    assert info["count"] == size and info["bytes"] == len(data)


@pytest.mark.parametrize("model", ["raw", "categorical", "laplace", "gaussian"])
@pytest.mark.parametrize("shape", [(1, 2), (1000,), (7, 11, 13)])
def test_every_model_round_trips(model, shape):
    rng = np.random.default_rng(7)
    x = np.round(rng.normal(-5, 9, shape)).astype(np.int64)
    x.flat[0], x.flat[-1] = -40, 40  # span >= 1 even for two elements
    data = encode_symbols(x, model=model)
    assert describe(data)["model"] == model
    np.testing.assert_array_equal(decode_symbols(data), x.reshape(-1))


def test_constant_and_empty_arrays():
    for x in (np.zeros(0, np.int64), np.full(5000, -7), np.array([2**62])):
        data = encode_symbols(x)
        assert describe(data)["model"] == "constant" and len(data) <= 13
        np.testing.assert_array_equal(decode_symbols(data), x)


def test_choice_is_the_cheapest_and_near_entropy():
    rng = np.random.default_rng(3)
    x = np.clip(np.round(rng.laplace(0, 12, 200_000)), -128, 127).astype(np.int64)
    best = len(encode_symbols(x))
    for model in ("raw", "categorical", "laplace", "gaussian"):
        assert best <= len(encode_symbols(x, model=model))
    counts = np.bincount(x + 128)
    p = counts[counts > 0] / x.size
    entropy_bytes = -np.sum(counts[counts > 0] * np.log2(p)) / 8
    assert best < entropy_bytes * 1.01 + 600


def test_inputs_the_encoder_refuses():
    with pytest.raises(ValueError):
        encode_symbols(np.array([0.5, 1.5]))
    with pytest.raises(ValueError):
        encode_symbols(np.array([2**63], dtype=np.uint64))
    with pytest.raises(ValueError):
        encode_symbols(np.array([0, 1 << 20]), model="categorical")


def test_malformed_payloads():
    good = encode_symbols(np.arange(-50, 50).repeat(20), model="categorical")
    with pytest.raises(TruncatedError):
        decode_symbols(b"")
    with pytest.raises(FormatError, match="unknown entropy model"):
        decode_symbols(bytes([99]) + good[1:])
    with pytest.raises(FormatError):
        decode_symbols(good[:-1])  # not whole words
    with pytest.raises(TruncatedError):
        decode_symbols(good[:6])
    with pytest.raises(FormatError):
        decode_symbols(good + b"\0\0\0\0")  # trailing zero word
    with pytest.raises(LimitError):
        decode_symbols(good, max_count=10)
    # a 12-byte payload claiming 2**60 constant symbols is refused before allocation
    with pytest.raises(LimitError):
        decode_symbols(bytes([1]) + b"\x80" * 8 + b"\x10" + b"\0\0")


def test_fuzz_payloads_raise_only_dnerv_errors():
    rng = np.random.default_rng(11)
    sources = [
        encode_symbols(np.round(rng.laplace(0, 4, 3000)).astype(np.int64), model=m)
        for m in ("raw", "categorical", "laplace", "gaussian")
    ] + [encode_symbols(np.full(10, 3))]
    errors = 0
    for i in range(2000):
        data = bytearray(sources[i % len(sources)])
        for _ in range(int(rng.integers(1, 4))):
            data[int(rng.integers(len(data)))] ^= 1 << int(rng.integers(8))
        if rng.random() < 0.2:
            del data[int(rng.integers(len(data))) :]
        try:
            decode_symbols(bytes(data), max_count=100_000)
        except DnervError:
            errors += 1
    assert errors > 100  # many flips land in ANS words, which decode to other symbols


# -- an independent implementation of the normative algorithm -------------------------------
def _reference_frequencies(weights: list[int]) -> list[int]:
    n, total = len(weights), sum(weights)
    scale = float(2**24 - n) / float(total)
    left, acc = [], 0
    for i, w in enumerate(weights):
        left.append(math.floor(float(acc) * scale) + i)
        acc += w
    return [b - a for a, b in zip(left, left[1:] + [2**24], strict=True)]


def _reference_encode(z: list[int], freq: list[int]) -> list[int]:
    left = [0]
    for f in freq[:-1]:
        left.append(left[-1] + f)
    state, words = 0, []
    for s in reversed(z):
        if (state >> 40) >= freq[s]:
            words.append(state & 0xFFFFFFFF)
            state >>= 32
        state = ((state // freq[s]) << 24) | (state % freq[s] + left[s])
    while state:
        words.append(state & 0xFFFFFFFF)
        state >>= 32
    return words


def _reference_decode(words: list[int], freq: list[int], count: int) -> list[int]:
    left = [0]
    for f in freq[:-1]:
        left.append(left[-1] + f)
    stack, state = list(words), 0
    while stack and state < 2**32:
        state = (state << 32) | stack.pop()
    out = []
    for _ in range(count):
        quantile = state & (2**24 - 1)
        s = bisect.bisect_right(left, quantile) - 1
        out.append(s)
        state = (state >> 24) * freq[s] + quantile - left[s]
        if state < 2**32 and stack:
            state = (state << 32) | stack.pop()
    assert state == 0 and not stack
    return out


@pytest.mark.parametrize("model", ["categorical", "laplace", "gaussian"])
def test_constriction_matches_the_spec_bit_for_bit(model):
    rng = np.random.default_rng(5)
    x = np.round(rng.laplace(3, 6, 4000)).astype(np.int64)
    data = encode_symbols(x, model=model)
    r, _, count, lo, span = _parse_header(data, "t")
    weights = _read_weights(
        r, {"categorical": 2, "laplace": 3, "gaussian": 4}[model], span + 1, "t"
    )
    freq = _reference_frequencies([int(w) for w in weights])
    assert freq == tables.quantized_frequencies(weights).tolist()
    words = np.frombuffer(data[r.pos :], dtype="<u4").tolist()
    z = (x - lo).tolist()
    assert _reference_encode(z, freq) == words
    assert _reference_decode(words, freq, count) == z


def test_parametric_tables_are_integer_and_symmetric():
    w = tables.laplace_weights(9, 4, 3 << 30)
    assert w.tolist() == [81 << 24, 27 << 26, 9 << 28, 3 << 30, 1 << 32][::1] + [
        3 << 30,
        9 << 28,
        27 << 26,
        81 << 24,
    ]
    g = tables.gaussian_weights(5, 0, 1 << 31)
    assert g.tolist() == [1 << 32, 1 << 31, 1 << 28, 1 << 23, 1 << 16]
    with pytest.raises(FormatError):
        tables.laplace_weights(9, 9, 5)


def test_wide_alphabets_need_enough_symbols_so_tiny_payloads_cost_little_work():
    x = np.array([0, 65535, 3, 1500])
    with pytest.raises(ValueError):
        encode_symbols(x, model="laplace")  # 65536 values for 4 symbols: raw only
    assert describe(encode_symbols(x))["model"] == "raw"
    wide = np.round(np.random.default_rng(1).laplace(0, 3000, 100_000)).astype(np.int64)
    wide = np.clip(wide, -32767, 32767)
    data = encode_symbols(wide)
    assert describe(data)["model"] in ("laplace", "gaussian", "categorical")
    assert len(data) < 0.9 * 2 * wide.size  # better than 16-bit raw
    np.testing.assert_array_equal(decode_symbols(data), wide)
    start = time.process_time()
    for decay in range(1, 200):  # 14-byte payloads claiming one symbol of a 65536-value alphabet
        payload = bytes([3, 1, 0]) + b"\xff\xff\x03" + b"\x00" + struct.pack("<I", decay << 20)
        with pytest.raises(FormatError, match="2 \\* count"):
            decode_symbols(payload + b"\x01\x00\x00\x00")
    assert time.process_time() - start < 0.5
