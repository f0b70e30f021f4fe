"""Rate-distortion of the classical baselines on the bundled sample clip.

Runs the named anchors of ``dnerv_codec.rd.anchors`` (x265-kf, the keyframe codec on every
frame; x264/x265 medium low delay and random access in 4:4:4 with tune psnr, and at veryslow in
random access; the same in 4:2:0 without tune), VVC (VVenC medium, random access) and AV1
(SVT-AV1 preset 8, random access) on the same decoded RGB frames through ``dnerv_codec.rd``,
covering about 0.02-0.5 bpp, then writes

- ``benchmarks/results/rd_baselines_<clip>/<anchor>.json`` (``<codec>_<preset>_<config>.json``
  for VVC and AV1; CompressAI schema),
- ``.../rd.png`` and ``.../rd.md`` (rate points with the per-frame PSNR spread, BD-rate against
  x265-kf in PSNR-RGB and against x265-ld420 in PSNR-YUV),

and prints the markdown with the machine, date, command and load average. The curves' ranges
and their BD values against each anchor (PSNR-RGB, BD-PSNR, PSNR-YUV, MS-SSIM) are written as
a results record (``--json``); ``--from-raw FOLDER`` rebuilds it from the stored curves of a
results folder and its ``rd.md`` (date, command, machine), encoding nothing.

Usage::

    .venv/bin/python benchmarks/rd/rd_baselines.py [--clip data/bbb_320x180_64f.mp4] [--quick]
    .venv/bin/python benchmarks/rd/rd_baselines.py --from-raw \\
        benchmarks/results/rd_baselines_bbb_320x180_64f --anchors x265_medium_lowdelay
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import warnings
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[n]) for n in (2, 1)]  # repo, benchmarks/

import _results
import render
from _common import REPO

from dnerv_codec import rd
from dnerv_codec.rd import bd
from dnerv_codec.rd.anchors import KEYFRAME_ANCHOR, RGB_ANCHORS, YUV_ANCHORS
from dnerv_codec.video import read_video

CRFS = [17, 22, 27, 32, 37, 42]  # span ~0.02-0.5 bpp on the sample clip
# (codec, options, qualities)
CONFIGS = [(name, {}, CRFS) for name in (*RGB_ANCHORS, *YUV_ANCHORS)]
CONFIGS[0] = (KEYFRAME_ANCHOR, {}, [18, 22, 27, 32, 37, 42])  # CRF; 18 is the finest
CONFIGS += [
    ("vvc", {"preset": "medium"}, [22, 27, 32, 37, 42, 47]),
    ("av1", {"preset": "8"}, [25, 33, 41, 49, 55, 61]),
]
ANCHORS = (KEYFRAME_ANCHOR, "x265-ld420")  # BD tables: PSNR-RGB, then PSNR-YUV
TOPIC = "rd-baselines"
RANGE2, RANGE4 = "{:.4f}-{:.3f}", "{:.2f}-{:.2f}"
PCT = {"format": "{:.2f} %", "align": "r", "missing": "n/a"}


def _stem(curve: dict) -> str:
    s = curve["settings"]
    return curve["codec"] if "anchor" in s else f"{curve['codec']}_{s['preset']}_{s['config']}"


def _value(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def record_curves(rec: _results.Recorder, curves: list[dict], anchors: list[dict]) -> None:
    """The curves' ranges, and one BD table against each anchor (every metric, not only the
    anchor's fair one; n/a where the curves share less than half of their range)."""
    rows = []
    for c in curves:
        r = c["results"]
        rows.append([
            c["name"], [r["quality"][0], r["quality"][-1]], [min(r["bpp"]), max(r["bpp"])],
            [min(r["psnr-rgb"]), max(r["psnr-rgb"])],
            [min(r["encoding_time"]), max(r["encoding_time"])],
        ])  # fmt: skip
    rec.table(
        "curves",
        "The curves: quality knob values (first..last), ranges",
        ["curve", {"name": "qualities", "format": "{}..{}"},
         {"name": "bpp range", "format": RANGE2}, {"name": "PSNR-RGB range (dB)", "format": RANGE4},
         {"name": "encode s / point", "format": "{:.1f}-{:.1f}"}],
        rows,
    )  # fmt: skip
    for anchor in anchors:
        rows = []
        for c in curves:
            if c is anchor:
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", bd.BDOverlapWarning)
                values = [bd.bd_rate(anchor, c, "psnr-rgb"), bd.bd_psnr(anchor, c, "psnr-rgb")]
                values += [bd.bd_rate(anchor, c, m) for m in ("psnr-yuv", "ms-ssim-rgb")]
                share = bd.bd_overlap(anchor, c, "psnr-rgb")
            rows.append([c["name"], *map(_value, values), float(share)])
        rec.table(
            f"bd-{_stem(anchor)}",
            f"BD against {anchor['name']} (pchip; negative BD-rate = fewer bits)",
            ["codec", {**PCT, "name": "BD-rate PSNR-RGB"},
             {"name": "BD-PSNR RGB (dB)", "format": "{:.2f}", "align": "r", "missing": "n/a"},
             {**PCT, "name": "BD-rate PSNR-YUV"}, {**PCT, "name": "BD-rate MS-SSIM"},
             {"name": "overlap (PSNR-RGB)", "format": "{:.0%}", "align": "r"}],
            rows,
        )  # fmt: skip


def from_raw(rec: _results.Recorder, folder: Path, anchors: list[str]) -> None:
    """The record of the curves stored in ``folder`` (the run's ``rd.md`` gives its date)."""
    _results.restore_from_report(rec, (folder / "rd.md").read_text())
    curves = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
    order = [c for c, _, _ in CONFIGS]
    curves.sort(
        key=lambda c: (
            c["codec"] in order,
            order.index(c["codec"]) if c["codec"] in order else 0,
            _stem(c),
        )
    )
    by_stem = {_stem(c): c for c in curves}
    rec.data["raw"] = str(folder.resolve().relative_to(REPO))
    record_curves(rec, curves, [by_stem[a] for a in anchors if a in by_stem])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", default=str(REPO / "data" / "bbb_320x180_64f.mp4"))
    parser.add_argument("--max-frames", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="x264/x265 low-delay, 3 points")
    parser.add_argument("--out", default=None, help="results folder")
    parser.add_argument(
        "--anchors", nargs="+", default=list(ANCHORS), metavar="STEM",
        help=f"the record's BD tables: against these curves (default {' '.join(ANCHORS)})",
    )  # fmt: skip
    _results.add_arguments(ap := parser, "rd", TOPIC, raw="a results folder")
    args = ap.parse_args(argv)
    rec = _results.Recorder(__file__, TOPIC, argv)
    if args.from_raw:
        from_raw(rec, args.from_raw, args.anchors)
        for t in rec.record["tables"]:
            print(render.render_table(t) + "\n")
        rec.write(args.json)
        return 0

    video = read_video(args.clip, args.max_frames)
    out = Path(args.out or REPO / "benchmarks" / "results" / f"rd_baselines_{video.name}")
    configs = CONFIGS
    if args.quick:
        configs = [(c, o, q[1:6:2]) for c, o, q in CONFIGS if c in ANCHORS]
    load_before = os.getloadavg()
    start = time.perf_counter()
    curves, anchors = [], []
    for codec, options, qualities in configs:
        curve = rd.rd_curve(video, codec, qualities, progress=True, **options)
        s = curve["settings"]
        named = codec if "anchor" in s else f"{codec}_{s['preset']}_{s['config']}"
        rd.save_json(curve, out / f"{named}.json")
        curves.append(curve)
        if named in args.anchors:
            anchors.append(curve)
    elapsed = time.perf_counter() - start
    rd.plot(curves, out / "rd.png", title=f"{video.name}: classical codecs (PSNR-RGB)")

    header = "\n".join(
        [
            f"Clip `{Path(args.clip).name}`: {video.num_frames} frames of "
            f"{video.width}x{video.height} at {video.fps} fps.",
            *_results.report_header(
                "rd/rd_baselines.py", argv, elapsed, load_before, "; one encoder thread",
                load_note=": other jobs shared the cores, so times are upper bounds",
            ),
            "",
        ]
    )  # fmt: skip
    report = rd.markdown_report(curves, anchors, header)
    (out / "rd.md").write_text(report)
    print(report)
    print(f"results in {out}")
    rec.data["raw"] = str(out.resolve().relative_to(REPO))
    record_curves(rec, curves, anchors)
    rec.write(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
