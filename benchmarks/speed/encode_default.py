"""`dnerv encode IN OUT` with no options on a 720p clip: how long it takes, how soon it says
when it will end, whether the training budget holds, and where the file lands against the
keyframe codec on every frame (x265-kf) and x265 random access 4:4:4.

Usage::

    .venv/bin/python benchmarks/speed/encode_default.py [--frames 132] [--anchor-qps 27 30 33 36]

The clip is made as in ``encode_memory.py`` (the bundled 640x360 sample upscaled to 1280x720,
played forwards and backwards to ``--frames`` frames). The encoder runs in a fresh process with
no options but ``--json``; its progress output (stderr) is read as it comes, to find the first
line that estimates the end of training. Recorded: wall time, the training budget ``--speed
medium`` announced and the training time the report gives, the time of the first estimate, the
report (bpp, PSNR-RGB, which file ``--mode auto`` kept and the other one's PSNR), and x265-kf
and x265-ra444 points around its rate on the same frames (PSNR-RGB). Written as JSON to
``--out`` (default benchmarks/results/encode_default.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[n]) for n in (2, 1)]  # repo, benchmarks/

from _common import REPO
from encode_memory import make_clip

from dnerv_codec import rd
from dnerv_codec.video import read_video

BUDGET = re.compile(r"up to ([\d,]+) s of training")
ESTIMATE = re.compile(r"training.*<\s*(\d+:\d\d(?::\d\d)?)")  # tqdm's "elapsed<remaining"


def run_encode(clip: Path, out: Path) -> dict:
    """Run the default encode, reading stderr as it comes; returns timings and the report."""
    cmd = [sys.executable, "-m", "dnerv_codec", "encode", str(clip), str(out), "--json"]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
    budget, first_estimate, buffer = None, None, b""
    while True:
        chunk = proc.stderr.read1(4096) if hasattr(proc.stderr, "read1") else proc.stderr.read(1)
        if not chunk:
            break
        buffer += chunk
        *lines, buffer = re.split(rb"[\r\n]", buffer)
        for raw in lines:
            line = raw.decode("utf-8", "replace")
            if budget is None and (m := BUDGET.search(line)):
                budget = float(m.group(1).replace(",", ""))
            if first_estimate is None and ESTIMATE.search(line):
                first_estimate = {"seconds": round(time.monotonic() - start, 1), "line": line}
    stdout = proc.stdout.read().decode()
    code = proc.wait()
    wall = time.monotonic() - start
    if code != 0:
        raise SystemExit(f"dnerv encode failed ({code})")
    report = json.loads(stdout.strip().splitlines()[-1])
    return {"wall_seconds": round(wall, 1), "budget": budget, "first_estimate": first_estimate,
            "report": report}  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=132)
    ap.add_argument("--anchor-qps", type=int, nargs="*", default=[27, 30, 33, 36, 39],
                    help="QPs of x265-kf; x265-ra444 runs at the same numbers as CRF")  # fmt: skip
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="dnerv-default-") as tmp:
        clip = Path(tmp) / "clip.mkv"
        make_clip(clip, args.frames)
        print(f"encoding {args.frames} frames of 1280x720 with no options", flush=True)
        result = run_encode(clip, Path(tmp) / "out.dnerv")
        print(json.dumps({k: v for k, v in result.items() if k != "report"}), flush=True)
        video = read_video(clip)
        anchors = {}
        for name in ("x265-kf", "x265-ra444"):
            print(f"{name} at {args.anchor_qps}", flush=True)
            points = [rd.evaluate(video, name, q, ms_ssim=False) for q in args.anchor_qps]
            anchors[name] = [
                {"quality": p["quality"], "bpp": p["bpp"], "psnr-rgb": p["psnr-rgb"],
                 "encoding_time": p["encoding_time"]}
                for p in points
            ]  # fmt: skip
    report = result["report"]
    train, budget = report["train_seconds"], result["budget"]
    summary = {
        "date": f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}",
        "load_average": os.getloadavg(),
        "command": "dnerv encode clip.mkv out.dnerv --json",
        "frames": args.frames,
        "size": [1280, 720],
        **result,
        "training_vs_budget": round(train / budget - 1, 4) if budget else None,
        "anchors": anchors,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "encode_default.json"
    path.write_text(json.dumps(summary, indent=1) + "\n")
    print(
        f"wall {result['wall_seconds']:.0f} s; budget {budget} s, trained {train:.0f} s "
        f"({summary['training_vs_budget']:+.1%}); first estimate at "
        f"{(result['first_estimate'] or {}).get('seconds')} s; "
        f"{report['bpp']:.4f} bpp, {report['psnr']:.2f} dB, kept {report['structure']}, "
        f"the other: {report['alternative']}"
    )
    for name, points in anchors.items():
        print(name, [(round(p["bpp"], 4), round(p["psnr-rgb"], 2)) for p in points])
    print(f"written {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
