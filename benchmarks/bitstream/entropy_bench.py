"""Entropy coding and container benchmark (figures in benchmarks/RESULTS.md, bitstream section).

Measures, on 8-bit quantised network weights:
  1. the size of ``bitstream.entropy`` payloads against the empirical entropy of the symbols plus
     the model table actually stored (target: within 1 %), against the average Huffman code
     length that D-NeRV reports (dahuffman, one code for the whole model, table not counted),
     and against zstd / brotli on the same symbols (one byte per symbol);
  2. encode + decode time of 25 million symbols (target < 2 s on one core);
  3. the fixed overhead of a single-video container.

Usage (one core, as in RESULTS.md)::

    taskset -c 0 .venv/bin/python benchmarks/bitstream/entropy_bench.py [--quick] [--part PART]

Prints the raw results as JSON (``--raw FILE`` also writes them) and writes a results record
(topic ``entropy-<part>``, ``--json``) with one table per part run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from collections import Counter
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[n]) for n in (2, 1)]  # repo, benchmarks/

import _results
import brotli
import numpy as np
import zstandard
from dahuffman import HuffmanCodec

from bitstream import (
    ContainerWriter,
    describe,
    dict_meta,
    encode_meta,
    pack_keyframes,
    pack_weights,
)
from bitstream._sample import sample_metadata
from bitstream.entropy import decode_symbols, encode_symbols
from bitstream.keyframes import pack_keyframes_compact
from bitstream.weights import quantize

# A D-NeRV-like decoder at UVG scale: (out, in, k, k) conv weights plus biases (about 7.5 M).
_CONV_STACK = [
    (64 * 16, 32, 1, 1),
    (512 * 4, 64, 3, 3),
    (256 * 4, 512, 3, 3),
    (128 * 4, 256, 3, 3),
    (64 * 4, 128, 3, 3),
    (32 * 4, 64, 3, 3),
    (3, 32, 1, 1),
    (32, 3, 3, 3),
    (64, 32, 3, 3),
]


def conv_stack(init: str, seed: int = 0) -> dict[str, np.ndarray]:
    """Randomly initialised conv stack: xavier-normal or xavier-uniform weights, small biases."""
    rng = np.random.default_rng(seed)
    tensors = {}
    for i, shape in enumerate(_CONV_STACK):
        fan_out, fan_in = shape[0] * shape[2] * shape[3], shape[1] * shape[2] * shape[3]
        if init == "xavier_normal":
            w = rng.normal(0, math.sqrt(2 / (fan_in + fan_out)), shape)
        else:
            bound = math.sqrt(6 / (fan_in + fan_out))
            w = rng.uniform(-bound, bound, shape)
        tensors[f"layers.{i}.weight"] = w.astype(np.float32)
        tensors[f"layers.{i}.bias"] = rng.uniform(-0.01, 0.01, shape[0]).astype(np.float32)
    return tensors


def laplace_stack(seed: int = 1) -> dict[str, np.ndarray]:
    """The same shapes with Laplacian weights (closer to trained networks)."""
    rng = np.random.default_rng(seed)
    return {
        f"layers.{i}.weight": rng.laplace(0, 0.02, shape).astype(np.float32)
        for i, shape in enumerate(_CONV_STACK)
    }


def resnet18() -> dict[str, np.ndarray] | None:
    """torchvision resnet18 with its default random initialisation (None without torchvision)."""
    try:
        import torch
        import torchvision
    except ImportError:
        return None
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None)
    return {
        name: p.detach().numpy().astype(np.float32)
        for name, p in model.state_dict().items()
        if p.dtype == torch.float32 and p.ndim > 0
    }


def _entropy_bits(symbols: np.ndarray) -> float:
    counts = np.bincount(symbols - symbols.min()) if symbols.size else np.zeros(0)
    counts = counts[counts > 0]
    return float(-np.sum(counts * np.log2(counts / symbols.size))) if symbols.size else 0.0


def weight_set(
    name: str, tensors: dict[str, np.ndarray], scheme: str = "affine", per_channel: bool = False
) -> dict[str, object]:
    """Quantise every tensor to 8 bits and compare the coders (per tensor unless
    ``per_channel``: then along axis 0 for tensors of two or more dimensions)."""
    records = [
        quantize(n, w, scheme, 8, axis=0 if per_channel and w.ndim >= 2 else -1)
        for n, w in tensors.items()
    ]
    symbols = [r.symbols.reshape(-1) for r in records]
    n = sum(s.size for s in symbols)
    ours = entropy = table = header = 0.0
    models: Counter[str] = Counter()
    for s in symbols:
        data = encode_symbols(s)
        info = describe(data)
        ours += 8 * len(data)
        table += 8 * info["table_bytes"]
        header += 8 * info["header_bytes"]
        entropy += _entropy_bits(s)
        models[info["model"]] += 1
    flat = np.concatenate(symbols)
    raw = (flat - flat.min()).astype(np.uint8).tobytes()  # one byte per symbol
    counts = np.bincount(flat - flat.min())
    codec = HuffmanCodec.from_frequencies({int(k): int(c) for k, c in enumerate(counts) if c})
    table_ = codec.get_code_table()  # also holds dahuffman's end-of-file symbol: not counted
    huffman_bits = sum(
        bits * int(counts[k]) for k, (bits, _) in table_.items() if isinstance(k, int)
    )
    return {
        "set": name,
        "quantisation": f"8-bit {scheme}, " + ("per channel" if per_channel else "per tensor"),
        "tensors": len(records),
        "symbols": n,
        "ours_bits_per_symbol": ours / n,
        "entropy_bits_per_symbol": entropy / n,
        "table_bits_per_symbol": table / n,
        "ours_over_entropy_plus_table": ours / (entropy + table + header) - 1,
        "ours_over_entropy": ours / entropy - 1,
        "models": dict(models),
        "ours_whole_model_bits_per_symbol": 8 * len(encode_symbols(flat)) / n,
        "whole_model_entropy_bits_per_symbol": _entropy_bits(flat) / n,
        "huffman_bits_per_symbol": huffman_bits / n,
        "zstd19_bits_per_symbol": 8 * len(zstandard.ZstdCompressor(level=19).compress(raw)) / n,
        "brotli11_bits_per_symbol": 8 * len(brotli.compress(raw, quality=11)) / n,
        "records_bytes": len(pack_weights(records)),
    }


def speed(count: int, repeats: int) -> dict[str, float]:
    """Best-of-``repeats`` encode and decode time of ``count`` 8-bit Laplacian symbols."""
    rng = np.random.default_rng(2)
    w = rng.laplace(0, 0.02, count).astype(np.float32)
    q = quantize("w", w, "affine", 8).symbols.reshape(-1)
    enc = dec = enc_cpu = dec_cpu = math.inf
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        data = encode_symbols(q)
        t1, c1 = time.perf_counter(), time.process_time()
        back = decode_symbols(data)
        t2, c2 = time.perf_counter(), time.process_time()
        if not np.array_equal(back, q):
            raise RuntimeError("round trip failed")
        enc, dec = min(enc, t1 - t0), min(dec, t2 - t1)
        enc_cpu, dec_cpu = min(enc_cpu, c1 - c0), min(dec_cpu, c2 - c1)
        del back
    return {
        "symbols": count,
        "model": describe(data)["model"],
        "bits_per_symbol": 8 * len(data) / count,
        "encode_s": enc,
        "decode_s": dec,
        "total_s": enc + dec,
        "encode_cpu_s": enc_cpu,
        "decode_cpu_s": dec_cpu,
        "total_cpu_s": enc_cpu + dec_cpu,
        "ns_per_symbol": 1e9 * (enc + dec) / count,
    }


def overhead() -> dict[str, int]:
    """Bytes of a single-video container that are not keyframe or weight payloads."""
    meta = sample_metadata(frames=600, width=1920, height=1080)
    keyframes = {(0, k): b"k" * 1000 for k in range(600 // 8 + 1)}
    records = [quantize(n, w, "affine", 8) for n, w in conv_stack("xavier_normal").items()]
    weights = pack_weights(records)
    payload_weights = sum(len(encode_symbols(r.symbols)) for r in records)
    data = (
        ContainerWriter()
        .add(1, encode_meta(meta))
        .add(2, pack_keyframes(keyframes))
        .add(3, weights)
        .finish()
    )
    key_index = 8 + 16 * len(keyframes)
    compact_index = len(pack_keyframes_compact(keyframes)) - sum(map(len, keyframes.values()))
    return {
        "file_bytes": len(data),
        "header_and_table": 32 + 3 * 24,
        "metadata": len(encode_meta(meta)),
        "metadata_dict": len(dict_meta(meta)),  # section 8, as the encoder writes it
        "fixed_total": 32 + 3 * 24 + len(encode_meta(meta)) + 8 + 4,
        "keyframe_index": key_index,
        "keyframe_index_compact": compact_index,  # section 7, as the encoder writes it
        "keyframes": len(keyframes),
        "weight_record_headers": len(weights) - payload_weights,
        "tensors": len(records),
    }


def pruned(tensors: dict[str, np.ndarray], fraction: float) -> dict[str, np.ndarray]:
    """Global magnitude pruning of the tensors with two or more dimensions (as D-NeRV does)."""
    big = [w for w in tensors.values() if w.ndim >= 2]
    threshold = np.quantile(np.abs(np.concatenate([w.reshape(-1) for w in big])), fraction)
    return {
        n: np.where(np.abs(w) > threshold, w, 0) if w.ndim >= 2 else w for n, w in tensors.items()
    }


def _sets() -> list[tuple[str, dict[str, np.ndarray], str, bool]]:
    laplace = laplace_stack()
    sets = [
        ("conv stack, xavier normal", conv_stack("xavier_normal"), "affine", False),
        ("conv stack, xavier uniform", conv_stack("xavier_uniform"), "affine", False),
        ("conv stack, Laplacian", laplace, "affine", False),
        ("conv stack, Laplacian, 40 % pruned", pruned(laplace, 0.4), "symmetric", True),
    ]
    net = resnet18()
    if net is not None:
        sets.append(("torchvision resnet18, random init", net, "affine", False))
    return sets


F4 = {"format": "{:.4f}", "align": "r"}


def record_results(rec: _results.Recorder, results: dict) -> None:
    """One table per part the run measured (the raw results go in the record's data)."""
    rec.data.update(results)
    if "weights" in results:
        rec.table(
            "weights",
            "8-bit weights: our payloads against entropy + table, Huffman, zstd, brotli",
            ["weights (8-bit)", {"name": "symbols", "format": "{:.2f} M"},
             {**F4, "name": "ours, bits/sym"}, {**F4, "name": "entropy, bits/sym"},
             {"name": "ours vs entropy + table", "format": "{:+.3f} %", "align": "r"},
             {**F4, "name": "Huffman (D-NeRV)"}, {**F4, "name": "zstd -19"},
             {**F4, "name": "brotli -q11"}, "models chosen"],
            [[w["set"], w["symbols"] / 1e6, w["ours_bits_per_symbol"],
              w["entropy_bits_per_symbol"], 100 * w["ours_over_entropy_plus_table"],
              w["huffman_bits_per_symbol"], w["zstd19_bits_per_symbol"],
              w["brotli11_bits_per_symbol"],
              ", ".join(f"{n} {m}" for m, n in w["models"].items())]
             for w in results["weights"]],
        )  # fmt: skip
    if "speed" in results:
        s = results["speed"]
        rec.table(
            "speed",
            f"{s['symbols']:,} symbols, best of the repeats",
            ["", {"name": "encode", "format": "{:.2f} s"}, {"name": "decode", "format": "{:.2f} s"},
             {"name": "total", "format": "**{:.2f} s**"}],
            [["wall clock", s["encode_s"], s["decode_s"], s["total_s"]],
             ["CPU time of the process", s["encode_cpu_s"], s["decode_cpu_s"], s["total_cpu_s"]]],
        )  # fmt: skip
    if "overhead" in results:
        o = results["overhead"]
        rec.table(
            "overhead",
            "Bytes of a single-video container beyond the payloads",
            ["part", "bytes"],
            [["header (32) + section table (3 x 24)", o["header_and_table"]],
             ["metadata (every MUST key, model config, norm, keyframe codec, quant)",
              o["metadata"]],
             ["keyframe index head + weights record count", 8 + 4],
             ["**fixed overhead**", o["fixed_total"]],
             ["keyframe index entries, 16 bytes per keyframe", o["keyframe_index"] - 8],
             [f"weight record headers (name, shape, scheme, scales/offsets, entropy header and "
              f"table), {o['tensors']} tensors", o["weight_record_headers"]]],
        )  # fmt: skip
        if "metadata_dict" in o:
            rec.table(
                "overhead-written",
                "The same parts as the encoder writes them (format 1.4)",
                ["part", "bytes"],
                [["metadata with the preset dictionary (section 8)", o["metadata_dict"]],
                 [f"compact keyframe index (section 7), all {o['keyframes']} keyframes",
                  o["keyframe_index_compact"]]],
            )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2.5 M symbols, one repeat")
    parser.add_argument("--raw", help="also write the raw results to this file")
    parser.add_argument(
        "--part", choices=["all", "weights", "speed", "overhead"], default="all", help="what to run"
    )
    _results.add_arguments(parser, "bitstream", None)
    args = parser.parse_args()
    rec = _results.Recorder(__file__, f"entropy-{args.part}")
    results: dict[str, object] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.processor()}",
        "python": platform.python_version(),
        "cpu_affinity": sorted(os.sched_getaffinity(0)),
        "load_average_before": os.getloadavg(),
    }
    if args.part in ("all", "weights"):
        results["weights"] = [weight_set(*item) for item in _sets()]
    if args.part in ("all", "speed"):
        results["speed"] = speed(2_500_000 if args.quick else 25_000_000, 1 if args.quick else 3)
    if args.part in ("all", "overhead"):
        results["overhead"] = overhead()
    results["load_average_after"] = os.getloadavg()
    print(json.dumps(results, indent=2))
    if args.raw:
        with open(args.raw, "w") as handle:
            json.dump(results, handle, indent=2)
    record_results(rec, results)
    rec.write(args.json)


if __name__ == "__main__":
    main()
