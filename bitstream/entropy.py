"""Entropy coding of integer symbol arrays with constriction's ANS coder.

Each array becomes one self-describing payload (``docs/FORMAT.md``, "Entropy payloads"): the
model id, the symbol count, the value range, the model parameters, then the coded data. The
encoder computes the exact size every model would take, its table included, and keeps the
cheapest: ``raw`` (fixed-width bit packing), ``constant``, ``categorical`` (integer weights
from the histogram), or the parametric ``laplace`` / ``gaussian`` (two integer parameters).
:func:`describe` shows which model was chosen and what its table cost.

Example:
    >>> import numpy as np
    >>> x = np.array([0, -3, 2, 2, 0, 1, 0, -1] * 100)
    >>> data = encode_symbols(x)
    >>> describe(data)["model"] in {"categorical", "laplace", "gaussian"}
    True
    >>> assert np.array_equal(decode_symbols(data), x)
"""

from __future__ import annotations

import math
import struct

import constriction
import numpy as np

from bitstream import tables
from bitstream._binary import Reader, put_svarint, put_varint
from bitstream.errors import FormatError, LimitError, TruncatedError
from bitstream.ids import ENTROPY_MODELS, id_of

MAX_SYMBOLS = 1 << 26  # default limit on the count a payload may claim (512 MiB of int64)
_RAW, _CONSTANT, _CATEGORICAL, _LAPLACE, _GAUSSIAN = (
    id_of(ENTROPY_MODELS, name)
    for name in ("raw", "constant", "categorical", "laplace", "gaussian")
)
_TABLE_BITS = (4, 7, 10, 14, 21, None)  # categorical weight precisions the encoder tries
_CHUNK = 1 << 18  # values per chunk of the raw bit packer (a multiple of 8)
_ANS_SLACK_BITS = 64  # what the ANS coder adds to the ideal code length, at most about


def encode_symbols(symbols: np.ndarray | list[int], *, model: str | None = None) -> bytes:
    """Entropy-code an integer array (flattened in C order) into a self-describing payload.

    Args:
        symbols: integers within the signed 64-bit range.
        model: force one model by name (tests, benchmarks); default: the cheapest.

    Returns:
        The payload; :func:`decode_symbols` restores the flattened array exactly.

    Raises:
        ValueError: non-integer input, values outside int64, more than MAX_SYMBOLS symbols,
            or a forced model that cannot code this array.
    """
    a = np.asarray(symbols)
    if a.dtype.kind not in "iub":
        raise ValueError(f"encode_symbols needs integers, got dtype {a.dtype}")
    if a.dtype == np.uint64 and a.size and int(a.max()) >= 1 << 63:
        raise ValueError("encode_symbols: values must fit in signed 64-bit integers")
    a = a.reshape(-1).astype(np.int64, copy=False)
    if a.size > MAX_SYMBOLS:
        raise ValueError(f"encode_symbols: {a.size} symbols exceed the limit of {MAX_SYMBOLS}")
    lo, hi = (int(a.min()), int(a.max())) if a.size else (0, 0)
    span = hi - lo
    header = bytearray()
    if span == 0:
        if model not in (None, "constant"):
            raise ValueError(f"model {model!r} cannot code a constant array; use 'constant'")
        header.append(_CONSTANT)
        _put_range(header, a.size, lo, span)
        return bytes(header)
    z = a - lo if lo else a  # int64, in [0, span] when span < 2**63
    candidates = _candidates(a.size, z, span, model)
    best_id, params, weights, _ = min(candidates, key=lambda c: c[3])
    header.append(best_id)
    _put_range(header, a.size, lo, span)
    header += params
    if best_id == _RAW:
        return bytes(header) + _pack_raw(a, lo, span.bit_length())
    return bytes(header) + _ans_encode(z.astype(np.int32), weights)


def _put_range(out: bytearray, count: int, lo: int, span: int) -> None:
    put_varint(out, count)
    put_svarint(out, lo)
    put_varint(out, span)


def _candidates(
    count: int, z: np.ndarray, span: int, model: str | None
) -> list[tuple[int, bytes, np.ndarray | None, float]]:
    """(model id, parameter bytes, weights, total bits) for every model that can code ``z``."""
    raw_bits = 8.0 * math.ceil(count * span.bit_length() / 8)
    out: list[tuple[int, bytes, np.ndarray | None, float]] = [(_RAW, b"", None, raw_bits)]
    if span < tables.MAX_ALPHABET and tables.alphabet_allowed(span + 1, count):
        counts = np.bincount(z, minlength=span + 1)
        for bits in _TABLE_BITS:
            weights = tables.scaled_counts(counts, bits)
            if int(weights.sum()) >= 1 << 53:
                continue
            params = bytearray()
            for w in weights.tolist():
                put_varint(params, w)
            out.append((_CATEGORICAL, bytes(params), weights, _ans_total(counts, weights, params)))
        for model_id, fit, build in (
            (_LAPLACE, tables.fit_laplace, tables.laplace_weights),
            (_GAUSSIAN, tables.fit_gaussian, tables.gaussian_weights),
        ):
            for center, decay in fit(counts):
                weights = build(span + 1, center, decay)
                params = bytearray()
                put_varint(params, center)
                params += struct.pack("<I", decay)
                out.append((model_id, bytes(params), weights, _ans_total(counts, weights, params)))
    if model is not None:
        wanted = id_of(ENTROPY_MODELS, model)
        out = [c for c in out if c[0] == wanted]
        if not out:
            raise ValueError(f"model {model!r} cannot code this array (range {span + 1})")
    return out


def _ans_total(counts: np.ndarray, weights: np.ndarray, params: bytes) -> float:
    coded = tables.cost_bits(counts, weights) + _ANS_SLACK_BITS
    return 8.0 * len(params) + 32.0 * math.ceil(coded / 32)


def _ans_encode(z: np.ndarray, weights: np.ndarray) -> bytes:
    coder = constriction.stream.stack.AnsCoder()
    coder.encode_reverse(z, _categorical(weights))
    return coder.get_compressed().astype("<u4", copy=False).tobytes()


def _categorical(weights: np.ndarray) -> constriction.stream.model.Categorical:
    # Integer weights below 2**53 in total convert to float64 exactly: same model everywhere.
    return constriction.stream.model.Categorical(weights.astype(np.float64), perfect=False)


def _pack_raw(a: np.ndarray, lo: int, width: int) -> bytes:
    v = a.view(np.uint64) - np.uint64(lo % (1 << 64))  # wraps modulo 2**64, exactly (a - lo)
    if width in (8, 16, 32, 64):
        return v.astype(f"<u{width // 8}").tobytes()
    parts = []
    for start in range(0, v.size, _CHUNK):
        bits = np.unpackbits(
            v[start : start + _CHUNK].astype("<u8").view(np.uint8).reshape(-1, 8),
            axis=1,
            bitorder="little",
        )
        parts.append(bits[:, :width])
    if not parts:
        return b""
    return np.packbits(np.concatenate(parts).reshape(-1), bitorder="little").tobytes()


def _unpack_raw(body: bytes, count: int, width: int, what: str) -> np.ndarray:
    need = math.ceil(count * width / 8)
    if len(body) != need:
        raise FormatError(f"{what}: raw payload has {len(body)} bytes, {need} expected")
    if width in (8, 16, 32, 64):
        return np.frombuffer(body, dtype=f"<u{width // 8}").astype(np.uint64)
    bits = np.unpackbits(np.frombuffer(body, dtype=np.uint8), bitorder="little")
    if bits[count * width :].any():
        raise FormatError(f"{what}: raw payload has non-zero padding bits")
    out = np.empty(count, dtype=np.uint64)
    for start in range(0, count, _CHUNK):
        stop = min(start + _CHUNK, count)
        chunk = bits[start * width : stop * width].reshape(-1, width)
        full = np.zeros((stop - start, 64), dtype=np.uint8)
        full[:, :width] = chunk
        out[start:stop] = np.packbits(full, axis=1, bitorder="little").view("<u8").reshape(-1)
    return out


def _parse_header(data: bytes, what: str) -> tuple[Reader, int, int, int, int]:
    r = Reader(data, what)
    model_id = r.u8()
    if model_id not in ENTROPY_MODELS:
        raise FormatError(f"{what}: unknown entropy model id {model_id}")
    count, lo, span = r.varint(), r.svarint(), r.varint()
    if lo + span >= 1 << 63:
        raise FormatError(f"{what}: value range [{lo}, {lo}+{span}] leaves int64")
    return r, model_id, count, lo, span


def _read_weights(r: Reader, model_id: int, n: int, what: str) -> np.ndarray:
    if model_id == _CATEGORICAL:
        if n > r.remaining:  # every weight takes at least one byte: check before allocating
            raise TruncatedError(
                f"{what}: table of {n} weights does not fit in {r.remaining} bytes"
            )
        weights = np.array([r.varint() for _ in range(n)], dtype=object)
        if any(w >= 1 << 53 for w in weights):
            raise FormatError(f"{what}: categorical weight >= 2**53")
        weights = weights.astype(np.int64)
    else:
        center, decay = r.varint(), r.u32()
        build = tables.laplace_weights if model_id == _LAPLACE else tables.gaussian_weights
        weights = build(n, center, decay)
    tables.check_weights(weights, what)
    return weights


def decode_symbols(
    data: bytes, *, max_count: int = MAX_SYMBOLS, what: str = "symbols"
) -> np.ndarray:
    """Decode a payload of :func:`encode_symbols`.

    Args:
        data: the payload, exactly (no trailing bytes).
        max_count: refuse payloads that claim more symbols than this (before allocating).
        what: a name for error messages.

    Returns:
        The flattened int64 array.

    Raises:
        FormatError: malformed payload (LimitError: count above ``max_count``;
            TruncatedError: the payload ends early).
    """
    r, model_id, count, lo, span = _parse_header(data, what)
    if count > max_count:
        raise LimitError(f"{what}: claims {count} symbols, the limit is {max_count}")
    if model_id == _CONSTANT:
        if span != 0:
            raise FormatError(f"{what}: constant model with a range of {span + 1} values")
        r.expect_end()
        return np.full(count, lo, dtype=np.int64)
    if span == 0 or count == 0:
        raise FormatError(
            f"{what}: model {ENTROPY_MODELS[model_id]} needs >= 1 symbol and span >= 1"
        )
    if model_id == _RAW:
        v = _unpack_raw(r.take(r.remaining), count, span.bit_length(), what)
        if span < (1 << span.bit_length()) - 1 and int(v.max()) > span:
            raise FormatError(f"{what}: raw value above the declared range")
        return (v + np.uint64(lo % (1 << 64))).view(np.int64)
    if span >= tables.MAX_ALPHABET or not tables.alphabet_allowed(span + 1, count):
        raise FormatError(
            f"{what}: ANS model over {span + 1} values for {count} symbols "
            f"(at most min({tables.MAX_ALPHABET}, 2 * count + 256))"
        )
    weights = _read_weights(r, model_id, span + 1, what)
    body = r.take(r.remaining)
    if not body or len(body) % 4:
        raise FormatError(f"{what}: ANS data of {len(body)} bytes is not a whole number of words")
    words = np.frombuffer(body, dtype="<u4").astype(np.uint32, copy=False)
    if words[-1] == 0:
        raise FormatError(f"{what}: ANS data ends in a zero word")
    coder = constriction.stream.stack.AnsCoder(words)
    z = coder.decode(_categorical(weights), count)
    if not coder.is_empty():
        raise FormatError(f"{what}: ANS data does not end where the {count} symbols end")
    out = z.astype(np.int64)
    if lo:
        out += lo
    return out


def describe(data: bytes) -> dict[str, object]:
    """What a payload holds, without decoding it: model, count, range, bytes, table bytes."""
    r, model_id, count, lo, span = _parse_header(data, "symbols")
    header_end = r.pos
    table = 0
    ans = model_id in (_CATEGORICAL, _LAPLACE, _GAUSSIAN)
    if ans and span < tables.MAX_ALPHABET and tables.alphabet_allowed(span + 1, count):
        _read_weights(r, model_id, span + 1, "symbols")
        table = r.pos - header_end
    return {
        "model": ENTROPY_MODELS[model_id],
        "count": count,
        "min": lo,
        "max": lo + span,
        "bytes": len(data),
        "header_bytes": header_end,
        "table_bytes": table,
    }
