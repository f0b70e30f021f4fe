"""Section payloads: metadata TLV, keyframe index, weight records, and a fuzz of the parsers that
sit behind the CRC (mutated payloads with recomputed checksums)."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bitstream import (
    ChecksumError,
    DnervError,
    FormatError,
    KeyframeIndex,
    LimitError,
    TruncatedError,
    WeightRecord,
    decode_meta,
    deflate_meta,
    dequantize,
    describe_weights,
    describe_weights_packed,
    dict_meta,
    encode_meta,
    inflate_meta,
    pack_keyframes,
    pack_weights,
    pack_weights_compact,
    pack_weights_packed,
    packable,
    quantize,
    undict_meta,
    unpack_keyframes,
    unpack_weights,
    unpack_weights_compact,
    unpack_weights_packed,
    validate_metadata,
)
from bitstream._sample import sample_metadata, sample_records, sample_sections
from bitstream.ids import QUANT_SCHEMES, id_of
from bitstream.meta import MAX_DEPTH

# -- metadata ---------------------------------------------------------------------------------
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.binary(max_size=20)
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None)
@given(value=_values)
def test_meta_round_trip(value):
    decoded = decode_meta(encode_meta(value))
    assert decoded == value
    assert encode_meta(decoded) == encode_meta(value)  # also -0.0 vs 0.0, key order


def test_meta_floats_and_key_order_are_exact():
    value = {"z": -0.0, "a": math.nan, "m": 1e-310, "i": math.inf, "p": 0.1 + 0.2}
    decoded = decode_meta(encode_meta(value))
    assert list(decoded) == ["z", "a", "m", "i", "p"]
    assert struct.pack("<d", decoded["z"]) == struct.pack("<d", -0.0)
    assert math.isnan(decoded["a"]) and decoded["p"] == 0.1 + 0.2 and decoded["m"] == 1e-310


def test_meta_refuses_what_it_cannot_hold():
    for bad in ({1: "x"}, {"s": {1, 2}}, 2**63, object()):
        with pytest.raises(ValueError):
            encode_meta(bad)
    deep: list = []
    for _ in range(MAX_DEPTH + 2):
        deep = [deep]
    with pytest.raises(ValueError):
        encode_meta(deep)
    assert decode_meta(encode_meta(np.int64(5))) == 5


def test_meta_malformed():
    cases = {
        b"": TruncatedError,
        b"\x09": FormatError,  # unknown tag
        b"\x00\x00": FormatError,  # trailing bytes
        b"\x05\x05ab": TruncatedError,  # string longer than the data
        b"\x05\x02\xff\xfe": FormatError,  # bad UTF-8
        b"\x08\x02\x01a\x00\x01a\x00": FormatError,  # duplicate key
        b"\x07\xff\xff\xff\xff\x0f": TruncatedError,  # 4 billion items claimed
        b"\x03\x80\x00": FormatError,  # overlong varint
        b"\x07\x01" * (MAX_DEPTH + 2) + b"\x00": LimitError,  # too deep
    }
    for data, error in cases.items():
        with pytest.raises(error):
            decode_meta(data)


def test_metadata_schema():
    meta = sample_metadata()
    assert validate_metadata(decode_meta(encode_meta(meta))) == meta
    for key in ("videos", "quant"):
        broken = dict(meta)
        del broken[key]
        with pytest.raises(FormatError, match=key):
            validate_metadata(broken)
    broken = dict(meta, videos=[dict(meta["videos"][0], width=0)])
    with pytest.raises(FormatError, match="width"):
        validate_metadata(broken)


# -- keyframes --------------------------------------------------------------------------------
@settings(max_examples=50, deadline=None)
@given(
    entries=st.dictionaries(
        st.tuples(st.integers(0, 5), st.integers(0, 50)), st.binary(max_size=64)
    )
)
def test_keyframes_round_trip(entries):
    data = pack_keyframes(entries)
    assert unpack_keyframes(data) == entries
    index = KeyframeIndex.from_bytes(data)
    assert index.keys() == sorted(entries)
    assert index.count(0) == sum(1 for v, _ in entries if v == 0)


def test_keyframes_damage():
    data = pack_keyframes({(0, 0): b"aaaa", (0, 1): b"bbbb", (1, 0): b"cc"})
    damaged = bytearray(data)
    damaged[-1] ^= 1
    with pytest.raises(ChecksumError, match="keyframe 0 of video 1"):
        unpack_keyframes(bytes(damaged))
    damaged = bytearray(data)
    damaged[10] ^= 1
    with pytest.raises(ChecksumError, match="index"):
        unpack_keyframes(bytes(damaged))
    with pytest.raises(TruncatedError):
        unpack_keyframes(data[:20])
    with pytest.raises(TruncatedError):
        unpack_keyframes(struct.pack("<II", 10**9, 0))


# -- weights ----------------------------------------------------------------------------------
def _close(a: WeightRecord, b: WeightRecord) -> None:
    assert (a.name, tuple(a.shape), a.scheme, a.bits, a.axis) == (
        b.name,
        tuple(b.shape),
        b.scheme,
        b.bits,
        b.axis,
    )
    np.testing.assert_array_equal(dequantize(a), dequantize(b))


def test_weights_round_trip_every_scheme():
    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.05, (16, 8, 3, 3)).astype(np.float32)
    records = [
        quantize("a", w, "affine", 8, axis=0),
        quantize("b", w, "symmetric", 6, axis=1),
        quantize("c", w, "affine", 4),
        quantize("d", w[0, 0], "float32"),
        quantize("e", w[0], "float16"),
        quantize("f", np.zeros((3, 0)), "affine", 8),
    ]
    back = unpack_weights(pack_weights(records))
    for a, b in zip(records, back, strict=True):
        _close(a, b)
    assert np.abs(dequantize(back[0]) - w).max() <= np.max(back[0].scale) / 2 + 1e-7
    assert back[1].symbols.shape == w.shape


def test_describe_weights_matches_the_payloads():
    rng = np.random.default_rng(4)
    records = [
        quantize("lap", rng.laplace(0, 1, (64, 50)).astype(np.float32), "symmetric", 8, axis=0),
        quantize("bias", rng.normal(0, 1, 64), "float32"),
    ]
    rows = describe_weights(pack_weights(records))
    assert [r["name"] for r in rows] == ["lap", "bias"]
    assert (
        rows[0]["model"] in ("categorical", "laplace", "gaussian") and rows[0]["elements"] == 3200
    )
    assert rows[1]["model"] is None and rows[1]["payload_bytes"] == 256


def test_dequantize_is_the_documented_formula():
    rec = WeightRecord(
        "t",
        (2, 3),
        "affine",
        4,
        axis=0,
        scale=np.array([0.5, 2.0], np.float32),
        offset=np.array([-1.0, 10.0], np.float32),
        symbols=np.array([[0, 1, 15], [0, 2, 3]]),
    )
    assert dequantize(rec).tolist() == [[-1.0, -0.5, 6.5], [10.0, 14.0, 16.0]]
    rec = WeightRecord("s", (3,), "symmetric", 3, scale=np.array([0.25], np.float32))
    rec.symbols = np.array([-3, 0, 3])
    assert dequantize(rec).dtype == np.float32 and dequantize(rec).tolist() == [-0.75, 0.0, 0.75]


def test_weights_refuse_inconsistent_records():
    good = sample_records()[0]
    bad = [
        WeightRecord(
            "x",
            (4,),
            "affine",
            8,
            symbols=np.array([0, 1, 256, 3]),
            scale=np.ones(1),
            offset=np.ones(1),
        ),
        WeightRecord(
            "x", (4,), "symmetric", 8, symbols=np.array([0, 1, -128, 3]), scale=np.ones(1)
        ),
        WeightRecord(
            "x",
            (4,),
            "affine",
            8,
            axis=0,
            symbols=np.zeros(4, int),
            scale=np.ones(3),
            offset=np.ones(3),
        ),
        WeightRecord(
            "x", (4,), "symmetric", 8, symbols=np.zeros(4, int), scale=np.ones(1), offset=np.ones(1)
        ),
        WeightRecord(
            "x", (4,), "affine", 17, symbols=np.zeros(4, int), scale=np.ones(1), offset=np.ones(1)
        ),
        WeightRecord("x", (4,), "float32", 16, values=np.zeros(4)),
        WeightRecord("x", (4,), "int4", 4),
    ]
    for record in bad:
        with pytest.raises(FormatError):
            pack_weights([record])
    with pytest.raises(FormatError, match="duplicate"):
        pack_weights([good, good])


def test_weights_malformed_sections():
    data = pack_weights(sample_records())
    with pytest.raises(FormatError):
        unpack_weights(data + b"\0")
    with pytest.raises(TruncatedError):
        unpack_weights(data[:-3])
    with pytest.raises(FormatError):
        unpack_weights(struct.pack("<I", 10**9))
    huge = bytearray(data)
    dims_at = 4 + 2 + len("decoder.0.conv.weight") + 4
    huge[dims_at : dims_at + 4] = struct.pack("<I", 1 << 30)
    with pytest.raises(LimitError):
        unpack_weights(bytes(huge))


def _layout(records):
    return [(r.name, r.shape) for r in records]


def test_compact_weights_round_trip_and_are_smaller():
    records = sample_records()
    data = pack_weights_compact(records)
    back = unpack_weights_compact(data, _layout(records))
    for a, b in zip(records, back, strict=True):
        assert a.name == b.name and a.shape == b.shape
        _close(a, b)
    plain = pack_weights(records)
    names = sum(len(r.name) for r in records)
    assert len(data) <= len(plain) - names - 8 * len(records), (len(data), len(plain))
    rows = describe_weights(data, _layout(records))
    assert rows == describe_weights(plain)


def test_compact_weights_malformed_sections():
    records = sample_records()
    data, layout = pack_weights_compact(records), _layout(records)
    with pytest.raises(FormatError):
        unpack_weights_compact(data + b"\0", layout)
    with pytest.raises(TruncatedError):
        unpack_weights_compact(data[:-3], layout)
    with pytest.raises(FormatError, match="records"):  # the network has a tensor more or less
        unpack_weights_compact(data, layout[:-1])
    with pytest.raises(FormatError, match="records"):
        unpack_weights_compact(data, [*layout, ("extra.weight", (3,))])
    bigger = [(name, (shape[0] + 1, *shape[1:]) if shape else shape) for name, shape in layout]
    with pytest.raises(FormatError):  # per-channel scales or symbols no longer match the shape
        unpack_weights_compact(data, bigger)
    with pytest.raises(FormatError, match="duplicate"):
        pack_weights_compact([records[0], records[0]])


# -- fuzz behind the CRC ----------------------------------------------------------------------
def test_fuzz_section_parsers_raise_only_dnerv_errors():
    layout = _layout(sample_records())
    parsers = {
        1: decode_meta,
        2: unpack_keyframes,
        3: unpack_weights,
        4: lambda data: unpack_weights_compact(data, layout),
    }
    sections = dict(sample_sections())
    sections[4] = pack_weights_compact(sample_records())
    assert _fuzz(parsers, sections, seed=99, rounds=4000) > 1300


def _fuzz(parsers, sections, seed: int, rounds: int) -> int:
    """Damage each section type in turn (1-3 bytes, sometimes cut short) and parse it: only
    DnervErrors may come out. Returns how many parses refused the damage."""
    rng = np.random.default_rng(seed)
    types = sorted(parsers)
    errors = 0
    for i in range(rounds):
        type_id = types[i % len(types)]
        data = bytearray(sections[type_id])
        for _ in range(int(rng.integers(1, 4))):
            data[int(rng.integers(len(data)))] = int(rng.integers(256))
        if rng.random() < 0.15:
            del data[int(rng.integers(len(data))) :]
        try:
            parsers[type_id](bytes(data))
        except DnervError:
            errors += 1
    return errors


# -- format 1.2: packed weights, deflated metadata ---------------------------------------------
def _packable_records(scheme="symmetric", bits=5):
    rng = np.random.default_rng(5)
    w = rng.normal(0, 0.05, (16, 8, 3, 3)).astype(np.float32)
    return [
        quantize("conv.weight", w, scheme, bits, axis=0),
        quantize("conv.bias", w[:, 0, 0, 0], scheme, bits),
        quantize("head.weight", w[:3, :2], scheme, bits),
        quantize("empty.weight", np.zeros((3, 0), np.float32), scheme, bits),
        quantize("scalar", np.float32(0.25).reshape(()), scheme, bits),
    ]


@pytest.mark.parametrize("scheme, bits", [("symmetric", 4), ("symmetric", 8), ("affine", 6)])
def test_packed_weights_round_trip_and_beat_compact(scheme, bits):
    records = _packable_records(scheme, bits)
    layout = _layout(records)
    assert packable(records)
    data = pack_weights_packed(records)
    back = unpack_weights_packed(data, layout)
    for a, b in zip(records, back, strict=True):
        _close(a, b)
    # one header and one entropy stream instead of one of each per tensor
    assert len(data) < len(pack_weights_compact(records))
    rows = describe_weights_packed(data, layout)
    assert [r["elements"] for r in rows] == [math.prod(r.shape) for r in records]
    assert {r["model"] for r in rows} == {rows[0]["model"]} and "(shared)" in rows[0]["model"]


def test_packed_weights_need_one_quantised_scheme_and_axes_0_or_minus_1():
    records = _packable_records()
    rng = np.random.default_rng(1)
    w = rng.normal(0, 1, (4, 6)).astype(np.float32)
    for odd in (
        quantize("x", w, "symmetric", 6),  # another bit depth
        quantize("x", w, "affine", 5),  # another scheme
        quantize("x", w, "symmetric", 5, axis=1),  # another axis
        quantize("x", w, "float32"),
    ):
        assert not packable([*records, odd])
        with pytest.raises(FormatError, match="packed"):
            pack_weights_packed([*records, odd])
    assert not packable([])


def test_packed_weights_malformed_sections():
    records = _packable_records()
    data, layout = pack_weights_packed(records), _layout(records)
    with pytest.raises(FormatError):
        unpack_weights_packed(data + b"\0", layout)
    with pytest.raises(FormatError):  # the payload runs to the end: cut, it no longer decodes
        unpack_weights_packed(data[:-3], layout)
    with pytest.raises(FormatError, match="records"):
        unpack_weights_packed(data, layout[:-1])
    bad_scheme = bytearray(data)
    bad_scheme[1] = id_of(QUANT_SCHEMES, "float32")
    with pytest.raises(FormatError, match="quantised scheme"):
        unpack_weights_packed(bytes(bad_scheme), layout)
    padding = bytearray(data)
    padding[3] |= 0x80  # five records: bits 5..7 of the flag byte must stay clear
    with pytest.raises(FormatError, match="flags"):
        unpack_weights_packed(bytes(padding), layout)
    scalar = bytearray(data)
    scalar[3] |= 1 << 4  # the scalar flagged per-channel
    with pytest.raises(FormatError, match="scalar"):
        unpack_weights_packed(bytes(scalar), layout)
    bigger = [(name, (shape[0] + 1, *shape[1:]) if shape else shape) for name, shape in layout]
    with pytest.raises(FormatError):  # scales and symbols no longer match the shapes
        unpack_weights_packed(data, bigger)


def test_fuzz_packed_weights_and_deflated_metadata_raise_only_dnerv_errors():
    records = _packable_records()
    layout = _layout(records)
    parsers = {
        5: lambda data: unpack_weights_packed(data, layout),
        6: inflate_meta,
    }
    sections = {5: pack_weights_packed(records), 6: deflate_meta(sample_metadata(16))}
    assert _fuzz(parsers, sections, seed=7, rounds=1000) > 300


def test_deflated_metadata_round_trips_smaller_and_refuses_damage(monkeypatch):
    from bitstream import meta as meta_module

    value = sample_metadata(16)
    data = deflate_meta(value)
    assert inflate_meta(data) == value
    assert len(data) < len(encode_meta(value))
    with pytest.raises(FormatError):
        inflate_meta(b"\xff" * 8)  # not a DEFLATE stream
    with pytest.raises(TruncatedError):
        inflate_meta(data[:-4])
    with pytest.raises(FormatError, match="after"):
        inflate_meta(data + b"\0")
    bomb = deflate_meta({"pad": "x" * 10_000})
    monkeypatch.setattr(meta_module, "MAX_BYTES", 64)  # refused while inflating
    with pytest.raises(LimitError):
        inflate_meta(bomb)


# -- format 1.4: metadata with a preset dictionary --------------------------------------------
def test_dictionary_metadata_round_trips_much_smaller_and_refuses_damage(monkeypatch):
    from bitstream import meta as meta_module

    value = sample_metadata(16)
    data = dict_meta(value)
    assert undict_meta(data) == value
    assert data[0] == 1  # the dictionary id, a varint
    # the keys and structure are in the dictionary: a fraction of the plain deflated size
    assert len(data) < 0.6 * len(deflate_meta(value))
    keyframe_only = {
        "encoder": "someone else's writer 2.0",
        "videos": [
            {"name": "a", "frames": 8, "width": 320, "height": 180, "fps_num": 25, "fps_den": 1}
        ],
        "clip_length": 1,
        "keyframe": {"codec": 10, "name": "hevc-ra", "quality": 31, "weights_digest": ""},
    }
    assert undict_meta(dict_meta(keyframe_only)) == keyframe_only
    assert len(dict_meta(keyframe_only)) < 0.4 * len(deflate_meta(keyframe_only))
    with pytest.raises(FormatError, match="unknown dictionary 2"):
        undict_meta(b"\x02" + data[1:])
    with pytest.raises(FormatError):
        undict_meta(b"\x01" + b"\xff" * 8)  # not a DEFLATE stream
    with pytest.raises(FormatError):  # the stream needs its dictionary: without it, refused
        inflate_meta(data[1:])
    with pytest.raises(TruncatedError):
        undict_meta(data[:-4])
    with pytest.raises(TruncatedError):
        undict_meta(b"")
    with pytest.raises(FormatError, match="after"):
        undict_meta(data + b"\0")
    bomb = dict_meta({"pad": "x" * 10_000})
    monkeypatch.setattr(meta_module, "MAX_BYTES", 64)  # refused while inflating
    with pytest.raises(LimitError):
        undict_meta(bomb)


def test_dictionary_1_never_changes():
    """Dictionaries are append-only: dictionary 1's bytes are fixed forever (docs/FORMAT.md 5.7),
    or every file written with it would decode to other metadata."""
    import hashlib

    from bitstream.meta import dictionary

    data = dictionary(1)
    assert len(data) == 872
    assert hashlib.sha256(data).hexdigest() == (
        "107adf400b506ddeb5f2fbbc59c2c398b85e6e15652d1296b84b0d0aebbacf70"
    )
    with pytest.raises(FormatError, match="unknown dictionary 0"):
        dictionary(0)


def test_fuzz_dictionary_metadata_raises_only_dnerv_errors():
    meta = sample_metadata(16)
    parsers = {8: lambda data: validate_metadata(undict_meta(data))}
    assert _fuzz(parsers, {8: dict_meta(meta)}, seed=13, rounds=1000) > 300


def test_a_file_has_exactly_one_metadata_section(tmp_path):
    from bitstream.container import ContainerReader, ContainerWriter
    from bitstream.meta import read_metadata

    meta = sample_metadata(16)
    for types in ([1, 8], [6, 8], [1, 6, 8], []):
        writer = ContainerWriter()
        payloads = {1: encode_meta(meta), 6: deflate_meta(meta), 8: dict_meta(meta)}
        for type_id in sorted([*types, 2]):
            writer.add(type_id, payloads.get(type_id, b""))
        with ContainerReader(writer.finish()) as reader:
            with pytest.raises(FormatError, match="exactly one metadata section"):
                read_metadata(reader)
    with ContainerReader(ContainerWriter().add(8, dict_meta(meta)).finish()) as reader:
        assert read_metadata(reader) == meta


# -- the metadata validator ---------------------------------------------------------------------
def _metadata_checked(data: bytes) -> dict:
    return validate_metadata(decode_meta(data))


def test_a_network_file_needs_its_patch_geometry():
    """docs/FORMAT.md 5.2: `geometry` is MUST in a file with a network, mode "patches" with both
    patch sides; the validator (the one schema check) refuses it missing or partial."""
    meta = sample_metadata(16)
    validate_metadata(meta)
    for broken, match in (
        (lambda m: m.pop("geometry"), "geometry"),
        (lambda m: m["geometry"].pop("mode"), "geometry.mode"),
        (lambda m: m["geometry"].update(mode="tiles"), "geometry.mode"),
        (lambda m: m["geometry"].pop("patch_w"), "geometry.patch_w"),
    ):
        value = sample_metadata(16)
        broken(value)
        with pytest.raises(FormatError, match=match):
            validate_metadata(value)


def test_fuzz_metadata_validator_raises_only_dnerv_errors():
    """Damaged metadata bytes (valid CRC) through the parser and the validator together."""
    meta = sample_metadata(16)
    parsers = {
        1: _metadata_checked,
        6: lambda data: validate_metadata(inflate_meta(data)),
    }
    sections = {1: encode_meta(meta), 6: deflate_meta(meta)}
    assert _fuzz(parsers, sections, seed=11, rounds=2000) > 600


def _paths(value, prefix=()):
    """Every (path of keys and indices) inside a metadata value, the value's own included."""
    yield prefix
    if isinstance(value, (dict, list)):
        for key, item in value.items() if isinstance(value, dict) else enumerate(value):
            yield from _paths(item, (*prefix, key))


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_metadata_validator_takes_any_value_anywhere(data):
    """Any value put anywhere in valid metadata is accepted or refused with a FormatError
    (never another exception): the schema check is total."""
    meta = sample_metadata()
    meta["geometry"] = {"mode": "patches", "patch_h": 192, "patch_w": 320}
    meta["model"]["config"].update(frame_size=[192, 320], clip_length=8, expansion=2.0)
    meta["model"]["config"].update(mean=[0.5, 0.5, 0.5], rgb_skip=True)
    validate_metadata(meta)
    path = data.draw(st.sampled_from(list(_paths(meta))[1:]))
    target = meta
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = data.draw(_values | st.integers(-(2**63), 2**63 - 1) | st.floats())
    try:
        validate_metadata(decode_meta(encode_meta(meta)))
    except FormatError:
        pass


def test_metadata_limits_and_names():
    from bitstream.meta import MAX_ITEMS, name_problem, printable, safe_name

    meta = sample_metadata()
    cases = {
        "frames": dict(meta, videos=[dict(meta["videos"][0], frames=2**30)]),
        "clip_length": dict(meta, clip_length=2**40),
        "codec id 1 is png": dict(meta, keyframe=dict(meta["keyframe"], name="hevc-intra")),
        "named": dict(meta, videos=meta["videos"] * 2),
        "strides": dict(meta, model=dict(meta["model"], config={"strides": [2, 0]})),
    }
    for match, value in cases.items():
        with pytest.raises(FormatError, match=match):
            validate_metadata(value)
    with pytest.raises(LimitError, match="values"):
        decode_meta(encode_meta([0] * MAX_ITEMS + [0]))
    assert decode_meta(encode_meta([0] * (MAX_ITEMS - 1))) == [0] * (MAX_ITEMS - 1)
    for bad in ("", ".", "..", "a/b", "a\\b", "c:d", "-x", "a\x00", "\x1b[2J", "x" * 256, "\u2028"):
        assert name_problem(bad) is not None, bad
        assert name_problem(safe_name(bad)) is None, bad
    assert name_problem("bbb_320x180 (2) é") is None and safe_name("bbb") == "bbb"
    assert printable("a\x1b[2Jb\u202e") == "a\\x1b[2Jb\\u202e"
