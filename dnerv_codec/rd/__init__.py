"""Rate-distortion evaluation: every codec measured on the same RGB frames, the same way.

One call gives a rate point, one more a curve, then BD-rate and a plot::

    from dnerv_codec import rd
    point = rd.evaluate("data/bbb_320x180_64f.mp4", "x265", 27)       # bpp, psnr-rgb, ...
    x265 = rd.rd_curve("data/bbb_320x180_64f.mp4", "x265", [22, 27, 32, 37])
    x264 = rd.rd_curve("data/bbb_320x180_64f.mp4", "x264", [22, 27, 32, 37], preset="veryslow")
    rd.bd_rate(x265, x264)                                            # % (NaN if no overlap)
    rd.plot([x264, x265], "rd.png"); rd.save_json(x265, "x265.json")

Codecs are adapters in a registry (:mod:`dnerv_codec.rd.registry`); the classical ones run
through the bundled ffmpeg (:mod:`dnerv_codec.rd.ffmpeg_codecs`). Curves use CompressAI's
results-JSON schema (:mod:`dnerv_codec.rd.curves`).
"""

from __future__ import annotations

from dnerv_codec.rd.bd import BDOverlapWarning, bd_overlap, bd_psnr, bd_rate
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
    "bd_overlap",
    "bd_psnr",
    "bd_rate",
    "codec_names",
    "combine",
    "curve",
    "evaluate",
    "get_codec",
    "load_json",
    "markdown_report",
    "plot",
    "rate_point",
    "rd_curve",
    "register_codec",
    "save_json",
]
