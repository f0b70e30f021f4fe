"""Where the encoder's memory peaks: its own memory, stage by stage, on one 720p encode.

Usage::

    .venv/bin/python benchmarks/speed/memory_trace.py [--frames 132] [--budget 30] \\
        [--keyframe-quality 20] [--env MALLOC_MMAP_THRESHOLD_=131072] [--log FILE]

Makes the clip of ``encode_memory.py`` (N frames of 1280x720 from the bundled sample), runs
``dnerv encode`` on it with its status lines on (the default path: ``--mode auto``), samples the
process's anonymous memory (RssAnon, /proc) every 0.2 s beside those lines, and prints the peak
of each stage: before planning's first line (reading the frames, planning's first probe),
planning, training, checking (landing, writing, the network file's verification), the floor
(the keyframe-only codings) and the keyframe-only file's verification, with the training's
steps per second. ``--env`` sets environment variables of the encoder (glibc's ``MALLOC_*``
tunables, for instance); ``--log`` keeps the raw samples and lines. A measurement aid, not a
record: the peaks of a whole encode are ``encode_memory.py``'s.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[n]) for n in (2, 1)]  # repo, benchmarks/

from speed.encode_memory import _status, make_clip

STAGES = (
    ("planning", "encode: planning"),
    ("planned", "rate control: target"),
    ("training", "encode: training"),
    ("checking", "encode: checking"),
    ("floor", "encode: floor"),
    ("keyframe-only file", "keyframe-only at the same budget"),
)


def trace(command: list[str], env: dict[str, str], log) -> tuple[dict[str, int], float, str]:
    """Run ``command``; the peak RssAnon (MiB) of each stage, the seconds and the last
    finished training bar (training, or the quantisation-aware fine-tuning after it)."""
    start = time.monotonic()
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env={**os.environ, **env})
    stage, peaks, last_bar = ["start"], {"start": 0}, [""]

    def read_lines() -> None:
        for line in iter(lambda: proc.stderr.readline(), ""):
            for part in re.split(r"[\r\n]", line):
                part = part.strip()
                if not part:
                    continue
                log.write(f"{time.monotonic() - start:8.1f} {part}\n")
                if part.startswith("training: 100%") and "step" in part:  # a finished bar
                    last_bar[0] = part
                for name, prefix in STAGES:
                    if part.startswith(prefix) and name not in peaks:
                        stage[0] = name
                        peaks[name] = 0

    reader = threading.Thread(target=read_lines, daemon=True)
    reader.start()
    while proc.poll() is None:
        anon = _status(proc.pid).get("RssAnon", 0) // 1024
        peaks[stage[0]] = max(peaks[stage[0]], anon)
        log.write(f"{time.monotonic() - start:8.1f} anon {anon}\n")
        time.sleep(0.2)
    reader.join(timeout=5)
    if proc.returncode != 0:
        raise SystemExit(f"the encode failed (exit {proc.returncode})")
    return peaks, time.monotonic() - start, last_bar[0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--frames", type=int, default=132)
    ap.add_argument("--budget", type=float, default=30.0, help="seconds of training")
    ap.add_argument("--keyframe-quality", type=int, default=20)
    ap.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--log", type=Path, default=None, help="keep the samples and lines here")
    args = ap.parse_args(argv)
    env = dict(item.split("=", 1) for item in args.env)
    with tempfile.TemporaryDirectory(prefix="dnerv-trace-") as tmp:
        clip, out = Path(tmp) / "clip.mp4", Path(tmp) / "clip.dnerv"
        make_clip(clip, args.frames)
        command = [sys.executable, "-m", "dnerv_codec", "encode", str(clip), str(out),
                   "--time-budget", str(args.budget), "--keyframe-quality",
                   str(args.keyframe_quality), "--force"]  # fmt: skip
        with open(args.log or os.devnull, "w") as log:
            peaks, seconds, bar = trace(command, env, log)
    print(f"{args.frames} frames of 720p, {seconds:.0f} s, environment {env or 'unchanged'}")
    for name, peak in peaks.items():
        print(f"  {name:>20}: {peak:,} MiB own at most")
    print(f"  peak: {max(peaks.values()):,} MiB; training: {bar.split('|')[-1].strip()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
