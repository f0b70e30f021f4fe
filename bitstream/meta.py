"""The metadata section: a compact, self-describing binary form of JSON-like values.

One value is a tag byte followed by its body (``docs/FORMAT.md``, "Metadata"): None, False,
True, int (signed 64-bit, zigzag varint), float (IEEE-754 binary64, exact), str (UTF-8), bytes,
list, and dict with str keys in insertion order. No pickle, no eval: the decoder builds plain
Python objects and checks every length against the bytes left, the nesting depth, and the size.
The schema the decoded value must follow is :mod:`bitstream.schema`, whose names this module
re-exports.

Example:
    >>> value = {"clip_length": 8, "norm": {"mean": [0.5, 0.5, 0.5]}, "name": "bbb"}
    >>> assert decode_meta(encode_meta(value)) == value
"""

from __future__ import annotations

import functools
import struct
import zlib

from bitstream import metadict
from bitstream._binary import Reader, put_svarint, put_varint
from bitstream.errors import FormatError, LimitError, TruncatedError
from bitstream.ids import SECTION_TYPES, id_of
from bitstream.schema import (  # noqa: F401  (re-exported)
    MAX_CLIP_LENGTH,
    MAX_FRAMES,
    MAX_NAME_BYTES,
    MAX_PATCH_PIXELS,
    MAX_PATCHES,
    MAX_RATE_TERM,
    MAX_SIDE,
    MAX_TEXT_BYTES,
    MAX_VIDEOS,
    MAX_WIDTH,
    MUST_KEYS,
    NETWORK_KEYS,
    is_keyframe_only,
    name_problem,
    printable,
    safe_name,
    validate_metadata,
)

TAG_NONE, TAG_FALSE, TAG_TRUE, TAG_INT, TAG_FLOAT, TAG_STR, TAG_BYTES, TAG_LIST, TAG_DICT = range(9)
MAX_DEPTH = 32
MAX_BYTES = 1 << 20  # inflated metadata larger than 1 MiB is refused (docs/FORMAT.md, "Limits")
MAX_ITEMS = 1 << 16  # values in the metadata, every list item and dict value counted
SECTION_METADATA = id_of(SECTION_TYPES, "metadata")
SECTION_METADATA_DEFLATE = id_of(SECTION_TYPES, "metadata-deflate")
SECTION_METADATA_DICT = id_of(SECTION_TYPES, "metadata-dict")
METADATA_SECTIONS = (SECTION_METADATA, SECTION_METADATA_DEFLATE, SECTION_METADATA_DICT)

MetaValue = None | bool | int | float | str | bytes | list | dict


def encode_meta(obj: MetaValue) -> bytes:
    """Encode a value made of None, bool, int, float, str, bytes, list/tuple and str-keyed dicts.

    Raises:
        ValueError: an unsupported type, a non-str dict key, an int outside signed 64 bits,
            nesting deeper than MAX_DEPTH, or a result larger than MAX_BYTES.
    """
    out = bytearray()
    _encode(obj, out, 0)
    if len(out) > MAX_BYTES:
        raise ValueError(f"metadata of {len(out)} bytes exceeds {MAX_BYTES}")
    return bytes(out)


def _encode(obj: object, out: bytearray, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ValueError(f"metadata nested deeper than {MAX_DEPTH}")
    if obj is None:
        out.append(TAG_NONE)
    elif obj is True or obj is False:
        out.append(TAG_TRUE if obj else TAG_FALSE)
    elif isinstance(obj, int):
        if not -(1 << 63) <= obj < 1 << 63:
            raise ValueError(f"metadata int {obj} outside signed 64 bits")
        out.append(TAG_INT)
        put_svarint(out, int(obj))
    elif isinstance(obj, float):
        out.append(TAG_FLOAT)
        out += struct.pack("<d", obj)
    elif isinstance(obj, str):
        _put_blob(out, TAG_STR, obj.encode("utf-8"))
    elif isinstance(obj, (bytes, bytearray, memoryview)):
        _put_blob(out, TAG_BYTES, bytes(obj))
    elif isinstance(obj, (list, tuple)):
        out.append(TAG_LIST)
        put_varint(out, len(obj))
        for item in obj:
            _encode(item, out, depth + 1)
    elif isinstance(obj, dict):
        out.append(TAG_DICT)
        put_varint(out, len(obj))
        for key, value in obj.items():
            if not isinstance(key, str):
                raise ValueError(f"metadata dict key {key!r} is not a str")
            raw = key.encode("utf-8")
            put_varint(out, len(raw))
            out += raw
            _encode(value, out, depth + 1)
    else:
        # numpy scalars and the like: accept what converts losslessly to a plain type.
        item = getattr(obj, "item", None)
        if callable(item):
            plain = item()
            if type(plain) in (bool, int, float) and plain == obj:
                _encode(plain, out, depth)
                return
        raise ValueError(f"metadata cannot hold a {type(obj).__name__}")


def deflate_meta(obj: MetaValue) -> bytes:
    """The metadata-deflate section (format 1.2): :func:`encode_meta`'s bytes compressed with raw
    DEFLATE (RFC 1951, no zlib or gzip wrapper).

    >>> assert inflate_meta(deflate_meta({"a": [1, 2.5, "x"]})) == {"a": [1, 2.5, "x"]}
    """
    return _deflate(encode_meta(obj), b"")


def inflate_meta(data: bytes) -> MetaValue:
    """Decode a metadata-deflate section.

    Raises:
        FormatError: not a raw DEFLATE stream, a truncated one, bytes after its end, or what
            :func:`decode_meta` raises on the inflated bytes; LimitError: they exceed MAX_BYTES.
    """
    return decode_meta(_inflate(data, b"", "metadata-deflate section"))


@functools.cache
def dictionary(dict_id: int) -> bytes:
    """The bytes of preset dictionary ``dict_id`` (:mod:`bitstream.metadict`): the metadata
    encodings of its templates, concatenated. Raises FormatError for an unknown id."""
    templates = metadict.TEMPLATES.get(dict_id)
    if templates is None:
        raise FormatError(f"metadata-dict section: unknown dictionary {dict_id}")
    return b"".join(encode_meta(value) for value in templates)


def dict_meta(obj: MetaValue, dict_id: int = metadict.WRITTEN) -> bytes:
    """The metadata-dict section (format 1.4): the dictionary's id as a varint, then
    :func:`encode_meta`'s bytes as raw DEFLATE with that preset dictionary: about a fifth of
    them on the files the encoder writes, where DEFLATE alone keeps two thirds or more
    (docs/FORMAT.md 5.7).

    >>> assert undict_meta(dict_meta({"encoder": "x", "clip_length": 1})) == {
    ...     "encoder": "x", "clip_length": 1}
    """
    out = bytearray()
    put_varint(out, dict_id)
    return bytes(out) + _deflate(encode_meta(obj), dictionary(dict_id))


def undict_meta(data: bytes) -> MetaValue:
    """Decode a metadata-dict section.

    Raises:
        FormatError: an unknown dictionary, or what :func:`inflate_meta` raises;
        LimitError: the inflated bytes exceed MAX_BYTES.
    """
    r = Reader(data, "metadata-dict section")
    dict_id = r.varint()
    return decode_meta(_inflate(data[r.pos :], dictionary(dict_id), "metadata-dict section"))


def _deflate(raw: bytes, zdict: bytes) -> bytes:
    options = {"zdict": zdict} if zdict else {}
    packer = zlib.compressobj(9, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY, **options)
    return packer.compress(raw) + packer.flush()


def _inflate(data: bytes, zdict: bytes, what: str) -> bytes:
    unpacker = zlib.decompressobj(-15, **({"zdict": zdict} if zdict else {}))
    try:
        raw = unpacker.decompress(data, MAX_BYTES + 1)
    except zlib.error as exc:
        raise FormatError(f"{what}: {exc}") from None
    if len(raw) > MAX_BYTES:
        raise LimitError(f"metadata inflates past the limit of {MAX_BYTES} bytes")
    if not unpacker.eof:
        raise TruncatedError(f"{what}: the DEFLATE stream is cut short")
    if unpacker.unused_data:
        raise FormatError(f"{what}: bytes after the DEFLATE stream")
    return raw


def read_metadata(reader) -> MetaValue:
    """The metadata of an open :class:`bitstream.container.ContainerReader`, from its one
    metadata section: plain (type 1), deflated (type 6) or deflated with a preset dictionary
    (type 8). Not validated (see :func:`bitstream.schema.validate_metadata`).

    Raises:
        FormatError: no metadata section, or more than one.
    """
    present = [t for t in METADATA_SECTIONS if reader.has_section(t)]
    if len(present) != 1:
        raise FormatError(
            f"{reader.name}: needs exactly one metadata section (plain, deflated or with a "
            f"dictionary), has {len(present)}"
        )
    decode = {
        SECTION_METADATA: decode_meta,
        SECTION_METADATA_DEFLATE: inflate_meta,
        SECTION_METADATA_DICT: undict_meta,
    }[present[0]]
    return decode(reader.read_section(present[0]))


def _put_blob(out: bytearray, tag: int, raw: bytes) -> None:
    out.append(tag)
    put_varint(out, len(raw))
    out += raw


def decode_meta(data: bytes) -> MetaValue:
    """Decode one value that spans all of ``data``.

    Raises:
        FormatError: unknown tag, bad UTF-8, duplicate dict key, trailing bytes, lengths past
            the end (TruncatedError), nesting deeper than MAX_DEPTH or more than MAX_BYTES
            (LimitError).
    """
    if len(data) > MAX_BYTES:
        raise LimitError(f"metadata of {len(data)} bytes exceeds the limit of {MAX_BYTES}")
    reader = Reader(data, "metadata")
    value = _decode(reader, 0, [MAX_ITEMS])
    reader.expect_end()
    return value


def _decode(r: Reader, depth: int, budget: list[int]) -> MetaValue:
    """One value; ``budget[0]`` counts down the values still allowed (MAX_ITEMS in all)."""
    if depth > MAX_DEPTH:
        raise LimitError(f"{r.where()}: metadata nested deeper than {MAX_DEPTH}")
    start = r.pos
    tag = r.u8()
    if tag == TAG_NONE:
        return None
    if tag in (TAG_FALSE, TAG_TRUE):
        return tag == TAG_TRUE
    if tag == TAG_INT:
        value = r.svarint()
        if not -(1 << 63) <= value < 1 << 63:  # pragma: no cover - zigzag of < 2**64 fits
            raise FormatError(f"{r.where()}: int outside signed 64 bits")
        return value
    if tag == TAG_FLOAT:
        return r.f64()
    if tag == TAG_STR:
        return _utf8(r, r.take(_length(r)))
    if tag == TAG_BYTES:
        return r.take(_length(r))
    if tag == TAG_LIST:
        return [_decode(r, depth + 1, budget) for _ in range(_items(r, budget))]
    if tag == TAG_DICT:
        result: dict[str, MetaValue] = {}
        for _ in range(_items(r, budget)):
            key = _utf8(r, r.take(_length(r)))
            if key in result:
                raise FormatError(f"{r.where()}: duplicate metadata key {key!r}")
            result[key] = _decode(r, depth + 1, budget)
        return result
    raise FormatError(f"metadata at offset {start}: unknown tag {tag}")


def _length(r: Reader) -> int:
    """A count or length; each item takes at least one byte, so it cannot exceed what is left."""
    n = r.varint()
    if n > r.remaining:
        raise TruncatedError(f"{r.where()}: length {n} exceeds the {r.remaining} bytes left")
    return n


def _items(r: Reader, budget: list[int]) -> int:
    """The item count of a list or dict, charged to the budget before any item is read."""
    n = _length(r)
    budget[0] -= n
    if budget[0] < 0:
        raise LimitError(f"{r.where()}: metadata holds more than {MAX_ITEMS} values")
    return n


def _utf8(r: Reader, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError(f"{r.where()}: invalid UTF-8 ({exc.reason})") from None
