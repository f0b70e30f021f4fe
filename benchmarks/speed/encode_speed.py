"""Encoding: quality over time, and training speed against the official code's figures.

Usage::

    .venv/bin/python benchmarks/speed/encode_speed.py --part budget [--budgets 60 120 300] [--preset P]
    .venv/bin/python benchmarks/speed/encode_speed.py --part official

``budget``: real encodes of the 320x180 sample clip (64 frames) with the default options (rate
control at ``--quality 6``; ``--preset NAME`` for a fixed network instead) and ``--time-budget``
of each value, so each row is what a user gets from ``dnerv encode --time-budget B``: bytes and
bpp of the written file, PSNR and MS-SSIM measured by decoding it, epochs, training and total
seconds.

``official``: the official small configuration (``official-small``: 1,245,829 parameters at
144x176, fc_dim 14, strides 2,2,2,2) fitted for 60 epochs with batch 2 clips and lossless (png)
keyframes, as in docs/METHOD.md ("The official code on a 2-core CPU"), on the sample clip
scaled to 176x144: training frames/s and PSNR after the 8-bit quantisation, to set next to the
official 7.2 frames/s and 28.60 dB (measured on a different 176x144 clip of 120 frames).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

sys.path[:0] = [str(Path(__file__).resolve().parents[n]) for n in (2, 1)]  # repo, benchmarks/

import torch
from _common import CLIP, scaled_copy

import dnerv_codec


def _header(args) -> None:
    print(f"date {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.machine()}, ", end="")
    print(f"python {sys.version.split()[0]}, torch {torch.__version__}, threads {args.threads}")


def _row(label: str, report, wall: float) -> str:
    load = os.getloadavg()[0]
    return (
        f"| {label} | {report.epochs} | {report.train_seconds:.0f} | {wall:.0f} | "
        f"{report.bytes:,} | {report.bpp:.4f} | {report.psnr:.2f} | {report.ms_ssim:.4f} | "
        f"{load:.1f} |"
    )


def part_budget(args, work: Path) -> None:
    mode = f"preset {args.preset}" if args.preset else "default options (rate control, quality 6)"
    print(f"{mode}\n")
    print("| time budget | epochs | train s | encode s | bytes | bpp | PSNR dB | MS-SSIM | load |")
    print("|---|---|---|---|---|---|---|---|---|")
    for budget in args.budgets:
        t0 = time.monotonic()
        report = dnerv_codec.encode(
            [CLIP], work / f"b{budget}.dnerv", epochs=10_000, time_budget=budget,
            preset=args.preset, quiet=True, force=True,
        )  # fmt: skip
        print(_row(f"{budget:.0f} s", report, time.monotonic() - t0), flush=True)


def part_official(args, work: Path) -> None:
    clip = scaled_copy(CLIP, work / "bbb_176x144.mkv", "176x144")
    t0 = time.monotonic()
    report = dnerv_codec.encode(
        [clip], work / "official.dnerv", preset="official-small", epochs=60, batch_size=2,
        keyframe_codec="png", keyframe_quality=1, quiet=True, force=True,
    )  # fmt: skip
    wall = time.monotonic() - t0
    frames = 64 * report.epochs
    print("| run | epochs | train s | encode s | bytes | bpp | PSNR dB | MS-SSIM | load |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(_row("official-small, 60 epochs, batch 2, png keyframes", report, wall))
    fps = frames / report.train_seconds
    print(f"\ntraining throughput: {fps:.2f} frames/s ({frames} frames trained); ", end="")
    print("official: 7.2 frames/s, 28.60 dB")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--part", choices=["budget", "official"], required=True)
    ap.add_argument("--budgets", type=float, nargs="+", default=[60, 120, 300, 600])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--preset", help="budget: a fixed network instead of the default rate control")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    _header(args)
    print(f"load average before: {os.getloadavg()}\n")
    with tempfile.TemporaryDirectory() as tmp:
        {"budget": part_budget, "official": part_official}[args.part](args, Path(tmp))
    print(f"\nload average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
