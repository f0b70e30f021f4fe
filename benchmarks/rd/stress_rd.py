"""Rate-distortion of dnerv on the stress set, with BD-rate against the fair anchors.

Builds (or reads) the stress set of ``dnerv_codec.rd.stress`` in a cache folder outside the
repository, then for every clip

1. runs named anchors of ``dnerv_codec.rd.anchors`` over a QP/CRF sweep (seconds a point;
   :data:`ANCHORS` by default: the three 4:4:4 anchors of the goals, x265 low delay 4:4:4, and
   4:2:0 twins of three 4:4:4 ones);
2. unless ``--anchors-only``, encodes the clip with dnerv at each ``--target-bpp`` with
   ``--time-budget`` seconds of training a point (``dnerv encode --target-bpp B --time-budget T``
   through the ``dnerv`` codec of ``dnerv_codec.rd``), on the CPU;

MS-SSIM is not computed (it would be most of the anchors' time). The script writes into
``--out`` one results JSON per clip and codec (``<clip>/<codec>.json``; a rerun
skips what is there), then ``results-LABEL.json`` and ``report-LABEL.md`` (``--label``), and
the per-clip BD table as a results record (``results/rd/stress-LABEL.json``, or ``--json``):

- BD-rate of dnerv against each PSNR-RGB anchor (x265-kf first: the keyframe codec's own
  configuration on every frame), per clip and averaged over the clips, and against the 4:2:0
  anchors in PSNR-YUV. Each anchor sweep is cut to the points that bracket dnerv's rates
  (``dnerv_codec.rd.bd.bracket``) before the Bjontegaard integral;
- the per-frame PSNR-RGB spread (mean, worst frame, mean - worst) of dnerv per clip and rate,
  next to x265-kf's at the nearest rate;
- the anchors against x265-kf over the same rate window (``--window``, default the target
  rates), in PSNR-RGB, and each 4:2:0 anchor against its 4:4:4 + tune psnr twin in PSNR-RGB
  and PSNR-YUV: what coding 4:4:4 with tune psnr is worth;
- where issue 18's goals stand: BD-rate <= +2 % against x265-kf on every clip, <= -10 % on
  average, no frame more than 6 dB below its clip's mean at the rate nearest 0.1 bpp.

Usage::

    .venv/bin/python benchmarks/rd/stress_rd.py --out /tmp/stress                  # 4 rates, 300 s
    .venv/bin/python benchmarks/rd/stress_rd.py --out /tmp/stress --anchors-only
    .venv/bin/python benchmarks/rd/stress_rd.py --out /tmp/stress --report-only
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import warnings
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[n]) for n in (2, 1)]  # repo, benchmarks/

import _results

from dnerv_codec import rd
from dnerv_codec.errors import InputError
from dnerv_codec.rd import stress
from dnerv_codec.rd.anchors import KEYFRAME_ANCHOR, RGB_ANCHORS, YUV_ANCHORS, fair_metric
from dnerv_codec.rd.bd import BDOverlapWarning, bracket

SWEEP = (12, 17, 22, 27, 32, 37, 42, 47)  # CRF of the ffmpeg anchors: ~0.005 to >1 bpp
KF_SWEEP = tuple(range(18, 52))  # CRF of x265-kf: every step of hevc-ra's scale (18..51)
REPORTED = ("x265-kf", "x265-ra444-veryslow", "x264-ra444")  # dnerv's BD columns, in order
ANCHORS = ("x265-kf", "x265-ra444", "x265-ra444-veryslow", "x264-ra444", "x265-ld444")
ANCHORS += ("x265-ra420", "x265-ld420", "x264-ra420")  # the 4:2:0 ones: twins of 4:4:4 ones
TWINS = {"x265-ra420": "x265-ra444", "x265-ld420": "x265-ld444"}
TWINS |= {"x264-ra420": "x264-ra444", "x264-ld420": "x264-ld444"}
FLOOR, AVERAGE, SPREAD = 2.0, -10.0, 6.0  # issue 18's goals (%, %, dB)


def cache_dir(downscale: int, max_frames: int | None) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "dnerv-stress"
    return base / f"d{downscale}_f{max_frames or 'all'}"


def load_set(folder: Path, downscale: int, max_frames: int | None, clips: list[str]) -> list:
    if not (folder / "manifest.json").is_file():
        print(f"building the stress set in {folder}")
        stress.write_stress_set(folder, downscale=downscale, max_frames=max_frames)
    videos = stress.read_stress_set(folder)
    return [v for v in videos if v.name in clips]


def run_curve(path: Path, video, codec: str, qualities, **options) -> dict:
    """The curve at ``path`` if there, else measured and saved there.

    A point the codec refuses (dnerv: a target below its smallest file) is left out of the
    curve and listed under ``failed`` with the reason.
    """
    if path.is_file():
        return rd.load_json(path)
    points, failed = [], []
    for quality in qualities:
        try:
            points.append(rd.evaluate(video, codec, quality, ms_ssim=False, **options))
        except InputError as exc:
            failed.append({"quality": quality, "error": str(exc)})
            print(f"  {codec} {quality}: {exc}", flush=True)
    curve = rd.curve(codec, points, [video], **options)
    curve["failed"] = failed
    rd.save_json(curve, path)
    return curve


def bd(anchor: dict, test: dict, metric: str) -> float:
    """BD-rate of two curves cut to the same rate window (both anchors: similar ranges)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BDOverlapWarning)
        return rd.bd_rate(anchor, test, metric)


def bd_over_test(anchor: dict, test: dict, metric: str, kind: str = "rate") -> float:
    """BD-rate (or BD-PSNR) of a short test curve against a long anchor sweep.

    BD-rate integrates over quality, so the anchor is cut to the points bracketing the test's
    quality range, and the value is given when those cover at least half of it (the overlap
    rule of ``dnerv_codec.rd.bd`` would also count the anchor's own wider range against it).
    BD-PSNR integrates over rate: the same with the test's rates.
    """
    key = metric if kind == "rate" else "bpp"
    values = [v for v in test["results"][key] if v is not None]
    if len(values) < 2:
        return math.nan
    if kind == "rate" and max(values) < min(v for v in anchor["results"][key] if v is not None):
        return math.inf  # worse than the anchor's whole sweep
    cut = bracket(anchor, min(values), max(values), key=key)
    covered = [v for v in cut["results"][key] if v is not None]
    shared = min(max(covered, default=0), max(values)) - max(min(covered, default=0), min(values))
    if shared < 0.5 * (max(values) - min(values)):
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BDOverlapWarning)
        func = rd.bd_rate if kind == "rate" else rd.bd_psnr
        return func(cut, test, metric, min_overlap=0.0)


def pct(value: float) -> str:
    if value == math.inf:
        return "below sweep"
    return "n/a" if value is None or not math.isfinite(value) else f"{value:+.1f} %"


def db(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:+.2f} dB"


def twin_cell(rows: list[dict]) -> str:
    """BD-rate RGB / BD-PSNR RGB / BD-rate YUV, averaged over ``rows`` (clips with a value)."""
    rgb, psnr, yuv = (
        nanmean([r.get(k) for r in rows]) for k in ("psnr-rgb", "bd-psnr-rgb", "psnr-yuv")
    )
    return f"{pct(rgb)} / {db(psnr)} / {pct(yuv)}"


def nanmean(values: list[float]) -> float:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


def analyse(curves: dict[str, dict[str, dict]], window: tuple[float, float], label: str) -> dict:
    """Every number of the report, from the curves of each clip ({clip: {codec: curve}})."""
    dnerv_name = f"dnerv-{label}"
    out: dict = {"clips": {}, "window": window}
    for clip, own in curves.items():
        if KEYFRAME_ANCHOR not in own:
            continue
        row: dict = {"anchors_vs_kf": {}, "yuv_vs_444": {}}
        kf = bracket(own[KEYFRAME_ANCHOR], *window)
        for name in RGB_ANCHORS[1:]:
            if name in own:
                row["anchors_vs_kf"][name] = bd(kf, bracket(own[name], *window), "psnr-rgb")
        for yuv, twin in TWINS.items():
            if yuv in own and twin in own:
                a, b = bracket(own[twin], *window), bracket(own[yuv], *window)
                row["yuv_vs_444"][yuv] = {m: bd(a, b, m) for m in ("psnr-rgb", "psnr-yuv")}
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", BDOverlapWarning)
                    row["yuv_vs_444"][yuv]["bd-psnr-rgb"] = rd.bd_psnr(a, b, "psnr-rgb")
        test = own.get(dnerv_name)
        if test is not None:
            row["failed"] = test.get("failed", [])
            present = [n for n in (*RGB_ANCHORS, *YUV_ANCHORS) if n in own]
            row["dnerv"] = {n: bd_over_test(own[n], test, fair_metric(own[n])) for n in present}
            row["dnerv_psnr"] = {
                n: bd_over_test(own[n], test, fair_metric(own[n]), "psnr") for n in present
            }
            row["points"] = []
            for p in test["points"]:
                kf_points = own[KEYFRAME_ANCHOR]["points"]
                near = min(kf_points, key=lambda q: abs(math.log(q["bpp"] / p["bpp"])))
                row["points"].append(
                    {
                        "target": p["quality"],
                        "bpp": p["bpp"],
                        "psnr-rgb": p["psnr-rgb"],
                        "worst": p["psnr-rgb-worst"],
                        "spread": p["psnr-rgb-spread"],
                        "kf_bpp": near["bpp"],
                        "kf_psnr": near["psnr-rgb"],
                        "kf_spread": near["psnr-rgb-spread"],
                        "keyframe_bytes": (p.get("dnerv") or {}).get("keyframe_bytes"),
                        "bytes": p["bytes"],
                        # which file --mode auto kept, and the other one it measured
                        "kept": (p.get("dnerv") or {}).get("structure", "network"),
                        "other": (p.get("dnerv") or {}).get("alternative"),
                    }
                )
        out["clips"][clip] = row
    with_dnerv = [r for r in out["clips"].values() if "dnerv" in r]
    if with_dnerv:
        names = list(with_dnerv[0]["dnerv"])
        out["average"] = {n: nanmean([r["dnerv"].get(n) for r in with_dnerv]) for n in names}
        out["average_psnr"] = {
            n: nanmean([r["dnerv_psnr"].get(n) for r in with_dnerv]) for n in names
        }
        kf = [r["dnerv"].get(KEYFRAME_ANCHOR, math.nan) for r in with_dnerv]
        at_01 = [
            min(r["points"], key=lambda p: abs(math.log(p["bpp"] / 0.1)))
            for r in with_dnerv
            if r["points"]
        ]
        out["goals"] = {
            "floor": {
                "limit": FLOOR,
                "worst": max((v for v in kf if math.isfinite(v)), default=math.nan),
                "misses": sum(v > FLOOR for v in kf),
                "unmeasured": sum(math.isnan(v) for v in kf),
            },
            "average": {"limit": AVERAGE, "value": out["average"][KEYFRAME_ANCHOR]},
            "spread": {
                "limit": SPREAD,
                "worst": max((p["spread"] for p in at_01), default=math.nan),
                "misses": sum(p["spread"] > SPREAD for p in at_01),
            },
        }
    return out


def markdown(result: dict, header: str, label: str) -> str:
    clips = result["clips"]
    lines = [header, ""]
    if "average" in result:
        names = [n for n in REPORTED if n in result["average"]]
        others = [n for n in result["average"] if n not in names]
        lines += [
            f"BD-rate (BD-PSNR) of dnerv ({label}) per clip against each anchor, over the "
            "qualities (rates) dnerv spans; negative BD-rate = fewer bits; PSNR-RGB against the "
            "4:4:4 anchors, PSNR-YUV against 4:2:0; below sweep: dnerv's best point is worse "
            "than the anchor's worst (QP/CRF 47) at lower rates; n/a: the anchor's points cover "
            "under half of dnerv's range, or dnerv has fewer than two points:",
            "",
            "| clip | " + " | ".join(names + others) + " |",
            "|---|" + "---:|" * (len(names) + len(others)),
        ]
        for clip, row in clips.items():
            if "dnerv" in row:
                cells = [
                    f"{pct(row['dnerv'].get(n))} ({db(row['dnerv_psnr'].get(n))})"
                    for n in names + others
                ]
                lines.append(f"| {clip} | " + " | ".join(cells) + " |")
        avg = [
            f"{pct(result['average'][n])} ({db(result['average_psnr'][n])})" for n in names + others
        ]
        lines += ["| **average** (of the clips with a value) | " + " | ".join(avg) + " |", ""]
        lines += [
            "Per-frame PSNR-RGB of dnerv (mean, worst frame, mean - worst) and x265-kf's at the "
            "nearest rate:",
            "",
            "| clip | target | bpp | PSNR | worst | mean - worst | keyframe share | kept "
            "| the other file | x265-kf bpp | x265-kf PSNR | x265-kf mean - worst |",
            "|---|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---:|",
        ]
        for clip, row in clips.items():
            for p in row.get("points", []):
                share = p["keyframe_bytes"] / p["bytes"] if p["keyframe_bytes"] else math.nan
                other = p.get("other")
                other = (
                    f"{other['structure']}: {other['psnr']:.2f} dB at "
                    f"{other['bytes'] * p['bpp'] / p['bytes']:.4f} bpp"
                    if other
                    else "-"
                )
                lines.append(
                    f"| {clip} | {p['target']} | {p['bpp']:.4f} | {p['psnr-rgb']:.2f} "
                    f"| {p['worst']:.2f} | {p['spread']:.2f} | {share:.0%} "
                    f"| {p.get('kept', 'network')} | {other} | {p['kf_bpp']:.4f} "
                    f"| {p['kf_psnr']:.2f} | {p['kf_spread']:.2f} |"
                )
        for clip, row in clips.items():
            for fail in row.get("failed", []):
                lines.append(f"| {clip} | {fail['quality']} | failed: {fail['error']} |")
        g = result["goals"]
        lines += [
            "",
            "Issue 18's goals:",
            "",
            f"- floor, BD-rate <= +{g['floor']['limit']:g} % against x265-kf on every clip: "
            f"{'met' if not g['floor']['misses'] + g['floor']['unmeasured'] else 'missed'} "
            f"({g['floor']['misses']} of {sum('dnerv' in r for r in clips.values())} clips "
            f"above (below the sweep counts as above), {g['floor']['unmeasured']} without a "
            f"BD-rate (fewer than two dnerv points, or too little overlap), worst measured "
            f"{pct(g['floor']['worst'])})",
            f"- average <= {g['average']['limit']:g} % against x265-kf: "
            f"{'met' if g['average']['value'] <= g['average']['limit'] else 'missed'} "
            f"({pct(g['average']['value'])})",
            f"- no frame more than {g['spread']['limit']:g} dB below its clip's mean at the rate "
            f"nearest 0.1 bpp: {'met' if not g['spread']['misses'] else 'missed'} "
            f"({g['spread']['misses']} clips above, largest mean - worst "
            f"{g['spread']['worst']:.2f} dB)",
            "",
        ]
    if not clips:
        return "\n".join(lines)
    low, high = result["window"]
    names = [n for n in RGB_ANCHORS if any(n in r["anchors_vs_kf"] for r in clips.values())]
    lines += [
        f"Anchors against x265-kf, BD-rate in PSNR-RGB over {low:g}-{high:g} bpp (each sweep "
        "cut to the points bracketing that window):",
        "",
        "| clip | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for clip, row in clips.items():
        lines.append(
            f"| {clip} | " + " | ".join(pct(row["anchors_vs_kf"].get(n)) for n in names) + " |"
        )
    avg = [pct(nanmean([r["anchors_vs_kf"].get(n) for r in clips.values()])) for n in names]
    lines += ["| **average** | " + " | ".join(avg) + " |", ""]
    pairs = [p for p in TWINS if any(p in r["yuv_vs_444"] for r in clips.values())]
    lines += [
        "What 4:4:4 + tune psnr is worth: each 4:2:0 anchor against its 4:4:4 + tune psnr twin "
        f"over {low:g}-{high:g} bpp: BD-rate in PSNR-RGB / BD-PSNR in PSNR-RGB / BD-rate in "
        "PSNR-YUV (positive BD-rate = the 4:2:0 anchor needs more bits; n/a: the two curves "
        "share under half of their quality range):",
        "",
        "| clip | " + " | ".join(f"{p} vs {TWINS[p]}" for p in pairs) + " |",
        "|---|" + "---:|" * len(pairs),
    ]
    for clip, row in clips.items():
        cells = [twin_cell([row["yuv_vs_444"].get(p, {})]) for p in pairs]
        lines.append(f"| {clip} | " + " | ".join(cells) + " |")
    avg = [twin_cell([r["yuv_vs_444"].get(p, {}) for r in clips.values()]) for p in pairs]
    lines += ["| **average** | " + " | ".join(avg) + " |", ""]
    return "\n".join(lines)


def record_bd(rec: _results.Recorder, result: dict) -> None:
    """The per-clip BD table of the report (cells as the report writes them; the numbers are in
    the record's data)."""
    names = [n for n in REPORTED if n in result["average"]]
    names += [n for n in result["average"] if n not in names]
    rows = [
        [clip, *[f"{pct(row['dnerv'].get(n))} ({db(row['dnerv_psnr'].get(n))})" for n in names]]
        for clip, row in result["clips"].items()
        if "dnerv" in row
    ]
    average = [f"{pct(result['average'][n])} ({db(result['average_psnr'][n])})" for n in names]
    rows.append(["**average** (of the clips with a value)", *average])
    columns = ["clip", *[{"name": n, "align": "r"} for n in names]]
    rec.table("bd", "BD-rate (BD-PSNR) of dnerv per clip against each anchor", columns, rows)
    rec.data["bd"] = {clip: row.get("dnerv") for clip, row in result["clips"].items()}
    rec.data["goals"] = result["goals"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="results folder")
    parser.add_argument("--set", type=Path, default=None, help="stress set cache folder")
    parser.add_argument("--downscale", type=int, default=1, help="divide both sides by N")
    parser.add_argument("--max-frames", type=int, default=None, help="cap every clip's length")
    parser.add_argument("--clips", nargs="+", default=list(stress.CLIPS), choices=stress.CLIPS)
    parser.add_argument("--target-bpp", type=float, nargs="+", default=[0.03, 0.06, 0.12, 0.25])
    parser.add_argument("--time-budget", type=float, default=300, help="training s a point")
    parser.add_argument("--epochs", type=int, default=10_000, help="the schedule's upper bound")
    parser.add_argument("--label", default="main", help="names dnerv's result files")
    parser.add_argument("--mode", default="auto", choices=("auto", "network", "keyframes"),
                        help="dnerv encode --mode (auto: the floor)")  # fmt: skip
    parser.add_argument("--no-cuts", action="store_true", help="dnerv encode --no-cuts")
    parser.add_argument("--anchors", nargs="*", default=list(ANCHORS))
    parser.add_argument(
        "--window", type=float, nargs=2, default=None,
        help="bpp range of the anchor comparisons (default: the target rates)",
    )  # fmt: skip
    parser.add_argument("--anchors-only", action="store_true", help="no dnerv encodes")
    parser.add_argument("--report-only", action="store_true", help="only the report")
    _results.add_arguments(parser, "rd", None)
    args = parser.parse_args(argv)
    rec = _results.Recorder(__file__, f"stress-{args.label}", argv)
    previous = args.out / f"report-{args.label}.md"
    kept_header = None
    if args.report_only and previous.is_file():  # the measuring run's date, command and load
        kept_header = "\n\n".join(previous.read_text().split("\n\n")[:2])  # title, run
        _results.restore_from_report(rec, kept_header)

    folder = args.set or cache_dir(args.downscale, args.max_frames)
    videos = load_set(folder, args.downscale, args.max_frames, args.clips)
    window = tuple(args.window or (min(args.target_bpp), max(args.target_bpp)))
    load_before = os.getloadavg()
    start = time.perf_counter()
    curves: dict[str, dict[str, dict]] = {}
    for video in videos:
        own = curves.setdefault(video.name, {})
        clip_dir = args.out / video.name
        for name in args.anchors:
            path = clip_dir / f"{name}.json"
            if args.report_only and not path.is_file():
                continue
            print(f"{video.name}: {name}", flush=True)
            sweep = KF_SWEEP if name == KEYFRAME_ANCHOR else SWEEP
            own[name] = run_curve(path, video, name, sweep)
        path = clip_dir / f"dnerv-{args.label}.json"
        if path.is_file() or not (args.anchors_only or args.report_only):
            print(f"{video.name}: dnerv {args.target_bpp}", flush=True)
            options = {"epochs": args.epochs, "time_budget": args.time_budget, "device": "cpu"}
            options.update(mode=args.mode, cuts=not args.no_cuts)
            own[f"dnerv-{args.label}"] = run_curve(path, video, "dnerv", args.target_bpp, **options)
    elapsed = time.perf_counter() - start

    result = analyse(curves, window, args.label)
    frames = {v.name: v.num_frames for v in videos}
    date, command, load = _results.report_header(
        "rd/stress_rd.py", argv, elapsed, load_before, ", no GPU used",
        command_note=" this run; files already in --out were reused",
    )  # fmt: skip
    header = "\n".join(
        [
            f"# Stress set: {len(videos)} clips of {videos[0].width}x{videos[0].height} "
            f"({', '.join(f'{k} {n}' for k, n in frames.items())} frames)",
            "",
            date,
            command,
            f"dnerv: --target-bpp {' '.join(map(str, args.target_bpp))}, --time-budget "
            f"{args.time_budget:g} s a point, --mode {args.mode}"
            f"{', --no-cuts' if args.no_cuts else ''}. Anchors: {', '.join(args.anchors)}, "
            f"x265-kf CRF {', '.join(map(str, KF_SWEEP))}, the others CRF "
            f"{', '.join(map(str, SWEEP))}.",
            load,
        ]
    )
    report = markdown(result, kept_header or header, args.label)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"report-{args.label}.md").write_text(report + "\n")
    arguments = vars(args) | {"out": str(args.out), "set": str(folder), "json": str(args.json)}
    rd.save_json({"arguments": arguments, **result}, args.out / f"results-{args.label}.json")
    if "average" in result:
        record_bd(rec, result)
        rec.write(args.json)
    print(report)
    print(f"results in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
