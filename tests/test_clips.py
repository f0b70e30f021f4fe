"""Clip and keyframe arithmetic, as the official D-NeRV code defines it."""

from __future__ import annotations

import numpy as np
import pytest

from dnerv_codec.clips import clip_inputs, clips_covering, clips_of, keyframe_frames


def test_keyframes_every_t_frames_and_the_last_frame():
    assert keyframe_frames(64, 8) == [0, 8, 16, 24, 32, 40, 48, 56, 63]
    assert keyframe_frames(65, 8) == [0, 8, 16, 24, 32, 40, 48, 56, 64]
    assert keyframe_frames(1, 8) == [0]
    assert len(keyframe_frames(600, 8)) == 76  # the paper's count for a 600-frame video


def test_clips_share_keyframes_and_cover_every_frame_once():
    for length in (1, 2, 7, 8, 9, 16, 17, 20, 63, 64):
        clips = clips_of(length, 8)
        covered = [f for c in clips for f in range(c.start, c.stop)]
        assert covered == list(range(length))
        keys = keyframe_frames(length, 8)
        for clip in clips:
            assert keys[clip.key_start_index] == clip.key_start == clip.start
            assert keys[clip.key_end_index] == clip.key_end
            assert clip.key_end == min(clip.start + 8, length - 1)


def test_inputs_of_a_short_last_clip_are_clamped_and_masked():
    clip = clips_of(20, 8)[-1]
    frame_idx, mask, t, pos = clip_inputs(clip, 20, 8)
    assert frame_idx.tolist() == [16, 17, 18, 19, 19, 19, 19, 19]
    assert mask.tolist() == [True] * 4 + [False] * 4
    np.testing.assert_allclose(t[:4], [0, 1 / 3, 2 / 3, 1], rtol=1e-6)
    np.testing.assert_allclose(pos[:4], np.arange(16, 20) / 19, rtol=1e-6)


def test_inputs_of_a_full_clip():
    frame_idx, mask, t, pos = clip_inputs(clips_of(64, 8)[1], 64, 8)
    assert frame_idx.tolist() == list(range(8, 16))
    assert mask.all()
    np.testing.assert_allclose(t, np.arange(8) / 8)
    assert t.dtype == np.float32 and pos.dtype == np.float32


def test_one_frame_video():
    frame_idx, mask, t, pos = clip_inputs(clips_of(1, 8)[0], 1, 8)
    assert mask.sum() == 1 and not t.any() and not pos.any()


def test_clips_covering_a_range():
    assert [c.index for c in clips_covering(64, 3, 5)] == [0]
    assert [c.index for c in clips_covering(64, 7, 9)] == [0, 1]
    assert [c.index for c in clips_covering(20, 19, 20)] == [2]
    with pytest.raises(ValueError):
        clips_covering(20, 5, 21)
