"""Distortion metrics on 8-bit RGB frames, the same for every codec this project compares.

Conventions (they change the numbers, so they are fixed here and in the results JSON):

- **PSNR-RGB**: per frame, the MSE over all pixels and the three channels, PSNR with peak 255;
  then the mean of the per-frame PSNRs over frames (not the PSNR of the mean MSE). A frame
  identical to its reference has infinite PSNR; it is capped at :data:`PSNR_CAP` (100 dB) so
  that means stay finite.
- **PSNR-YUV**: both videos are converted with :func:`rgb_to_yuv_bt709` (BT.709, *full range*,
  4:4:4, no rounding), per-frame PSNRs of Y, U and V (peak 255, capped) are combined as
  (6 Y + U + V) / 8 as in DCVC, then averaged over frames.
- **MS-SSIM-RGB**: ``pytorch_msssim.ms_ssim``'s definition on float RGB in [0, 255] with
  ``data_range=255``, the standard 5 scales and 11-tap Gaussian window, per frame, averaged
  over frames. Frames whose shorter side is at most 160 pixels are too small for 5 scales; see
  :func:`ms_ssim_frames`.
- **VMAF** (optional): the bundled ffmpeg's libvmaf with its built-in model, after converting both
  videos to BT.709 limited-range yuv420p.

Example:
    >>> import numpy as np
    >>> ref = np.zeros((2, 8, 8, 3), np.uint8)
    >>> test = ref.copy(); test[:, 0, 0, 0] = 16
    >>> round(psnr_rgb(ref, test), 2)  # MSE = 256 / 192 per frame
    46.88
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dnerv_codec.errors import InputError

if TYPE_CHECKING:  # torch is imported only when MS-SSIM runs
    import torch

PSNR_CAP = 100.0
"""PSNR (dB) reported for a frame identical to its reference."""

# BT.709 luma coefficients.
KR, KB = 0.2126, 0.0722
KG = 1.0 - KR - KB

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
MS_SSIM_WIN = 11
_CHUNK = 16  # frames per batch in the metric loops: bounds memory at ~50 MB for 640x360


def _check_pair(ref: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ref, test = np.asarray(ref), np.asarray(test)
    if ref.shape != test.shape:
        raise InputError(f"reference is {ref.shape}, test is {test.shape}: shapes must match")
    if ref.ndim == 3:  # one frame
        ref, test = ref[None], test[None]
    if ref.ndim != 4 or ref.shape[-1] != 3:
        raise InputError(f"expected (N, H, W, 3) RGB frames, got shape {ref.shape}")
    return ref, test


def _psnr_from_mse(mse: np.ndarray, peak: float = 255.0) -> np.ndarray:
    with np.errstate(divide="ignore"):
        psnr = 10.0 * np.log10(peak * peak / mse)
    return np.minimum(psnr, PSNR_CAP)


def psnr_frames(ref: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Per-frame PSNR (dB, peak 255, capped at :data:`PSNR_CAP`) of uint8 RGB frames.

    Args:
        ref: reference frames, (N, H, W, 3) or (H, W, 3), uint8.
        test: frames to measure, same shape.

    Returns:
        float64 array of N PSNRs.

    Raises:
        InputError: the shapes differ or are not RGB frames.
    """
    ref, test = _check_pair(ref, test)
    mse = np.empty(len(ref))
    for start in range(0, len(ref), _CHUNK):
        diff = ref[start : start + _CHUNK].astype(np.int32) - test[start : start + _CHUNK]
        squared = np.square(diff).reshape(len(diff), -1)  # exact: at most 255 ** 2
        mse[start : start + len(diff)] = squared.sum(axis=1, dtype=np.int64) / squared.shape[1]
    return _psnr_from_mse(mse)


def psnr_rgb(ref: np.ndarray, test: np.ndarray) -> float:
    """Mean over frames of the per-frame RGB PSNR (see :func:`psnr_frames`)."""
    return float(psnr_frames(ref, test).mean())


def psnr_spread(per_frame: np.ndarray) -> dict[str, float]:
    """The worst frame of a clip and how far it falls below the mean, from per-frame PSNRs.

    Args:
        per_frame: PSNR of each frame (:func:`psnr_frames`), at least one.

    Returns:
        ``{"psnr-rgb-worst": min, "psnr-rgb-spread": mean - min}`` in dB.

    >>> psnr_spread(np.array([30.0, 34.0, 35.0]))
    {'psnr-rgb-worst': 30.0, 'psnr-rgb-spread': 3.0}
    """
    values = np.asarray(per_frame, dtype=np.float64)
    if values.size == 0:
        raise InputError("no frames: the PSNR spread needs at least one")
    worst = float(values.min())
    return {"psnr-rgb-worst": worst, "psnr-rgb-spread": float(values.mean()) - worst}


def rgb_to_yuv_bt709(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Convert RGB frames to BT.709 Y, Cb, Cr planes, **full range**, as float32 on a 0..255 scale.

    ``Y = 0.2126 R + 0.7152 G + 0.0722 B``, ``Cb = 127.5 + 0.5 (B - Y) / (1 - 0.0722)``,
    ``Cr = 127.5 + 0.5 (R - Y) / (1 - 0.2126)``: DCVC's conversion on [0, 1] scaled by 255, so
    every plane spans exactly [0, 255] (white is (255, 127.5, 127.5), pure red has Cr = 255).
    No rounding and no chroma subsampling: this is a measurement space, not a codec's YUV.

    Args:
        frames: uint8 or float RGB, shape (..., 3).

    Returns:
        (Y, U, V), each float32 of shape ``frames.shape[:-1]``.
    """
    rgb = np.asarray(frames, dtype=np.float32)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = KR * r + KG * g + KB * b
    u = 127.5 + 0.5 * (b - y) / (1.0 - KB)
    v = 127.5 + 0.5 * (r - y) / (1.0 - KR)
    return y, u, v


def psnr_yuv_frames(ref: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Per-frame (6 Y + U + V) / 8 PSNR after :func:`rgb_to_yuv_bt709` (peak 255, capped).

    Raises:
        InputError: the shapes differ or are not RGB frames.
    """
    ref, test = _check_pair(ref, test)
    out = np.empty(len(ref))
    for start in range(0, len(ref), _CHUNK):
        planes_a = rgb_to_yuv_bt709(ref[start : start + _CHUNK])
        planes_b = rgb_to_yuv_bt709(test[start : start + _CHUNK])
        n = len(planes_a[0])
        psnrs = [
            _psnr_from_mse(np.square(a - b).reshape(n, -1).mean(axis=1))
            for a, b in zip(planes_a, planes_b, strict=True)
        ]
        out[start : start + n] = (6.0 * psnrs[0] + psnrs[1] + psnrs[2]) / 8.0
    return out


def psnr_yuv(ref: np.ndarray, test: np.ndarray) -> float:
    """Mean over frames of the per-frame (6 Y + U + V) / 8 PSNR (see :func:`psnr_yuv_frames`)."""
    return float(psnr_yuv_frames(ref, test).mean())


def ms_ssim_scales(height: int, width: int) -> int:
    """How many MS-SSIM scales a frame of this size allows (5 is the standard; at least 1).

    Each scale halves the frame and the 11-tap window must fit in the smallest one, so ``s``
    scales need a shorter side above ``10 * 2 ** (s - 1)``: 161 pixels for 5 scales.
    """
    side = min(height, width)
    scales = len(MS_SSIM_WEIGHTS)
    while scales > 1 and side <= (MS_SSIM_WIN - 1) * 2 ** (scales - 1):
        scales -= 1
    return scales


def ms_ssim_frames(ref: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Per-frame MS-SSIM of RGB frames, with ``pytorch_msssim``'s definition and data_range 255.

    ``pytorch_msssim.ms_ssim`` filters with a grouped ``conv2d``, which takes about 8 s for 16
    frames of 640x360 on one CPU core; this computes the same quantity (11-tap Gaussian, sigma
    1.5, K = (0.01, 0.03), its pooling and weights) with the separable filter written as shifted
    sums, about 10 times faster. ``tests/test_metrics.py`` checks it against
    ``pytorch_msssim.ms_ssim`` to 1e-5.

    Small frames: when the shorter side is at most 160 pixels, the coarsest scales are dropped
    and the remaining standard weights renormalised to sum to 1 (:func:`ms_ssim_scales`); frames
    smaller than the 11-pixel window are edge-padded to 11 pixels. Values with fewer than 5
    scales are only comparable with values at the same frame size.

    Raises:
        InputError: the shapes differ or are not RGB frames.
    """
    import torch

    ref, test = _check_pair(ref, test)
    _, height, width, _ = ref.shape
    pad_h, pad_w = max(0, MS_SSIM_WIN - height), max(0, MS_SSIM_WIN - width)
    if pad_h or pad_w:
        pad = ((0, 0), (0, pad_h), (0, pad_w), (0, 0))
        ref, test = np.pad(ref, pad, mode="edge"), np.pad(test, pad, mode="edge")
    scales = ms_ssim_scales(ref.shape[1], ref.shape[2])
    weights = torch.tensor(MS_SSIM_WEIGHTS[:scales], dtype=torch.float32)
    weights = weights / weights.sum()
    out = np.empty(len(ref))
    chunk = max(1, _CHUNK // 2 * 640 * 360 // (ref.shape[1] * ref.shape[2]))  # 8 at 640x360
    with torch.no_grad():
        for start in range(0, len(ref), chunk):
            a = _to_tensor(ref[start : start + chunk])  # (N, 3, H, W) float32
            b = _to_tensor(test[start : start + chunk])
            out[start : start + len(a)] = _ms_ssim(a, b, weights).double().numpy()
    return out


def _to_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float32 torch (N, 3, H, W), a writable copy."""
    import torch

    planar = np.ascontiguousarray(frames.transpose(0, 3, 1, 2), dtype=np.float32)
    return torch.from_numpy(planar)


def _gaussian_taps(size: int = MS_SSIM_WIN, sigma: float = 1.5) -> list[float]:
    coords = np.arange(size, dtype=np.float64) - size // 2
    taps = np.exp(-(coords**2) / (2.0 * sigma**2))
    return (taps / taps.sum()).astype(np.float32).tolist()


def _blur_axis(x: torch.Tensor, taps: list[float], dim: int) -> torch.Tensor:
    """Valid (unpadded) 1-D filter of ``x`` along ``dim``, written as shifted sums."""
    out = x.shape[dim] - len(taps) + 1
    y = x.narrow(dim, 0, out) * taps[0]
    for k in range(1, len(taps)):
        y.add_(x.narrow(dim, k, out), alpha=taps[k])
    return y


def _blur(x: torch.Tensor, taps: list[float]) -> torch.Tensor:
    """Valid (unpadded) separable Gaussian filter over the last two dimensions."""
    return _blur_axis(_blur_axis(x, taps, -2), taps, -1)


def _ms_ssim(a: torch.Tensor, b: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """MS-SSIM per image of float (N, C, H, W) batches in [0, 255]; ``weights`` per scale."""
    import torch
    import torch.nn.functional as F

    taps = _gaussian_taps()
    c1, c2 = (0.01 * 255.0) ** 2, (0.03 * 255.0) ** 2
    factors = []
    for level in range(len(weights)):
        stats = _blur(torch.stack([a, b, a * a, b * b, a * b]), taps)  # (5, N, C, h, w)
        mu_a, mu_b = stats[0], stats[1]
        var_a = stats[2] - mu_a * mu_a
        var_b = stats[3] - mu_b * mu_b
        cov = stats[4] - mu_a * mu_b
        cs_map = (2.0 * cov + c2) / (var_a + var_b + c2)
        if level < len(weights) - 1:
            factors.append(torch.relu(cs_map.flatten(2).mean(-1)))  # (N, C)
            padding = [s % 2 for s in a.shape[2:]]
            a = F.avg_pool2d(a, kernel_size=2, padding=padding)
            b = F.avg_pool2d(b, kernel_size=2, padding=padding)
        else:
            lum = (2.0 * mu_a * mu_b + c1) / (mu_a * mu_a + mu_b * mu_b + c1)
            factors.append(torch.relu((lum * cs_map).flatten(2).mean(-1)))  # (N, C)
    stacked = torch.stack(factors)  # (scales, N, C)
    return torch.prod(stacked ** weights.view(-1, 1, 1), dim=0).mean(dim=1)  # (N,)


def ms_ssim_rgb(ref: np.ndarray, test: np.ndarray) -> float:
    """Mean over frames of the per-frame RGB MS-SSIM (see :func:`ms_ssim_frames`)."""
    return float(ms_ssim_frames(ref, test).mean())


def vmaf(ref: np.ndarray, test: np.ndarray, fps: float = 25.0) -> float | None:
    """VMAF (mean over frames) through the bundled ffmpeg's libvmaf, or None if unavailable.

    Both videos go to ffmpeg as raw RGB and are converted to BT.709 limited-range yuv420p
    (frames with odd sizes are cropped by one pixel). The model is libvmaf's built-in default
    (``vmaf_v0.6.1``); if the ffmpeg build lacks libvmaf or that model, None is returned.

    Raises:
        InputError: the shapes differ or are not RGB frames.
    """
    from dnerv_codec.video import ffmpeg_exe

    ref, test = _check_pair(ref, test)
    n, height, width, _ = ref.shape
    even_w, even_h = width - width % 2, height - height % 2
    if even_w < 2 or even_h < 2:
        return None
    to_yuv = f"crop={even_w}:{even_h}:0:0,scale=out_color_matrix=bt709:out_range=tv,format=yuv420p"
    with tempfile.TemporaryDirectory(prefix="dnerv-vmaf-") as tmp:
        paths = [Path(tmp) / "test.rgb", Path(tmp) / "ref.rgb"]
        paths[0].write_bytes(np.ascontiguousarray(test).tobytes())
        paths[1].write_bytes(np.ascontiguousarray(ref).tobytes())
        log = Path(tmp) / "vmaf.json"
        raw = ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(fps)]
        graph = (
            f"[0:v]{to_yuv}[main];[1:v]{to_yuv}[ref];"
            f"[main][ref]libvmaf=log_fmt=json:log_path={log.as_posix()}:n_threads=2"
        )
        cmd = [ffmpeg_exe(), "-v", "error", "-nostdin"]
        cmd += raw + ["-i", str(paths[0])] + raw + ["-i", str(paths[1])]
        cmd += ["-lavfi", graph, "-f", "null", "-"]
        proc = subprocess.run(cmd, capture_output=True, check=False)
        if proc.returncode != 0 or not log.is_file():
            return None
        data = json.loads(log.read_text())
    try:
        return float(data["pooled_metrics"]["vmaf"]["mean"])
    except (KeyError, TypeError, ValueError):
        frames = [f["metrics"]["vmaf"] for f in data.get("frames", [])[:n]]
        return float(np.mean(frames)) if frames else None


def quality_metrics(ref: np.ndarray, test: np.ndarray) -> dict[str, float]:
    """The three metrics every rate point reports: ``psnr-rgb``, ``psnr-yuv``, ``ms-ssim-rgb``.

    Raises:
        InputError: the shapes differ or are not RGB frames.
    """
    return {
        "psnr-rgb": psnr_rgb(ref, test),
        "psnr-yuv": psnr_yuv(ref, test),
        "ms-ssim-rgb": ms_ssim_rgb(ref, test),
    }
