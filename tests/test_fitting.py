"""Training under a time budget: the schedule in steps, the budget checked before every step."""

from __future__ import annotations

import torch

from dnerv_codec.model import build_model


def test_time_budget_ends_the_schedule_inside_a_long_epoch():
    """An epoch longer than the budget (large videos): the schedule is fitted in steps and the
    run stops inside the first epoch, with the learning rate decayed."""
    from dnerv_codec.encoder import EncodeOptions
    from dnerv_codec.encoder.fitting import train
    from dnerv_codec.progress import Progress
    from dnerv_codec.train import Trainer, lr_at

    torch.manual_seed(0)
    model = build_model("tiny")
    frames = [torch.randint(0, 256, (16001, 32, 48, 3), dtype=torch.uint8)]
    keys = [frames[0][::8].permute(0, 3, 1, 2)]
    trainer = Trainer(model, frames, keys, batch_size=1, epochs=3, lr=1e-3)
    budget = 5.0
    opts = EncodeOptions(preset="tiny", time_budget=budget)
    opts.validate()
    seconds = train(trainer, opts, None, Progress(quiet=True))
    assert trainer.epoch == 1 and trainer.step < trainer.steps_per_epoch
    # the schedule was fitted in steps and ends with the budget (within a step or two: the
    # schedule ends on the last whole step that fits, the budget is checked before each step)
    assert trainer.max_steps is not None and trainer.step >= trainer.max_steps - 1
    assert 0.85 * budget <= seconds < budget + 1.5
    assert lr_at(trainer.step, trainer.total_steps, 1e-3) < 0.1 * 1e-3


def test_chunked_keyframe_compression_equals_one_call(sample_clip):
    """Long videos compress their keyframes a few whole groups at a time: the pictures are
    those of one call on all of them (groups are coded independently; x265 may set a header bit
    by position, so the strings themselves can differ), and the strings decode to them."""
    import numpy as np

    from dnerv_codec.keyframe import get_codec
    from dnerv_codec.video import read_video

    frames = read_video(sample_clip).frames
    indices = list(range(64)) + list(range(0, 12, 2))  # 70 pictures: three chunks of groups
    for name in ("hevc-intra", "hevc-ra"):
        codec = get_codec(name, 5)
        whole, recon = codec.compress_with_reconstruction(frames[indices])
        into = np.zeros_like(recon)
        chunked = codec.compress_in_chunks(frames, indices, into=into)
        assert len(chunked) == len(whole) == 70, name
        np.testing.assert_array_equal(into, recon)
        np.testing.assert_array_equal(codec.decompress(chunked, frames.shape[1:3]), recon)


def test_the_transient_frame_cache_leaves_nothing_behind(sample_clip, tmp_path):
    import dnerv_codec

    out = tmp_path / "o.dnerv"
    fast = {"preset": "tiny", "keyframe_codec": "png", "keyframe_quality": 1, "quiet": True}
    report = dnerv_codec.encode(sample_clip, out, epochs=1, max_frames=9, **fast)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.dnerv"]
    assert report.frame_psnr["min"] <= report.psnr
    assert report.frame_psnr["mean_minus_min"] == round(report.psnr - report.frame_psnr["min"], 3)
    assert 0 <= report.frame_psnr["frame"] < 9 and report.frame_psnr["video"] == "bbb_320x180_64f"


def test_speed_sets_the_training_budget_from_the_size():
    import pytest

    from dnerv_codec.encoder import EncodeOptions
    from dnerv_codec.encoder.options import speed_budget
    from dnerv_codec.errors import InputError

    pixels_720p_132 = 132 * 1280 * 720  # 121.6 megapixels
    assert speed_budget("medium", pixels_720p_132) == pytest.approx(4 * 121.6512)
    assert speed_budget("fast", pixels_720p_132) < speed_budget("slow", pixels_720p_132)
    assert speed_budget("medium", 64 * 320 * 180) == 120.0  # small clips get the least
    assert speed_budget("none", pixels_720p_132) is None
    with pytest.raises(InputError, match="--speed"):
        EncodeOptions(speed="ludicrous").validate()


def test_evaluation_of_a_large_set_is_bounded():
    """Rate control compares candidates on at most RateControlConfig.eval_clips clips."""
    from dnerv_codec.train import Trainer

    torch.manual_seed(0)
    model = build_model("tiny")
    frames = [torch.randint(0, 256, (41, 32, 48, 3), dtype=torch.uint8)]
    keys = [frames[0][::8].permute(0, 3, 1, 2)]
    trainer = Trainer(model, frames, keys, batch_size=1, epochs=1)
    calls = []
    hook = model.register_forward_hook(lambda *_: calls.append(1))
    whole = trainer.evaluate()
    assert len(calls) == len(trainer.clips) == 6
    assert trainer.evaluate(max_clips=6) == whole
    calls.clear()
    trainer.evaluate(max_clips=2)
    hook.remove()
    assert len(calls) == 2
