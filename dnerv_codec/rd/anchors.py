"""Named anchors: the classical configurations every dnerv figure is compared with.

A BD-rate means something only against a fair anchor. dnerv codes RGB and is measured in
PSNR-RGB, so its anchors for PSNR-RGB code 4:4:4 with ``-tune psnr`` (as learned video codecs
compare in RGB); a 4:2:0 anchor throws chroma away before it codes anything and is compared only
in PSNR-YUV (6:1:1), the metric it is built for. :func:`fair_metric` says which metric a curve
may anchor.

====================  ==========  =========================================================
name                  quality     settings (x264/x265 through ffmpeg, BT.709, 8-bit)
====================  ==========  =========================================================
x265-kf               CRF 18..51  dnerv's ``hevc-ra`` keyframe codec on every frame: x265
                                  medium, 4:4:4 (full range), tune psnr, constant CRF,
                                  closed GOP of 32, up to 4 B pictures, 3 references
x265-ra444            CRF 0..51   x265 medium, random access, 4:4:4, tune psnr
x265-ra444-veryslow   CRF 0..51   as x265-ra444 at preset veryslow
x265-ld444            CRF 0..51   x265 medium, low delay (bframes=0), 4:4:4, tune psnr
x264-ra444            CRF 0..51   x264 medium, random access, 4:4:4 (High 4:4:4), tune psnr
x264-ra444-veryslow   CRF 0..51   as x264-ra444 at preset veryslow
x264-ld444            CRF 0..51   x264 medium, low delay (zerolatency, no B), 4:4:4, tune psnr
x265-ra420            CRF 0..51   x265 medium, random access, 4:2:0 (PSNR-YUV only)
x265-ld420            CRF 0..51   x265 medium, low delay, 4:2:0 (PSNR-YUV only)
x264-ra420            CRF 0..51   x264 medium, random access, 4:2:0 (PSNR-YUV only)
x264-ld420            CRF 0..51   x264 medium, low delay, 4:2:0 (PSNR-YUV only)
====================  ==========  =========================================================

``x265-kf`` answers the question that matters most: what does the network add to its own
keyframe codec? If every frame were a keyframe, a .dnerv file would be this stream plus a few
hundred bytes. It runs :class:`~dnerv_codec.keyframe.classical.HevcRandomAccess` itself (the same
x265 arguments, the same full-range BT.709 conversion, the same access units), so it cannot drift
from the codec dnerv uses; its quality is x265's rate factor (``hevc-ra`` quality ``52 - CRF``).
The ffmpeg anchors keep the options of :class:`~dnerv_codec.rd.ffmpeg_codecs.FFmpegCodec` (one
thread, an intra picture every 10 s, limited range, informational SEI dropped); any of them can
still be overridden (``dnerv rd -o x265-ra444.threads=2``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from dnerv_codec.errors import InputError
from dnerv_codec.rd.registry import Codec, get_codec, rate_point
from dnerv_codec.video import Video

KEYFRAME_ANCHOR = "x265-kf"
"""The anchor every dnerv BD-rate is quoted against first."""


def fair_metric(curve: dict[str, Any]) -> str:
    """The quality metric a curve may anchor: ``psnr-yuv`` if it codes 4:2:0, else ``psnr-rgb``.

    Reads ``settings.chroma``, else the ``pix_fmt`` of its first point (older result files);
    a curve without either (dnerv, a learned codec) codes RGB and anchors PSNR-RGB.
    """
    chroma = (curve.get("settings") or {}).get("chroma")
    if chroma is None:
        points = curve.get("points") or [{}]
        pix_fmt = str(points[0].get("pix_fmt", ""))
        chroma = "420" if "420" in pix_fmt else "444" if "444" in pix_fmt else None
    return "psnr-yuv" if str(chroma) == "420" else "psnr-rgb"


class Anchor(Codec):
    """A classical codec with fixed options under its own name (``x265-ra444``...)."""

    def __init__(self, name: str, base: str, description: str, **fixed: Any) -> None:
        self.name = name
        self.base = base
        self.fixed = fixed
        self.description = description
        self.default_qualities = (22, 27, 32, 37)
        self.metric = "psnr-rgb" if fixed.get("chroma") == "444" else "psnr-yuv"

    @property
    def quality_help(self) -> str:  # type: ignore[override]
        return get_codec(self.base).quality_help

    def _options(self, options: dict[str, Any]) -> dict[str, Any]:
        return {**self.fixed, **options}

    def parse_quality(self, text: str) -> Any:
        return get_codec(self.base).parse_quality(text)

    def check(self, quality: Any, **options: Any) -> None:
        get_codec(self.base).check(quality, **self._options(options))

    def settings(self, **options: Any) -> dict[str, Any]:
        return {"anchor": self.name, **get_codec(self.base).settings(**self._options(options))}

    def label(self, **options: Any) -> str:
        changed = ", ".join(f"{k}={v}" for k, v in sorted(options.items()) if k != "bitstream_dir")
        return f"{self.name} ({changed})" if changed else self.name

    def evaluate(self, video: Video, quality: Any, **options: Any) -> dict[str, Any]:
        point = get_codec(self.base).evaluate(video, quality, **self._options(options))
        if "bitstream" in point:  # named after the anchor: x265-ra444 and x265-ld444 differ
            kept = Path(point["bitstream"])
            named = kept.with_name(f"{video.name}_{self.name}_{quality}{kept.suffix}")
            point["bitstream"] = str(kept.replace(named))
        return {**point, "codec": self.name, "anchor": self.name}


class KeyframeAnchor(Codec):
    """``x265-kf``: dnerv's ``hevc-ra`` keyframe codec applied to every frame (module docstring),
    as a keyframe-only file codes it: ``hevc-ra-long`` (groups of 256) for a video of more
    than 32 frames (:func:`dnerv_codec.keyframe.every_frame_codec`).

    Quality: x265's constant rate factor 18..51 (``hevc-ra`` quality ``52 - CRF``). ``bytes`` is
    the sum of the access units the keyframe codec stores; ``encoding_time`` includes the one
    decode the keyframe codec runs to return its reconstruction.
    """

    name = KEYFRAME_ANCHOR
    keyframe_codec = "hevc-ra"
    description = (
        "dnerv's hevc-ra keyframe codec on all frames: x265 random access, 4:4:4 8-bit "
        "full-range BT.709, tune psnr, constant rate factor, closed GOP of 32 (256 for "
        "videos over 32 frames, as keyframe-only files code them)"
    )
    quality_help = "CRF 18..51 (hevc-ra keyframe quality 52 - CRF)"
    default_qualities = (22, 27, 32, 37)
    metric = "psnr-rgb"

    def _codec(self, quality: int, frames: int) -> Any:
        from dnerv_codec.keyframe import every_frame_codec
        from dnerv_codec.keyframe import get_codec as keyframe_codec

        return keyframe_codec(every_frame_codec(self.keyframe_codec, frames), 52 - int(quality))

    def check(self, quality: Any, **options: Any) -> None:
        if options:
            raise InputError(f"{self.name} takes no options (it is the keyframe codec as is)")
        if isinstance(quality, bool) or not isinstance(quality, int) or not 18 <= quality <= 51:
            raise InputError(f"{self.name}: QP must be an integer in 18..51, got {quality!r}")

    def settings(self, **options: Any) -> dict[str, Any]:
        from dnerv_codec.keyframe.classical import HevcRandomAccess as ra

        return {
            "anchor": self.name,
            "keyframe_codec": self.keyframe_codec,
            "preset": ra.preset,
            "config": "randomaccess",
            "rate_control": "qp",
            "chroma": "444",
            "tune": "psnr",
            "gop": ra.group,
            "bframes": ra.bframes,
            "color": "BT.709 full range, dnerv_codec.keyframe.color",
        }

    def evaluate(self, video: Video, quality: Any, **options: Any) -> dict[str, Any]:
        self.check(quality, **options)
        codec = self._codec(quality, video.num_frames)
        start = time.perf_counter()
        data, _ = codec.compress_with_reconstruction(video.frames)
        encoding_time = time.perf_counter() - start
        start = time.perf_counter()
        decoded = codec.decompress(data, (video.height, video.width))
        decoding_time = time.perf_counter() - start
        return rate_point(
            self.name,
            int(quality),
            video,
            decoded,
            sum(len(unit) for unit in data),
            encoding_time,
            decoding_time,
            **{**self.settings(), "keyframe_codec": codec.name, "gop": codec.group},
            pix_fmt="yuv444p",
            encoder_args=" ".join(codec.encoder_args()),
        )


def _anchor(base: str, config: str, chroma: str, preset: str = "medium") -> Anchor:
    """``<base>-<ra|ld><444|420>[-<preset>]``: 4:4:4 ones tune for PSNR, 4:2:0 ones do not."""
    name = f"{base}-{config}{chroma}" + ("" if preset == "medium" else f"-{preset}")
    words = {"ra": "random access", "ld": "low delay"}[config]
    options = {"config": {"ra": "randomaccess", "ld": "lowdelay"}[config], "preset": preset}
    if chroma == "444":
        options |= {"chroma": "444", "tune": "psnr"}
        description = f"{base} {preset}, {words}, 4:4:4, tune psnr"
    else:
        description = f"{base} {preset}, {words}, 4:2:0 (PSNR-YUV only)"
    return Anchor(name, base, description, **options)


X265_KF = KeyframeAnchor()
X265_RA444 = _anchor("x265", "ra", "444")
X265_RA444_VERYSLOW = _anchor("x265", "ra", "444", "veryslow")
X265_LD444 = _anchor("x265", "ld", "444")
X264_RA444 = _anchor("x264", "ra", "444")
X264_RA444_VERYSLOW = _anchor("x264", "ra", "444", "veryslow")
X264_LD444 = _anchor("x264", "ld", "444")
X265_RA420 = _anchor("x265", "ra", "420")
X265_LD420 = _anchor("x265", "ld", "420")
X264_RA420 = _anchor("x264", "ra", "420")
X264_LD420 = _anchor("x264", "ld", "420")

RGB_ANCHORS = ("x265-kf", "x265-ra444", "x265-ra444-veryslow", "x265-ld444", "x264-ra444")
RGB_ANCHORS += ("x264-ra444-veryslow", "x264-ld444")
"""The anchors for PSNR-RGB, in the order reports prefer them."""
YUV_ANCHORS = ("x265-ra420", "x265-ld420", "x264-ra420", "x264-ld420")
"""The 4:2:0 anchors, compared in PSNR-YUV only."""
