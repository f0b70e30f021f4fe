"""Padding and patching frames of any size, and stitching them back exactly."""

from __future__ import annotations

import numpy as np
import pytest

from dnerv_codec.geometry import Geometry, choose_geometry, from_patches, to_patches


@pytest.mark.parametrize("h,w", [(180, 320), (144, 176), (61, 83), (1080, 1920), (32, 32)])
def test_patches_round_trip_exactly(h, w):
    rng = np.random.default_rng(h * w)
    frames = rng.integers(0, 256, (3, h, w, 3), dtype=np.uint8)
    geometry = choose_geometry([(h, w)], 32)
    patches = to_patches(frames, geometry)
    assert patches.shape[2:4] == (geometry.patch_h, geometry.patch_w)
    assert geometry.patch_h % 32 == 0 and geometry.patch_w % 32 == 0
    np.testing.assert_array_equal(from_patches(patches, geometry, h, w), frames)


def test_small_frames_are_one_patch_and_large_ones_are_split():
    assert choose_geometry([(180, 320)], 32) == Geometry(192, 320)
    assert choose_geometry([(144, 176), (120, 200)], 16) == Geometry(144, 208)
    large = choose_geometry([(1080, 1920)], 64)
    assert large == Geometry(256, 320)
    assert large.grid(1080, 1920) == (5, 6)


def test_padding_repeats_edges():
    frames = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(1, 2, 3, 3)
    patches = to_patches(frames, Geometry(4, 4))
    assert patches.shape == (1, 1, 4, 4, 3)
    np.testing.assert_array_equal(patches[0, 0, 3, 3], frames[0, 1, 2])
    np.testing.assert_array_equal(patches[0, 0, 0, 3], frames[0, 0, 2])


def test_meta_round_trip():
    g = Geometry(192, 320)
    assert Geometry.from_meta(g.to_meta()) == g
