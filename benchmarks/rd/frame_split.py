"""Where the quality of a dnerv file comes from: keyframes, predicted frames, the plain blend.

Encodes the sample clip under rate control at ``--bpp`` (8 epochs unless told), decodes the file
and prints the mean per-frame PSNR-RGB over all frames, over the keyframe positions and over the
frames the network predicts; next to them, the PSNR of the decoded keyframes themselves and of
the plain linear blend ``(1 - t) * start + t * end`` of the two decoded keyframes at each
predicted frame (what the network would output with zero flow and no correction). The network
earns its bytes only where it beats those two.

Run: .venv/bin/python benchmarks/rd/frame_split.py --bpp 0.12 [--keyframe-share 0.95]
     [--clip-length 2|4] [--epochs 8] [--loss uvg|ucf] [--keyframe-codec hevc-ra]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[n]) for n in (2, 1)]  # repo, benchmarks/

import numpy as np
from _common import CLIP

import dnerv_codec
from dnerv_codec import ratecontrol
from dnerv_codec.clips import keyframe_frames
from dnerv_codec.metrics import psnr_rgb
from dnerv_codec.video import read_video


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bpp", type=float, required=True)
    ap.add_argument("--keyframe-share", type=float, default=ratecontrol.DEFAULT.keyframe_share)
    ap.add_argument("--clip-length", type=int, default=None, help="default: by the rate")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--loss", default="uvg")
    ap.add_argument("--keyframe-codec", default=None, help="default: the encoder's")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    config = dataclasses.replace(ratecontrol.DEFAULT, keyframe_share=args.keyframe_share)
    ref = read_video(CLIP).frames
    options = {"keyframe_codec": args.keyframe_codec} if args.keyframe_codec else {}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "split.dnerv"
        report = dnerv_codec.encode(
            [str(CLIP)], out, target_bpp=args.bpp, epochs=args.epochs, loss=args.loss,
            clip_length=args.clip_length, seed=args.seed, quiet=True, rate_control=config,
            **options,
        )  # fmt: skip
        with dnerv_codec.open(out, device="cpu") as f:
            decoded = np.stack(list(f.frames(0)))
            T = f.clip_length
            keys = keyframe_frames(len(ref), T)
            kf = {k: f.keyframe(0, i).astype(np.float64) for i, k in enumerate(keys)}
    keys_arr = np.asarray(keys)
    predicted = [i for i in range(len(ref)) if i not in kf]
    blend = []
    for i in predicted:
        a, b = keys_arr[keys_arr < i].max(), keys_arr[keys_arr > i].min()
        t = (i - a) / (b - a)
        blend.append(np.clip(np.rint((1 - t) * kf[a] + t * kf[b]), 0, 255).astype(np.uint8))
    kf8 = np.stack([kf[k].astype(np.uint8) for k in keys])
    now = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    print(f"{now} UTC  {report.summary()}")
    print("| bpp | T | keyframe share | all frames | keyframe positions | decoded keyframes "
          "| predicted frames | blend of decoded keyframes |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {report.bpp:.4f} | {T} | {args.keyframe_share} | {psnr_rgb(ref, decoded):.2f} "
        f"| {psnr_rgb(ref[keys], decoded[keys]):.2f} | {psnr_rgb(ref[keys], kf8):.2f} "
        f"| {psnr_rgb(ref[predicted], decoded[predicted]):.2f} "
        f"| {psnr_rgb(ref[predicted], np.stack(blend)):.2f} |"
    )


if __name__ == "__main__":
    main()
