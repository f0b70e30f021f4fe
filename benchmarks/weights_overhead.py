"""Bytes of the weights section beyond the coded weights: plain (named) against compact records.

For the compact models rate control builds on the sample clip (frames padded to 192x320), at
several widths and clip lengths, the weights are quantised at 6 bits exactly as rate control
does (symmetric, one scale per tensor for channels under 256 weights) from a freshly initialised
network (the headers do not depend on the values), and packed both ways. Prints the tensor and
weight counts, the entropy-coded payload bytes, and the section sizes.

Run: .venv/bin/python benchmarks/weights_overhead.py
"""

from __future__ import annotations

import torch

from bitstream.entropy import encode_symbols
from bitstream.weights import pack_weights, pack_weights_compact
from dnerv_codec import quant, ratecontrol
from dnerv_codec.model import build_model

FRAME = (192, 320)


def main() -> None:
    print("| width | T | tensors | weights | coded payloads B | plain section B "
          "| compact section B | saved B |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for T in (2, 4):
        for width in (4, 5, 8, 12, 16):
            torch.manual_seed(0)
            model = build_model(ratecontrol.PRESET, FRAME, **ratecontrol.model_options(width, T))
            records = quant.quantize_state(
                model.state_dict(), 6, min_per_channel=ratecontrol.MIN_PER_CHANNEL
            )
            plain, compact = pack_weights(records), pack_weights_compact(records)
            payloads = sum(len(encode_symbols(r.symbols.reshape(-1))) for r in records)
            weights = sum(int(p.numel()) for p in model.parameters())
            print(
                f"| {width} | {T} | {len(records)} | {weights:,} | {payloads:,} | {len(plain):,} "
                f"| {len(compact):,} | {len(plain) - len(compact):,} |"
            )


if __name__ == "__main__":
    main()
