"""Keyframe codecs: registry, classical codecs through ffmpeg, colour conversion, byte streams."""

from __future__ import annotations

import numpy as np
import pytest

from bitstream import ids
from dnerv_codec.errors import DnervError, FormatError, InputError, WeightsError
from dnerv_codec.keyframe import (
    DEFAULT_CODEC,
    DEFAULT_QUALITY,
    available,
    bytestreams,
    codec_name,
    color,
    get_codec,
    quality_range,
)
from dnerv_codec.video import read_video

CLASSICAL = ["png", "hevc-intra", "vvc-intra", "avif", "hevc-ld", "hevc-ra"]
LOSSY = ["hevc-intra", "vvc-intra", "avif", "hevc-ld", "hevc-ra"]


@pytest.fixture(scope="module")
def real_frames(sample_clip) -> np.ndarray:
    """Keyframes 0 and 8 of the 320x180 Big Buck Bunny sample."""
    return read_video(sample_clip, max_frames=9).frames[[0, 8]]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / mse))


# -- registry ----------------------------------------------------------------------------------
def test_available_lists_every_codec_in_id_order():
    names = available()
    assert names == [ids.KEYFRAME_CODECS[i] for i in sorted(ids.KEYFRAME_CODECS)]
    for name in names:
        assert codec_name(ids.id_of(ids.KEYFRAME_CODECS, name)) == name
    assert DEFAULT_CODEC in CLASSICAL
    lo, hi = quality_range(DEFAULT_CODEC)
    assert lo <= DEFAULT_QUALITY <= hi


def test_numpy_integer_qualities_are_accepted():
    assert get_codec("avif", np.int64(3)).quality == 3


def test_quality_ranges():
    assert quality_range("png") == (1, 1)
    assert quality_range("hevc-intra") == (1, 12)
    assert quality_range("hevc-ra") == (1, 34)
    assert quality_range("cheng2020-anchor") == (1, 6)
    assert quality_range("mbt2018-mean") == (1, 8)


@pytest.mark.parametrize(
    "call",
    [
        lambda: get_codec("jpeg", 3),
        lambda: get_codec("hevc-intra", 0),
        lambda: get_codec("hevc-intra", 13),
        lambda: get_codec("png", 2),
        lambda: get_codec("avif", 2.5),
        lambda: get_codec("avif", True),
        lambda: get_codec("cheng2020-anchor", 7, weights="random:0"),
        lambda: get_codec("hevc-intra", 3, weights="w.pth"),
        lambda: quality_range("nope"),
        lambda: codec_name(99),
    ],
)
def test_bad_names_and_qualities_give_one_line_input_errors(call):
    with pytest.raises(InputError) as info:
        call()
    assert isinstance(info.value, DnervError) and "\n" not in str(info.value)


def test_classical_codecs_refuse_a_weights_digest():
    codec = get_codec("hevc-intra", 3)
    assert codec.weights_digest == ""
    codec.check_weights("")
    with pytest.raises(WeightsError, match="--keyframe-weights"):
        codec.check_weights("ab" * 32)


# -- round trips ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", CLASSICAL)
def test_round_trip_is_exact_and_deterministic(name, real_frames):
    codec = get_codec(name, quality_range(name)[1] // 2 or 1)
    assert codec.codec_id == ids.id_of(ids.KEYFRAME_CODECS, name)
    data, recon = codec.compress_with_reconstruction(real_frames)
    assert len(data) == 2 and all(isinstance(d, bytes) and d for d in data)
    assert codec.compress(real_frames) == data  # encoders are deterministic too
    size = real_frames.shape[1:3]
    first, second = codec.decompress(data, size), codec.decompress(data, size)
    assert first.dtype == np.uint8 and first.shape == real_frames.shape
    assert np.array_equal(first, recon) and np.array_equal(first, second)
    # Intra codecs: each keyframe decodes on its own (the decoder fetches single keyframes);
    # a predictive codec's group decodes from its first picture on.
    if codec.group == 1:
        for i, blob in enumerate(data):
            assert np.array_equal(codec.decompress([blob], size)[0], recon[i])
    else:
        assert np.array_equal(codec.decompress(data[:1], size)[0], recon[0])
    if name == "png":
        assert np.array_equal(recon, real_frames)
    else:
        assert psnr(recon, real_frames) > 25


@pytest.mark.parametrize("name", CLASSICAL)
@pytest.mark.parametrize("size", [(143, 175), (9, 2), (1, 1)])
def test_odd_sizes_round_trip(name, size):
    rng = np.random.default_rng(1)
    h, w = size
    base = np.linspace(0, 255, h * w * 3).reshape(1, h, w, 3)
    frames = np.clip(base + rng.normal(0, 8, (2, h, w, 3)), 0, 255).astype(np.uint8)
    codec = get_codec(name, quality_range(name)[1])
    data, recon = codec.compress_with_reconstruction(frames)
    out = codec.decompress(data, size)
    assert out.shape == frames.shape and np.array_equal(out, recon)
    assert np.abs(out.astype(int) - frames).mean() < 6


@pytest.mark.parametrize("name", LOSSY)
def test_higher_quality_gives_more_bytes_and_higher_psnr(name, real_frames):
    frame = real_frames[:1]
    sizes, psnrs = [], []
    hi = quality_range(name)[1]
    for q in (hi * 2 // 12, hi * 6 // 12, hi * 10 // 12):  # hevc-ra: 1..34, the others 1..12
        data, recon = get_codec(name, q).compress_with_reconstruction(frame)
        sizes.append(len(data[0]))
        psnrs.append(psnr(recon, frame))
    assert sizes == sorted(sizes) and len(set(sizes)) == 3, sizes
    assert psnrs == sorted(psnrs) and psnrs[2] - psnrs[0] > 5, psnrs


def _panning_groups_decode_alone(real_frames, name: str, quality: int, n: int):
    """Code n keyframes of a slowly panning real frame; check each group decodes on its own.

    Returns (codec, frames, data, reconstruction)."""
    frames = np.stack([np.roll(real_frames[0], 2 * k, axis=1) for k in range(n)])
    codec = get_codec(name, quality)
    data, recon = codec.compress_with_reconstruction(frames)
    assert len(data) == n and psnr(recon, frames) > 25
    g = codec.group
    for start in range(0, n, g):
        run = data[start : start + g]
        assert np.array_equal(codec.decompress(run, frames.shape[1:3]), recon[start : start + g])
    return codec, frames, data, recon


def test_hevc_ld_groups_decode_on_their_own_and_predict_cheaply(real_frames, monkeypatch):
    from dnerv_codec.keyframe.classical import HevcLowDelay

    monkeypatch.setattr(HevcLowDelay, "group", 3)
    # 7 keyframes: groups [0, 3), [3, 6), [6, 7)
    codec, frames, data, _ = _panning_groups_decode_alone(real_frames, "hevc-ld", 6, 7)
    intra = [len(data[k]) for k in (0, 3, 6)]
    predicted = [len(data[k]) for k in (1, 2, 4, 5)]
    assert max(predicted) < min(intra) / 2, (intra, predicted)
    intra_codec = get_codec("hevc-intra", 6)
    assert sum(map(len, data)) < sum(map(len, intra_codec.compress(frames))) * 0.75


def test_hevc_ra_groups_decode_as_wholes_and_use_b_pictures(real_frames, monkeypatch):
    from dnerv_codec.keyframe.bytestreams import nal_units
    from dnerv_codec.keyframe.classical import HevcLowDelay

    monkeypatch.setattr(HevcLowDelay, "group", 8)  # hevc-ra inherits it
    # 19 keyframes: groups [0, 8), [8, 16), [16, 19); quality 16 is QP 36, as hevc-ld 6
    codec, frames, data, recon = _panning_groups_decode_alone(real_frames, "hevc-ra", 16, 19)
    assert codec.group == 8
    size = frames.shape[1:3]
    for start in (0, 8, 16):
        first = nal_units(data[start])
        assert any((nal[0] >> 1) & 0x3F in (19, 20) for nal in first)  # opens with an IDR
    # B pictures: some pictures are decoded out of display order, so a group's first two
    # strings alone decode to frames that are not the group's first two frames
    two = codec.decompress(data[:2], size)
    assert not np.array_equal(two, recon[:2])
    for q in quality_range("hevc-ra"):  # both ends are valid QPs (51 and 18)
        assert len(get_codec("hevc-ra", q).compress(frames[:3])) == 3
    ld = get_codec("hevc-ld", 6).compress(frames)
    assert sum(map(len, data)) < sum(map(len, ld)), (sum(map(len, data)), sum(map(len, ld)))


# -- bad data -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", CLASSICAL)
def test_garbage_and_wrong_size_are_format_errors(name, real_frames):
    codec = get_codec(name, 1 if name == "png" else 4)
    data = codec.compress(real_frames[:1])
    with pytest.raises(FormatError):
        codec.decompress([b"\x00\x00\x01garbage" * 3], (180, 320))
    with pytest.raises(FormatError):
        codec.decompress(data, (90, 320))
    with pytest.raises(FormatError):
        codec.decompress([], (180, 320))


@pytest.mark.parametrize(
    "frames",
    [
        np.zeros((1, 8, 8, 3), dtype=np.float32),
        np.zeros((8, 8, 3), dtype=np.uint8),
        np.zeros((0, 8, 8, 3), dtype=np.uint8),
        np.zeros((1, 8, 8, 4), dtype=np.uint8),
        [[1, 2, 3]],
    ],
)
def test_bad_frames_are_input_errors(frames):
    with pytest.raises(InputError):
        get_codec("png", 1).compress(frames)


# -- colour and byte streams -----------------------------------------------------------------------
@pytest.mark.parametrize("bits", [8, 10])
def test_colour_round_trip_is_within_one_level(bits):
    rgb = np.random.default_rng(2).integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    back = color.yuv444_to_rgb(color.rgb_to_yuv444(rgb, bits), bits)
    assert np.abs(back.astype(int) - rgb).max() <= (1 if bits == 8 else 0)
    grey = np.full((1, 4, 4, 3), 77, dtype=np.uint8)
    yuv = color.rgb_to_yuv444(grey, bits)
    assert (yuv[0, 1:] == 128 << (bits - 8)).all()  # neutral chroma


def test_chroma_resampling_keeps_flat_planes_and_shapes():
    plane = np.full((2, 6, 10), 300, dtype=np.uint16)
    down = color.downsample_420(plane)
    assert down.shape == (2, 3, 5) and (down == 300).all()
    up = color.upsample_420(down)
    assert up.shape == (2, 6, 10) and (up == 300).all()


def test_ivf_split_join_round_trip():
    frames = [b"\x32\x05abcde", b"\x32\x01z"]
    stream = bytestreams.join_ivf(frames, 16, 8)
    assert bytestreams.split_ivf(stream) == frames
    with pytest.raises(FormatError):
        bytestreams.split_ivf(stream[:-1])


def test_annexb_split_drops_access_unit_delimiters():
    vps, sps, pps = b"\x40\x01\x0c", b"\x42\x01\x01", b"\x44\x01\xc1"
    aud, slice_first, slice_next = b"\x46\x01\x50", b"\x26\x01\xaf\x11", b"\x26\x01\x2f\x22"
    stream = b"".join(
        b"\x00\x00\x00\x01" + n for n in [aud, vps, sps, pps, slice_first, slice_next, aud]
    ) + b"".join(b"\x00\x00\x01" + n for n in [vps, sps, pps, slice_first])
    units = bytestreams.split_annexb(stream, "hevc")
    assert len(units) == 2
    assert units[0] == b"".join(
        b"\x00\x00\x01" + n for n in [vps, sps, pps, slice_first, slice_next]
    )


@pytest.mark.parametrize("module", ["__init__", "base", "classical", "color"])
def test_docstring_examples_run(module):
    import doctest
    import importlib

    name = "dnerv_codec.keyframe" + ("" if module == "__init__" else f".{module}")
    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0 and result.attempted > 0
