"""Where a training step's time goes at 720p: data, forward, loss, backward, optimiser.

Usage::

    .venv/bin/python benchmarks/speed/step_profile.py [--frames 32] [--width 42] [--steps 30]

A 1280x720 clip made from the bundled sample (as ``encode_memory.py`` makes it) is cut into the
encoder's 256x320 patches from a transient frame cache; the rate-controlled network of
``--width`` (42 is what rate control chose for 132 frames of 720p at the default rate) trains
``--steps`` steps of one 2-frame clip under cProfile. Printed: seconds per step and the share
of each part.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import platform
import pstats
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[n]) for n in (2, 1)]  # repo, benchmarks/

import numpy as np
import torch
from encode_memory import make_clip

from dnerv_codec import framecache
from dnerv_codec.clips import keyframe_frames
from dnerv_codec.geometry import choose_geometry
from dnerv_codec.model import build_model, required_multiple
from dnerv_codec.ratecontrol import DEFAULT
from dnerv_codec.train import Trainer

PARTS = {  # part -> the function whose cumulative time it is
    "data (patches, batch)": "_batch",
    "forward": "forward",
    "loss (L1 + SSIM)": "dnerv_loss",
    "backward": "run_backward",
    "optimiser": "step",
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--width", type=int, default=42)
    ap.add_argument("--steps", type=int, default=30)
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory(prefix="dnerv-profile-") as tmp:
        clip = Path(tmp) / "clip.mp4"
        make_clip(clip, args.frames)
        video = framecache.load_transient([clip], None, Path(tmp))[0]
    geometry = choose_geometry([(video.height, video.width)], required_multiple(DEFAULT.preset))
    options = DEFAULT.model_options(args.width, 2)
    model = build_model(DEFAULT.preset, (geometry.patch_h, geometry.patch_w), **options)
    keys = np.asarray(video.frames[keyframe_frames(video.num_frames, 2)])
    trainer = Trainer(
        model,
        framecache.patch_streams(video.frames, geometry),
        framecache.patch_streams(keys, geometry),
        batch_size=1,
        epochs=2,  # the warm-up steps end the first epoch
        lr=2e-3,
    )
    trainer.run_epoch(stop=lambda: trainer.step >= 2)  # warm-up, not profiled
    done = trainer.step
    profile = cProfile.Profile()
    start = time.perf_counter()
    profile.runcall(trainer.run_epoch, stop=lambda: trainer.step - done >= args.steps)
    seconds = (time.perf_counter() - start) / (trainer.step - done)
    stats = pstats.Stats(profile).stats  # (file, line, name) -> (cc, nc, tt, ct, callers)
    total = sum(v[2] for v in stats.values())
    print(f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; {platform.machine()}, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; {args.frames} frames of "
          f"1280x720 in {geometry.patch_w}x{geometry.patch_h} patches, compact width "
          f"{args.width} ({sum(p.numel() for p in model.parameters()):,} parameters), "
          f"{trainer.step - done} steps\n")  # fmt: skip
    print(f"{seconds:.2f} s per step (one 2-frame clip of one patch)\n")
    print("| part | share of the step |")
    print("|---|---:|")
    for part, name in PARTS.items():
        found = [v[3] for k, v in stats.items() if k[2] == name or f"'{name}'" in k[2]]
        cumulative = max(found, default=0.0)
        print(f"| {part} | {cumulative / total:.0%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
