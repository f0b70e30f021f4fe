"""The packed weights section (type 5, format 1.2): tensors that share one scheme and bit depth.

Like the compact weights section it holds no names or shapes, which the reader takes from the
network the metadata describes. Layout (``docs/FORMAT.md``, "Packed weights section"): the
scheme and bit depth once, one axis bit per tensor, the scales (and offsets), then one entropy
payload of every tensor's symbols::

    varint n | u8 scheme | u8 bits | axis flags[ceil(n / 8)]
    | per tensor: f32 scale[S] (f32 offset[S] if affine) | payload

The records and their checks are those of :mod:`bitstream.weights`.
"""

from __future__ import annotations

import math

import numpy as np

from bitstream._binary import Reader, put_varint
from bitstream.entropy import decode_symbols, describe, encode_symbols
from bitstream.errors import FormatError
from bitstream.ids import QUANT_SCHEMES, id_of
from bitstream.weights import WeightRecord, _check_read, _check_symbols, _row, _validate


def packable(records: list[WeightRecord]) -> bool:
    """Whether the records fit a packed weights section: all quantised with one scheme and one
    bit depth, each with one scale (axis -1) or one per index of its first dimension (axis 0)."""
    if not records or records[0].scheme in ("float32", "float16"):
        return False
    scheme, bits = records[0].scheme, records[0].bits
    return all(r.scheme == scheme and r.bits == bits and r.axis in (-1, 0) for r in records)


def pack_weights_packed(records: list[WeightRecord]) -> bytes:
    """Serialise records as a packed weights section (format 1.2): like the compact section,
    names and shapes come from the reader's layout, and in addition the scheme and bit depth are
    stored once, the axes as one bit each, and all symbols as one entropy payload. Same checks
    as :func:`bitstream.weights.pack_weights`; FormatError also when :func:`packable` is
    false."""
    if not packable(records):
        raise FormatError(
            "packed weights need one quantised scheme and bit depth, axes -1 or 0 only"
        )
    out = bytearray()
    put_varint(out, len(records))
    out += bytes((id_of(QUANT_SCHEMES, records[0].scheme), records[0].bits))
    flags = bytearray((len(records) + 7) // 8)
    for k, rec in enumerate(records):
        if rec.axis == 0:
            flags[k >> 3] |= 1 << (k & 7)
    out += flags
    symbols = []
    for rec in records:
        scale = np.asarray(rec.scale, dtype="<f4").reshape(-1)
        offset = np.asarray(rec.offset, dtype="<f4").reshape(-1)
        count = _validate(rec, scale.size, offset.size)
        flat = np.asarray(rec.symbols).reshape(-1)
        _check_symbols(rec, flat, count)
        symbols.append(flat.astype(np.int64, copy=False))
        out += scale.tobytes() + offset.tobytes()
    out += encode_symbols(np.concatenate(symbols))
    return bytes(out)


def unpack_weights_packed(
    data: bytes, layout: list[tuple[str, tuple[int, ...]]]
) -> list[WeightRecord]:
    """Parse, decode and validate a packed weights section whose records are, in order, the
    tensors ``layout`` names (name, shape); raises as
    :func:`bitstream.weights.unpack_weights`."""
    r = Reader(data, "packed weights section")
    n = r.varint()
    if n != len(layout):
        raise FormatError(f"packed weights section: {n} records, the network has {len(layout)}")
    scheme_id, bits = r.u8(), r.u8()
    if scheme_id not in QUANT_SCHEMES or QUANT_SCHEMES[scheme_id] in ("float32", "float16"):
        raise FormatError(f"{r.where()}: scheme id {scheme_id} is not a quantised scheme")
    scheme = QUANT_SCHEMES[scheme_id]
    flags = r.take((n + 7) // 8)
    if n % 8 and flags[-1] >> (n % 8):
        raise FormatError(f"{r.where()}: axis flags set past the last record")
    records, counts, total = [], [], 0
    for k, (name, shape) in enumerate(layout):
        axis = 0 if flags[k >> 3] >> (k & 7) & 1 else -1
        if axis == 0 and not shape:
            raise FormatError(f"packed weights record {name!r}: a scalar cannot be per-channel")
        channels = shape[0] if axis == 0 else 1
        r.what = f"weights record {name!r}"
        scale = np.frombuffer(r.take(4 * channels), dtype="<f4").astype(np.float32)
        offset = np.zeros(0, np.float32)
        if scheme == "affine":
            offset = np.frombuffer(r.take(4 * channels), dtype="<f4").astype(np.float32)
        rec = WeightRecord(name, tuple(shape), scheme, bits, axis, scale, offset)
        count, total = _check_read(r, rec, total)
        records.append(rec)
        counts.append(count)
    r.what = "packed weights section"
    symbols = decode_symbols(r.take(r.remaining), max_count=total, what="packed weights")
    if symbols.size != total:
        raise FormatError(f"packed weights section: {symbols.size} symbols for {total} weights")
    start = 0
    for rec, count in zip(records, counts, strict=True):
        part = symbols[start : start + count]
        _check_symbols(rec, part, count)
        rec.symbols = part.reshape(rec.shape)
        start += count
    return records


def describe_weights_packed(
    data: bytes, layout: list[tuple[str, tuple[int, ...]]]
) -> list[dict[str, object]]:
    """The rows of :func:`bitstream.weights.describe_weights` for a packed section: every tensor
    names the one shared entropy model; ``payload_bytes`` is that payload's share by element
    count."""
    records = unpack_weights_packed(data, layout)
    counts = [math.prod(rec.shape) for rec in records]
    r = Reader(data, "packed weights section")
    r.varint()  # n, then scheme and bits, the flags, the scales and offsets: the payload follows
    header = len(data) - r.remaining + 2 + (len(records) + 7) // 8
    header += sum(4 * (rec.scale.size + rec.offset.size) for rec in records)
    info = describe(data[header:])
    share = (len(data) - header) / max(sum(counts), 1)
    model = f"{info['model']} (shared)"
    return [_row(rec, n, round(share * n), model) for rec, n in zip(records, counts, strict=True)]
