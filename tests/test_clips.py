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


# -- content-adaptive structure ---------------------------------------------------------------
def test_uniform_structure_is_the_official_rule():
    from dnerv_codec.clips import Structure, clips_covering, clips_of

    for n in range(1, 41):
        for t in range(1, 10):
            s = Structure.uniform(n, t)
            assert s.clips() == clips_of(n, t) and s.is_uniform
            assert Structure.with_cuts(n, t, []) == s  # no cuts: the official rule
            assert Structure.from_gaps(n, t, s.gaps()) == s
            assert Structure.from_gaps(n, t, None) == s
            for a in range(0, n, 3):
                for b in range(a + 1, n + 1, 4):
                    assert s.covering(a, b) == clips_covering(n, a, b, t)


def test_cuts_start_clips_and_no_clip_spans_one():
    from dnerv_codec.clips import Structure

    s = Structure.with_cuts(32, 4, [8, 16, 24])
    assert s.keys == (0, 4, 7, 8, 12, 15, 16, 20, 23, 24, 28, 31) and not s.is_uniform
    clips = s.clips()
    assert [f for c in clips for f in range(c.start, c.stop)] == list(range(32))
    for c in clips:
        assert 1 <= c.stop - c.start <= 4
        shot = {f // 8 for f in range(c.start, c.stop)}
        assert len(shot) == 1  # every frame of a clip is in one shot
        assert c.key_start // 8 == c.start // 8  # predicted from a keyframe of its own shot
        assert s.keys[c.key_start_index] == c.key_start and s.keys[c.key_end_index] == c.key_end
    assert Structure.from_gaps(32, 4, s.gaps()) == s
    assert s.covering(6, 9) == clips[1:4]


def test_bad_structures_are_refused():
    from dnerv_codec.clips import Structure

    with pytest.raises(ValueError, match="at most 4 frames apart"):
        Structure(10, 4, (0, 5, 9))
    with pytest.raises(ValueError, match="from frame 0 to 9"):
        Structure(10, 4, (0, 4, 8))
    with pytest.raises(ValueError, match="outside"):
        Structure.with_cuts(10, 4, [10])


def test_find_cuts_finds_hard_cuts_of_real_footage_and_nothing_else():
    from dnerv_codec.clips import find_cuts
    from dnerv_codec.rd.stress import SAMPLE, SAMPLE_640, cuts
    from dnerv_codec.video import read_video

    sample = read_video(SAMPLE).frames
    assert find_cuts(sample) == [] and find_cuts(read_video(SAMPLE_640).frames) == []
    assert find_cuts(cuts(sample, read_video(SAMPLE_640).frames)) == [8, 16, 24]
    assert find_cuts(sample[::4]) == []  # four times the motion is no cut
