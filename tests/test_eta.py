"""The encoder's estimate of its end (dnerv_codec.encoder.eta): the arithmetic of its stages,
and the lines a rate-controlled encode prints, the first one with planning's first probe."""

from __future__ import annotations

import re
import time

import pytest

from dnerv_codec.encoder.eta import FLOOR_PROBES, EndEstimate, clock


def test_stages_add_up_from_measured_costs():
    lines: list[str] = []
    eta = EndEstimate(lines.append, frames=100, budget=60.0, floor=True, start=time.monotonic())
    assert eta.remaining() is None  # nothing measured: nothing announced
    eta.bisection(1, 34)
    assert eta.probes_left == 1 + 6  # the probe at the lowest quality, then log2(34) rounded up
    eta.probe(2.0, keyframes=20)  # 0.1 s a keyframe; the first probe announces
    assert len(lines) == 1 and lines[0].startswith("encode: planning; about ")
    codec = 0.1
    expected = 6 * 20 * codec + 60.0 + 100 * codec + (FLOOR_PROBES + 1) * 100 * codec
    assert eta.remaining() == pytest.approx(expected, abs=0.01)
    eta.probe(6.0, keyframes=20)  # a finer quality, slower: the cost is the mean of the probes
    assert eta.per_keyframe == pytest.approx(0.2) and len(lines) == 1
    eta.next_stage()  # planning done: training next, its whole budget ahead
    assert eta.stage == "training" and len(lines) == 2
    assert eta.remaining() == pytest.approx(60.0 + 100 * 0.2 + 4 * 100 * 0.2, abs=0.1)
    eta.network(step_seconds=0.9, frames_per_step=3.0)  # a forward pass: 0.1 s a frame
    eta.next_stage()
    assert eta.stage == "checking"
    assert eta.remaining() == pytest.approx(100 * 0.1 + 4 * 100 * 0.2, abs=1e-6)
    eta.next_stage()
    assert eta.stage == "floor" and eta.remaining() == pytest.approx(4 * 100 * 0.2)
    assert [total >= elapsed for elapsed, total in eta.announced] == [True] * 4
    no_floor = EndEstimate(lines.append, frames=100, budget=None, floor=False, start=0.0)
    no_floor.probe(1.0, keyframes=10)
    assert no_floor.remaining() == pytest.approx(100 * 0.1)  # checking alone


def test_clock():
    assert clock(59.6) == "1:00" and clock(754) == "12:34" and clock(3725) == "1:02:05"


def test_a_rate_controlled_encode_announces_its_end_from_the_first_probe(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    clip = Path(__file__).resolve().parent.parent / "data" / "bbb_320x180_64f.mp4"
    cmd = [sys.executable, "-m", "dnerv_codec", "encode", str(clip), str(tmp_path / "o.dnerv"),
           "--max-frames", "8", "--target-bpp", "0.1", "--epochs", "1", "--no-verify"]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    lines = [line for line in re.split(r"[\r\n]", result.stderr) if line.startswith("encode: ")]
    stages = [line.split(";")[0].removeprefix("encode: ") for line in lines]
    assert stages == ["planning", "training", "checking", "floor"], result.stderr
    pattern = r"about (\d+:\d\d) left, ends about \d\d:\d\d:\d\d \((\d+:\d\d) in all\)"
    assert all(re.search(pattern, line) for line in lines), lines
    assert "planning keyframes" in result.stderr  # the probes have a bar
