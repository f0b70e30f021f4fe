"""Distributed encoding: real torchrun jobs of two CPU processes (gloo) on real clips.

The reference is a one-process run with the same global batch and seed. The trainer weights each
rank's share so that a step of two processes is the step of one; on these clips the decoded PSNR
of the two runs measured equal to 2e-6 dB (float summation order is the only difference).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import dnerv_codec
from dnerv_codec import framecache
from dnerv_codec.geometry import Geometry, to_patches
from dnerv_codec.metrics import psnr_rgb
from dnerv_codec.video import read_inputs, read_video

ENV = dict(os.environ, OMP_NUM_THREADS="1")  # one thread a process: 2 cores, 2 processes
FAST = ["--preset", "tiny", "--keyframe-codec", "png", "--keyframe-quality", "1", "-q"]


def _frames_folder(src: Path, dst: Path, size: tuple[int, int], frames: int) -> Path:
    """A real clip cut and downscaled into a folder of PNG frames (an input the encoder takes)."""
    dst.mkdir()
    for i, frame in enumerate(read_video(src, max_frames=frames).frames):
        Image.fromarray(frame).resize(size, Image.Resampling.BOX).save(dst / f"{i:04d}.png")
    return dst


@pytest.fixture(scope="module")
def clips(tmp_path_factory, sample_clip, sample_clip_640) -> list[Path]:
    """Two short real clips of different sizes: 20 frames at 96x64 and 13 at 88x56."""
    folder = tmp_path_factory.mktemp("clips")
    return [
        _frames_folder(sample_clip, folder / "a", (96, 64), 20),
        _frames_folder(sample_clip_640, folder / "b", (88, 56), 13),
    ]


def _torchrun(nproc: int, *args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
            "--standalone", "-m", "dnerv_codec", "encode", *args]  # fmt: skip


def _quality(path: Path, clips: list[Path]) -> float:
    psnrs = []
    with dnerv_codec.open(path, device="cpu") as f:
        assert [v.frames for v in f.videos] == [20, 13]
        for v, clip in enumerate(clips):
            source = read_inputs([clip])[0].frames
            psnrs.append(psnr_rgb(source, np.stack(list(f.frames(v)))))
    return float(np.mean(psnrs))


def test_two_processes_match_one(clips, tmp_path):
    common = [*map(str, clips)]
    opts = ["--epochs", "4", "--batch-size", "2", "--seed", "3", "--no-verify", "--json", *FAST]
    one, two = tmp_path / "one.dnerv", tmp_path / "two.dnerv"
    single = [sys.executable, "-m", "dnerv_codec", "encode", *common, str(one), *opts]
    status = subprocess.run(single, capture_output=True, text=True, env=ENV, timeout=300)
    assert status.returncode == 0, status.stderr
    cache = tmp_path / "cache"
    cmd = _torchrun(2, *common, str(two), *opts, "--cache-dir", str(cache))
    status = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=300)
    assert status.returncode == 0, status.stderr
    reports = [json.loads(line) for line in status.stdout.splitlines() if line.startswith("{")]
    assert len(reports) == 1 and reports[0]["epochs"] == 4  # rank 0 alone reports
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".two.dnerv")]
    assert len(list(cache.iterdir())) == 1  # one cache folder, built once
    q1, q2 = _quality(one, clips), _quality(two, clips)
    assert q2 > 10
    print(f"PSNR one process {q1:.6f} dB, two {q2:.6f} dB")
    assert abs(q1 - q2) < 0.05, (q1, q2)  # measured 2e-6 dB
    size1, size2 = one.stat().st_size, two.stat().st_size
    assert abs(size1 - size2) < 0.01 * size1  # the same weights up to rounding: measured 4 bytes


def test_global_batch_must_divide(clips, tmp_path):
    cmd = _torchrun(2, str(clips[0]), str(tmp_path / "x.dnerv"), "--batch-size", "3", *FAST)
    status = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=120)
    assert status.returncode != 0
    errors = [ln for ln in status.stderr.splitlines() if ln.startswith("dnerv: error:")]
    assert errors and "multiple of the number of processes, 2" in errors[0]
    assert not [ln for ln in status.stderr.splitlines() if ln.startswith("[rank") and "Trace" in ln]
    assert not (tmp_path / "x.dnerv").exists()


def _rank_pids(launcher: int) -> dict[int, int]:
    """Worker pid by rank, from the environment torchrun gave each child."""
    kids = subprocess.run(["pgrep", "-P", str(launcher)], capture_output=True, text=True)
    ranks = {}
    for pid in kids.stdout.split():
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        rank = [e for e in env if e.startswith(b"RANK=")]
        if rank:
            ranks[int(rank[0][5:])] = int(pid)
    return ranks


def test_kill_one_rank_then_resume(clips, tmp_path):
    out, ckpt = tmp_path / "k.dnerv", tmp_path / "ckpt"
    args = [*map(str, clips), str(out), "--epochs", "12", "--batch-size", "2", *FAST,
            "--checkpoint-dir", str(ckpt), "--checkpoint-every", "1", "--no-verify",
            "--dist-timeout", "60"]  # fmt: skip
    proc = subprocess.Popen(_torchrun(2, *args), stderr=subprocess.PIPE, text=True, env=ENV)
    deadline = time.monotonic() + 120
    while not (ckpt / "trainer.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)
    os.kill(_rank_pids(proc.pid)[1], signal.SIGKILL)
    killed = time.monotonic()
    _, err = proc.communicate(timeout=90)
    assert time.monotonic() - killed < 45  # no hang
    assert proc.returncode != 0
    lines = [ln for ln in err.splitlines() if ln.startswith("dnerv: ")]
    assert lines and "--resume" in lines[0], err[-3000:]  # rank 0 says what happened
    assert not out.exists()
    import torch

    epoch = torch.load(ckpt / "trainer.pt", weights_only=True)["epoch"]
    assert 0 < epoch < 12
    status = subprocess.run(
        _torchrun(2, *args, "--resume"), capture_output=True, text=True, env=ENV, timeout=300
    )
    assert status.returncode == 0, status.stderr[-3000:]
    assert _quality(out, clips) > 10


def test_a_rank_that_stops_answering_times_out(clips, tmp_path):
    """A hung rank (SIGSTOP): the others give up after --dist-timeout with one line."""
    ckpt = tmp_path / "ckpt"
    args = [*map(str, clips), str(tmp_path / "h.dnerv"), "--epochs", "12", *FAST,
            "--batch-size", "2", "--checkpoint-dir", str(ckpt), "--no-verify",
            "--dist-timeout", "10"]  # fmt: skip
    proc = subprocess.Popen(_torchrun(2, *args), stderr=subprocess.PIPE, text=True, env=ENV)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    reader.start()
    deadline = time.monotonic() + 120
    while not (ckpt / "keyframes.bin").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    hung = _rank_pids(proc.pid)[1]
    os.kill(hung, signal.SIGSTOP)
    stopped = time.monotonic()
    try:
        while not any(ln.startswith("dnerv: ") for ln in lines) and time.monotonic() < deadline:
            time.sleep(0.2)
        waited = time.monotonic() - stopped
    finally:
        os.kill(hung, signal.SIGKILL)  # torchrun would wait 30 s more for a stopped process
        proc.wait(timeout=60)
    errors = [ln for ln in lines if ln.startswith("dnerv: error:")]
    assert errors and "rank 0 of 2" in errors[0] and "--resume" in errors[0], "".join(lines)
    assert 5 < waited < 40  # the 10 s timeout (a wait may begin before the stop), plus slack
    assert proc.returncode != 0


def test_frame_cache_reads_what_the_decoder_reads(clips, tmp_path):
    key = framecache.cache_key(clips, 9)
    assert key != framecache.cache_key(clips, 10)
    folder = tmp_path / key
    framecache.build(folder, clips, 9)
    framecache.build(folder, clips, 9)  # complete: kept, not rebuilt
    cached = framecache.load(folder)
    direct = read_inputs(clips, 9)
    assert [v.name for v in cached] == [v.name for v in direct]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    geometry = Geometry(48, 64)  # 96x64 and 88x56 frames: 2x2 patches, edges padded
    for c, d in zip(cached, direct, strict=True):
        np.testing.assert_array_equal(c.frames, d.frames)
        assert c.fps == d.fps
        lazy = framecache.patch_streams(c.frames, geometry)
        eager = to_patches(d.frames, geometry)
        assert len(lazy) == len(eager) == 4
        for stream, ref in zip(lazy, eager, strict=True):
            idx = np.array([0, 3, 3, 8])
            got = stream[idx].numpy().transpose(0, 2, 3, 1)
            np.testing.assert_array_equal(got, ref[idx])
    s, sq, n = framecache.frame_moments(direct)
    cs, csq, cn = cached.moments
    assert n == cn and np.allclose(s, cs) and np.allclose(sq, csq)
    time.sleep(0.01)
    (clips[1] / "0000.png").touch()  # an edited input is another set
    assert framecache.cache_key(clips, 9) != key


def test_one_process_with_the_cache_writes_the_same_file(clips, tmp_path):
    fast = {"preset": "tiny", "keyframe_codec": "png", "keyframe_quality": 1, "quiet": True}
    a, b = tmp_path / "a.dnerv", tmp_path / "b.dnerv"
    common = {"epochs": 1, "seed": 5, "max_frames": 9, "verify": False, **fast}
    dnerv_codec.encode(clips, a, **common)
    dnerv_codec.encode(clips, b, cache_dir=str(tmp_path / "cache"), **common)
    assert a.read_bytes() == b.read_bytes()


def test_rate_control_under_torchrun(clips, tmp_path):
    """The default encoder's path under torchrun: rank 0 plans and lands, every process trains
    and fine-tunes with the quantisation in the loop; the file lands in the window. (--mode
    network: three epochs would lose to the keyframe-only file that --mode auto keeps.)"""
    out = tmp_path / "rc.dnerv"
    opts = ["--target-bpp", "1.0", "--epochs", "3", "--qat-epochs", "1", "--seed", "3"]
    opts += ["--mode", "network"]
    cmd = _torchrun(2, *map(str, clips), str(out), *opts, "--cache-dir", str(tmp_path / "cache"),
                    "--json", "--no-verify", "-q")  # fmt: skip
    status = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=300)
    assert status.returncode == 0, status.stderr
    reports = [json.loads(line) for line in status.stdout.splitlines() if line.startswith("{")]
    assert len(reports) == 1  # rank 0 alone reports
    rate = reports[0]["rate"]
    assert rate["qat"]["epochs"] == 1 and rate["clip_length"] == 2
    assert 0.95 * rate["target_bytes"] <= out.stat().st_size <= rate["target_bytes"]
    assert _quality(out, clips) > 15
