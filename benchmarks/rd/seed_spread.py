"""How far apart seeds of the same encode land, and whether wider heads or cascaded flows help.

Usage::

    .venv/bin/python benchmarks/rd/seed_spread.py [--epochs 40] [--seeds 0 1 2 3 4 5] \\
        [--variants h0 h4 h0c] [--quality 6]

Each run is ``dnerv encode data/bbb_320x180_64f.mp4 OUT --quality Q --epochs E --seed S`` (rate
control, everything else default) for each variant ``hN`` or ``hNc``: rate control's
``head_hidden = N`` (the heads' hidden layer gets at least N channels; 0: the official
``C // 4``, one channel for the narrowest compact models), and with ``c``, ``flow_cascade``
on (each level's flow adds the upsampled flow of the level below; off without ``c``). A fixed
epoch count, not a time budget, so the figures do not depend on the machine's load. Printed
per run: the landing (width, weight bits), bytes, bpp and PSNR of the written file, and the
mean |flow| of the last flow head (the one that warps the keyframes at full resolution) over
the decoded video, which tells whether the network learned to move the keyframes at all. Then
per variant: mean, spread, worst and best.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

sys.path[:0] = [str(Path(__file__).resolve().parents[n]) for n in (2, 1)]  # repo, benchmarks/

import numpy as np
from _common import CLIP

import dnerv_codec
from dnerv_codec import ratecontrol


def last_flow(path: Path) -> float:
    """Mean |flow| (pixels) of the full-resolution flow head over the whole decoded video."""
    seen: list[float] = []
    with dnerv_codec.open(path, device="cpu") as f:
        head = f.model.flow_heads[-1]
        hook = head.register_forward_hook(lambda m, i, o: seen.append(o.abs().mean().item()))
        for _ in f.frames(0):
            pass
        hook.remove()
    return float(np.mean(seen))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5])
    ap.add_argument("--variants", nargs="+", default=["h0", "h4"])
    ap.add_argument("--quality", type=float, default=6.0)
    args = ap.parse_args(argv)
    print(f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC; {CLIP.name}, quality "
          f"{args.quality}, {args.epochs} epochs\n")  # fmt: skip
    print("| variant | seed | width | bits | parameters | bytes | bpp | PSNR dB | last flow |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|", flush=True)
    psnrs: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for variant in args.variants:
            config = dataclasses.replace(
                ratecontrol.DEFAULT,
                head_hidden=int(variant[1:].rstrip("c")),
                flow_cascade=variant.endswith("c"),
            )
            for seed in args.seeds:
                path = Path(tmp) / f"{variant}-s{seed}.dnerv"
                r = dnerv_codec.encode(
                    [CLIP], path, quality=args.quality, epochs=args.epochs, seed=seed,
                    quiet=True, force=True, rate_control=config,
                )  # fmt: skip
                psnrs.setdefault(variant, []).append(r.psnr)
                print(f"| {variant} | {seed} | {r.rate['width']} | {r.rate['quant_bits']} | "
                      f"{r.parameters:,} | {r.bytes:,} | {r.bpp:.4f} | {r.psnr:.2f} | "
                      f"{last_flow(path):.4f} |", flush=True)  # fmt: skip
    print("\n| variant | runs | mean PSNR | std | worst | best |")
    print("|---:|---:|---:|---:|---:|---:|")
    for variant, v in psnrs.items():
        sd = statistics.stdev(v) if len(v) > 1 else 0.0
        print(f"| {variant} | {len(v)} | {statistics.mean(v):.2f} | {sd:.2f} | {min(v):.2f} | "
              f"{max(v):.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
