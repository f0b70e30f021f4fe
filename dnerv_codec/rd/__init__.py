"""Rate-distortion evaluation: every codec measured on the same RGB frames, the same way.

One call gives a rate point, one more a curve, then BD-rate and a plot::

    from dnerv_codec import rd
    point = rd.evaluate("data/bbb_320x180_64f.mp4", "x265", 27)       # bpp, psnr-rgb, ...
    x265 = rd.rd_curve("data/bbb_320x180_64f.mp4", "x265", [22, 27, 32, 37])
    x264 = rd.rd_curve("data/bbb_320x180_64f.mp4", "x264", [22, 27, 32, 37], preset="veryslow")
    rd.bd_rate(x265, x264)                                            # % (NaN if no overlap)
    rd.plot([x264, x265], "rd.png"); rd.save_json(x265, "x265.json")

Codecs are adapters in a registry (:mod:`dnerv_codec.rd.registry`); the classical ones run
through the bundled ffmpeg (:mod:`dnerv_codec.rd.ffmpeg_codecs`). The named anchors
(:mod:`dnerv_codec.rd.anchors`: ``x265-kf``, the keyframe codec on every frame, and x264/x265 in
4:4:4 with tune psnr for PSNR-RGB, in 4:2:0 for PSNR-YUV) are registered codecs too. Curves use
CompressAI's results-JSON schema (:mod:`dnerv_codec.rd.curves`); every point carries its
per-frame PSNR-RGB and their spread. :mod:`dnerv_codec.rd.stress` builds the stress set.
"""

from __future__ import annotations

from dnerv_codec.rd import report
from dnerv_codec.rd.anchors import KEYFRAME_ANCHOR, RGB_ANCHORS, YUV_ANCHORS, fair_metric
from dnerv_codec.rd.bd import BDOverlapWarning, bd_overlap, bd_psnr, bd_rate, bracket
from dnerv_codec.rd.curves import curve, evaluate, load_json, rd_curve, save_json
from dnerv_codec.rd.registry import (
    Codec,
    codec_names,
    combine,
    get_codec,
    rate_point,
    register_codec,
)
from dnerv_codec.rd.report import markdown_report, plot

__all__ = [
    "BDOverlapWarning",
    "Codec",
    "KEYFRAME_ANCHOR",
    "RGB_ANCHORS",
    "YUV_ANCHORS",
    "bd_overlap",
    "bd_psnr",
    "bd_rate",
    "bracket",
    "codec_names",
    "combine",
    "curve",
    "evaluate",
    "fair_metric",
    "get_codec",
    "load_json",
    "markdown_report",
    "plot",
    "rate_point",
    "rd_curve",
    "register_codec",
    "report",
    "save_json",
]
