"""The encoder's last check: decode the written file and measure it against the source."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dnerv_codec.memory import trim
from dnerv_codec.progress import Progress
from dnerv_codec.video import Video

from .options import EncodeOptions


@dataclass
class Verified:
    """The written file decoded and measured against the source frames."""

    psnr: float  # mean of the per-frame PSNR-RGB
    ms_ssim: float
    frame_psnr: dict[str, Any]  # the worst frame (min, video, frame) and mean - min


_VERIFY_CHUNK = 8  # frames decoded and measured at a time


def verify(output: Path, videos: list[Video], opts: EncodeOptions, progress: Progress):
    """Decode the written file and measure it, a few frames at a time (memory does not grow
    with the video's length)."""
    from dnerv_codec.decoder import DnervFile
    from dnerv_codec.metrics import ms_ssim_frames, psnr_frames

    psnrs, ssims = [], []  # per video, per frame
    total = sum(v.num_frames for v in videos)
    bar = progress.bar(total=total, desc="verifying", unit="frame", leave=False)
    with bar, DnervFile(output, device=opts.device, keyframe_weights=opts.keyframe_weights) as f:
        for v, video in enumerate(videos):
            p, s = [], []
            decoded = f.frames(v)
            for start in range(0, video.num_frames, _VERIFY_CHUNK):
                ref = video.frames[start : start + _VERIFY_CHUNK]
                test = np.stack([next(decoded) for _ in range(len(ref))])
                p.append(psnr_frames(ref, test))
                s.append(ms_ssim_frames(ref, test))
                bar.update(len(ref))
                del ref, test
                trim()
            psnrs.append(np.concatenate(p))
            ssims.append(np.concatenate(s))
    counts = [v.num_frames for v in videos]
    ms_ssim = float(np.average([s.mean() for s in ssims], weights=counts))
    psnr, frame_psnr = psnr_summary(psnrs, videos)
    return Verified(psnr, ms_ssim, frame_psnr)


def psnr_summary(psnrs: list[np.ndarray], videos) -> tuple[float, dict[str, Any]]:
    """From per-video arrays of per-frame PSNR: the mean over all frames, and the worst frame
    (its PSNR, video, frame number and how far below the mean)."""
    counts = [v.num_frames for v in videos]
    psnr = float(np.average([p.mean() for p in psnrs], weights=counts))
    worst_video = min(range(len(videos)), key=lambda v: psnrs[v].min())
    worst_frame = int(psnrs[worst_video].argmin())
    low = float(psnrs[worst_video][worst_frame])
    frame_psnr = {
        "min": round(low, 3),
        "video": videos[worst_video].name,
        "frame": worst_frame,
        "mean_minus_min": round(psnr - low, 3),
    }
    return psnr, frame_psnr
