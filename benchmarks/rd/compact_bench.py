"""Training variants of the compact presets, compared at equal epochs on the real sample clip.

Usage::

    .venv/bin/python benchmarks/rd/compact_bench.py [--preset demo] [--epochs 12]
        [--variants official-head,lr5e-4,batch2 skip,lr5e-4,batch2 skip,lr2e-3,batch1]

Each variant fits a freshly seeded network (same init) to ``data/bbb_320x180_64f.mp4`` (64 frames,
padded to 192x320) with keyframes coded as the encoder does (hevc-intra q8, decoded), for the
same number of epochs, and prints the training PSNR (RGB, mean over the frames of each epoch)
every few epochs with the elapsed time, after the PSNR of the untrained network (with ``skip``
and its zero-initialised last conv, that is the fused warp of the keyframes). A variant is a
comma-separated list: ``skip`` or ``official-head`` (the RGB head with or without the added
fused warp, model option ``rgb_skip``), ``lrX`` (peak learning rate) and ``batchN`` (clips per
step). Training PSNR is the network's float output before quantisation; the encoder's
end-to-end figures are in the encode benchmark.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

sys.path[:0] = [str(Path(__file__).resolve().parents[n]) for n in (2, 1)]  # repo, benchmarks/

import torch

from dnerv_codec.clips import keyframe_frames
from dnerv_codec.geometry import choose_geometry, to_patches
from dnerv_codec.keyframe import get_codec
from dnerv_codec.model import build_model, required_multiple
from dnerv_codec.train import Trainer
from dnerv_codec.video import read_video

CLIP = Path(__file__).resolve().parent.parent / "data" / "bbb_320x180_64f.mp4"
DEFAULT_VARIANTS = [
    "official-head,lr5e-4,batch2",
    "skip,lr5e-4,batch2",
    "skip,lr5e-4,batch1",
    "skip,lr2e-3,batch1",
]


def parse_variant(text: str) -> dict:
    out = {"rgb_skip": False, "lr": 5e-4, "batch_size": 2}
    for part in text.split(","):
        if part in ("skip", "official-head"):
            out["rgb_skip"] = part == "skip"
        elif part.startswith("lr"):
            out["lr"] = float(part[2:])
        elif part.startswith("batch"):
            out["batch_size"] = int(part[5:])
        else:
            raise SystemExit(f"compact_bench: unknown variant part {part!r}")
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--preset", default="demo")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--every", type=int, default=4, help="print PSNR every N epochs")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--variants", nargs="+", default=DEFAULT_VARIANTS)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"date {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.machine()}, ", end="")
    print(f"python {sys.version.split()[0]}, torch {torch.__version__}, threads {args.threads}")
    print(f"load average before: {os.getloadavg()}")
    video = read_video(CLIP)
    codec = get_codec("hevc-intra", 8)
    _, keys = codec.compress_with_reconstruction(video.frames[keyframe_frames(video.num_frames)])
    geometry = choose_geometry([(video.height, video.width)], required_multiple(args.preset))
    frames = [torch.from_numpy(p) for p in to_patches(video.frames, geometry)]
    keyframes = [torch.from_numpy(p) for p in to_patches(keys, geometry)]
    marks = list(range(args.every, args.epochs + 1, args.every))
    print(f"\npreset {args.preset}, {args.epochs} epochs, training PSNR (dB) / elapsed s\n")
    print("| variant | params | untrained | " + " | ".join(f"epoch {e}" for e in marks) + " |")
    print("|---|---|---|" + "---|" * len(marks))
    for text in args.variants:
        v = parse_variant(text)
        torch.manual_seed(0)
        size = (geometry.patch_h, geometry.patch_w)
        model = build_model(args.preset, size, rgb_skip=v["rgb_skip"])
        trainer = Trainer(
            model, frames, keyframes, batch_size=v["batch_size"], epochs=args.epochs,
            lr=v["lr"], seed=0,
        )  # fmt: skip
        cells, t0 = [f"{trainer.evaluate():.2f}"], time.perf_counter()
        while trainer.epoch < args.epochs:
            stats = trainer.run_epoch()
            if trainer.epoch in marks:
                cells.append(f"{stats['psnr']:.2f} / {time.perf_counter() - t0:.0f}")
        print(f"| {text} | {model.num_parameters():,} | " + " | ".join(cells) + " |", flush=True)
    print(f"\nload average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
