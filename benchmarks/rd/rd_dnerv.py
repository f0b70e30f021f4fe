"""Rate-distortion of dnerv with rate control, against the x264/x265 curves of rd_baselines.py.

Encodes the sample clip at each target bpp (``dnerv_codec.rd``'s ``dnerv`` adapter, i.e.
``dnerv encode --target-bpp``), with a fixed number of epochs per point, and writes

- ``benchmarks/results/rd_dnerv_<clip>/<label>.json`` (CompressAI schema, plus per point what
  the bits are made of: weights, keyframes, container, and rate control's choices),
- ``.../<label>.md``: rate points, the split of the bytes, and BD against x265 medium low-delay
  (and the other baselines) read from ``benchmarks/results/rd_baselines_<clip>/``,

and prints the markdown with the machine, date, command and load average; the table of what
the bytes are made of is written as a results record (topic ``rd-dnerv-<label>``, ``--json``;
``--from-raw <label>.json`` rebuilds it from a stored curve, encoding nothing). Ablations
switch one thing of the compact design off (``--no-residual``), move the keyframe share
(``--keyframe-share``) or set the quantisation-aware fine-tuning (``--qat-epochs``; default:
the encoder's).
``--floors`` prints instead the least bpp of the fixed presets on the clip (exact parameter
counts at 2.5 bits a weight, keyframes not counted): what reaching the x265 range needs.

Usage::

    .venv/bin/python benchmarks/rd/rd_dnerv.py --bpps 0.03 0.06 0.12 0.25 --epochs 8 --label main
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[n]) for n in (2, 1)]  # repo, benchmarks/

import _results
import render
from _common import REPO

from dnerv_codec import ratecontrol, rd
from dnerv_codec.video import read_video

BASELINES = [
    "x265_medium_lowdelay",
    "x265_medium_randomaccess",
    "x264_medium_lowdelay",
    "x264_medium_randomaccess",
]


def floors(video) -> str:
    from dnerv_codec.geometry import choose_geometry
    from dnerv_codec.model import preset_names, required_multiple
    from dnerv_codec.model.presets import compact_options, count_parameters

    pixels = video.num_frames * video.width * video.height
    rows = ["| preset | patch | parameters | bpp of the weights alone at 2.5 bits/weight |"]
    rows.append("|---|---|---:|---:|")
    for name in [*preset_names(), *(f"compact-{w}" for w in (4, 8, 16, 32))]:
        kw = compact_options(int(name[8:])) if name.startswith("compact-") else {}
        preset = "compact" if kw else name
        multiple = required_multiple(kw.get("strides", preset))
        g = choose_geometry([(video.height, video.width)], multiple)
        n = count_parameters(preset, (g.patch_h, g.patch_w), **kw)
        rows.append(f"| {name} | {g.patch_h}x{g.patch_w} | {n:,} | {n * 2.5 / pixels:.3f} |")
    return "\n".join(rows)


R = {"align": "r"}
N = {"format": "{:,}", "align": "r"}


def record_curve(rec: _results.Recorder, curve: dict) -> dict:
    """The curve's table of what the bytes are made of, in the record; returns the table."""
    rows = []
    for p in curve["points"]:
        d = p["dnerv"]
        r = d["rate"] or {}
        qat = r.get("qat")
        rows.append([
            p["quality"], p["bpp"], p["psnr-rgb"], d["weight_bytes"], d["keyframe_bytes"],
            d["overhead_bytes"], r.get("keyframe_quality"), r.get("clip_length", 8),
            r.get("width"), d["parameters"], r.get("quant_bits"), r.get("prune", 0), d["epochs"],
            d["train_seconds"], f"{qat['epochs']} ({'kept' if qat['kept'] else 'not kept'})"
            if qat else "-", p["encoding_time"],
        ])  # fmt: skip
    rec.data["curve"] = curve
    return rec.table(
        "split",
        f"{curve['name']}: what the bytes are made of",
        [{**R, "name": "target bpp"}, {**R, "name": "bpp", "format": "{:.4f}"},
         {**R, "name": "PSNR-RGB", "format": "{:.2f}"}, {**N, "name": "weights B"},
         {**N, "name": "keyframes B"}, {**N, "name": "container B"},
         {**R, "name": "keyframe q"}, {**R, "name": "T"}, {**R, "name": "width"},
         {**N, "name": "params"}, {**R, "name": "bits"},
         {**R, "name": "pruned", "format": "{:.1%}"}, {**R, "name": "epochs"},
         {**R, "name": "train s", "format": "{:.0f}"}, {**R, "name": "QAT epochs"},
         {**R, "name": "encode s", "format": "{:.0f}"}],
        rows,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", default=str(REPO / "data" / "bbb_320x180_64f.mp4"))
    parser.add_argument("--bpps", type=float, nargs="+", default=[0.03, 0.06, 0.12, 0.25])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument(
        "--qat-epochs", type=int, default=None, help="default: the encoder's (ratecontrol)"
    )
    parser.add_argument(
        "--clip-length", type=int, help="a keyframe every N frames (default: the encoder's)"
    )
    parser.add_argument("--weight-rate", type=float, default=0.0, help="entropy-aware training")
    parser.add_argument(
        "--time-budget", type=float, default=None,
        help="seconds of training per point (then --epochs is the schedule's upper bound)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="the encoder's seed (the spread)")
    parser.add_argument("--keyframe-share", type=float, default=ratecontrol.DEFAULT.keyframe_share)
    parser.add_argument("--no-residual", action="store_true", help="official RGB head output")
    parser.add_argument(
        "--no-cascade", action="store_true", help="official per-level flows (no cascade)"
    )
    parser.add_argument("--keyframe-codec", default=None, help="default: the encoder's")
    parser.add_argument("--label", default="main")
    parser.add_argument("--out", default=None, help="results folder")
    parser.add_argument("--floors", action="store_true", help="print preset bpp floors, exit")
    _results.add_arguments(parser, "rd", None, raw="a <label>.json, its <label>.md beside it")
    args = parser.parse_args(argv)
    if args.from_raw:
        rec = _results.Recorder(__file__, f"rd-dnerv-{args.from_raw.stem}", argv)
        _results.restore_from_report(rec, args.from_raw.with_suffix(".md").read_text())
        rec.data["raw"] = str(args.from_raw.resolve().relative_to(REPO))
        print(render.render_table(record_curve(rec, json.loads(args.from_raw.read_text()))))
        rec.write(args.json)
        return 0
    rec = _results.Recorder(__file__, f"rd-dnerv-{args.label}", argv)

    video = read_video(args.clip)
    if args.floors:
        print(floors(video))
        return 0
    config = dataclasses.replace(
        ratecontrol.DEFAULT,
        keyframe_share=args.keyframe_share,
        rgb_skip=not args.no_residual,
        flow_cascade=not args.no_cascade,
    )
    out = Path(args.out or REPO / "benchmarks" / "results" / f"rd_dnerv_{video.name}")
    out.mkdir(parents=True, exist_ok=True)
    options = {
        "epochs": args.epochs,
        "lr": args.lr,
        "batch_size": args.batch_size,
        "device": "cpu",
    }
    if config != ratecontrol.DEFAULT:  # an ablation: the encoder takes the changed settings
        options["rate_control"] = config
    if args.seed:
        options["seed"] = args.seed
    if args.qat_epochs is not None:
        options["qat_epochs"] = args.qat_epochs
    if args.clip_length:
        options["clip_length"] = args.clip_length
    if args.weight_rate:
        options["weight_rate"] = args.weight_rate
    if args.time_budget:
        options["time_budget"] = args.time_budget
    if args.keyframe_codec:
        options["keyframe_codec"] = args.keyframe_codec
    load_before = os.getloadavg()
    start = time.perf_counter()
    curve = rd.rd_curve(video, "dnerv", args.bpps, progress=True, **options)
    elapsed = time.perf_counter() - start
    curve["name"] = f"dnerv rate control ({args.label})"
    rd.save_json(curve, out / f"{args.label}.json")

    baselines = []
    base_dir = REPO / "benchmarks" / "results" / f"rd_baselines_{video.name}"
    for name in BASELINES:
        path = base_dir / f"{name}.json"
        if path.is_file():
            baselines.append(rd.load_json(path))
    anchor = baselines[0] if baselines else None
    date, command, load = _results.report_header(
        "rd/rd_dnerv.py", argv, elapsed, load_before, ", torch on CPU"
    )
    header = "\n".join(
        [
            f"Clip `{Path(args.clip).name}`: {video.num_frames} frames of "
            f"{video.width}x{video.height}.",
            date,
            command,
            f"Settings: {json.dumps({k: v for k, v in options.items() if k != 'rate_control'})}, "
            f"keyframe share {args.keyframe_share}, "
            f"rgb residual {not args.no_residual}, flow cascade {not args.no_cascade}.",
            load,
            "",
        ]
    )
    report = rd.markdown_report([*baselines, curve], anchor, header)
    report += "\nWhat the bytes are made of:\n\n" + render.render_table(record_curve(rec, curve))
    (out / f"{args.label}.md").write_text(report + "\n")
    print(report)
    print(f"results in {out}")
    rec.write(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
