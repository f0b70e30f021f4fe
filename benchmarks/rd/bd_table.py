"""BD-rate and BD-PSNR of one dnerv curve against every stored baseline, in its fair metric.

Usage::

    .venv/bin/python benchmarks/rd/bd_table.py CURVE.json [CURVE2.json:0,1 ...] [--name NAME]
        [--topic TOPIC] [--anchors STEM ...] [--metric METRIC] [--also NAME CURVE ...]

Each argument is a results JSON written by ``benchmarks/rd/rd_dnerv.py`` (the results schema of
``dnerv_codec.rd``); ``FILE:i,j`` takes only its points i and j (0-based, in file order). The
points of all arguments make one curve, so a curve can be assembled from runs that measured
different rates with the same code path. Anchors: every JSON in ``--baselines`` (default
``benchmarks/results/rd_baselines_bbb_320x180_64f``, from ``benchmarks/rd/rd_baselines.py``; a
clip folder of ``benchmarks/rd/stress_rd.py`` works too, its dnerv files skipped), the named
anchors first (x265-kf leads), or those ``--anchors`` names in its order. Each is compared in
the metric it is fair for (``dnerv_codec.rd.anchors.fair_metric``): PSNR-RGB against 4:4:4
anchors, PSNR-YUV against 4:2:0 ones, and first cut to the points that bracket the test's rates
(``dnerv_codec.rd.bd.bracket``), so a long sweep is compared over the rates the test spans;
``--metric`` compares every anchor in one metric over its whole curve instead. ``--also``
adds a column: another curve's BD-rate against each anchor. A second table gives PSNR-RGB at
the test's rates, the anchors interpolated in log rate.

The tables are printed and written as a results record (topic ``--topic``; nothing is
measured, so rerunning the command rebuilds the record from the stored curves).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[n]) for n in (2, 1)]  # repo, benchmarks/

import _results
import numpy as np
import render

from dnerv_codec.rd import bd
from dnerv_codec.rd.anchors import RGB_ANCHORS, YUV_ANCHORS, fair_metric

BASELINES = _results.RESULTS / "rd_baselines_bbb_320x180_64f"
NA = "n/a (too little overlap)"
RATE = {"format": "{:+.1f} %", "align": "r", "missing": NA}
DB = {"format": "{:.2f}", "align": "r"}


def assemble(specs: list[str], name: str | None) -> dict:
    points: list[tuple[float, ...]] = []
    keys = ("bpp", "psnr-rgb", "psnr-yuv", "ms-ssim-rgb")
    first = None
    for spec in specs:
        path, _, pick = spec.partition(":")
        curve = json.loads(Path(path).read_text())
        first = first or curve
        r = curve["results"]
        chosen = [int(i) for i in pick.split(",")] if pick else range(len(r["bpp"]))
        points += [tuple(r[k][i] for k in keys) for i in chosen]
    points.sort()
    results = {k: [p[j] for p in points] for j, k in enumerate(keys)}
    return {**first, "name": name or first["name"], "results": results}


def anchor_paths(folder: Path, chosen: list[str] | None) -> list[Path]:
    """The anchors' JSONs: ``chosen`` (file stems) in its order, or all, named anchors first."""
    if chosen:
        return [folder / f"{stem}.json" for stem in chosen]
    named = [*RGB_ANCHORS, *YUV_ANCHORS]
    return sorted(
        (p for p in folder.glob("*.json") if not p.stem.startswith("dnerv")),
        key=lambda p: (p.stem not in named, named.index(p.stem) if p.stem in named else 0, p.stem),
    )


def number(value: float) -> float | None:
    """``value`` rounded for the record, None for NaN (too little overlap)."""
    return None if value != value else round(float(value), 4)


def bd_values(anchor: dict, test: dict, metric: str, whole: bool) -> tuple:
    """BD-rate (%) and BD-PSNR (dB) of ``test`` against ``anchor``, NaN where they overlap too
    little; the anchor is cut to the points bracketing the test's rates unless ``whole``."""
    if not whole:
        r = test["results"]["bpp"]
        anchor = bd.bracket(anchor, min(r), max(r))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bd.BDOverlapWarning)
        return bd.bd_rate(anchor, test, metric), bd.bd_psnr(anchor, test, metric)


def at_rate(curve: dict, bpp: float) -> float | None:
    """PSNR-RGB of ``curve`` at ``bpp``, interpolated in log rate (None outside its range)."""
    rates, psnrs = np.log(curve["results"]["bpp"]), np.array(curve["results"]["psnr-rgb"])
    if not rates.min() <= np.log(bpp) <= rates.max():
        return None
    return float(np.interp(np.log(bpp), rates, psnrs))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("curves", nargs="+", help="results JSON, optionally FILE:i,j")
    ap.add_argument("--name", help="the assembled curve's name")
    ap.add_argument("--baselines", type=Path, default=BASELINES, help="folder of anchor JSONs")
    ap.add_argument("--anchors", nargs="+", metavar="STEM", help="anchors to compare, in order")
    ap.add_argument(
        "--metric",
        choices=("psnr-rgb", "psnr-yuv", "ms-ssim-rgb"),
        help="compare every anchor in this metric over its whole curve",
    )
    ap.add_argument(
        "--also",
        nargs="+",
        action="append",
        default=[],
        metavar="NAME CURVE",
        help="a column: the BD-rate of another curve (its name, then its results JSONs)",
    )
    ap.add_argument(
        "--points",
        nargs="+",
        metavar="STEM",
        help="anchors of the PSNR-at-rate table (default: those compared in PSNR-RGB)",
    )
    ap.add_argument("--topic", default="bd-table", help="the record's topic (default bd-table)")
    _results.add_arguments(ap, "rd", None)
    args = ap.parse_args(argv)
    rec = _results.Recorder(__file__, args.topic, argv)
    test = assemble(args.curves, args.name)
    others = [(name, assemble(specs, name)) for name, *specs in args.also]
    r = test["results"]
    pairs = zip(r["bpp"], r["psnr-rgb"], strict=True)
    print(f"{test['name']}: " + ", ".join(f"{b:.4f} bpp {p:.2f} dB" for b, p in pairs))
    whole = args.metric is not None
    paths = anchor_paths(args.baselines, args.anchors)
    anchors = {p.stem: json.loads(p.read_text()) for p in paths}
    rows = []
    for anchor in anchors.values():
        metric = args.metric or fair_metric(anchor)
        rate, psnr = bd_values(anchor, test, metric, whole)
        row = [anchor["name"], *([] if whole else [metric.upper()]), number(rate)]
        row += [None if psnr != psnr else round(float(psnr), 4)]
        rows.append(row + [number(bd_values(anchor, o, metric, whole)[0]) for _, o in others])
    rate_name = f"BD-rate ({args.metric.upper()})" if whole else "BD-rate"
    columns = ["anchor", *([] if whole else ["metric"]), {**RATE, "name": rate_name}]
    columns += [{"name": "BD-PSNR", "format": "{:+.2f} dB", "align": "r", "missing": NA}]
    columns += [{**RATE, "name": name} for name, _ in others]
    how = f"in {args.metric.upper()} over its whole curve" if whole else "in its fair metric"
    bd_table = rec.table("bd", f"BD of {test['name']} against each anchor, {how}", columns, rows)

    stems = args.points or [s for s, a in anchors.items() if fair_metric(a) == "psnr-rgb"]
    shown = [anchors[s] for s in stems]
    points = []
    for b, p in zip(r["bpp"], r["psnr-rgb"], strict=True):
        cells = [at_rate(a, b) for a in shown]
        # the difference of the two values as shown (to 0.01 dB)
        diffs = [None if c is None else [c, round(round(p, 2) - round(c, 2), 2)] for c in cells]
        points.append([b, p, *diffs])
    points_table = rec.table(
        "points",
        "PSNR-RGB (dB) at the test's rates, the anchors interpolated in log rate "
        "(the test's difference in brackets)",
        [{"name": "bpp", "format": "{:.4f}", "align": "r"}, {**DB, "name": test["name"]}]
        + [{"name": a["name"], "format": "{:.2f} ({:+.2f})", "align": "r", "missing": "n/a"}
           for a in shown],
        points,
    )  # fmt: skip
    rec.data.update(
        test={"name": test["name"], "curves": args.curves, "results": r},
        also={name: specs for name, *specs in args.also},
        baselines=str(args.baselines.resolve().relative_to(_results.REPO)),
    )
    print("\n" + render.render_table(bd_table))
    print(f"\n{points_table['title']}:\n\n" + render.render_table(points_table))
    rec.write(args.json)


if __name__ == "__main__":
    main()
