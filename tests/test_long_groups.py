"""Keyframe-only files in long groups (format 1.5): the keyframe codec ``hevc-ra-long`` (id 11),
x265 random access in closed groups of 256 pictures, coded and decoded a picture at a time.
Real x265 and FFmpeg's HEVC decoder, real files on disk."""

from __future__ import annotations

import struct
import time

import numpy as np
import pytest

from bitstream._sample import sample_metadata
from bitstream.errors import FormatError
from bitstream.meta import validate_metadata
from dnerv_codec.decoder import DnervFile
from dnerv_codec.encoder import encode
from dnerv_codec.errors import InputError
from dnerv_codec.keyframe import every_frame_codec, get_codec, keyframe_only
from dnerv_codec.metrics import psnr_frames
from dnerv_codec.video import read_video


def _moving(n: int, h: int = 24, w: int = 40) -> np.ndarray:
    """``n`` frames of a smooth pattern drifting a pixel a frame (x265 predicts it well)."""
    y, x = np.mgrid[0:h, 0:w]
    t = np.arange(n)[:, None, None]
    base = 128 + 60 * np.sin((x[None] + t) / 5.0) * np.cos(y[None] / 4.0)
    rgb = np.stack([base, base[:, ::-1], 255 - base], axis=-1)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def test_groups_of_256_are_closed_and_decode_a_picture_at_a_time():
    frames = _moving(300)
    codec = get_codec("hevc-ra-long", 20)
    assert codec.group == 256 and keyframe_only("hevc-ra-long") and not keyframe_only("hevc-ra")
    data, recon = codec.compress_with_reconstruction(frames)
    assert len(data) == 300
    # closed groups: the first group's strings are those of its pictures coded alone
    assert data[:256] == codec.encode(frames[:256])
    # a memory map's frames, a picture at a time, give the same strings and reconstructions
    into = np.zeros_like(frames)
    assert codec.compress_in_chunks(frames, np.arange(300), into=into) == data
    assert np.array_equal(into, recon)
    second = list(codec.iter_decompress(data[256:], frames.shape[1:3]))
    assert np.array_equal(np.stack(second), recon[256:])
    # stopping after the first picture stops the decoder; decoding again works
    pictures = codec.iter_decompress(data[:256], frames.shape[1:3])
    assert np.array_equal(next(pictures), recon[0])
    pictures.close()
    assert np.array_equal(codec.decompress(data[:256], frames.shape[1:3]), recon[:256])
    assert psnr_frames(frames, recon).min() > 30


@pytest.mark.parametrize("name", ["hevc-ra", "hevc-ra-long"])
def test_pictures_of_few_rows_code(name):
    """x265's cutree corrupts its heap on pictures of 16 or 24 rows and 40 or 48 columns: the
    random-access codecs code them without it."""
    for h, w in [(16, 40), (24, 48), (17, 41)]:
        frames = _moving(12, h, w)
        codec = get_codec(name, 20)
        data, recon = codec.compress_with_reconstruction(frames)
        assert recon.shape == frames.shape and psnr_frames(frames, recon).min() > 25


def test_a_picture_too_many_or_too_few_is_refused():
    frames = _moving(12)
    codec = get_codec("hevc-ra-long", 20)
    data = codec.encode(frames)
    with pytest.raises(FormatError, match="decodes to more than 11 pictures"):
        codec.decompress(data[:10] + [data[10] + data[11]], frames.shape[1:3])
    with pytest.raises(FormatError, match="hevc-ra-long decoder"):
        codec.decompress(data[:1] + [b"\x00\x00\x01" + b"\xff" * 40] * 11, frames.shape[1:3])


def test_the_time_bound_counts_the_decoder_not_the_reader(monkeypatch):
    """A reader may take its time between pictures of a long group; a decoder that takes too
    long is stopped."""
    from dnerv_codec.keyframe import classical

    frames = _moving(50, 64, 96)  # 18 KiB a picture: six fill the pipe, the decoder waits
    codec = get_codec("hevc-ra-long", 20)
    data = codec.encode(frames)
    monkeypatch.setattr(classical, "decode_timeout", lambda n, hp, wp: 1.0)
    decoded = []
    for picture in codec.iter_decompress(data, frames.shape[1:3]):
        decoded.append(picture)
        if len(decoded) <= 6:
            time.sleep(0.4)  # 2.4 s of the reader's time against a bound of 1 s
    assert len(decoded) == 50
    # -re: ffmpeg reads its input at 25 pictures a second, 2 s for these 50
    args = ["-re", "-c:v", "hevc", "-f", "hevc", "-i", "pipe:0", "-f", "rawvideo", "pipe:1"]
    size = codec._frame_bytes(*codec.padded_size(*frames.shape[1:3]))
    slow = classical._decoded_pictures(args, b"".join(data), "slow decoder", size, 50, 0.3)
    with pytest.raises(FormatError, match="slow decoder: gave up after"):
        list(slow)


def test_every_frame_codec_is_the_long_one_past_one_group():
    assert every_frame_codec("hevc-ra", 32) == "hevc-ra"
    assert every_frame_codec("hevc-ra", 33) == "hevc-ra-long"
    assert every_frame_codec("hevc-intra", 500) == "hevc-intra"


def test_long_groups_need_fewer_bytes_on_the_sample(sample_clip):
    """64 real frames: one group of 64 instead of two of 32 saves an IDR picture's bytes."""
    frames = np.asarray(read_video(sample_clip).frames)
    short, short_recon = get_codec("hevc-ra", 22).compress_with_reconstruction(frames)
    long, long_recon = get_codec("hevc-ra-long", 22).compress_with_reconstruction(frames)
    assert sum(map(len, long)) < 0.95 * sum(map(len, short))
    gain = psnr_frames(frames, long_recon).mean() - psnr_frames(frames, short_recon).mean()
    assert gain > -0.1


def test_keyframe_only_file_in_long_groups(tmp_path, sample_clip):
    video = read_video(sample_clip, max_frames=40)
    out = tmp_path / "long.dnerv"
    report = encode([video], out, mode="keyframes", keyframe_quality=20, quiet=True)
    assert report.structure == "keyframes"
    assert struct.unpack_from("<HH", out.read_bytes(), 8) == (1, 5)
    codec = get_codec("hevc-ra-long", 20)
    streams, recon = codec.compress_with_reconstruction(np.asarray(video.frames))
    assert 0 < report.bytes - sum(map(len, streams)) < 400
    with DnervFile(out, device="cpu") as f:
        assert f.meta["keyframe"]["name"] == "hevc-ra-long"
        assert np.array_equal(np.stack(list(f.frames(0))), recon)
        assert np.array_equal(np.stack(list(f.frames(0, 35, 39))), recon[35:39])
        assert np.array_equal(f.keyframe(0, 37), recon[37])


def test_a_file_with_a_network_may_not_use_long_groups(tmp_path, sample_clip):
    meta = sample_metadata()
    validate_metadata(meta)
    meta["keyframe"] = {"codec": 11, "name": "hevc-ra-long", "quality": 20, "weights_digest": ""}
    with pytest.raises(FormatError, match="hevc-ra-long codes keyframe-only files"):
        validate_metadata(meta)
    video = read_video(sample_clip, max_frames=8)
    for mode in ("network", "auto"):
        with pytest.raises(InputError, match="add --mode keyframes"):
            encode([video], tmp_path / f"{mode}.dnerv", keyframe_codec="hevc-ra-long", mode=mode)
    assert not list(tmp_path.iterdir())
