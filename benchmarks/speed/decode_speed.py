"""Decoding speed (frames/s) and its split between keyframe decoding and the network; decoding
determinism across thread counts.

Usage::

    .venv/bin/python benchmarks/speed/decode_speed.py [--threads 2] [--skip-uvg]

For each case a real .dnerv file is encoded first (a couple of epochs: quality does not change
the decoding work), then decoded several ways:

- opening the file (checks, metadata, building the network, dequantising the weights);
- ``frames()`` over the whole video with batch 1 and 4 clips per network call (no file output),
  opening the file included; and "network only": ``frames()`` again on a file already open whose
  keyframes are decoded and cached, i.e. the network, its input and output conversions;
- the keyframes alone (every keyframe stream decoded by the file's keyframe codec);
- ``dnerv decode`` to PNG and to mp4 (the whole command, in-process, output written);
- the same file decoded with 1 and with 2 threads: the largest difference between the frames.

Cases: the 320x180 sample clip with the default preset (small), and uvg-xs on the same clip
scaled to 320x256 (one 256x320 patch, the size the official inference figure is for).
Prints markdown tables; figures depend on load, which is printed.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

sys.path[:0] = [str(Path(__file__).resolve().parents[n]) for n in (2, 1)]  # repo, benchmarks/

import numpy as np
import torch
from _common import CLIP, scaled_copy

import dnerv_codec
from dnerv_codec.cli import main as cli


def _timed(fn, repeat: int) -> float:
    """Median wall seconds of ``repeat`` calls (after one untimed warm-up call)."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _all_frames(path: Path, batch: int) -> np.ndarray:
    with dnerv_codec.open(path, device="cpu", batch=batch) as f:
        return np.stack(list(f.frames(0)))


def _open_network(path: Path) -> None:
    """Open the file and build its network (built on first use: entropy-decode, dequantise)."""
    with dnerv_codec.open(path, device="cpu") as f:
        f.model  # noqa: B018


def _keyframes_only(path: Path) -> int:
    """Decode every keyframe of video 0 with the file's codec; returns how many."""
    with dnerv_codec.open(path, device="cpu") as f:
        info, index = f.videos[0], f._keyframe_index
        streams = [index.get(f._reader, 0, i) for i in range(index.count(0))]
        f.keyframe_codec.decompress(streams, (info.height, info.width))
    return len(streams)


def bench_case(label: str, clip: Path, preset: str, epochs: int, work: Path, repeat: int) -> dict:
    path = work / f"{label}.dnerv"
    report = dnerv_codec.encode(
        [clip], path, preset=preset, epochs=epochs, quiet=True, force=True, verify=False
    )
    with dnerv_codec.open(path, device="cpu") as f:
        info = f.videos[0]
        params = sum(p.numel() for p in f.model.parameters())
    n = info.frames
    row = {"case": label, "preset": preset, "size": f"{info.width}x{info.height}", "frames": n}
    row["params"] = params
    row["bytes"] = report.bytes
    row["open s"] = _timed(lambda: _open_network(path), repeat)
    for batch in (1, 4):
        row[f"frames() batch {batch}"] = n / _timed(lambda b=batch: _all_frames(path, b), repeat)
        with dnerv_codec.open(path, device="cpu", batch=batch) as f:  # keyframes cached after
            row[f"network only, batch {batch}"] = n / _timed(lambda f=f: list(f.frames(0)), repeat)
    keys = _keyframes_only(path)
    row["keyframes"] = keys
    row["keyframe decode s"] = _timed(lambda: _keyframes_only(path), repeat)
    for fmt in ("png", "mp4"):
        out = work / f"out-{label}-{fmt}"

        def run(fmt=fmt, out=out):
            rc = cli(["decode", str(path), str(out), "--format", fmt, "--force", "--quiet"])
            assert rc == 0

        row[f"dnerv decode --format {fmt}"] = n / _timed(run, repeat)
    threads = torch.get_num_threads()
    frames = {}
    for k in (1, threads):
        torch.set_num_threads(k)
        frames[k] = _all_frames(path, 4).astype(np.int16)
    torch.set_num_threads(threads)
    diff = np.abs(frames[1] - frames[threads])
    row["1 vs N threads: max |diff|"] = int(diff.max())
    row["pixels differing"] = f"{(diff > 0).mean() * 100:.4f} %"
    return row


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-uvg", action="store_true", help="only the small-preset case")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"date {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.machine()}, ", end="")
    print(f"python {sys.version.split()[0]}, torch {torch.__version__}, threads {args.threads}")
    print(f"load average before: {os.getloadavg()}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rows.append(bench_case("bbb-320x180-small", CLIP, "small", 2, work, args.repeat))
        if not args.skip_uvg:
            clip = scaled_copy(CLIP, work / "bbb_320x256.mkv", "320x256")
            rows.append(bench_case("bbb-320x256-uvg-xs", clip, "uvg-xs", 1, work, args.repeat))
    print(f"load average after: {os.getloadavg()}\n")
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        cells = [f"{v:.2f}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int) else v
                 for v in row.values()]  # fmt: skip
        print("| " + " | ".join(str(c) for c in cells) + " |")
    print("\nframes(), network and dnerv decode columns are frames/s (median of runs after a")
    print("warm-up); open and keyframe columns are seconds.")


if __name__ == "__main__":
    main()
