"""Rate points and RD curves, in CompressAI's results-JSON schema.

A curve is ``{"name", "description", "results": {"bpp": [...], "psnr-rgb": [...], ...}}`` (what
``python -m compressai.utils.plot`` reads) plus our own keys: ``codec``, ``settings``, ``videos``,
``frames``, ``width``, ``height``, ``points`` (the full dict of every rate point) and
``conventions`` (how bpp and each metric were computed). Points are sorted by bpp.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from dnerv_codec.errors import InputError
from dnerv_codec.rd.registry import WITH_MS_SSIM, WITH_VMAF, Codec, get_codec
from dnerv_codec.video import Video, read_video

RESULT_KEYS = (
    "quality",
    "bpp",
    "psnr-rgb",
    "psnr-yuv",
    "ms-ssim-rgb",
    "psnr-rgb-worst",
    "psnr-rgb-spread",
    "encoding_time",
    "decoding_time",
    "bytes",
)

CONVENTIONS = {
    "bpp": "real output size (container included) * 8 / (width * height * frames)",
    "psnr-rgb": "mean over frames of per-frame PSNR on 8-bit RGB, peak 255, capped at 100 dB",
    "psnr-yuv": "(6Y+U+V)/8 per frame after BT.709 full-range RGB->YUV 4:4:4, mean over frames",
    "ms-ssim-rgb": "pytorch_msssim definition, data_range 255, mean over frames",
    "psnr-rgb-worst": "the lowest per-frame PSNR-RGB of the video (of the set, for a set)",
    "psnr-rgb-spread": "psnr-rgb - psnr-rgb-worst: how far the worst frame is below the mean",
    "psnr-rgb-frames": "every frame's PSNR-RGB, in each point of 'points'",
    "time": "wall-clock seconds of the encoder / decoder processes",
}

VideoLike = str | Path | Video


def _as_videos(video: VideoLike | Sequence[VideoLike], max_frames: int | None) -> list[Video]:
    items = list(video) if isinstance(video, list | tuple) else [video]
    if not items:
        raise InputError("no video given")
    return [v if isinstance(v, Video) else read_video(v, max_frames) for v in items]


def _as_codec(codec: str | Codec) -> Codec:
    return codec if isinstance(codec, Codec) else get_codec(codec)


def evaluate(
    video: VideoLike | Sequence[VideoLike],
    codec: str | Codec,
    quality: Any,
    *,
    max_frames: int | None = None,
    vmaf: bool = False,
    ms_ssim: bool = True,
    **options: Any,
) -> dict[str, Any]:
    """Encode and decode a video (or a set) at one quality and measure the rate point.

    Args:
        video: a file path, a :class:`~dnerv_codec.video.Video`, or a list of them (a set).
        codec: a registered codec name (``"x265"``) or an adapter.
        quality: the codec's quality knob (see its ``quality_help``).
        max_frames: keep at most this many frames of each file read here.
        vmaf: also compute VMAF (None if the ffmpeg build cannot).
        ms_ssim: compute MS-SSIM (False: ``ms-ssim-rgb`` is None; it is the slowest metric).
        options: codec options (``preset``, ``config``, ...).

    Returns:
        The rate point: ``codec, quality, bpp, psnr-rgb, psnr-yuv, ms-ssim-rgb,
        encoding_time, decoding_time, bytes, frames, width, height`` and settings.

    Raises:
        InputError: unknown codec, bad quality or options, unreadable input.
    """
    adapter = _as_codec(codec)
    adapter.check(quality, **options)
    videos = _as_videos(video, max_frames)
    token, ms_token = WITH_VMAF.set(vmaf), WITH_MS_SSIM.set(ms_ssim)
    try:
        if adapter.joint or len(videos) > 1:
            return adapter.evaluate_set(videos, quality, **options)
        return adapter.evaluate(videos[0], quality, **options)
    finally:
        WITH_VMAF.reset(token)
        WITH_MS_SSIM.reset(ms_token)


def curve(
    codec: str | Codec,
    points: Iterable[dict[str, Any]],
    videos: Sequence[Video] = (),
    **options: Any,
) -> dict[str, Any]:
    """Build a results dict (CompressAI's schema) from rate points, sorted by bpp."""
    adapter = _as_codec(codec)
    ordered = sorted(points, key=lambda p: p["bpp"])
    results = {key: [p.get(key) for p in ordered] for key in RESULT_KEYS}
    if any("vmaf" in p for p in ordered):
        results["vmaf"] = [p.get("vmaf") for p in ordered]
    first = ordered[0] if ordered else {}
    return {
        "name": adapter.label(**options),
        "description": adapter.description,
        "codec": adapter.name,
        "settings": adapter.settings(**options),
        "videos": [v.name for v in videos],
        "frames": first.get("frames"),
        "width": first.get("width"),
        "height": first.get("height"),
        "conventions": CONVENTIONS,
        "results": results,
        "points": ordered,
    }


def rd_curve(
    video: VideoLike | Sequence[VideoLike],
    codec: str | Codec,
    qualities: Sequence[Any] | None = None,
    progress: bool = True,
    *,
    max_frames: int | None = None,
    vmaf: bool = False,
    **options: Any,
) -> dict[str, Any]:
    """Evaluate ``codec`` at each quality on the same frames; return the curve.

    Args:
        video: a path, a Video, or a list of them (a set; see :func:`~.registry.combine`).
        codec: registered name or adapter.
        qualities: quality values (default: the codec's ``default_qualities``).
        progress: show a tqdm bar over the qualities (on stderr).
        max_frames: keep at most this many frames of each file read here.
        vmaf: also compute VMAF for each point.
        options: codec options.

    Returns:
        The curve dict (module docstring), points sorted by bpp.

    Raises:
        InputError: unknown codec, any quality out of range (checked before encoding starts).
    """
    from tqdm import tqdm

    adapter = _as_codec(codec)
    qualities = list(qualities if qualities is not None else adapter.default_qualities)
    for quality in qualities:
        adapter.check(quality, **options)
    videos = _as_videos(video, max_frames)
    points = []
    for quality in tqdm(qualities, desc=adapter.name, unit="point", disable=not progress):
        points.append(evaluate(videos, adapter, quality, vmaf=vmaf, **options))
    return curve(adapter, points, videos, **options)


def _clean(value: Any) -> Any:
    """JSON has no NaN/inf: store them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return _clean(value.item())
    return value


def save_json(results: dict[str, Any], path: str | Path) -> Path:
    """Write a curve as indented JSON (NaN and inf become null). Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_clean(results), indent=2) + "\n")
    return path


def load_json(path: str | Path) -> dict[str, Any]:
    """Read a curve written by :func:`save_json` (or by CompressAI's tools).

    Raises:
        InputError: unreadable, not JSON, or without ``name`` and ``results.bpp``.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read results {path}: {exc}") from None
    if not isinstance(data, dict) or "bpp" not in data.get("results", {}):
        raise InputError(f"{path} is not a results file: no results.bpp")
    data.setdefault("name", path.stem)
    return data
