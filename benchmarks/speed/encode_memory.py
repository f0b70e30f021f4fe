"""Peak memory of the encoder and the decoder against the video's length, at 720p.

Usage::

    .venv/bin/python benchmarks/speed/encode_memory.py [--frames 132 528 1320] [--budget 30] \\
        [--keyframe-quality 20] [--out DIR]

For each length N, a 1280x720 clip of N frames is made from the bundled 640x360 sample
(upscaled with lanczos, played forwards and backwards until N frames: real content, and a
longer clip than the repository holds), then encoded by ``dnerv encode`` in a fresh process
(rate control at its default rate, ``--time-budget`` seconds of training; ``--keyframe-quality``
fixes the keyframe quality so that the benchmark does not spend its time in the keyframe
bisection, which does not change what is held in memory) and decoded by ``dnerv decode`` to
y4m. Printed per length: the raw size of the frames, the peak resident memory of the encoder and
of the decoder (sampled from /proc every 0.1 s: all resident pages, the process's own memory,
and the pages of memory-mapped files such as the frame cache, which the kernel drops under
pressure), and their times.
Written as JSON to ``--out`` (default benchmarks/results/encode_memory.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[n]) for n in (2, 1)]  # repo, benchmarks/

import numpy as np
from _common import REPO

from dnerv_codec.video import ffmpeg_exe, read_video

SOURCE = REPO / "data" / "bbb_640x360_32f.mp4"
SIZE = (1280, 720)


def make_clip(path: Path, frames: int) -> None:
    """``frames`` frames of 1280x720 from the sample, forwards then backwards, lossless-ish."""
    w, h = SIZE
    scaled = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", str(SOURCE), "-vf", f"scale={w}:{h}:flags=lanczos",
         "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    source = np.frombuffer(scaled, np.uint8).reshape(-1, h, w, 3)
    n = len(source)
    order = [i % (2 * n - 2) for i in range(frames)]
    order = [i if i < n else 2 * n - 2 - i for i in order]  # ping-pong: no jump at the seams
    fps = read_video(SOURCE, max_frames=1).fps
    proc = subprocess.Popen(
        [ffmpeg_exe(), "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
         "-s", f"{w}x{h}", "-r", f"{fps.numerator}/{fps.denominator}", "-i", "-",
         "-c:v", "libx264", "-preset", "veryfast", "-crf", "10", "-pix_fmt", "yuv444p",
         str(path)],
        stdin=subprocess.PIPE,
    )  # fmt: skip
    for i in order:
        proc.stdin.write(source[i].tobytes())
    proc.stdin.close()
    if proc.wait() != 0:
        raise SystemExit("ffmpeg failed to write the test clip")


def _status(pid: int) -> dict[str, int]:
    """VmRSS, RssAnon and RssFile of a process, in kB (Linux /proc)."""
    values = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile"):
                values[key] = int(rest.split()[0])
    except (OSError, ValueError):
        pass
    return values


def measure(command: list[str]) -> dict[str, float]:
    """Run ``command``; its exit code, seconds and peak memory in MiB, sampled every 0.1 s:
    ``rss`` (all resident pages), ``anon`` (its own memory) and ``file`` (pages of mapped files,
    such as the frame cache: the kernel's to drop, not the process's to hold)."""
    start = time.monotonic()
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    peak = {"VmRSS": 0, "RssAnon": 0, "RssFile": 0}
    while proc.poll() is None:
        for key, value in _status(proc.pid).items():
            peak[key] = max(peak[key], value)
        time.sleep(0.1)
    err = proc.stderr.read()
    if proc.returncode != 0:
        sys.stderr.write(err)
    return {
        "code": proc.returncode,
        "seconds": time.monotonic() - start,
        "rss": peak["VmRSS"] / 1024,
        "anon": peak["RssAnon"] / 1024,
        "file": peak["RssFile"] / 1024,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--frames", type=int, nargs="+", default=[132, 528, 1320])
    ap.add_argument("--budget", type=float, default=30.0, help="seconds of training")
    ap.add_argument("--keyframe-quality", type=int, default=20)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = ap.parse_args(argv)
    dnerv = [sys.executable, "-m", "dnerv_codec"]
    rows = []
    print(f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; {platform.machine()}, "
          f"{os.cpu_count()} CPUs; {SIZE[0]}x{SIZE[1]}, --time-budget {args.budget:g}, "
          f"--keyframe-quality {args.keyframe_quality}\n")  # fmt: skip
    print("| frames | raw frames | encoder peak RSS (own / mapped files) | encode | "
          "decoder peak RSS (own) | decode |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|", flush=True)
    with tempfile.TemporaryDirectory(prefix="dnerv-memory-") as tmp:
        for n in args.frames:
            clip, out = Path(tmp) / f"clip{n}.mp4", Path(tmp) / f"clip{n}.dnerv"
            make_clip(clip, n)
            raw = n * SIZE[0] * SIZE[1] * 3 / 2**20
            enc = measure(
                [*dnerv, "encode", str(clip), str(out), "--time-budget", str(args.budget),
                 "--keyframe-quality", str(args.keyframe_quality), "--quiet", "--force"]
            )  # fmt: skip
            if enc["code"] != 0:
                raise SystemExit(f"encode of {n} frames failed")
            frames_dir = Path(tmp) / f"frames{n}"
            dec = measure(
                [*dnerv, "decode", str(out), str(frames_dir), "--format", "y4m", "--quiet"]
            )
            if dec["code"] != 0:
                raise SystemExit(f"decode of {n} frames failed")
            for f in frames_dir.rglob("*"):
                if f.is_file():
                    f.unlink()
            clip.unlink()
            row = {
                "frames": n,
                "raw_mib": round(raw, 1),
                "file_bytes": out.stat().st_size,
                **{f"encoder_{k}": round(v, 1) for k, v in enc.items() if k != "code"},
                **{f"decoder_{k}": round(v, 1) for k, v in dec.items() if k != "code"},
            }
            rows.append(row)
            print(f"| {n} | {raw:,.0f} MiB | {enc['rss']:,.0f} MiB ({enc['anon']:,.0f} / "
                  f"{enc['file']:,.0f}) | {enc['seconds']:.0f} s | {dec['rss']:,.0f} MiB "
                  f"({dec['anon']:,.0f}) | {dec['seconds']:.0f} s |", flush=True)  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    result = {
        "benchmark": "encode_memory",
        "date": f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "command": "benchmarks/speed/encode_memory.py " + " ".join(argv or sys.argv[1:]),
        "rows": rows,
    }
    (args.out / "encode_memory.json").write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
