"""Training and inference throughput of the D-NeRV network, plain vs fast, side by side.

Usage::

    .venv/bin/python benchmarks/speed/model_speed.py [--presets small uvg-xs] [--threads 2]
        [--batch 1] [--train-steps 3] [--infer-steps 5] [--compile]

One step = one batch of clips of T = 8 frames. Training steps run forward, the D-NeRV loss
(0.7 L1 + 0.3 (1 - SSIM)), backward and an AdamW step. Prints a markdown table (frames/s, the
median over timed steps after one warm-up step) and the machine's load average, since shared cores
slow the figures down. Plain and fast variants share weights and are timed in alternation.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

# OpenMP threads that spin while waiting stall badly when other jobs share the cores; passive
# waiting costs nothing on an idle machine. Must be set before torch loads OpenMP.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

sys.path[:0] = [str(Path(__file__).resolve().parents[n]) for n in (2, 1)]  # repo, benchmarks/

import torch

from dnerv_codec.losses import dnerv_loss
from dnerv_codec.model import build_model

OFFICIAL = {"uvg-xs": (1.28, 4.65), "official-small": (7.2, 16.1)}  # docs/METHOD.md, frames/s


def _inputs(model, batch: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    H, W = model.frame_size
    T = model.T
    key = model.normalize(torch.rand(batch, 2, 3, H, W, generator=g))
    target = torch.rand(batch, T, 3, H, W, generator=g)
    t = torch.linspace(0, 1, T).expand(batch, T).contiguous()
    pos = torch.rand(batch, T, generator=g)
    return key, t, pos, target


def _autocast(label: str):
    bf16 = label.endswith("bf16")
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)


def train_step(label, run, opt, key, t, pos, target, mask) -> tuple[float, float]:
    """Wall and process CPU seconds of one forward + loss + backward + AdamW step."""
    t0, c0 = time.perf_counter(), time.process_time()
    with _autocast(label):
        out = run(key, t, pos)
    loss = dnerv_loss(out, target, mask)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return time.perf_counter() - t0, time.process_time() - c0


@torch.no_grad()
def infer_step(label, run, key, t, pos) -> tuple[float, float]:
    t0, c0 = time.perf_counter(), time.process_time()
    with _autocast(label):
        run(key, t, pos)
    return time.perf_counter() - t0, time.process_time() - c0


def bench_preset(name: str, args) -> list[str]:
    """Plain and fast (and compiled) variants with the same weights, timed in alternation so that
    load from other jobs hits all of them alike. Returns markdown table rows."""
    torch.manual_seed(0)
    ref = build_model(name)
    variants = {"plain": build_model(name, fast=False), "fast": build_model(name, fast=True)}
    if args.compile:
        variants["fast+compile"] = build_model(name, fast=True)
    if args.bf16:
        variants["fast+bf16"] = build_model(name, fast=True)
    runs, opts = {}, {}
    for label, m in variants.items():
        m.load_state_dict(ref.state_dict())
        runs[label] = torch.compile(m) if label.endswith("compile") else m
        opts[label] = torch.optim.AdamW(m.parameters(), lr=1e-5)
    key, t, pos, target = _inputs(ref, args.batch)
    mask = torch.ones(args.batch, ref.T, dtype=torch.bool)
    train = {k: [] for k in variants}
    infer = {k: [] for k in variants}
    for i in range(args.train_steps + 1):  # the first round warms up and is not counted
        for k in variants:
            if k.endswith("compile"):
                continue  # compiling the backward takes many minutes on 2 cores: inference only
            dt = train_step(k, runs[k], opts[k], key, t, pos, target, mask)
            train[k] += [dt] if i else []
    for m in variants.values():
        m.eval()
    for i in range(args.infer_steps + 1):
        for k in variants:
            dt = infer_step(k, runs[k], key, t, pos)
            infer[k] += [dt] if i else []
    frames = args.batch * ref.T
    H, W = ref.frame_size
    off = OFFICIAL.get(name)
    rows = []
    n = args.threads

    def cell(times: list[tuple[float, float]]) -> str:
        if not times:
            return "- | -"
        wall = [w for w, _ in times]
        cpu = statistics.median(c for _, c in times) / n  # CPU seconds per thread
        return (
            f"{frames / statistics.median(wall):.2f} ({frames / min(wall):.2f}) | "
            f"{frames / cpu:.2f}"
        )

    for k in variants:
        rows.append(
            f"| {name} | {H}x{W} | {ref.num_parameters():,} | {k} | {cell(train[k])} | "
            f"{cell(infer[k])} | {f'{off[0]} / {off[1]}' if off else '-'} |"
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--presets", nargs="+", default=["small", "official-small", "uvg-xs"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--train-steps", type=int, default=4)
    ap.add_argument("--infer-steps", type=int, default=6)
    ap.add_argument(
        "--compile", action="store_true", help="also time torch.compile(fast model), inference only"
    )
    ap.add_argument(
        "--bf16", action="store_true", help="also time the fast model under bf16 autocast"
    )
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"date {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.machine()}")
    print(f"torch {torch.__version__}, threads {args.threads}, batch {args.batch} clip(s) of 8,")
    print(f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}")
    print(f"load average before: {os.getloadavg()}")
    print("\nframes/s: wall median (best) over timed steps | per CPU-second of each thread")
    print("(process CPU time / threads: what the step would take on idle cores with perfect")
    print("parallelism); official: train / infer frames/s, wall, idle machine\n")
    print(
        "| preset | size | params | mode | train wall | train CPU | infer wall | infer CPU "
        "| official |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.presets:
        print("\n".join(bench_preset(name, args)), flush=True)
    print(f"\nload average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
