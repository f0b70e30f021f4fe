"""`make demo`: encode the bundled sample clip, decode it, and compare with the 4:4:4 anchors.

Prints the .dnerv size, bpp, PSNR and per-frame PSNR spread, and what the fair anchors for
PSNR-RGB reach at the same bpp on the same frames: x265-kf (dnerv's own keyframe codec,
x265 random access 4:4:4, on every frame), x265 medium random access and low delay and x264
medium random access, all 4:4:4 with tune psnr (``dnerv_codec.rd.anchors``). Writes an RD plot
and a markdown table to out/demo/. Runs in a few minutes on a 2-core CPU (the training budget is
the --budget option, in seconds).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
CLIP = REPO / "data" / "bbb_320x180_64f.mp4"
CRFS = (8, 12, 15, 18, 23, 28, 33, 38, 43, 48)  # 8-15: up to the rates D-NeRV needs here
QPS = (18, 22, 26, 30, 34, 38, 42, 46)  # x265-kf: QP 18 is the keyframe codec's finest
ANCHORS = ("x265-kf", "x265-ra444", "x265-ld444", "x264-ra444")


def _at_bpp(curve: dict, bpp: float) -> str:
    """PSNR of a curve at ``bpp``, interpolated in log-rate; says so when out of range."""
    rates = np.array(curve["results"]["bpp"])
    psnrs = np.array(curve["results"]["psnr-rgb"])
    if bpp < rates.min():
        return f"below its lowest rate ({rates.min():.4f} bpp -> {psnrs[0]:.2f} dB)"
    if bpp > rates.max():
        return f"above its highest rate ({rates.max():.4f} bpp -> {psnrs[-1]:.2f} dB)"
    return f"{np.interp(np.log(bpp), np.log(rates), psnrs):.2f} dB"


def _kept(report) -> str:
    """Which file ``--mode auto`` kept, and the other one it measured at the same budget."""
    kept = {"keyframes": "the keyframe-only file", "network": "the network's file"}
    text = kept[report.structure]
    other = report.alternative
    if other:
        text += (
            f" (the other, {kept[other['structure']]}: {other['bytes']:,} bytes, "
            f"{other['psnr']:.2f} dB)"
        )
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--budget", type=float, default=300, help="training seconds")
    parser.add_argument(
        "--target-bpp", type=float, default=0.25,
        help="rate control: the file's bits per pixel (the compact family, sized to it)",
    )  # fmt: skip
    parser.add_argument(
        "--preset", default=None,
        help="a fixed network preset instead of rate control (e.g. demo, small)",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=REPO / "out" / "demo")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)

    import dnerv_codec
    from dnerv_codec import rd
    from dnerv_codec.decoder import DnervFile
    from dnerv_codec.video import read_video

    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / "bbb.dnerv"
    if args.preset:
        mode, label = {"preset": args.preset}, f"preset {args.preset!r}"
    else:
        mode, label = {"target_bpp": args.target_bpp}, f"--target-bpp {args.target_bpp:g}"
    print(f"encoding {CLIP.name} with {label}, {args.budget:.0f} s of training")
    began = time.monotonic()
    report = dnerv_codec.encode(
        [CLIP], target, epochs=10_000, time_budget=args.budget, force=True, quiet=args.quiet,
        **mode,
    )  # fmt: skip
    print(report.summary())
    print(f"encode took {time.monotonic() - began:.0f} s; kept {_kept(report)}")
    frames_dir = args.out / "frames"
    result = dnerv_codec.decode(target, frames_dir, force=True, quiet=True)
    print(f"decoded {result['frames']} frames to {frames_dir} ({result['fps']:.1f} frames/s)")

    video = read_video(CLIP)
    curves = [
        rd.rd_curve(video, name, QPS if name == "x265-kf" else CRFS, progress=not args.quiet)
        for name in ANCHORS
    ]
    with DnervFile(target, device="cpu") as f:
        decoded = np.stack(list(f.frames(0)))
    point = rd.rate_point(
        "dnerv", args.preset or args.target_bpp, video, decoded, target.stat().st_size,
        report.encode_seconds, result["seconds"],
    )  # fmt: skip
    ours = rd.curve("dnerv", [point], [video])
    for curve in curves:
        rd.save_json(curve, args.out / f"{curve['codec']}.json")
    rd.save_json(ours, args.out / "dnerv.json")
    rd.plot([*curves, ours], args.out / "rd.png", title=f"{CLIP.name}, RGB PSNR")
    header = (
        f"# make demo: {CLIP.name}, {video.num_frames} frames {video.width}x{video.height}\n\n"
        f"dnerv: {label}, {args.budget:.0f} s of training; the file kept: {_kept(report)}. "
        "Anchors (4:4:4, tune psnr: the fair ones for PSNR-RGB): x265-kf (dnerv's hevc-ra "
        "keyframe codec on every frame, QP "
        + ", ".join(map(str, QPS))
        + "), x265-ra444, x265-ld444 and x264-ra444 (preset medium, CRF "
        + ", ".join(map(str, CRFS))
        + "). bpp from the file sizes.\n"
    )
    table = rd.markdown_report([ours, *curves], header=header)
    (args.out / "rd.md").write_text(table, encoding="utf-8")
    print(f"\nAt {point['bpp']:.4f} bpp on the same {video.num_frames} frames (PSNR-RGB):")
    print(
        f"  dnerv ({label}, {_kept(report)}): {point['psnr-rgb']:.2f} dB, worst frame "
        f"{point['psnr-rgb-worst']:.2f} dB ({point['psnr-rgb-spread']:.2f} dB below the mean)"
    )
    for curve in curves:
        print(f"  {curve['name']} ({curve['description']}): {_at_bpp(curve, point['bpp'])}")
    print(f"\nRD plot: {args.out / 'rd.png'}, table: {args.out / 'rd.md'}; JSON per codec there")
    return 0


def run() -> int:
    """main() with the CLI's error policy: one line on stderr, no traceback."""
    from dnerv_codec.errors import DnervError

    try:
        return main()
    except (DnervError, OSError) as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        print(f"demo: interrupted {exc}".rstrip(), file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(run())
