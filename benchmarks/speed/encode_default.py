"""`dnerv encode IN OUT` with no options on a 720p clip: how long it takes, how soon it says
when it will end, whether the training budget holds, and where the file lands against the
keyframe codec on every frame (x265-kf) and x265 random access 4:4:4.

Usage::

    .venv/bin/python benchmarks/speed/encode_default.py [--frames 132] [--anchor-qps 27 30 33 36]

The clip is made as in ``encode_memory.py`` (the bundled 640x360 sample upscaled to 1280x720,
played forwards and backwards to ``--frames`` frames). The encoder runs in a fresh process with
no options but ``--json``; its progress output (stderr) is read as it comes, to find the first
line that estimates the end of the encode (``encode: STAGE; about M:SS left, ... (M:SS in
all)``) and every later one. Recorded: wall time, the training budget ``--speed medium``
announced and the training time the report gives, each estimate of the whole encode's time
with when it came and its error against the real wall time, every status line with its time, the
report (bpp, PSNR-RGB, which file ``--mode auto`` kept and the other one's PSNR), and x265-kf
and x265-ra444 points around its rate on the same frames (PSNR-RGB). Written as a results
record (``--json``; ``--from-raw`` rebuilds it from a raw output).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[n]) for n in (2, 1)]  # repo, benchmarks/

import _results
from _common import REPO
from encode_memory import make_clip

from dnerv_codec import rd
from dnerv_codec.video import read_video

BUDGET = re.compile(r"up to ([\d,]+) s of training")
ESTIMATE = re.compile(r"^encode: (\w+); .*\(((?:\d+:)?\d+:\d\d) in all\)")  # dnerv's end lines


def _seconds(clock: str) -> int:
    """M:SS or H:MM:SS in seconds."""
    total = 0
    for part in clock.split(":"):
        total = 60 * total + int(part)
    return total


def run_encode(clip: Path, out: Path) -> dict:
    """Run the default encode, reading stderr as it comes; returns timings and the report."""
    cmd = [sys.executable, "-m", "dnerv_codec", "encode", str(clip), str(out), "--json"]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
    budget, estimates, status, buffer = None, [], [], b""
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
            now = round(time.monotonic() - start, 1)
            if (m := ESTIMATE.search(line)) is not None:
                total = _seconds(m.group(2))
                estimates.append({"seconds": now, "stage": m.group(1), "total": total})
            if line.strip() and "|" not in line:  # a status line, not a progress bar
                status.append([now, line.strip()])
    stdout = proc.stdout.read().decode()
    code = proc.wait()
    wall = time.monotonic() - start
    if code != 0:
        raise SystemExit(f"dnerv encode failed ({code})")
    report = json.loads(stdout.strip().splitlines()[-1])
    for e in estimates:
        e["error"] = round(e["total"] / wall - 1, 4)
    first = estimates[0] if estimates else None
    return {"wall_seconds": round(wall, 1), "budget": budget, "first_estimate": first,
            "estimates": estimates, "lines": status, "report": report}  # fmt: skip


TOPIC = "default-encode-720p"
GOALS = {"wall": 15 * 60, "first_estimate": 30}  # issue 19: seconds
KEPT = {"keyframes": "the keyframe-only file", "network": "the network's file"}


def _met(seconds: float | None, goal: float) -> str:
    return "met" if seconds is not None and seconds <= goal else "missed"


def record_result(rec: _results.Recorder, result: dict) -> None:
    """Tables and summary line of a run's result (what the raw output holds)."""
    rec.data.update(result)
    report, anchors = result["report"], result["anchors"]
    rec.table(
        "anchors",
        "x265 on the same frames (PSNR-RGB)",
        ["anchor", {"name": "bpp / dB", "format": "{:.4f} / {:.2f}"}],
        [[name, [[p["bpp"], p["psnr-rgb"]] for p in points]] for name, points in anchors.items()],
    )
    if result.get("estimates"):
        rec.table(
            "estimates",
            "The encoder's estimates of its whole time, against the real wall time",
            ["after (s)", "stage", "estimated total (s)",
             {"name": "error", "format": "{:+.1%}"}],
            [[e["seconds"], e["stage"], e["total"], e["error"]] for e in result["estimates"]],
        )  # fmt: skip
    first = (result["first_estimate"] or {}).get("seconds")
    other = report["alternative"]
    rec.summary(
        f"default encode, {result['frames']} frames of {result['size'][1]}p",
        f"{result['wall_seconds']:.0f} s wall (goal {GOALS['wall'] // 60} min: "
        f"{_met(result['wall_seconds'], GOALS['wall'])}); training "
        f"{report['train_seconds']:.0f} s of the {result['budget']:.0f} s budget; first estimate "
        f"of the end after {first:.0f} s (goal {GOALS['first_estimate']} s: "
        f"{_met(first, GOALS['first_estimate'])}); kept {KEPT[report['structure']]}, "
        f"{report['bpp']:.4f} bpp at {report['psnr']:.2f} dB, "
        f"{KEPT[other['structure']].removesuffix(' file')} {other['psnr']:.2f} dB",
        f"The default encode of {result['frames']} frames of {result['size'][1]}p",
    )


def from_raw(rec: _results.Recorder, path: Path) -> None:
    """The record of a run whose raw output is ``path``."""
    raw = json.loads(path.read_text())
    arch, cores, python = raw["machine"].split(", ")
    load = "load average {:.2f} / {:.2f} / {:.2f} (1 / 5 / 15 min) at the end"
    rec.restore(
        [rec.record["command"][0], "--frames", str(raw["frames"])], None,
        _results.iso(raw["date"]), cpu=arch, cores=int(cores.split()[0]),
        python=python.split()[1], load=load.format(*raw["load_average"]),
    )  # fmt: skip
    rec.data["raw"] = str(path.resolve().relative_to(REPO))
    record_result(rec, {k: v for k, v in raw.items() if k not in ("date", "machine", "command")})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=132)
    ap.add_argument("--anchor-qps", type=int, nargs="*", default=[27, 30, 33, 36, 39],
                    help="QPs of x265-kf; x265-ra444 runs at the same numbers as CRF")  # fmt: skip
    _results.add_arguments(ap, "speed", TOPIC, raw="results/encode_default.json")
    args = ap.parse_args()
    rec = _results.Recorder(__file__, TOPIC)
    if args.from_raw:
        from_raw(rec, args.from_raw)
        rec.write(args.json)
        return 0
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
    train, budget = result["report"]["train_seconds"], result["budget"]
    result.update(
        frames=args.frames,
        size=[1280, 720],
        training_vs_budget=round(train / budget - 1, 4) if budget else None,
        anchors=anchors,
    )
    record_result(rec, result)
    print(rec.record["summary"]["figure"])
    rec.write(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
