"""BD-rate and BD-PSNR of one dnerv curve against every stored baseline, in its fair metric.

Usage::

    .venv/bin/python benchmarks/rd/bd_table.py CURVE.json [CURVE2.json:0,1 ...] [--name NAME]

Each argument is a results JSON written by ``benchmarks/rd/rd_dnerv.py`` (the results schema of
``dnerv_codec.rd``); ``FILE:i,j`` takes only its points i and j (0-based, in file order). The
points of all arguments make one curve, so a curve can be assembled from runs that measured
different rates with the same code path. Anchors: every JSON in ``--baselines`` (default
``benchmarks/results/rd_baselines_bbb_320x180_64f``, from ``benchmarks/rd/rd_baselines.py``; a
clip folder of ``benchmarks/rd/stress_rd.py`` works too, its dnerv files skipped), the named
anchors first (x265-kf leads). Each is compared in the metric it is fair for
(``dnerv_codec.rd.anchors.fair_metric``): PSNR-RGB against 4:4:4 anchors, PSNR-YUV against
4:2:0 ones. Each anchor is first cut to the points that bracket the test's rates
(``dnerv_codec.rd.bd.bracket``), so a long sweep is compared over the rates the test spans.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[n]) for n in (2, 1)]  # repo, benchmarks/

import numpy as np

from dnerv_codec.rd import bd
from dnerv_codec.rd.anchors import RGB_ANCHORS, YUV_ANCHORS, fair_metric

BASELINES = Path(__file__).resolve().parent / "results" / "rd_baselines_bbb_320x180_64f"


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


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("curves", nargs="+", help="results JSON, optionally FILE:i,j")
    ap.add_argument("--name", help="the assembled curve's name")
    ap.add_argument("--baselines", type=Path, default=BASELINES, help="folder of anchor JSONs")
    args = ap.parse_args(argv)
    test = assemble(args.curves, args.name)
    r = test["results"]
    pairs = zip(r["bpp"], r["psnr-rgb"], strict=True)
    print(f"{test['name']}: " + ", ".join(f"{b:.4f} bpp {p:.2f} dB" for b, p in pairs))
    print("\n| anchor | metric | BD-rate | BD-PSNR |\n|---|---|---:|---:|")
    named = [*RGB_ANCHORS, *YUV_ANCHORS]
    paths = sorted(
        (p for p in args.baselines.glob("*.json") if not p.stem.startswith("dnerv")),
        key=lambda p: (p.stem not in named, named.index(p.stem) if p.stem in named else 0, p.stem),
    )
    low, high = min(r["bpp"]), max(r["bpp"])
    anchors = [bd.bracket(json.loads(path.read_text()), low, high) for path in paths]
    for anchor in anchors:
        metric = fair_metric(anchor)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", bd.BDOverlapWarning)
            rate, psnr = bd.bd_rate(anchor, test, metric), bd.bd_psnr(anchor, test, metric)
        cell = "n/a (too little overlap)"
        rate_cell = cell if rate != rate else f"{rate:+.1f} %"
        psnr_cell = cell if psnr != psnr else f"{psnr:+.2f} dB"
        print(f"| {anchor['name']} | {metric.upper()} | {rate_cell} | {psnr_cell} |")
    rgb = [a for a in anchors if fair_metric(a) == "psnr-rgb"]
    print("\nPSNR-RGB (dB) at the test's rates, the 4:4:4 anchors interpolated in log rate:\n")
    print("| bpp | test | " + " | ".join(a["name"] for a in rgb) + " |")
    print("|---:|---:|" + "---:|" * len(rgb))
    for b, p in zip(r["bpp"], r["psnr-rgb"], strict=True):
        cells = [at_rate(a, b) for a in rgb]
        print(f"| {b:.4f} | {p:.2f} | " + " | ".join(cells) + " |")


def at_rate(curve: dict, bpp: float) -> str:
    """PSNR-RGB of ``curve`` at ``bpp``, interpolated in log rate ("n/a" outside its range)."""
    rates, psnrs = np.log(curve["results"]["bpp"]), np.array(curve["results"]["psnr-rgb"])
    if not rates.min() <= np.log(bpp) <= rates.max():
        return "n/a"
    return f"{np.interp(np.log(bpp), rates, psnrs):.2f}"


if __name__ == "__main__":
    main()
