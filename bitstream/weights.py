"""The weights section: one record per tensor, quantised symbols entropy-coded.

Layout of a record (``docs/FORMAT.md``, "Weights section")::

    u16 name length | name (UTF-8) | u8 scheme | u8 bits | i8 axis | u8 ndim | u32 dims[ndim]
    | u32 n_scale | f32 scale[n_scale] | u32 n_offset | f32 offset[n_offset]
    | u32 payload length | payload (entropy payload, or raw little-endian f32/f16 values)

The compact weights section (``docs/FORMAT.md``, "Compact weights section") stores the same
records without names and shapes, which the reader takes from the network the metadata
describes (:func:`pack_weights_compact`, :func:`unpack_weights_compact`)::

    u8 scheme | u8 bits | i8 axis | varint n_scale | f32 scale[n_scale]
    | varint n_offset | f32 offset[n_offset] | varint payload length | payload

The packed weights section (format 1.2), for networks whose tensors share one scheme and bit
depth, is :mod:`bitstream.weights_packed`; its functions can be imported from here too.

:func:`dequantize` is normative: it is how every decoder turns a record into float32 weights.

Example:
    >>> import numpy as np
    >>> w = np.linspace(-1, 1, 24, dtype=np.float32).reshape(4, 6)
    >>> record = quantize("conv.weight", w, "affine", bits=8, axis=0)
    >>> [back] = unpack_weights(pack_weights([record]))
    >>> assert np.array_equal(dequantize(back), dequantize(record))
    >>> assert np.abs(dequantize(back) - w).max() < 0.01
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from bitstream._binary import Reader, put_varint
from bitstream.entropy import decode_symbols, describe, encode_symbols
from bitstream.errors import FormatError, LimitError
from bitstream.ids import QUANT_SCHEMES, id_of

MAX_NDIM = 8
MAX_ELEMENTS = 1 << 26  # per tensor
MAX_TOTAL_ELEMENTS = 1 << 27  # per section, and per network (docs/FORMAT.md, "Limits")
_FIXED = struct.Struct("<BBbB")  # scheme, bits, axis, ndim
_FIXED_COMPACT = struct.Struct("<BBb")  # scheme, bits, axis


@dataclass
class WeightRecord:
    """One tensor as stored in the weights section.

    ``symbols`` holds the quantised integers (C order, any shape with ``prod(shape)`` elements)
    for 'affine' and 'symmetric'; ``values`` holds the tensor itself for 'float32'/'float16'.
    ``scale``/``offset`` have ``shape[axis]`` entries (per channel) or one (``axis == -1``).
    """

    name: str
    shape: tuple[int, ...]
    scheme: str
    bits: int
    axis: int = -1
    scale: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    offset: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    symbols: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    values: np.ndarray | None = None


def _q_range(scheme: str, bits: int) -> tuple[int, int]:
    if scheme == "affine":
        return 0, (1 << bits) - 1
    return -((1 << (bits - 1)) - 1), (1 << (bits - 1)) - 1


def _validate(rec: WeightRecord, n_scale: int, n_offset: int) -> int:
    """Check everything but the payload; returns the element count. Raises FormatError."""
    where = f"weights record {rec.name!r}"
    if rec.scheme not in QUANT_SCHEMES.values():
        raise FormatError(f"{where}: unknown scheme {rec.scheme!r}")
    if not rec.name or len(rec.name.encode("utf-8")) >= 1 << 16:
        raise FormatError(f"{where}: name must have 1..65535 UTF-8 bytes")
    if len(rec.shape) > MAX_NDIM or any(d < 0 or d >= 1 << 32 for d in rec.shape):
        raise FormatError(f"{where}: bad shape {rec.shape}")
    count = math.prod(rec.shape)
    if count > MAX_ELEMENTS:
        raise LimitError(f"{where}: {count} elements exceed the limit of {MAX_ELEMENTS}")
    if rec.scheme in ("float32", "float16"):
        if rec.bits != (32 if rec.scheme == "float32" else 16) or rec.axis != -1:
            raise FormatError(f"{where}: {rec.scheme} needs bits={rec.scheme[5:]} and axis=-1")
        if n_scale or n_offset:
            raise FormatError(f"{where}: {rec.scheme} has no scale or offset")
        return count
    low_bits = 1 if rec.scheme == "affine" else 2
    if not low_bits <= rec.bits <= 16:
        raise FormatError(f"{where}: {rec.scheme} with {rec.bits} bits (allowed {low_bits}..16)")
    if not -1 <= rec.axis < len(rec.shape):
        raise FormatError(f"{where}: axis {rec.axis} for a shape of {len(rec.shape)} dims")
    channels = 1 if rec.axis == -1 else rec.shape[rec.axis]
    want_offset = channels if rec.scheme == "affine" else 0
    if n_scale != channels or n_offset != want_offset:
        raise FormatError(
            f"{where}: {n_scale} scales and {n_offset} offsets, expected {channels} and "
            f"{want_offset}"
        )
    return count


def pack_weights(records: list[WeightRecord]) -> bytes:
    """Serialise records (symbols entropy-coded with :func:`bitstream.entropy.encode_symbols`).

    Raises:
        FormatError: a record is inconsistent (scheme, bits, axis, parameter or element counts,
            symbols outside the scheme's range, duplicate names).
    """
    out = bytearray(struct.pack("<I", len(records)))
    for rec, scale, offset, payload in _checked(records):
        raw_name = rec.name.encode("utf-8")
        out += struct.pack("<H", len(raw_name)) + raw_name
        out += _FIXED.pack(id_of(QUANT_SCHEMES, rec.scheme), rec.bits, rec.axis, len(rec.shape))
        out += struct.pack(f"<{len(rec.shape)}I", *rec.shape)
        out += struct.pack("<I", scale.size) + scale.tobytes()
        out += struct.pack("<I", offset.size) + offset.tobytes()
        out += struct.pack("<I", len(payload)) + payload
    return bytes(out)


def _checked(
    records: list[WeightRecord],
) -> Iterator[tuple[WeightRecord, np.ndarray, np.ndarray, bytes]]:
    """Validate records for writing: (record, f32 scale, f32 offset, payload) each."""
    names: set[str] = set()
    for rec in records:
        scale = np.asarray(rec.scale, dtype="<f4").reshape(-1)
        offset = np.asarray(rec.offset, dtype="<f4").reshape(-1)
        count = _validate(rec, scale.size, offset.size)
        if rec.name in names:
            raise FormatError(f"weights: duplicate record name {rec.name!r}")
        names.add(rec.name)
        yield rec, scale, offset, _payload(rec, count)


def _payload(rec: WeightRecord, count: int) -> bytes:
    """A record's payload: raw f32/f16 values, or its symbols entropy-coded."""
    if rec.scheme in ("float32", "float16"):
        values = np.asarray(rec.values)
        if values.size != count:
            raise FormatError(f"weights record {rec.name!r}: {values.size} values for {count}")
        return values.astype("<f4" if rec.scheme == "float32" else "<f2").tobytes()
    symbols = np.asarray(rec.symbols).reshape(-1)
    _check_symbols(rec, symbols, count)
    return encode_symbols(symbols)


def pack_weights_compact(records: list[WeightRecord]) -> bytes:
    """Serialise records as a compact weights section: no names or shapes (the reader's layout
    supplies them, in this order), varint counts. Same checks as :func:`pack_weights`."""
    out = bytearray()
    put_varint(out, len(records))
    for rec, scale, offset, payload in _checked(records):
        out += _FIXED_COMPACT.pack(id_of(QUANT_SCHEMES, rec.scheme), rec.bits, rec.axis)
        for part in (scale.tobytes(), offset.tobytes()):
            put_varint(out, len(part) // 4)
            out += part
        put_varint(out, len(payload))
        out += payload
    return bytes(out)


def _row(rec: WeightRecord, count: int, payload_bytes: int, model: str | None) -> dict:
    """One row of :func:`describe_weights`."""
    return {
        "name": rec.name,
        "shape": list(rec.shape),
        "scheme": rec.scheme,
        "bits": rec.bits,
        "axis": rec.axis,
        "elements": count,
        "payload_bytes": payload_bytes,
        "model": model,
        "table_bytes": 0,
    }


def _check_symbols(rec: WeightRecord, symbols: np.ndarray, count: int) -> None:
    where = f"weights record {rec.name!r}"
    if symbols.size != count:
        raise FormatError(f"{where}: {symbols.size} symbols for {count} elements")
    low, high = _q_range(rec.scheme, rec.bits)
    if count and (int(symbols.min()) < low or int(symbols.max()) > high):
        raise FormatError(
            f"{where}: symbols outside [{low}, {high}] of {rec.scheme} {rec.bits}-bit"
        )


def _check_read(r: Reader, rec: WeightRecord, total: int) -> tuple[int, int]:
    """Check a parsed record's header; returns (its element count, the running total)."""
    count = _validate(rec, rec.scale.size, rec.offset.size)
    total += count
    if total > MAX_TOTAL_ELEMENTS:
        raise LimitError(f"weights section: more than {MAX_TOTAL_ELEMENTS} elements in all")
    if not (np.isfinite(rec.scale).all() and np.isfinite(rec.offset).all()):
        raise FormatError(f"{r.where()}: non-finite scale or offset")
    return count, total


def _read_payload(r: Reader, rec: WeightRecord, count: int, length: int) -> bytes:
    payload = r.take(length)
    if rec.scheme in ("float32", "float16"):
        itemsize = 4 if rec.scheme == "float32" else 2
        if len(payload) != count * itemsize:
            raise FormatError(f"{r.where()}: {len(payload)} payload bytes for {count} values")
    return payload


def _records(
    data: bytes, layout: list[tuple[str, tuple[int, ...]]] | None = None
) -> Iterator[tuple[WeightRecord, int, bytes]]:
    """Parse a weights section record by record: (record without data, element count, payload).

    Everything but the payload's content is validated here; with ``layout``, each record's name
    and shape must also be those of the layout's tensor at its position.
    """
    r = Reader(data, "weights section")
    n = r.u32()
    if n > r.remaining // 12:  # a record takes at least 12 bytes
        raise FormatError(f"weights section: {n} records cannot fit in {r.remaining} bytes")
    if layout is not None and n != len(layout):
        raise FormatError(f"weights section: {n} records, the network has {len(layout)}")
    names: set[str] = set()
    total = 0
    for i in range(n):
        r.what = f"weights record {i}"
        try:
            name = r.take(r.u16()).decode("utf-8")
        except UnicodeDecodeError:
            raise FormatError(f"{r.where()}: name is not UTF-8") from None
        scheme_id, bits, axis, ndim = _FIXED.unpack(r.take(_FIXED.size))
        if scheme_id not in QUANT_SCHEMES or ndim > MAX_NDIM:
            raise FormatError(f"{r.where()}: scheme id {scheme_id}, {ndim} dims")
        shape = struct.unpack(f"<{ndim}I", r.take(4 * ndim))
        if layout is not None and (name, shape) != (layout[i][0], tuple(layout[i][1])):
            raise FormatError(
                f"{r.where()}: {name!r} of shape {shape}, the network's tensor {i} is "
                f"{layout[i][0]!r} of shape {tuple(layout[i][1])}"
            )
        scale = np.frombuffer(r.take(4 * r.u32()), dtype="<f4").astype(np.float32)
        offset = np.frombuffer(r.take(4 * r.u32()), dtype="<f4").astype(np.float32)
        rec = WeightRecord(name, tuple(shape), QUANT_SCHEMES[scheme_id], bits, axis, scale, offset)
        if name in names:
            raise FormatError(f"{r.where()}: duplicate record name {name!r}")
        names.add(name)
        count, total = _check_read(r, rec, total)
        yield rec, count, _read_payload(r, rec, count, r.u32())
    r.expect_end()


def _records_compact(
    data: bytes, layout: list[tuple[str, tuple[int, ...]]]
) -> Iterator[tuple[WeightRecord, int, bytes]]:
    """Parse a compact weights section against ``layout`` (name, shape) of each record."""
    r = Reader(data, "compact weights section")
    n = r.varint()
    if n != len(layout):
        raise FormatError(f"compact weights section: {n} records, the network has {len(layout)}")
    total = 0
    for name, shape in layout:
        r.what = f"weights record {name!r}"
        scheme_id, bits, axis = _FIXED_COMPACT.unpack(r.take(_FIXED_COMPACT.size))
        if scheme_id not in QUANT_SCHEMES:
            raise FormatError(f"{r.where()}: scheme id {scheme_id}")
        scale = np.frombuffer(r.take(4 * r.varint()), dtype="<f4").astype(np.float32)
        offset = np.frombuffer(r.take(4 * r.varint()), dtype="<f4").astype(np.float32)
        rec = WeightRecord(name, tuple(shape), QUANT_SCHEMES[scheme_id], bits, axis, scale, offset)
        count, total = _check_read(r, rec, total)
        yield rec, count, _read_payload(r, rec, count, r.varint())
    r.expect_end()


def unpack_weights(
    data: bytes, layout: list[tuple[str, tuple[int, ...]]] | None = None
) -> list[WeightRecord]:
    """Parse and validate a weights section; symbols come back with the record's shape.

    With ``layout`` (name, shape of each tensor of the network), a record whose name or shape
    differs from the layout's is refused before its payload is decoded.

    Raises:
        FormatError: any inconsistency (TruncatedError when the bytes run out early,
            LimitError above MAX_ELEMENTS / MAX_TOTAL_ELEMENTS).
    """
    return _decode(_records(data, layout))


def unpack_weights_compact(
    data: bytes, layout: list[tuple[str, tuple[int, ...]]]
) -> list[WeightRecord]:
    """Parse and validate a compact weights section whose records are, in order, the tensors
    ``layout`` names (name, shape); raises as :func:`unpack_weights`, and FormatError when the
    record count differs from the layout's."""
    return _decode(_records_compact(data, layout))


def _decode(parsed: Iterator[tuple[WeightRecord, int, bytes]]) -> list[WeightRecord]:
    records: list[WeightRecord] = []
    for rec, count, payload in parsed:
        if rec.scheme in ("float32", "float16"):
            dtype = "<f4" if rec.scheme == "float32" else "<f2"
            rec.values = np.frombuffer(payload, dtype=dtype).astype(dtype[1:]).reshape(rec.shape)
            rec.symbols = np.zeros(0, np.int64)
        else:
            what = f"weights record {rec.name!r}"
            symbols = decode_symbols(payload, max_count=count, what=what)
            _check_symbols(rec, symbols, count)
            rec.symbols = symbols.reshape(rec.shape)
        records.append(rec)
    return records


def describe_weights(
    data: bytes, layout: list[tuple[str, tuple[int, ...]]] | None = None
) -> list[dict[str, object]]:
    """One summary per record without decoding any symbols: name, shape, scheme, bits, axis,
    element count, payload bytes and, for quantised records, the entropy model chosen
    (:func:`bitstream.entropy.describe`). With ``layout``, ``data`` is a compact section."""
    rows: list[dict[str, object]] = []
    parsed = _records(data) if layout is None else _records_compact(data, layout)
    for rec, count, payload in parsed:
        row = _row(rec, count, len(payload), None)
        if rec.scheme not in ("float32", "float16"):
            info = describe(payload)
            if info["count"] != count:
                raise FormatError(f"weights record {rec.name!r}: {info['count']} symbols, {count}")
            row["model"], row["table_bytes"] = info["model"], info["table_bytes"]
        rows.append(row)
    return rows


def _broadcast(params: np.ndarray, rec: WeightRecord) -> np.ndarray:
    if rec.axis == -1:
        return params.astype(np.float32).reshape(())
    view = [1] * len(rec.shape)
    view[rec.axis] = rec.shape[rec.axis]
    return params.astype(np.float32).reshape(view)


def dequantize(rec: WeightRecord) -> np.ndarray:
    """The float32 tensor a record stands for (normative).

    affine: ``offset + q * scale``; symmetric: ``q * scale``; both in float32 arithmetic, with
    ``q`` converted to float32 and the parameters broadcast along ``axis``. float16 values are
    widened to float32.
    """
    if rec.scheme in ("float32", "float16"):
        stored = np.asarray(rec.values).astype(
            np.float32 if rec.scheme == "float32" else np.float16
        )
        return stored.astype(np.float32).reshape(rec.shape)
    q = np.asarray(rec.symbols).astype(np.float32).reshape(rec.shape)
    w = q * _broadcast(rec.scale, rec)
    if rec.scheme == "affine":
        w = _broadcast(rec.offset, rec) + w
    return w.astype(np.float32, copy=False)


def quantize(name: str, w: np.ndarray, scheme: str, bits: int = 8, axis: int = -1) -> WeightRecord:
    """Encoder-side helper: quantise a float tensor to a record (min/max affine or abs-max
    symmetric, per tensor or per channel along ``axis``). Not normative."""
    w = np.asarray(w, dtype=np.float32)
    if scheme in ("float32", "float16"):
        return WeightRecord(name, w.shape, scheme, 32 if scheme == "float32" else 16, values=w)
    reduce = tuple(i for i in range(w.ndim) if i != axis) if axis != -1 else None
    low, high = _q_range(scheme, bits)
    if scheme == "affine":
        lo = w.min(axis=reduce, initial=np.inf)
        hi = w.max(axis=reduce, initial=-np.inf)
        lo, hi = np.where(lo <= hi, lo, 0.0), np.where(lo <= hi, hi, 0.0)  # empty: 0, 0
        scale = np.where(hi > lo, (hi - lo) / high, 1.0).astype(np.float32).reshape(-1)
        offset = np.asarray(lo, dtype=np.float32).reshape(-1)
    else:
        amax = np.abs(w).max(axis=reduce, initial=0.0)
        scale = np.where(amax > 0, amax / high, 1.0).astype(np.float32).reshape(-1)
        offset = np.zeros(0, np.float32)
    rec = WeightRecord(name, w.shape, scheme, bits, axis, scale, offset)
    base = _broadcast(offset, rec) if scheme == "affine" else np.float32(0)
    q = np.clip(np.rint((w - base) / _broadcast(scale, rec)), low, high)
    rec.symbols = q.astype(np.int64)
    return rec


_PACKED = ("describe_weights_packed", "pack_weights_packed", "packable", "unpack_weights_packed")


def __getattr__(name: str):
    """The packed section's functions, from :mod:`bitstream.weights_packed` on first use: that
    module imports this one, so this one does not import it at load time."""
    if name in _PACKED:
        from bitstream import weights_packed

        return getattr(weights_packed, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
