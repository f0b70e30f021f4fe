"""Training throughput of `dnerv encode` with one process and with several (torchrun, DDP).

Usage::

    .venv/bin/python benchmarks/speed/ddp_speed.py [--clip data/bbb_320x180_64f.mp4]
        [--max-frames 32] [--preset tiny] [--epochs 4] [--batch-size 2] [--repeat 2] [--procs 2]

Runs the real encoder (``--no-verify``, PNG keyframes) as separate processes, in alternation:
one process with 1 thread, one process with ``--procs`` threads, and ``--procs`` processes of
1 thread each under torchrun (gloo). All use the same global batch, so they do the same steps.
Throughput = epochs x frames / the encoder's reported training time (the first epoch included).
Also gives the CPU seconds the whole command used (all its processes, start-up and keyframes
included): on shared cores the wall-clock figures depend on the other jobs, the CPU time much
less. Prints a markdown table (median over repeats) and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[n]) for n in (2, 1)]  # repo, benchmarks/

from _common import REPO


def _run(
    label: str, procs: int, threads: int, args: argparse.Namespace, out: Path
) -> tuple[float, float]:
    """Training frames/s, and CPU seconds of the whole command (all its processes)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OMP_WAIT_POLICY="PASSIVE")
    encode = [str(args.clip), str(out), "--preset", args.preset, "--epochs", str(args.epochs),
              "--batch-size", str(args.batch_size), "--max-frames", str(args.max_frames),
              "--keyframe-codec", "png", "--keyframe-quality", "1", "--no-verify", "--json",
              "-q", "--force"]  # fmt: skip
    if procs == 1:
        cmd = [sys.executable, "-m", "dnerv_codec", "encode", *encode]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", str(procs), "-m", "dnerv_codec", "encode", *encode]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    status = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = sum(getattr(after, f) - getattr(before, f) for f in ("ru_utime", "ru_stime"))
    if status.returncode != 0:
        sys.exit(f"{label} failed:\n{status.stderr[-2000:]}")
    report = json.loads([ln for ln in status.stdout.splitlines() if ln.startswith("{")][-1])
    frames = sum(v["frames"] for v in report["videos"])
    return args.epochs * frames / report["train_seconds"], cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clip", type=Path, default=REPO / "data" / "bbb_320x180_64f.mp4")
    ap.add_argument("--max-frames", type=int, default=32)
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--procs", type=int, default=2)
    args = ap.parse_args()
    n = args.procs
    configs = [
        ("1 process x 1 thread", 1, 1),
        (f"1 process x {n} threads", 1, n),
        (f"{n} processes x 1 thread (torchrun, gloo)", n, 1),
    ]
    speeds: dict[str, list[float]] = {c[0]: [] for c in configs}
    cpus: dict[str, list[float]] = {c[0]: [] for c in configs}
    loads = [os.getloadavg()[0]]
    start = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):
            for label, procs, threads in configs:
                speed, cpu = _run(label, procs, threads, args, Path(tmp) / "b.dnerv")
                speeds[label].append(speed)
                cpus[label].append(cpu)
                loads.append(os.getloadavg()[0])
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {when}, "
          f"python {platform.python_version()}; {time.monotonic() - start:.0f} s")  # fmt: skip
    print(
        f"clip {args.clip.name} --max-frames {args.max_frames}, preset {args.preset}, "
        f"{args.epochs} epochs, global batch {args.batch_size}, {args.repeat} repeats"
    )
    base = statistics.median(speeds[configs[0][0]])
    print(
        "\n| run | training frames/s (median) | runs | vs 1 process x 1 thread | CPU s, command |"
    )
    print("|---|---|---|---|---|")
    for label, _, _ in configs:
        med = statistics.median(speeds[label])
        runs = ", ".join(f"{s:.1f}" for s in speeds[label])
        cpu = statistics.median(cpus[label])
        print(f"| {label} | {med:.1f} | {runs} | x{med / base:.2f} | {cpu:.0f} |")
    print(f"\n1-minute load average during the runs: {min(loads):.2f} to {max(loads):.2f}")


if __name__ == "__main__":
    main()
