"""Metrics against independent computations written here."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dnerv_codec import metrics
from dnerv_codec.errors import InputError
from dnerv_codec.video import read_video


def _frames(seed: int, shape: tuple[int, ...] = (3, 24, 32, 3)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _hand_psnr(a: np.ndarray, b: np.ndarray) -> float:
    values = []
    for x, y in zip(a, b, strict=True):
        mse = np.mean((x.astype(np.float64) - y.astype(np.float64)) ** 2)
        values.append(100.0 if mse == 0 else 10 * math.log10(255.0**2 / mse))
    return float(np.mean(values))


def test_psnr_rgb_matches_numpy_by_hand() -> None:
    ref = _frames(0)
    test = np.clip(ref.astype(int) + _frames(1, ref.shape) % 7 - 3, 0, 255).astype(np.uint8)
    test[1] = ref[1]  # an identical frame: capped at 100 dB, not inf
    assert metrics.psnr_rgb(ref, test) == pytest.approx(_hand_psnr(ref, test), abs=1e-9)
    frames = metrics.psnr_frames(ref, test)
    assert frames.shape == (3,) and frames[1] == metrics.PSNR_CAP


def test_psnr_known_value_and_single_frame() -> None:
    ref = np.zeros((10, 10, 3), np.uint8)
    test = ref.copy()
    test[0, 0, 0] = 30  # MSE = 900 / 300 = 3
    assert metrics.psnr_rgb(ref, test) == pytest.approx(10 * math.log10(255**2 / 3))


def test_psnr_identical_is_capped() -> None:
    ref = _frames(2)
    assert metrics.psnr_rgb(ref, ref) == metrics.PSNR_CAP
    assert metrics.psnr_yuv(ref, ref) == metrics.PSNR_CAP


def test_shape_mismatch_is_an_input_error() -> None:
    with pytest.raises(InputError):
        metrics.psnr_rgb(_frames(0), _frames(0, (3, 24, 30, 3)))
    with pytest.raises(InputError):
        metrics.psnr_rgb(np.zeros((2, 4, 4)), np.zeros((2, 4, 4)))


@pytest.mark.parametrize(
    ("rgb", "yuv"),
    [
        # BT.709: Y = .2126 R + .7152 G + .0722 B; Cb = (B - Y) / 1.8556; Cr = (R - Y) / 1.5748
        ((255, 255, 255), (255.0, 127.5, 127.5)),
        ((0, 0, 0), (0.0, 127.5, 127.5)),
        ((255, 0, 0), (54.213, 127.5 - 54.213 / 1.8556, 255.0)),
        ((0, 255, 0), (182.376, 127.5 - 182.376 / 1.8556, 127.5 - 182.376 / 1.5748)),
        ((0, 0, 255), (18.411, 255.0, 127.5 - 18.411 / 1.5748)),
    ],
)
def test_bt709_full_range_pure_colours(rgb: tuple[int, int, int], yuv: tuple) -> None:
    frame = np.broadcast_to(np.array(rgb, np.uint8), (1, 2, 2, 3))
    y, u, v = metrics.rgb_to_yuv_bt709(frame)
    assert (float(y[0, 0, 0]), float(u[0, 0, 0]), float(v[0, 0, 0])) == pytest.approx(yuv, abs=2e-3)


def test_psnr_yuv_weights_planes_6_1_1() -> None:
    ref, test = _frames(3), _frames(4)
    planes_r, planes_t = metrics.rgb_to_yuv_bt709(ref), metrics.rgb_to_yuv_bt709(test)
    per_frame = []
    for i in range(len(ref)):
        p = [
            10 * math.log10(255**2 / np.mean((a[i].astype(np.float64) - b[i]) ** 2))
            for a, b in zip(planes_r, planes_t, strict=True)
        ]
        per_frame.append((6 * p[0] + p[1] + p[2]) / 8)
    assert metrics.psnr_yuv(ref, test) == pytest.approx(np.mean(per_frame), abs=1e-4)


def test_ms_ssim_identical_is_one_and_matches_pytorch_msssim(sample_clip) -> None:
    import torch
    from pytorch_msssim import ms_ssim

    ref = read_video(sample_clip, max_frames=3).frames  # 320x180: all 5 scales
    noise = np.random.default_rng(5).integers(-12, 13, ref.shape)
    test = np.clip(ref.astype(int) + noise, 0, 255).astype(np.uint8)
    assert metrics.ms_ssim_rgb(ref, ref) == pytest.approx(1.0, abs=1e-6)
    expected = ms_ssim(
        torch.from_numpy(ref.copy()).permute(0, 3, 1, 2).float(),
        torch.from_numpy(test).permute(0, 3, 1, 2).float(),
        data_range=255,
        size_average=False,
    ).numpy()
    np.testing.assert_allclose(metrics.ms_ssim_frames(ref, test), expected, atol=1e-5)


def test_ms_ssim_small_frames_use_fewer_scales() -> None:
    assert metrics.ms_ssim_scales(180, 320) == 5
    assert metrics.ms_ssim_scales(160, 320) == 4
    assert metrics.ms_ssim_scales(64, 64) == 3
    assert metrics.ms_ssim_scales(8, 8) == 1
    for shape in [(2, 100, 120, 3), (2, 5, 7, 3)]:
        ref = _frames(6, shape)
        test = np.clip(ref.astype(int) + 9, 0, 255).astype(np.uint8)
        assert metrics.ms_ssim_rgb(ref, ref) == pytest.approx(1.0, abs=1e-6)
        assert 0.0 < metrics.ms_ssim_rgb(ref, test) < 1.0


def test_vmaf_identical_frames_score_high_or_skip(sample_clip) -> None:
    ref = read_video(sample_clip, max_frames=4).frames
    score = metrics.vmaf(ref, ref)
    if score is None:
        pytest.skip("the bundled ffmpeg has no libvmaf model")
    assert score > 90
