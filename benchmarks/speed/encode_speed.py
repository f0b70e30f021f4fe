"""Encoding: quality over encoding time with the default options.

Usage::

    .venv/bin/python benchmarks/speed/encode_speed.py [--budgets 60 120 300 600] [--preset P]

Real encodes of the 320x180 sample clip (64 frames) with the default options (rate control at
``--quality 6``; ``--preset NAME`` for a fixed network instead) and ``--time-budget`` of each
value, so each row is what a user gets from ``dnerv encode --time-budget B``: bytes and bpp of
the written file, PSNR and MS-SSIM measured by decoding it, epochs, training and total seconds.
The encoder's training speed against the official code, same clip and configuration, is
``official_compare.py``'s.
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
from _common import CLIP

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


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--budgets", type=float, nargs="+", default=[60, 120, 300, 600])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--preset", help="budget: a fixed network instead of the default rate control")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    _header(args)
    print(f"load average before: {os.getloadavg()}\n")
    with tempfile.TemporaryDirectory() as tmp:
        part_budget(args, Path(tmp))
    print(f"\nload average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
