"""Peak memory of the encoder and the decoder against the video's length, at 720p.

Usage::

    .venv/bin/python benchmarks/encode_memory.py [--frames 132 528 1320] [--budget 30] \\
        [--keyframe-quality 20] [--out DIR]

For each length N, a 1280x720 clip of N frames is made from the bundled 640x360 sample
(upscaled with lanczos, played forwards and backwards until N frames: real content, and a
longer clip than the repository holds), then encoded by ``dnerv encode`` in a fresh process
(rate control at its default rate, ``--time-budget`` seconds of training; ``--keyframe-quality``
fixes the keyframe quality so that the benchmark does not spend its time in the keyframe
bisection, which does not change what is held in memory) and decoded by ``dnerv decode`` to
y4m. Printed per length: the raw size of the frames, the peak resident memory (ru_maxrss of
the process and what it waited for) of the encoder and of the decoder, and their times.
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
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from _common import REPO

from dnerv_codec.video import ffmpeg_exe, read_video

SOURCE = REPO / "data" / "bbb_640x360_32f.mp4"
SIZE = (1280, 720)

# Runs a command and prints the peak resident memory (kB) of what it waited for.
_MEASURE = (
    "import resource, subprocess, sys, time; t = time.monotonic(); "
    "code = subprocess.run(sys.argv[1:]).returncode; "
    "print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, time.monotonic() - t)"
)


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


def measure(command: list[str]) -> tuple[int, float, float]:
    """(exit code, peak RSS in MiB, seconds) of ``command`` run in a fresh process."""
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, *command], capture_output=True, text=True, check=False
    )
    code, kib, seconds = out.stdout.split()[-3:]
    if int(code) != 0:
        sys.stderr.write(out.stderr)
    return int(code), int(kib) / 1024, float(seconds)


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
    print("| frames | raw frames | encoder peak RSS | encode | decoder peak RSS | decode |")
    print("|---:|---:|---:|---:|---:|---:|", flush=True)
    with tempfile.TemporaryDirectory(prefix="dnerv-memory-") as tmp:
        for n in args.frames:
            clip, out = Path(tmp) / f"clip{n}.mp4", Path(tmp) / f"clip{n}.dnerv"
            make_clip(clip, n)
            raw = n * SIZE[0] * SIZE[1] * 3 / 2**20
            code, enc_rss, enc_s = measure(
                [*dnerv, "encode", str(clip), str(out), "--time-budget", str(args.budget),
                 "--keyframe-quality", str(args.keyframe_quality), "--quiet", "--force"]
            )  # fmt: skip
            if code != 0:
                raise SystemExit(f"encode of {n} frames failed")
            frames_dir = Path(tmp) / f"frames{n}"
            code, dec_rss, dec_s = measure(
                [*dnerv, "decode", str(out), str(frames_dir), "--format", "y4m", "--quiet"]
            )
            if code != 0:
                raise SystemExit(f"decode of {n} frames failed")
            for f in frames_dir.rglob("*"):
                if f.is_file():
                    f.unlink()
            clip.unlink()
            row = {
                "frames": n,
                "raw_mib": round(raw, 1),
                "encoder_peak_mib": round(enc_rss, 1),
                "encode_seconds": round(enc_s, 1),
                "decoder_peak_mib": round(dec_rss, 1),
                "decode_seconds": round(dec_s, 1),
            }
            rows.append(row)
            print(f"| {n} | {raw:,.0f} MiB | {enc_rss:,.0f} MiB | {enc_s:.0f} s | "
                  f"{dec_rss:,.0f} MiB | {dec_s:.0f} s |", flush=True)  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    result = {
        "benchmark": "encode_memory",
        "date": f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "command": "benchmarks/encode_memory.py " + " ".join(argv or sys.argv[1:]),
        "rows": rows,
    }
    (args.out / "encode_memory.json").write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
