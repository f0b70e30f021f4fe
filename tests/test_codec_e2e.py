"""End to end: real clips through `dnerv encode` and `dnerv decode`, and the ways they can fail."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import dnerv_codec
from dnerv_codec.cli import main
from dnerv_codec.metrics import psnr_rgb
from dnerv_codec.video import ffmpeg_exe, read_video

FAST = {"preset": "tiny", "keyframe_codec": "png", "keyframe_quality": 1, "quiet": True}


def _scaled(src: Path, dst: Path, size: str, frames: int) -> Path:
    """A downscaled cut of a real clip (keeps tests fast, stays real video)."""
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-y", "-i", str(src), "-frames:v", str(frames),
         "-vf", f"scale={size}:flags=area", "-c:v", "ffv1", str(dst)],
        check=True,
    )  # fmt: skip
    return dst


@pytest.fixture(scope="module")
def clip(tmp_path_factory, sample_clip) -> Path:
    """20 real frames at 96x64: not a multiple of 8 frames, a last clip of 4."""
    return _scaled(sample_clip, tmp_path_factory.mktemp("clip") / "bbb.mkv", "96x64", 20)


@pytest.fixture(scope="module")
def encoded(tmp_path_factory, clip):
    out = tmp_path_factory.mktemp("enc") / "bbb.dnerv"
    report = dnerv_codec.encode([clip], out, epochs=30, batch_size=1, seed=1, **FAST)
    return out, report


def test_report_counts_every_byte(encoded, clip):
    out, report = encoded
    assert report.bytes == out.stat().st_size
    assert report.pixels == 20 * 96 * 64
    assert report.bpp == pytest.approx(out.stat().st_size * 8 / (20 * 96 * 64))
    assert report.weight_bytes + report.keyframe_bytes + report.overhead_bytes == report.bytes
    assert report.overhead_bytes < 1024


def test_decoded_file_matches_the_report(encoded, clip, tmp_path):
    out, report = encoded
    source = read_video(clip).frames
    with dnerv_codec.open(out, device="cpu") as f:
        assert [(v.name, v.frames, v.width, v.height) for v in f.videos] == [("bbb", 20, 96, 64)]
        decoded = np.stack(list(f.frames("bbb")))
    assert decoded.shape == source.shape and decoded.dtype == np.uint8
    assert psnr_rgb(source, decoded) == pytest.approx(report.psnr, abs=1e-6)
    # 30 epochs of the tiny net measured 18.8 dB; a mean-colour guess is ~12 dB
    assert report.psnr > 17


@pytest.mark.parametrize("start,stop", [(2, 5), (6, 11), (0, 20), (17, 20), (19, 20), (8, 16)])
def test_frame_ranges_equal_the_full_decode(encoded, start, stop):
    out, _ = encoded
    with dnerv_codec.open(out, device="cpu", batch=2) as f:
        full = np.stack(list(f.frames(0)))
        part = np.stack(list(f.frames(0, start, stop)))
    np.testing.assert_array_equal(part, full[start:stop])


def test_older_sections_decode_the_same_and_two_of_a_kind_are_refused(encoded, tmp_path):
    """Format 1.4 files hold packed weights (compact when smaller), compact keyframes and the
    metadata with a preset dictionary. Files laid out as before (deflated or plain metadata,
    plain or compact weights, plain keyframes) decode to the same frames; two weights, metadata
    or keyframes sections are refused."""
    from bitstream.container import ContainerReader, write_container
    from bitstream.errors import FormatError
    from bitstream.keyframes import pack_keyframes, unpack_keyframes_compact
    from bitstream.meta import deflate_meta, encode_meta
    from bitstream.weights import pack_weights, pack_weights_compact
    from dnerv_codec.model import model_from_config
    from dnerv_codec.quant import weight_layout

    out, _ = encoded
    with ContainerReader(out) as reader:
        assert reader.version == (1, 5)
        sections = {e.type_id: reader.read_section(e.type_id) for e in reader.sections}
    assert set(sections) == {5, 7, 8}  # packed weights, compact keyframes, dictionary metadata
    with dnerv_codec.open(out, device="cpu") as f:
        meta = f.meta
        records = f._weight_records(weight_layout(model_from_config(meta["model"]["config"])))
        frames = np.stack(list(f.frames("bbb")))
    plain_meta, compact = encode_meta(meta), pack_weights_compact(records)
    deflated_meta = deflate_meta(meta)
    plain_keyframes = pack_keyframes(unpack_keyframes_compact(sections[7]))
    assert len(sections[8]) < len(deflated_meta) < len(plain_meta)
    assert len(sections[5]) < len(compact) and len(sections[7]) < len(plain_keyframes)
    layouts = {
        "1.0": [(1, plain_meta), (2, plain_keyframes), (3, pack_weights(records))],
        "1.1": [(1, plain_meta), (2, plain_keyframes), (4, compact)],
        "1.3": [(5, sections[5]), (6, deflated_meta), (7, sections[7])],
    }
    for name, layout in layouts.items():
        legacy = tmp_path / f"legacy-{name}.dnerv"
        write_container(legacy, layout)
        with dnerv_codec.open(legacy, device="cpu") as f:
            assert np.array_equal(np.stack(list(f.frames("bbb"))), frames), name
    current = [(t, sections[t]) for t in (5, 7, 8)]
    both = tmp_path / "both.dnerv"
    write_container(both, [(4, compact), *current])
    with pytest.raises(FormatError, match="exactly one"):  # refused when opened
        dnerv_codec.open(both, device="cpu")
    for extra in ((1, plain_meta), (6, deflated_meta)):
        two_meta = tmp_path / f"two-meta-{extra[0]}.dnerv"
        write_container(two_meta, sorted([extra, *current]))
        with pytest.raises(FormatError, match="exactly one metadata"):
            dnerv_codec.open(two_meta, device="cpu")
    two_keyframes = tmp_path / "two-keyframes.dnerv"
    write_container(two_keyframes, [(2, plain_keyframes), *current])
    with pytest.raises(FormatError, match="exactly one keyframes section"):
        dnerv_codec.open(two_keyframes, device="cpu")


@pytest.mark.parametrize(
    "codec, group, clip_length",
    [
        ("hevc-ld", 2, 8),  # 20 frames: keyframes 0, 8, 16, 19 in 2 groups
        ("hevc-ra", 8, 2),  # keyframes 0, 2, .., 18, 19 in groups of 8 and 3, with B pictures
    ],
)
def test_predictive_keyframes_decode_any_range(
    clip, tmp_path, monkeypatch, codec, group, clip_length
):
    """Predictive keyframes: random access decodes the keyframe's group."""
    from dnerv_codec.keyframe.classical import HevcLowDelay

    monkeypatch.setattr(HevcLowDelay, "group", group)  # hevc-ra inherits it
    out = tmp_path / "pred.dnerv"
    opts = {**FAST, "keyframe_codec": codec, "keyframe_quality": 8, "clip_length": clip_length}
    report = dnerv_codec.encode([clip], out, epochs=2, batch_size=1, seed=1, **opts)
    with dnerv_codec.open(out, device="cpu") as f:
        assert f.meta["keyframe"]["name"] == codec
        full = np.stack(list(f.frames("bbb")))
    assert psnr_rgb(read_video(clip).frames, full) == pytest.approx(report.psnr, abs=1e-6)
    for start, stop in [(16, 20), (9, 17), (0, 3)]:
        with dnerv_codec.open(out, device="cpu") as f:  # fresh cache each time
            part = np.stack(list(f.frames("bbb", start, stop)))
        assert np.array_equal(part, full[start:stop])


def test_clip_length_is_stored_and_decoded(clip, tmp_path):
    """A keyframe every 3 frames: 20 frames make 7 clips and 8 keyframes."""
    out = tmp_path / "t3.dnerv"
    report = dnerv_codec.encode([clip], out, epochs=1, clip_length=3, seed=1, **FAST)
    with dnerv_codec.open(out, device="cpu") as f:
        assert f.meta["clip_length"] == 3 and f.model.T == 3
        full = np.stack(list(f.frames("bbb")))
        part = np.stack(list(f.frames("bbb", 5, 11)))
    assert psnr_rgb(read_video(clip).frames, full) == pytest.approx(report.psnr, abs=1e-6)
    assert np.array_equal(part, full[5:11])
    with dnerv_codec.open(out) as f:
        assert f._keyframe_index.count(0) == 8


def test_cli_decode_png_is_deterministic_and_complete(encoded, tmp_path):
    out, _ = encoded
    for run in ("a", "b"):
        assert main(["decode", str(out), str(tmp_path / run), "--quiet", "--device", "cpu"]) == 0
    files = sorted((tmp_path / "a" / "bbb").iterdir())
    assert [p.name for p in files][:2] == ["000001.png", "000002.png"] and len(files) == 20
    for p in files:
        assert p.read_bytes() == (tmp_path / "b" / "bbb" / p.name).read_bytes()
    assert Image.open(files[0]).size == (96, 64)


def test_cli_decode_range_and_refuses_non_empty_outdir(encoded, tmp_path, capsys):
    out, _ = encoded
    dest = tmp_path / "range"
    assert main(["decode", str(out), str(dest), "--frames", "5:9", "-q", "--device", "cpu"]) == 0
    assert sorted(p.name for p in (dest / "bbb").iterdir()) == [
        f"{i:06d}.png" for i in (6, 7, 8, 9)
    ]
    capsys.readouterr()
    assert main(["decode", str(out), str(dest), "-q"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--force" in err


@pytest.mark.parametrize("fmt", ["y4m", "mp4"])
def test_y4m_and_mp4_outputs_are_readable(encoded, tmp_path, fmt):
    out, _ = encoded
    assert main(["decode", str(out), str(tmp_path), "--format", fmt, "-q", "--device", "cpu"]) == 0
    video = read_video(tmp_path / f"bbb.{fmt}")
    assert video.frames.shape == (20, 64, 96, 3)
    assert video.fps == 25
    with dnerv_codec.open(out, device="cpu") as f:
        ref = np.stack(list(f.frames(0)))
    assert psnr_rgb(ref, video.frames) > 45  # lossless 4:4:4 (y4m, mp4 -qp 0), up to colour maths


def test_same_seed_same_bytes(clip, tmp_path):
    a, b = tmp_path / "a.dnerv", tmp_path / "b.dnerv"
    for out in (a, b):
        dnerv_codec.encode([clip], out, epochs=2, seed=7, verify=False, max_frames=9, **FAST)
    assert a.read_bytes() == b.read_bytes()


def test_odd_sizes_two_videos_and_a_png_folder(sample_clip, tmp_path):
    small = _scaled(sample_clip, tmp_path / "a.mkv", "176x144", 9)
    odd = _scaled(sample_clip, tmp_path / "b.mkv", "200x120", 13)
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in enumerate(read_video(sample_clip, max_frames=3).frames[:, :61, :83]):
        Image.fromarray(frame).save(folder / f"f{i:03d}.png")
    out = tmp_path / "set.dnerv"
    report = dnerv_codec.encode([small, odd, folder], out, epochs=1, **FAST)
    assert [(v["name"], v["frames"], v["width"], v["height"]) for v in report.videos] == [
        ("a", 9, 176, 144),
        ("b", 13, 200, 120),
        ("frames", 3, 83, 61),
    ]
    with dnerv_codec.open(out, device="cpu") as f:
        for v, (h, w, n) in enumerate([(144, 176, 9), (120, 200, 13), (61, 83, 3)]):
            assert np.stack(list(f.frames(v))).shape == (n, h, w, 3)
    assert report.psnr is not None


def test_one_frame_video(sample_clip, tmp_path):
    one = _scaled(sample_clip, tmp_path / "one.mkv", "64x48", 1)
    report = dnerv_codec.encode([one], tmp_path / "one.dnerv", epochs=1, **FAST)
    assert report.videos[0]["frames"] == 1 and report.psnr > 0


def test_kill_then_resume(clip, tmp_path):
    EPOCHS = "60"  # several seconds of training: time to kill it in the middle
    out, ckpt = tmp_path / "k.dnerv", tmp_path / "ckpt"
    cmd = [sys.executable, "-m", "dnerv_codec", "encode", str(clip), str(out), "--preset", "tiny",
           "--keyframe-codec", "png", "--keyframe-quality", "1", "--epochs", EPOCHS,
           "--batch-size", "1", "--checkpoint-dir", str(ckpt), "--checkpoint-every", "1",
           "-q"]  # fmt: skip
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (ckpt / "trainer.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "--resume" in err
    assert not out.exists()  # nothing half-written
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".k.dnerv")]
    import torch

    epoch = torch.load(ckpt / "trainer.pt", weights_only=True)["epoch"]
    assert 0 < epoch < int(EPOCHS)
    resumed = cmd[:]
    resumed[resumed.index(EPOCHS)] = str(epoch + 2)  # a different schedule is another run...
    status = subprocess.run(resumed + ["--resume"], capture_output=True, text=True)
    assert status.returncode == 1 and "another run" in status.stderr
    status = subprocess.run(cmd + ["--resume", "--no-verify"], capture_output=True, text=True)
    assert status.returncode == 0, status.stderr
    with dnerv_codec.open(out, device="cpu") as f:
        assert len(list(f.frames(0))) == 20


def test_bad_inputs_are_one_line_errors(clip, tmp_path, capsys):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"this is not a video")
    existing = tmp_path / "exists.dnerv"
    existing.write_bytes(b"keep me")
    cases = [
        [str(bad), str(tmp_path / "o.dnerv")],
        [str(tmp_path / "missing.mp4"), str(tmp_path / "o.dnerv")],
        [str(clip), str(existing)],
        [str(clip), str(tmp_path / "no" / "such" / "dir" / "o.dnerv")],
        [str(clip), str(tmp_path / "o.dnerv"), "--prune", "1.5"],
        [str(clip), str(tmp_path / "o.dnerv"), "--epochs", "0"],
        [str(clip), str(tmp_path / "o.dnerv"), "--preset", "no-such-preset"],
        [str(clip), str(tmp_path / "o.dnerv"), "--keyframe-codec", "nope"],
        [str(clip), str(tmp_path / "o.dnerv"), "--max-frames", "0"],
        [str(clip), str(tmp_path / "o.dnerv"), "--clip-length", "1"],
        [str(clip), str(tmp_path / "o.dnerv"), "--weight-rate", "-1"],
        [str(tmp_path / "o.dnerv")],
    ]
    for args in cases:
        status = main(["encode", *args, "-q"])
        err = capsys.readouterr().err
        assert status != 0, args
        assert err.count("\n") == 1 and err.startswith("dnerv: error:"), (args, err)
    assert existing.read_bytes() == b"keep me"
    assert not (tmp_path / "o.dnerv").exists()
    damaged = tmp_path / "damaged.dnerv"
    damaged.write_bytes(b"DNERV" + bytes(100))
    assert main(["decode", str(damaged), str(tmp_path / "d"), "-q"]) == 1
    assert capsys.readouterr().err.count("\n") == 1


def test_time_budget_shortens_the_schedule_and_stops_in_time(clip, tmp_path):
    report = dnerv_codec.encode(
        [clip], tmp_path / "b.dnerv", epochs=100_000, time_budget=8, batch_size=1, verify=False,
        **FAST,
    )  # fmt: skip
    assert 2 <= report.epochs < 100_000  # the schedule was fitted to the budget, then ran out
    # the budget is checked before every step and the schedule ends on the last whole step
    # that fits it (a step takes well under a second here)
    assert 0.9 * 8 <= report.train_seconds < 8 + 2
    assert (tmp_path / "b.dnerv").stat().st_size == report.bytes


def test_one_slow_epoch_does_not_shrink_the_schedule():
    from dnerv_codec.encoder.fitting import _schedule_fit_due, _typical_seconds

    # start-up, then one epoch slowed 3x by another process, then the usual 2 s
    seconds = [9.0, 6.0, 2.0, 2.1]
    assert _typical_seconds(seconds) == 2.1  # the median of the epochs after the first
    assert not _schedule_fit_due(seconds[:2], remaining=500.0)  # one sample: wait for three
    assert _schedule_fit_due(seconds, remaining=500.0)
    # epochs so long that fewer than ten still fit: fit from the second epoch on
    assert _schedule_fit_due([90.0, 60.0], remaining=500.0)
    assert not _schedule_fit_due([9.0], remaining=1.0)  # the first epoch alone says nothing


def test_schedule_fits_the_time_left():
    from types import SimpleNamespace

    from dnerv_codec.encoder.fitting import _fit_schedule_to_budget

    bar = SimpleNamespace(total=None, refresh=lambda: None)
    trainer = SimpleNamespace(step=3, steps_per_epoch=10, epochs=10, max_steps=None)
    _fit_schedule_to_budget(trainer, remaining=8.0, step_seconds=1.0, bar=bar)
    assert trainer.max_steps == 3 + 8 and bar.total == 11  # 1 s per step, 8 s left
    trainer.step = 9  # steps ran faster than assumed: the schedule grows back
    _fit_schedule_to_budget(trainer, remaining=8.0, step_seconds=1.0, bar=bar)
    assert trainer.max_steps == 17 and bar.total == 17
    trainer = SimpleNamespace(step=3, steps_per_epoch=5, epochs=1, max_steps=None)
    _fit_schedule_to_budget(trainer, remaining=8.0, step_seconds=1.0, bar=bar)
    assert trainer.max_steps is None  # the epochs asked for fit: unchanged
    fresh = SimpleNamespace(total=None, refresh=lambda: None)  # a budgeted bar opens without one
    _fit_schedule_to_budget(trainer, remaining=8.0, step_seconds=1.0, bar=fresh)
    assert trainer.max_steps is None and fresh.total == 5  # it gets the epochs' steps
    trainer = SimpleNamespace(step=3, steps_per_epoch=10, epochs=5, max_steps=None)
    _fit_schedule_to_budget(trainer, remaining=-2.0, step_seconds=1.0, bar=bar)
    assert trainer.max_steps == 3  # over budget: stop now
