"""The stress set: deterministic clips of real content, written losslessly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dnerv_codec.errors import InputError
from dnerv_codec.rd import stress


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    """Stand-ins for scikit-image's photographs: smooth random images of their sizes."""
    rng = np.random.default_rng(1)
    small = rng.integers(0, 256, (41, 61, 3)).astype(np.float32)
    big = np.kron(small, np.ones((10, 10, 1), np.float32))[:400, :600]
    return {use: big.astype(np.uint8) for use in stress.PHOTOS}


def test_pan_moves_the_view_by_its_speed(photos) -> None:
    frames = stress.pan(photos["pan"], 8, n=3)
    assert frames.shape == (3, stress.HEIGHT, stress.WIDTH, 3)
    # 8 px right and 2 px down a frame: the next frame is this one shifted, exactly
    assert np.array_equal(frames[1, :-2, :-8], frames[0, 2:, 8:])
    assert not np.array_equal(frames[1], frames[0])


def test_zoom_and_still(photos) -> None:
    zoomed = stress.zoom(photos["zoom"], 3, n=4)
    assert zoomed.shape == (4, stress.HEIGHT, stress.WIDTH, 3)
    assert np.abs(np.diff(zoomed.astype(int), axis=0)).mean() > 1
    still = stress.still(photos["still"], n=3)
    assert (still == still[0]).all()
    with pytest.raises(InputError, match="leaves the photo"):
        stress.pan(photos["pan"][:200, :340], 8, n=8)


def test_the_set_is_deterministic_and_covers_every_clip(photos) -> None:
    videos = stress.stress_set(max_frames=4, downscale=4, photos=photos)
    assert [v.name for v in videos] == list(stress.CLIPS)
    assert all(v.frames.shape == (4, 45, 80, 3) for v in videos)
    again = stress.stress_set(["grain", "cuts"], max_frames=4, downscale=4, photos=photos)
    assert stress.digest(again[0].frames) == stress.digest(
        videos[stress.CLIPS.index("grain")].frames
    )
    other_seed = stress.stress_set(["grain"], max_frames=4, downscale=4, seed=1, photos=photos)
    assert not np.array_equal(other_seed[0].frames, again[0].frames)


def test_subsampling_and_cuts_use_the_bundled_clip(sample_clip: Path) -> None:
    sample, sub4, cuts = stress.stress_set(["sample", "sub4", "cuts"])
    assert sample.num_frames == 64 and sub4.num_frames == 16 and cuts.num_frames == 32
    assert np.array_equal(sub4.frames[1], sample.frames[4])
    assert np.array_equal(cuts.frames[:8], sample.frames[:8])
    step = np.abs(np.diff(cuts.frames.astype(int), axis=0)).mean(axis=(1, 2, 3))
    assert step[7] > 4 * np.median(step)  # a hard cut after the first shot


def test_write_and_read_back_losslessly(tmp_path: Path, photos) -> None:
    manifest = stress.write_stress_set(
        tmp_path, names=["sub8", "pan-2"], max_frames=3, downscale=4, photos=photos
    )
    assert list(manifest["clips"]) == ["sub8", "pan-2"]
    videos = stress.read_stress_set(tmp_path)
    built = stress.stress_set(["sub8", "pan-2"], max_frames=3, downscale=4, photos=photos)
    for read, made in zip(videos, built, strict=True):
        assert read.name == made.name and np.array_equal(read.frames, made.frames)
    saved = json.loads((tmp_path / "manifest.json").read_text())
    saved["clips"]["sub8"]["sha256"] = "0" * 64
    (tmp_path / "manifest.json").write_text(json.dumps(saved))
    with pytest.raises(InputError, match="differs from its manifest"):
        stress.read_stress_set(tmp_path)


def test_bad_arguments_are_input_errors(photos) -> None:
    with pytest.raises(InputError, match="unknown stress clip"):
        stress.stress_set(["sample", "jitter"], photos=photos)
    with pytest.raises(InputError):
        stress.stress_set(["sub2"], downscale=0)
    with pytest.raises(InputError, match="no stress set manifest"):
        stress.read_stress_set(Path("/nonexistent-stress-set"))
