"""GPU figures: the networks' speed against the official code (fp32, bf16 autocast, fp16
inference), the encoder's quality over time, and decoding speed in fp32 and fp16.

Usage (on a machine with a CUDA GPU)::

    .venv/bin/python benchmarks/speed/gpu_bench.py --official-dir /path/to/D-NeRV \\
        [--parts speed encode decode] [--budgets 30 60 120] [--json record.json]

``speed``: ``official_compare.speed_pair`` on the GPU for the official ``small`` and ``uvg-xs``
configurations, each at its CPU batch and at ``--big-batch`` clips per training step: training
steps (official fp32; ours fp32 and with bf16 autocast, which the encoder uses on CUDA) and
one-clip inference (fp32 and fp16), timed with ``torch.cuda.synchronize`` around each step.

``encode``: ``dnerv_codec.encode`` of the 320x180 sample clip with the default options (rate
control, ``--quality 6``) and each ``--time-budget``, on the GPU: what ``dnerv encode --device
cuda --time-budget B`` gives (bytes from the written file, PSNR and MS-SSIM from decoding it).

``decode``: the file of the first budget decoded on the GPU: ``frames()`` over the whole video
at batch 1, 4 and 16, fp32 and fp16 (file opened and keyframes decoded included, and again with
keyframes cached: the network alone); the fp16 frames' PSNR against the fp32 ones; the largest
difference between GPU fp32 and CPU frames; and ``dnerv decode --device cuda --half`` to PNG.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[n]) for n in (2, 1)]  # repo, benchmarks/

import _results
import numpy as np
import torch
from _common import CLIP, REPO
from official_compare import SPEED_CONFIGS, _import_official, speed_pair

import dnerv_codec
from dnerv_codec.cli import main as cli
from dnerv_codec.metrics import psnr_rgb

SPEED_KEYS = [
    "official train", "ours train", "ours train bf16",
    "official infer", "official infer fp16", "ours infer", "ours infer fp16",
]  # fmt: skip


def part_speed(args, results: dict) -> None:
    model, loss, utils = _import_official(args.official_dir)
    print("\nframes/s (median of --steps timed steps)\n")
    print("| config | size | batch | " + " | ".join(SPEED_KEYS) + " | train ratio fp32 | "
          "infer ratio fp32 |")  # fmt: skip
    print("|---|---|---:|" + "---:|" * (len(SPEED_KEYS) + 2))
    rows = []
    for config in SPEED_CONFIGS:
        for batch in dict.fromkeys([config[-1], args.big_batch]):
            r = speed_pair(
                model, loss, utils, config, steps=args.steps, seed=1, device=args.device,
                batch=batch, variants=True,
            )  # fmt: skip
            r["config"], r["size"] = config[0], f"{config[5][1]}x{config[5][0]}"
            rows.append(r)
            cells = [f"{r[k]:.1f}" if k in r else "-" for k in SPEED_KEYS]
            print(f"| {r['config']} | {r['size']} | {batch} | " + " | ".join(cells)
                  + f" | {r['ours train'] / r['official train']:.2f}x"
                  + f" | {r['ours infer'] / r['official infer']:.2f}x |", flush=True)  # fmt: skip
    results["speed"] = rows


def part_encode(args, work: Path, results: dict) -> list[Path]:
    print(f"\nencode on {args.device}, default options (rate control, quality 6)\n")
    print("| time budget | batch | amp | epochs | steps/s | train s | encode s | bytes | bpp | "
          "PSNR dB | MS-SSIM |")  # fmt: skip
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    rows, files = [], []
    for budget in args.budgets:
        for batch in args.batch_sizes:
            for amp in args.amp:
                b = None if batch == 0 else batch
                a = {"auto": None, "on": True, "off": False}[amp]
                path = work / f"gpu-b{budget:g}-{batch}-{amp}.dnerv"
                t0 = time.monotonic()
                report = dnerv_codec.encode(
                    [CLIP], path, epochs=100_000, time_budget=budget, device=args.device,
                    batch_size=b, amp=a, quiet=True, force=True,
                )  # fmt: skip
                wall = time.monotonic() - t0
                clips = -(
                    -report.pixels // (320 * 180) // (report.rate or {}).get("clip_length", 8)
                )
                steps = report.epochs * -(-clips // (b or 1))
                row = {
                    "budget": budget, "batch": b or 1, "amp": amp, "epochs": report.epochs,
                    "steps_per_s": steps / report.train_seconds,
                    "train_s": report.train_seconds, "encode_s": wall, "bytes": report.bytes,
                    "bpp": report.bpp, "psnr": report.psnr, "ms_ssim": report.ms_ssim,
                    "bytes_on_disk": path.stat().st_size,
                }  # fmt: skip
                rows.append(row)
                files.append(path)
                print(f"| {budget:g} s | {b or 1} | {amp} | {report.epochs} | "
                      f"{row['steps_per_s']:.1f} | {report.train_seconds:.0f} | {wall:.0f} | "
                      f"{report.bytes:,} | {report.bpp:.4f} | {report.psnr:.2f} | "
                      f"{report.ms_ssim:.4f} |", flush=True)  # fmt: skip
    results["encode"] = rows
    return files


def _decode_all(path: Path, device: str, half: bool, batch: int) -> tuple[np.ndarray, float, float]:
    sync = torch.cuda.synchronize if device == "cuda" else lambda: None
    t0 = time.perf_counter()
    with dnerv_codec.open(path, device=device, half=half, batch=batch) as f:
        frames = np.stack(list(f.frames(0)))
        sync()
        whole = time.perf_counter() - t0
        t1 = time.perf_counter()
        list(f.frames(0))  # keyframes cached: the network and its conversions alone
        sync()
        network = time.perf_counter() - t1
    return frames, len(frames) / whole, len(frames) / network


def part_decode(args, path: Path, work: Path, results: dict) -> None:
    print(f"\ndecode {path.name} on {args.device}\n")
    print("| precision | batch | frames/s (open + keyframes + network) | network alone |")
    print("|---|---:|---:|---:|")
    _decode_all(path, args.device, False, 4)  # warm-up: CUDA context, kernels
    rows, decoded = [], {}
    for half in (False, True) if args.device == "cuda" else (False,):
        for batch in (1, 4, 16):
            best = None
            for _ in range(args.repeat):
                frames, whole, net = _decode_all(path, args.device, half, batch)
                best = (whole, net) if best is None else (max(best[0], whole), max(best[1], net))
            decoded[half] = frames
            name = "fp16" if half else "fp32"
            rows.append({"precision": name, "batch": batch, "fps": best[0], "network_fps": best[1]})
            print(f"| {name} | {batch} | {best[0]:.1f} | {best[1]:.1f} |", flush=True)
    cpu, cpu_fps, _ = _decode_all(path, "cpu", False, 1)
    diff = np.abs(cpu.astype(np.int16) - decoded[False].astype(np.int16))
    fp16 = psnr_rgb(decoded[False], decoded[True]) if True in decoded else float("nan")
    print(f"\nCPU decode ({torch.get_num_threads()} threads, batch 1): {cpu_fps:.1f} frames/s")
    print(f"GPU fp32 vs CPU: max |diff| {int(diff.max())}, {(diff > 0).mean() * 100:.4f} % "
          f"of values differ; fp16 vs fp32 frames: PSNR {fp16:.2f} dB")  # fmt: skip
    t0 = time.perf_counter()
    half = ["--half"] if args.device == "cuda" else []
    rc = cli(["decode", str(path), str(work / "png"), "--device", args.device, *half, "--quiet"])
    png_s = time.perf_counter() - t0
    print(f"dnerv decode --device cuda --half to PNG: rc {rc}, {len(cpu) / png_s:.1f} frames/s")
    results["decode"] = {
        "rows": rows, "cpu_fps": cpu_fps, "gpu_vs_cpu_max_diff": int(diff.max()),
        "gpu_vs_cpu_differ_pct": float((diff > 0).mean() * 100), "fp16_vs_fp32_psnr": fp16,
        "cli_png_rc": rc, "cli_png_fps": len(cpu) / png_s,
    }  # fmt: skip


TOPIC = "gpu"
R = {"align": "r"}
FPS = {"format": "{:.1f}", "align": "r"}
ENCODE = [
    ("epochs", {**R, "name": "epochs"}),
    ("train_s", {"name": "train s", "format": "{:.0f}", "align": "r"}),
    ("bytes", {"name": "bytes", "format": "{:,}", "align": "r"}),
    ("bpp", {"name": "bpp", "format": "{:.4f}", "align": "r"}),
    ("psnr", {"name": "PSNR dB", "format": "{:.2f}", "align": "r"}),
    ("ms_ssim", {"name": "MS-SSIM", "format": "{:.4f}", "align": "r"}),
]


def record_results(rec: _results.Recorder, results: dict) -> None:
    """The tables of whatever parts ``results`` holds."""
    rec.data.update(results)
    if "speed" in results:
        runs = ["official train", "ours train", "ours train bf16", "official infer",
                "official infer fp16", "ours infer", "ours infer fp16"]  # fmt: skip
        rec.table(
            "speed",
            "Network speed against the official code, frames/s",
            ["config", "size", {**R, "name": "batch"}, *({**FPS, "name": n} for n in runs),
             *({"name": f"{n} ratio fp32", "format": "{:.2f}x", "align": "r"}
               for n in ("train", "infer"))],
            [[r["config"], r["size"], r["batch"], *(r[n] for n in runs),
              r["ours train"] / r["official train"], r["ours infer"] / r["official infer"]]
             for r in results["speed"]],
        )  # fmt: skip
    encode = results.get("encode", [])
    if encode and "batch" in encode[0]:
        rec.table(
            "encode-batch-amp",
            "The encoder on the GPU by batch and amp",
            [{**R, "name": "batch"}, "amp", ENCODE[0][1],
             {"name": "steps/s", "format": "{:.1f}", "align": "r"}, *(c for _, c in ENCODE[1:])],
            [[r["batch"], r["amp"], r["epochs"], r["steps_per_s"],
              *(r[k] for k, _ in ENCODE[1:])] for r in encode],
        )  # fmt: skip
    elif encode:
        rec.table(
            "encode",
            "The encoder on the GPU by time budget",
            [{"name": "time budget", "format": "{:.0f} s"}, *(c for _, c in ENCODE[:2]),
             {"name": "encode s", "format": "{:.0f}", "align": "r"},
             *(c for _, c in ENCODE[2:])],
            [[r["budget"], r["epochs"], r["train_s"], r["encode_s"],
              *(r[k] for k, _ in ENCODE[2:])] for r in encode],
        )  # fmt: skip
    if "decode" in results:
        rec.table(
            "decode",
            "Decoding on the GPU, frames/s",
            ["precision", {**R, "name": "batch"},
             {**FPS, "name": "frames/s (open + keyframes + network)"},
             {**FPS, "name": "network alone"}],
            [[r["precision"], r["batch"], r["fps"], r["network_fps"]]
             for r in results["decode"]["rows"]],
        )  # fmt: skip


def from_raw(rec: _results.Recorder, path: Path, command: list[str]) -> None:
    """The record of a run whose raw output (``--json`` of this script's raw form) is ``path``."""
    raw = json.loads(path.read_text())
    env = raw["env"]
    rec.restore(
        command, None, _results.iso(env["date"]), cpu=env["cpu"], cores=env["cpu_count"],
        python=env["python"], torch=env["torch"], gpu=env["gpu"],
    )  # fmt: skip
    rec.data["raw"] = str(path.resolve().relative_to(REPO))
    record_results(rec, raw)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--official-dir", type=Path, help="checkout of boheumd/D-NeRV (speed part)")
    ap.add_argument("--parts", nargs="+", default=["speed", "encode", "decode"])
    ap.add_argument("--budgets", type=float, nargs="+", default=[30, 60, 120])
    ap.add_argument("--steps", type=int, default=20, help="speed: timed steps per run")
    ap.add_argument(
        "--batch-sizes",
        type=int,
        nargs="+",
        default=[0],
        help="encode: clips per step (0: default)",
    )
    ap.add_argument("--amp", nargs="+", choices=["auto", "on", "off"], default=["auto"])
    ap.add_argument("--big-batch", type=int, default=8, help="speed: the larger training batch")
    ap.add_argument("--repeat", type=int, default=3, help="decode: runs per case (best kept)")
    _results.add_arguments(ap, "speed", TOPIC, raw="results/gpu_h200.json")
    ap.add_argument(
        "--raw-command",
        help="with --from-raw: the command line that wrote it (its --json was then the raw file)",
    )
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda", help="cpu: a dry run")
    args = ap.parse_args(argv)
    rec = _results.Recorder(__file__, TOPIC, argv)
    if args.from_raw:
        command = shlex.split(args.raw_command) if args.raw_command else rec.record["command"]
        from_raw(rec, args.from_raw, command)
        rec.write(args.json)
        return
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit(
            "error: no CUDA GPU here; this benchmark measures the GPU (--device cpu: a dry run)"
        )
    if "speed" in args.parts and args.official_dir is None:
        sys.exit("error: the speed part needs --official-dir")
    env = {
        "date": f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC", "device": args.device,
        "gpu": torch.cuda.get_device_name(0) if args.device == "cuda" else None,
        "cpu": platform.processor(),
        "cpu_count": os.cpu_count(), "python": sys.version.split()[0], "torch": torch.__version__,
        "cuda": torch.version.cuda, "threads": torch.get_num_threads(),
    }  # fmt: skip
    print(", ".join(f"{k} {v}" for k, v in env.items()), flush=True)
    results: dict = {"env": env}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        files: list[Path] = []
        for part in args.parts:
            try:
                if part == "speed":
                    part_speed(args, results)
                elif part == "encode":
                    files = part_encode(args, work, results)
                elif part == "decode":
                    if not files:
                        args.budgets = args.budgets[:1]
                        files = part_encode(args, work, results)
                    part_decode(args, files[0], work, results)
            except Exception as exc:  # one part failing must not lose the others' figures
                import traceback

                traceback.print_exc()
                results[f"{part}_error"] = repr(exc)
            rec.data.update(results)
            _results.write(rec.record, args.json)  # the raw figures so far, if a later part dies
    record_results(rec, results)
    rec.write(args.json)


if __name__ == "__main__":
    main()
