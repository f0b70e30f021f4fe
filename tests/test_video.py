"""Reading real videos and frame folders through the bundled ffmpeg."""

from __future__ import annotations

import subprocess
from fractions import Fraction

import numpy as np
import pytest
from PIL import Image

from dnerv_codec.errors import InputError
from dnerv_codec.video import ffmpeg_exe, probe, read_inputs, read_video


def test_reads_the_sample_clip(sample_clip):
    video = read_video(sample_clip)
    assert video.frames.shape == (64, 180, 320, 3)
    assert video.frames.dtype == np.uint8
    assert video.fps == Fraction(25)
    assert video.name == "bbb_320x180_64f"
    assert 40 < video.frames.mean() < 220  # a real picture, not black


def test_max_frames_and_probe(sample_clip_640):
    assert probe(sample_clip_640) == (640, 360, Fraction(25))
    assert read_video(sample_clip_640, max_frames=3).frames.shape == (3, 360, 640, 3)


def test_ntsc_rate_and_odd_size_mkv(tmp_path):
    out = tmp_path / "odd.mkv"
    source = "testsrc2=size=175x143:rate=30000/1001,format=gbrp"
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", source,
         "-frames:v", "5", "-c:v", "ffv1", str(out)],
        check=True,
    )  # fmt: skip
    video = read_video(out)
    assert video.frames.shape == (5, 143, 175, 3)
    assert video.fps == Fraction(30000, 1001)


def test_frame_folder_and_unique_names(tmp_path, sample_clip):
    folder = tmp_path / "frames"
    folder.mkdir()
    ref = read_video(sample_clip, max_frames=3)
    for i, frame in enumerate(ref.frames):
        Image.fromarray(frame).save(folder / f"{i:04d}.png")
    videos = read_inputs([folder, sample_clip, sample_clip], max_frames=3)
    assert [v.name for v in videos] == ["frames", "bbb_320x180_64f", "bbb_320x180_64f-2"]
    np.testing.assert_array_equal(videos[0].frames, ref.frames)


@pytest.mark.parametrize("content", [b"", b"not a video at all"])
def test_bad_files_raise_input_error(tmp_path, content):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(content)
    with pytest.raises(InputError, match="bad.mp4"):
        read_video(bad)


def test_missing_paths_raise_input_error(tmp_path):
    with pytest.raises(InputError, match="no such"):
        read_inputs([tmp_path / "missing.mp4"])
    with pytest.raises(InputError, match="no such"):
        read_video(tmp_path / "missing.mp4")
