"""Rate control: budgets, the plan before training, landing after it, and the real clip."""

from __future__ import annotations

import pytest
import torch

import dnerv_codec
from dnerv_codec import quant, ratecontrol
from dnerv_codec.cli import main
from dnerv_codec.errors import InputError
from dnerv_codec.model import build_model
from dnerv_codec.model.presets import compact_options, count_parameters
from dnerv_codec.video import read_video

CLIP_PIXELS = 320 * 180 * 64

RC = ratecontrol.DEFAULT


def test_quality_scale_is_monotone_and_documented_ends():
    assert ratecontrol.quality_to_bpp(1) == pytest.approx(0.02)
    assert ratecontrol.quality_to_bpp(10) == pytest.approx(0.8)
    values = [ratecontrol.quality_to_bpp(q) for q in range(1, 11)]
    assert values == sorted(values)
    with pytest.raises(InputError, match="--quality"):
        ratecontrol.quality_to_bpp(11)


def test_target_bytes_from_each_knob():
    assert ratecontrol.target_bytes(CLIP_PIXELS, target_bpp=0.1) == int(0.1 * CLIP_PIXELS / 8)
    assert ratecontrol.target_bytes(CLIP_PIXELS, target_size=12345) == 12345
    q = ratecontrol.target_bytes(CLIP_PIXELS, quality=1)
    assert q == int(0.02 * CLIP_PIXELS / 8)
    with pytest.raises(InputError, match="exactly one"):
        ratecontrol.target_bytes(CLIP_PIXELS, target_bpp=0.1, target_size=100)


def test_compact_family_stem_does_not_dominate():
    for width in (8, 16, 32):
        model = build_model("compact", (192, 320), **compact_options(width))
        stem = sum(p.numel() for p in model.stem.parameters())
        assert stem < 0.5 * model.num_parameters()
    sizes = [count_parameters("compact", (192, 320), **compact_options(w)) for w in (4, 8, 16)]
    assert sizes == sorted(sizes)


def _file_size_of(fixed: int):
    return lambda weights, bits, prune: fixed + len(weights[1])  # (section type, payload)


@pytest.mark.parametrize("slack", [0.3, 0.6, 0.9])
def test_land_hits_the_window_from_below(slack):
    torch.manual_seed(0)
    model = build_model("compact", (192, 320), **compact_options(8))
    full = len(ratecontrol.quantised_weights(model, 8, 0.0, RC.min_per_channel)[1])
    low = len(ratecontrol.quantised_weights(model, 2, 0.0, RC.min_per_channel)[1])
    target = int(1000 + low + slack * (full - low))
    landing = ratecontrol.land(model, target, _file_size_of(1000))
    assert (1 - RC.tolerance) * target <= landing.size <= target
    assert landing.size == 1000 + len(landing.weights[1])


def test_land_fails_clearly_when_nothing_fits():
    model = build_model("compact", (192, 320), **compact_options(4))
    with pytest.raises(InputError, match="cannot fit the weights"):
        ratecontrol.land(model, 500, _file_size_of(400))


@pytest.fixture(scope="module")
def real_videos(sample_clip):
    return [read_video(sample_clip)]


def test_plan_scales_with_the_budget(real_videos):
    small = ratecontrol.plan(real_videos, int(0.05 * CLIP_PIXELS / 8), "hevc-intra")
    large = ratecontrol.plan(real_videos, int(0.4 * CLIP_PIXELS / 8), "hevc-intra")
    assert small.width < large.width
    assert small.keyframe_quality <= large.keyframe_quality
    for p in (small, large):
        assert p.keyframe_bytes + p.fixed_bytes < p.target


def test_impossible_target_fails_before_training(sample_clip, tmp_path, capsys):
    out = tmp_path / "x.dnerv"
    code = main(["encode", str(sample_clip), str(out), "--target-bpp", "0.005", "-q"])
    err = capsys.readouterr().err
    assert code != 0 and not out.exists()
    assert len(err.strip().splitlines()) == 1
    assert "too small" in err and "keyframes" in err and "Traceback" not in err


def test_knobs_are_mutually_exclusive(sample_clip, tmp_path, capsys):
    args = ["encode", str(sample_clip), str(tmp_path / "x.dnerv"), "--target-bpp", "0.1"]
    code = main([*args, "--target-size", "1000", "-q"])
    err = capsys.readouterr().err
    assert code != 0 and "mutually exclusive" in err and "Traceback" not in err


# The real sample clip, cut to 32 frames (4 clips, 5 keyframes) and trained briefly: the landing
# logic does not depend on how well the network is trained.
# mode "network": these tests check rate control's network file (a few epochs would lose to
# the keyframe-only file, which --mode auto would keep: tests/test_keyframe_only.py)
RATE_RUN = {
    "max_frames": 32,
    "epochs": 3,
    "lr": 2e-3,
    "quiet": True,
    "seed": 0,
    "mode": "network",
}


@pytest.fixture(scope="module")
def rate_runs(tmp_path_factory, sample_clip):
    folder = tmp_path_factory.mktemp("rate")
    return {
        bpp: dnerv_codec.encode(sample_clip, folder / f"{bpp}.dnerv", target_bpp=bpp, **RATE_RUN)
        for bpp in (0.05, 0.1, 0.2)
    }


@pytest.mark.slow
@pytest.mark.parametrize("bpp", [0.05, 0.1, 0.2])
def test_targets_on_the_real_clip_land_within_5_percent(rate_runs, bpp):
    report = rate_runs[bpp]
    target = int(bpp * 320 * 180 * 32 / 8)
    assert report.rate["target_bytes"] == target
    assert (1 - RC.tolerance) * target <= report.bytes <= target
    assert report.bpp == pytest.approx(report.bytes * 8 / (320 * 180 * 32))


def test_rate_control_defaults_to_predictive_keyframes_and_short_clips(rate_runs):
    for bpp, report in rate_runs.items():
        with dnerv_codec.open(report.output) as f:
            assert f.meta["keyframe"]["name"] == RC.keyframe_codec == "hevc-ra"
            assert f.meta["clip_length"] == report.rate["clip_length"]
            # cascaded flows for 2-frame clips only (measured): model config version 2
            config = f.meta["model"]["config"]
            cascade = report.rate["clip_length"] == 2
            assert config["flow_cascade"] is cascade and RC.flow_cascade
            assert config["version"] == (2 if cascade else 1) and f.model.config == config
        assert report.rate["clip_length"] == RC.clip_length_for(bpp)
    assert [RC.clip_length_for(b) for b in (0.01, 0.089, 0.09, 1.0)] == [4, 4, 2, 2]


@pytest.mark.slow
def test_higher_target_gives_higher_psnr(rate_runs):
    psnrs = [rate_runs[bpp].psnr for bpp in (0.05, 0.1, 0.2)]
    assert psnrs == sorted(psnrs), psnrs


def test_fake_quant_matches_the_stored_quantisation():
    torch.manual_seed(0)
    model = build_model("compact", (64, 96), **compact_options(8))
    state = model.state_dict()
    stored = quant.records_to_state(
        quant.quantize_state(state, 5, min_per_channel=RC.min_per_channel)
    )
    for name, tensor in state.items():
        assert torch.allclose(
            quant.fake_quantize(tensor, 5, RC.min_per_channel), stored[name], atol=1e-6
        ), name


def _qat_setup():
    """A compact model, a random 9-frame clip, its trainer and the encoder's options."""
    from dnerv_codec.encoder import EncodeOptions
    from dnerv_codec.train import Trainer

    torch.manual_seed(0)
    model = build_model("compact", (64, 96), **compact_options(4))
    frames = [torch.randint(0, 256, (9, 64, 96, 3), dtype=torch.uint8)]
    keys = [frames[0][[0, 8]]]
    opts = EncodeOptions(target_bpp=0.1, lr=5e-3, quiet=True)
    opts.validate()
    return model, Trainer(model, frames, keys, epochs=1, lr=1e-3), opts


def test_quantisation_aware_finetune_keeps_the_mask_and_trains():
    from dnerv_codec.encoder.fitting import quantisation_aware_finetune

    model, trainer, opts = _qat_setup()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    quantisation_aware_finetune(trainer, opts, 4, 0.5, 1, None)
    masks = quant.magnitude_masks(model, 0.5)
    pruned = sum(int((p == 0).sum()) for p in quant.prunable(model).values())
    total = sum(p.numel() for p in quant.prunable(model).values())
    assert pruned >= 0.5 * total - 1
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert masks


def test_rd_adapter_takes_target_bpps_and_presets():
    from dnerv_codec.rd import get_codec

    adapter = get_codec("dnerv")
    assert adapter.parse_quality("0.1") == 0.1
    assert adapter.parse_quality("small") == "small"
    assert all(isinstance(q, float) for q in adapter.default_qualities)
    adapter.check(0.1, epochs=2)
    adapter.check("small")
    with pytest.raises(InputError, match="positive"):
        adapter.check(-0.1)
    with pytest.raises(InputError, match="neither"):
        adapter.check("nonsense")


def test_rate_control_is_the_default_and_a_preset_turns_it_off():
    from dnerv_codec.encoder import DEFAULT_RATE_QUALITY, EncodeOptions

    default = EncodeOptions()
    default.validate()
    assert default.rate_controlled and default.quality == DEFAULT_RATE_QUALITY
    assert (default.lr, default.batch_size) == (2e-3, 1)  # the compact family's training
    fixed = EncodeOptions(preset="official-small")
    fixed.validate()
    assert not fixed.rate_controlled
    assert (fixed.prune, fixed.quant_bits, fixed.lr, fixed.batch_size) == (0.0, 8, 5e-4, 2)


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--preset", "small", "--target-bpp", "0.1"], "give one of them"),
        (["--quality", "5", "--prune", "0.2"], "--prune is chosen by rate control"),
        (["--quant-bits", "6"], "--quant-bits is chosen by rate control"),
    ],
)
def test_rate_control_and_fixed_network_options_conflict(
    sample_clip, tmp_path, capsys, extra, words
):
    out = tmp_path / "x.dnerv"
    code = main(["encode", str(sample_clip), str(out), *extra, "-q"])
    err = capsys.readouterr().err
    assert code != 0 and not out.exists()
    assert len(err.strip().splitlines()) == 1 and words in err and "Traceback" not in err


def test_default_rate_rises_to_what_a_one_frame_video_needs(sample_clip, tmp_path):
    """0.155 bpp of one 96x64 frame is 119 bytes, below any file: the default rate rises to
    the smallest feasible size (and says so); an explicit target is refused instead."""
    from PIL import Image

    frame = read_video(sample_clip, max_frames=1).frames[0]
    folder = tmp_path / "one"
    folder.mkdir()
    Image.fromarray(frame).resize((96, 64)).save(folder / "0000.png")
    report = dnerv_codec.encode(
        [folder], tmp_path / "one.dnerv", epochs=2, quiet=True, mode="network"
    )
    assert report.rate["target_bytes"] > 0.155 * 96 * 64 / 8
    assert report.bytes <= report.rate["target_bytes"] and report.psnr > 15
    with pytest.raises(InputError, match="too small"):
        dnerv_codec.encode([folder], tmp_path / "two.dnerv", target_bpp=0.155, quiet=True)


def test_quantisation_aware_finetune_starts_no_epoch_after_the_deadline():
    import time

    from dnerv_codec.encoder.fitting import quantisation_aware_finetune

    _, trainer, opts = _qat_setup()
    tuner = quantisation_aware_finetune(trainer, opts, 4, 0.5, 5, deadline=time.monotonic())
    assert tuner.epoch == 0
    tuner = quantisation_aware_finetune(trainer, opts, 4, 0.5, 2, deadline=time.monotonic() + 3600)
    assert tuner.epoch == 2


def test_quantisation_aware_finetuning_is_the_default(sample_clip, tmp_path):
    share = RC.qat_share
    assert [RC.qat_share_for(t) for t in (2, 4, 8)] == [share, share, share]
    run = {**RATE_RUN, "epochs": 10}  # a tenth of 10 epochs: one epoch of QAT
    report = dnerv_codec.encode(sample_clip, tmp_path / "q.dnerv", target_bpp=0.05, **run)
    qat = report.rate["qat"]
    assert qat["epochs"] == 1
    # the file written is the better of the landings before and after fine-tuning
    assert report.rate["size"] == report.bytes == (tmp_path / "q.dnerv").stat().st_size
    assert qat["kept"] == (qat["psnr_after"] >= qat["psnr_before"])
    off = dnerv_codec.encode(
        sample_clip, tmp_path / "n.dnerv", target_bpp=0.05, qat_epochs=0, **run
    )
    assert "qat" not in off.rate


def test_time_budget_keeps_room_for_quantisation_aware_finetuning():
    from dnerv_codec.encoder import EncodeOptions
    from dnerv_codec.encoder.fitting import _training_budget

    cost = RC.qat_epoch_cost
    opts = EncodeOptions(time_budget=600.0, target_bpp=0.03)
    assert _training_budget(opts, 2.0, 0.0) == 600.0
    # a share of the epochs trained: training T and fine-tuning 0.1 T x cost fill the budget
    train = _training_budget(opts, 2.0, 0.1)
    assert train + 0.1 * train * cost == pytest.approx(600.0)
    # a fixed count: its epochs at the measured cost per training epoch
    opts = EncodeOptions(time_budget=600.0, target_bpp=0.03, qat_epochs=30)
    assert _training_budget(opts, 2.0, 0.1) == pytest.approx(600.0 - 30 * cost * 2.0)
    assert _training_budget(EncodeOptions(target_bpp=0.03), 2.0, 0.1) is None


def test_qat_epochs_need_rate_control():
    from dnerv_codec.encoder import EncodeOptions

    with pytest.raises(InputError, match="--qat-epochs"):
        EncodeOptions(preset="tiny", qat_epochs=5).validate()
    EncodeOptions(preset="tiny", qat_epochs=0).validate()
    with pytest.raises(InputError, match="--qat-epochs"):
        EncodeOptions(target_bpp=0.1, qat_epochs=-1).validate()
