"""Bytes of a file beyond the coded weights and keyframes: the weights section's headers (plain
named records, compact records, packed section) and the metadata (plain or deflated).

Without arguments: for the compact models rate control builds on the sample clip (frames padded
to 192x320), at several widths and clip lengths, the weights are quantised at 6 bits exactly as
rate control does (symmetric, one scale per tensor for channels under 256 weights) from a
freshly initialised network (the headers do not depend on the values), and packed three ways.
Prints the tensor and weight counts, the entropy-coded payload bytes, and the section sizes, and
writes them as a results record (``--json``).

With .dnerv files as arguments: the same three weights sections built from each file's own
(trained, quantised) weights, and its metadata plain and deflated, i.e. what format 1.2 saves
on real files.

Run: .venv/bin/python benchmarks/bitstream/weights_overhead.py [FILE.dnerv ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[n]) for n in (2, 1)]  # repo, benchmarks/

import _results
import render
import torch

from bitstream.entropy import encode_symbols
from bitstream.meta import deflate_meta, dict_meta, encode_meta
from bitstream.weights import pack_weights, pack_weights_compact, pack_weights_packed
from dnerv_codec import quant, ratecontrol
from dnerv_codec.model import build_model

FRAME = (192, 320)


TOPIC = "weights-overhead"
B = {"format": "{:,}", "align": "r"}


def fresh_models(rec: _results.Recorder) -> None:
    rows = []
    for T in (2, 4):
        for width in (4, 5, 8, 12, 16):
            torch.manual_seed(0)
            config = ratecontrol.DEFAULT
            model = build_model(config.preset, FRAME, **config.model_options(width, T))
            records = quant.quantize_state(
                model.state_dict(), 6, min_per_channel=config.min_per_channel
            )
            payloads = sum(len(encode_symbols(r.symbols.reshape(-1))) for r in records)
            weights = sum(int(p.numel()) for p in model.parameters())
            sizes = [len(pack(records)) for pack in (pack_weights, pack_weights_compact)]
            sizes.append(len(pack_weights_packed(records)))
            rows.append([width, T, len(records), weights, payloads, *sizes])
    rec.table(
        "fresh-models",
        "Weights sections of freshly initialised compact models, 6-bit weights",
        [{"name": "width", "align": "r"}, {"name": "T", "align": "r"},
         {"name": "tensors", "align": "r"}, {**B, "name": "weights"},
         {**B, "name": "coded payloads B"}, {**B, "name": "plain section B"},
         {**B, "name": "compact section B"}, {**B, "name": "packed section B"}],
        rows,
    )  # fmt: skip


def real_files(paths: list[str]) -> None:
    import dnerv_codec
    from dnerv_codec.model import model_from_config

    print("| file | bytes | weights | bits | compact section B | packed section B | saved B "
          "| metadata B | deflated B | saved B | saved, % of the file "
          "| with the dictionary B |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for path in paths:
        with dnerv_codec.open(path, device="cpu") as f:
            model = model_from_config(f.meta["model"]["config"])
            records = f._weight_records(quant.weight_layout(model))
            meta = f.meta
            size = f.path.stat().st_size
        compact, packed = len(pack_weights_compact(records)), len(pack_weights_packed(records))
        plain_meta, deflated = len(encode_meta(meta)), len(deflate_meta(meta))
        saved = compact - packed + plain_meta - deflated
        weights = sum(r.symbols.size for r in records)
        print(
            f"| {path} | {size:,} | {weights:,} | {records[0].bits} | {compact:,} | {packed:,} "
            f"| {compact - packed:,} | {plain_meta:,} | {deflated:,} | {plain_meta - deflated:,} "
            f"| {100 * saved / (size + saved):.1f} % | {len(dict_meta(meta)):,} |"
        )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", help=".dnerv files (default: freshly initialised models)")
    # the real files' table is printed only: which files it measures is the caller's choice
    _results.add_arguments(ap, "bitstream", TOPIC)
    args = ap.parse_args(argv)
    if args.files:
        real_files(args.files)
        return
    rec = _results.Recorder(__file__, TOPIC, argv)
    fresh_models(rec)
    print(render.render_table(rec.record["tables"][0]))
    rec.write(args.json)


if __name__ == "__main__":
    main()
