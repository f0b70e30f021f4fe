"""The codec registry of rate-distortion evaluation, and how one rate point is measured.

Every codec is an adapter object with the same small interface (:class:`Codec`): it encodes a
:class:`~dnerv_codec.video.Video` at one quality, decodes the result, and hands the real byte
count, the reconstruction and the timings to :func:`rate_point`, which computes bpp and every
quality metric the same way for all codecs.

Adding a codec is one call, usually at the bottom of the module that defines the adapter or in
``BUILTIN_CODECS`` below for lazy loading (so ``dnerv rd --codecs x264`` never imports torch)::

    register_codec("dnerv", "dnerv_codec.rd_dnerv:DnervCodec")   # lazy: module:attribute
    register_codec("mycodec", MyCodec())                         # eager: an instance

A lazily named attribute may be an instance or a class (instantiated with no arguments).
Registering a name twice raises ``ValueError``.
"""

from __future__ import annotations

import contextvars
import importlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from dnerv_codec.errors import InputError
from dnerv_codec.metrics import psnr_frames, psnr_spread, psnr_yuv, quality_metrics, vmaf
from dnerv_codec.video import Video

WITH_VMAF: contextvars.ContextVar[bool] = contextvars.ContextVar("dnerv_rd_vmaf", default=False)
"""Set (by ``evaluate(..., vmaf=True)``) to make :func:`rate_point` also compute VMAF."""
WITH_MS_SSIM: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "dnerv_rd_ms_ssim", default=True
)
"""Cleared (by ``evaluate(..., ms_ssim=False)``) to skip MS-SSIM, the slowest metric (None)."""


class Codec:
    """A codec adapter. Subclasses set the class attributes and implement :meth:`evaluate`.

    Attributes:
        name: registry name (``x265``).
        description: one line for ``--help`` and the results JSON.
        default_qualities: what ``dnerv rd`` uses when no ``--qualities`` are given.
        quality_help: what ``quality`` means for this codec and its valid range.
        joint: True if the codec compresses a video *set* as one (D-NeRV does): then
            :meth:`evaluate_set` must be overridden and receives all videos at once.
    """

    name: str = ""
    description: str = ""
    default_qualities: tuple[Any, ...] = ()
    quality_help: str = ""
    joint: bool = False

    def parse_quality(self, text: str) -> Any:
        """Turn a command-line quality (``"27"``) into the value :meth:`evaluate` takes.

        Raises:
            InputError: not a valid quality for this codec.
        """
        try:
            return int(text)
        except ValueError:
            raise InputError(f"{self.name}: quality {text!r} is not an integer") from None

    def check(self, quality: Any, **options: Any) -> None:
        """Validate a quality and options before any work starts (default: accept all).

        Raises:
            InputError: out-of-range quality, unknown option or bad option value.
        """

    def label(self, **options: Any) -> str:
        """The curve's name in plots and tables, naming the settings that matter."""
        return self.name

    def settings(self, **options: Any) -> dict[str, Any]:
        """The effective settings (defaults filled in), stored in the results JSON."""
        return dict(options)

    def evaluate(self, video: Video, quality: Any, **options: Any) -> dict[str, Any]:
        """Encode and decode one video at one quality; return :func:`rate_point`'s dict.

        Raises:
            InputError: bad quality or options.
        """
        raise NotImplementedError

    def evaluate_set(self, videos: Sequence[Video], quality: Any, **options: Any) -> dict[str, Any]:
        """One rate point for a video set: by default each video alone, then :func:`combine`."""
        return combine([self.evaluate(video, quality, **options) for video in videos])


def rate_point(
    codec: str,
    quality: Any,
    video: Video,
    reconstruction: np.ndarray,
    nbytes: int,
    encoding_time: float,
    decoding_time: float,
    **extra: Any,
) -> dict[str, Any]:
    """Measure one rate point: bpp from the real byte count, metrics against ``video.frames``.

    Args:
        codec: registry name of the codec.
        quality: the quality it ran at.
        video: the source frames every codec sees.
        reconstruction: decoded uint8 RGB frames, same shape as ``video.frames``.
        nbytes: size of everything a decoder needs (the whole output file, container included).
        encoding_time: wall-clock seconds of the encoder.
        decoding_time: wall-clock seconds of the decoder.
        extra: more keys to store (settings, file name...).

    Returns:
        ``codec, quality, bpp, psnr-rgb, psnr-yuv, ms-ssim-rgb, psnr-rgb-worst,
        psnr-rgb-spread, psnr-rgb-frames, encoding_time, decoding_time, bytes, frames, width,
        height`` (the worst frame's PSNR-RGB, the mean minus it, and every frame's), ``vmaf``
        when :data:`WITH_VMAF` is set (None if the ffmpeg build cannot), and the ``extra`` keys.

    Raises:
        InputError: the reconstruction's shape differs from the source.
    """
    if reconstruction.shape != video.frames.shape:
        raise InputError(
            f"{codec} decoded {reconstruction.shape}, the source is {video.frames.shape}"
        )
    pixels = video.num_frames * video.width * video.height
    per_frame = psnr_frames(video.frames, reconstruction)
    point: dict[str, Any] = {
        "codec": codec,
        "quality": quality,
        "bpp": nbytes * 8.0 / pixels,
        **(
            quality_metrics(video.frames, reconstruction)
            if WITH_MS_SSIM.get()
            else {
                "psnr-rgb": float(per_frame.mean()),
                "psnr-yuv": psnr_yuv(video.frames, reconstruction),
                "ms-ssim-rgb": None,
            }
        ),
        **psnr_spread(per_frame),
        "psnr-rgb-frames": [float(p) for p in per_frame],
        "encoding_time": float(encoding_time),
        "decoding_time": float(decoding_time),
        "bytes": int(nbytes),
        "frames": video.num_frames,
        "width": video.width,
        "height": video.height,
    }
    if WITH_VMAF.get():
        point["vmaf"] = vmaf(video.frames, reconstruction, float(video.fps or 25))
    point.update(extra)
    return point


_SUMMED = ("encoding_time", "decoding_time", "bytes", "frames")


def combine(points: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Merge the rate points of several videos (same codec and quality) into one.

    bpp is the total bits over the total pixels; metrics are frame-weighted means (so PSNR stays
    the mean over all frames of per-frame PSNR); bytes, frames and times are summed; the per-frame
    PSNRs are concatenated and the worst frame and spread taken over all of them. Width and
    height are kept when all videos share them, else None.
    """
    if len(points) == 1:
        return dict(points[0])
    frames = np.array([p["frames"] for p in points], dtype=np.float64)
    pixels = np.array([p["frames"] * p["width"] * p["height"] for p in points], dtype=np.float64)
    out = dict(points[0])
    for key in _SUMMED:
        out[key] = sum(p[key] for p in points)
    out["bpp"] = out["bytes"] * 8.0 / float(pixels.sum())
    for key in ("psnr-rgb", "psnr-yuv", "ms-ssim-rgb", "vmaf"):
        if all(key in p and p[key] is not None for p in points):
            out[key] = float(np.average([p[key] for p in points], weights=frames))
    if all("psnr-rgb-frames" in p for p in points):
        out["psnr-rgb-frames"] = [q for p in points for q in p["psnr-rgb-frames"]]
        out.update(psnr_spread(np.array(out["psnr-rgb-frames"])))
    for key in ("width", "height"):
        if len({p[key] for p in points}) > 1:
            out[key] = None
    out["videos"] = len(points)
    return out


# name -> adapter instance, or "module:attribute" until first use
_CODECS: dict[str, Codec | str] = {}

# The built-in adapters, loaded on first use. The dnerv entry goes here.
BUILTIN_CODECS: dict[str, str] = {
    "x264": "dnerv_codec.rd.ffmpeg_codecs:X264",
    "x265": "dnerv_codec.rd.ffmpeg_codecs:X265",
    "vvc": "dnerv_codec.rd.ffmpeg_codecs:VVC",
    "av1": "dnerv_codec.rd.ffmpeg_codecs:AV1",
    "dnerv": "dnerv_codec.rd.dnerv_adapter:DnervCodec",
}
# The named anchors (dnerv_codec.rd.anchors): x264/x265 with fixed options, and x265-kf.
BUILTIN_CODECS.update(
    {
        name: "dnerv_codec.rd.anchors:" + name.upper().replace("-", "_")
        for name in (
            "x265-kf",
            "x265-ra444",
            "x265-ra444-veryslow",
            "x265-ld444",
            "x264-ra444",
            "x264-ra444-veryslow",
            "x264-ld444",
            "x265-ra420",
            "x265-ld420",
            "x264-ra420",
            "x264-ld420",
        )
    }
)


def register_codec(name: str, adapter: Codec | str) -> None:
    """Register a codec adapter under ``name``.

    Args:
        name: registry name, used by ``dnerv rd --codecs`` and in result files.
        adapter: a :class:`Codec` instance, or ``"module:attribute"`` naming one (or a class
            to instantiate) that is imported on first use.

    Raises:
        ValueError: ``name`` is already registered, or ``adapter`` is neither form.
    """
    if name in _CODECS:
        raise ValueError(f"codec {name!r} registered twice")
    if isinstance(adapter, str):
        if ":" not in adapter:
            raise ValueError(f"lazy codec {adapter!r} must be 'module:attribute'")
    elif not isinstance(adapter, Codec):
        raise ValueError(f"codec {name!r}: adapter must be a Codec or 'module:attribute'")
    _CODECS[name] = adapter


def codec_names() -> list[str]:
    """Registered codec names, sorted."""
    return sorted(_CODECS)


def get_codec(name: str) -> Codec:
    """The adapter registered as ``name`` (importing it on first use).

    Raises:
        InputError: no codec of that name.
    """
    adapter = _CODECS.get(name)
    if adapter is None:
        raise InputError(f"unknown codec {name!r}; known codecs: {', '.join(codec_names())}")
    if isinstance(adapter, str):
        module, _, attribute = adapter.partition(":")
        resolved = getattr(importlib.import_module(module), attribute)
        adapter = resolved() if isinstance(resolved, type) else resolved
        if not isinstance(adapter, Codec):
            raise TypeError(f"{module}:{attribute} is not a Codec adapter")
        if not adapter.name:
            adapter.name = name
        _CODECS[name] = adapter
    return adapter


for _name, _target in BUILTIN_CODECS.items():
    register_codec(_name, _target)
