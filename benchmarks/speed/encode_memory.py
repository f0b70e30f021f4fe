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
Written as a results record (``--json``; ``--from-raw`` rebuilds it from a raw output).

``--network-only`` measures the encoder's path up to the network's file alone (``--mode network
--no-verify``: planning, keyframes, training, landing, writing; no decode of the written file, no
keyframe-only floor) and no decoder, in a few minutes however long the clip (a default encode of
1,320 frames of 720p spends most of an hour decoding the network's file to measure it), as its
own record (``memory-720p-network``).
"""

from __future__ import annotations

import argparse
import copy
import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[n]) for n in (2, 1)]  # repo, benchmarks/

import _results
import numpy as np
import render
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


TOPIC = "memory-720p"


def record_rows(rec: _results.Recorder, rows: list[dict]) -> None:
    rec.data["rows"] = rows
    mib = {"format": "{:,.0f} MiB", "align": "r", "missing": "not run"}
    rec.table(
        "peak-memory",
        "Peak memory against the video's length",
        [
            {"name": "frames", "align": "r"},
            {**mib, "name": "raw frames"},
            {**mib, "name": "encoder peak RSS (own / mapped files)",
             "format": "{:,.0f} MiB ({:,.0f} / {:,.0f})"},
            {"name": "encode", "format": "{:.0f} s", "align": "r"},
            {**mib, "name": "decoder peak RSS (own)", "format": "{:,.0f} MiB ({:,.0f})"},
            {"name": "decode", "format": "{:.0f} s", "align": "r", "missing": "not run"},
            {"name": "file written"},
        ],
        [
            [r["frames"], r["raw_mib"], [r["encoder_rss"], r["encoder_anon"], r["encoder_file"]],
             r["encoder_seconds"],
             [r["decoder_rss"], r["decoder_anon"]] if "decoder_rss" in r else None,
             r.get("decoder_seconds"), r.get("kept", "not recorded")]
            for r in rows
        ],
    )  # fmt: skip


def from_raw(rec: _results.Recorder, path: Path) -> None:
    """The record of a run that wrote ``path`` (its raw output: date, command, rows)."""
    raw = json.loads(path.read_text())
    args = shlex.split(raw["command"])[1:]
    if "--out" in args:  # where the raw output went
        del args[args.index("--out") : args.index("--out") + 2]
    arch, cores = raw["machine"].split(", ")
    rec.restore(
        [rec.record["command"][0], *args], None, _results.iso(raw["date"]),
        cpu=arch, cores=int(cores.split()[0]),
    )  # fmt: skip
    rec.data["raw"] = str(path.resolve().relative_to(REPO))
    record_rows(rec, raw["rows"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--frames", type=int, nargs="+", default=[132, 528, 1320])
    ap.add_argument("--budget", type=float, default=30.0, help="seconds of training")
    ap.add_argument("--keyframe-quality", type=int, default=20)
    ap.add_argument("--network-only", action="store_true", help="the network's path, no decoder")
    _results.add_arguments(ap, "speed", None, raw="results/encode_memory.json")
    args = ap.parse_args(argv)
    topic = f"{TOPIC}-network" if args.network_only else TOPIC
    args.json = args.json or _results.default_path("speed", topic)
    rec = _results.Recorder(__file__, topic, argv)
    if args.from_raw:
        from_raw(rec, args.from_raw)
        rec.write(args.json)
        return 0
    dnerv = [sys.executable, "-m", "dnerv_codec"]
    rows = []
    print(f"{SIZE[0]}x{SIZE[1]}, --time-budget {args.budget:g}, "
          f"--keyframe-quality {args.keyframe_quality}\n", flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="dnerv-memory-") as tmp:
        for n in args.frames:
            clip, out = Path(tmp) / f"clip{n}.mp4", Path(tmp) / f"clip{n}.dnerv"
            make_clip(clip, n)
            raw = n * SIZE[0] * SIZE[1] * 3 / 2**20
            enc = measure(
                [*dnerv, "encode", str(clip), str(out), "--time-budget", str(args.budget),
                 "--keyframe-quality", str(args.keyframe_quality), "--quiet", "--force",
                 *(["--mode", "network", "--no-verify"] if args.network_only else [])]
            )  # fmt: skip
            if enc["code"] != 0:
                raise SystemExit(f"encode of {n} frames failed")
            info = subprocess.run(
                [*dnerv, "info", "--json", str(out)], capture_output=True, text=True, check=True
            )
            kept = "network" if json.loads(info.stdout).get("model") else "keyframe-only"
            dec = {}
            if not args.network_only:
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
                "kept": kept,
                **{f"encoder_{k}": round(v, 1) for k, v in enc.items() if k != "code"},
                **{f"decoder_{k}": round(v, 1) for k, v in dec.items() if k != "code"},
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
            if n != args.frames[-1]:  # a run stopped at a longer length keeps the shorter ones
                partial = copy.deepcopy(rec)
                record_rows(partial, rows)
                partial.write(args.json)
    record_rows(rec, rows)
    print(render.render_table(rec.record["tables"][0]))
    rec.write(args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
