"""Loss, learning-rate schedule and trainer: official arithmetic, determinism, resume, overfit."""

from __future__ import annotations

import math
import time
import warnings

import pytest
import torch
import torch.nn.functional as F
from pytorch_msssim import ssim

from dnerv_codec.clips import keyframe_frames
from dnerv_codec.errors import InputError
from dnerv_codec.model import build_model
from dnerv_codec.train import Trainer, dnerv_loss, lr_at, weight_rate_bits


def test_lr_schedule_warmup_then_cosine():
    total, lr = 100, 5e-4
    assert lr_at(0, total, lr) == pytest.approx(0.1 * lr)
    assert lr_at(10, total, lr) == pytest.approx(0.55 * lr)  # halfway through warm-up
    assert lr_at(20, total, lr) == pytest.approx(lr)
    assert lr_at(60, total, lr) == pytest.approx(0.5 * lr)  # halfway through the cosine
    assert lr_at(100, total, lr) == pytest.approx(0.0, abs=1e-12)
    steps = [lr_at(s, total, lr) for s in range(total)]
    assert steps[:20] == sorted(steps[:20]) and steps[20:] == sorted(steps[20:], reverse=True)


def test_loss_is_official_formula_and_ignores_padded_frames():
    g = torch.Generator().manual_seed(0)
    pred, target = (
        torch.rand(2, 8, 3, 24, 24, generator=g),
        torch.rand(2, 8, 3, 24, 24, generator=g),
    )
    mask = torch.ones(2, 8, dtype=torch.bool)
    mask[1, 5:] = False
    p, y = pred[mask], target[mask]
    s = ssim(p, y, data_range=1, size_average=True)
    uvg = 0.7 * (p - y).abs().mean() + 0.3 * (1 - s)
    ucf = F.mse_loss(p, y) + 0.03 * (1 - s)
    torch.testing.assert_close(dnerv_loss(pred, target, mask, "uvg"), uvg)
    torch.testing.assert_close(dnerv_loss(pred, target, mask, "ucf"), ucf)
    changed = pred.clone()
    changed[1, 6] = 0  # a padded frame: must not matter
    torch.testing.assert_close(dnerv_loss(changed, target, mask), uvg)
    assert dnerv_loss(target, target, mask).item() == pytest.approx(0, abs=1e-6)
    with pytest.raises(InputError):
        dnerv_loss(pred, target, mask, "l2")


@pytest.mark.parametrize("size", [(24, 30), (8, 40), (144, 176)])
def test_ssim_value_and_gradient_match_pytorch_msssim(size):
    from dnerv_codec.losses import ssim as our_ssim

    g = torch.Generator().manual_seed(1)
    x = torch.rand(3, 3, *size, generator=g, requires_grad=True)
    y = (x.detach() + 0.1 * torch.randn(3, 3, *size, generator=g)).clamp(0, 1)
    with warnings.catch_warnings():  # pytorch_msssim warns when a side is under the window
        warnings.simplefilter("ignore")
        expected = ssim(x, y, data_range=1, size_average=True)
    got = our_ssim(x, y)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    (g_exp,) = torch.autograd.grad(expected, x)
    (g_got,) = torch.autograd.grad(got, x)
    torch.testing.assert_close(g_got, g_exp, rtol=1e-4, atol=1e-4 * float(g_exp.abs().max()))


def _data(num_frames=11, size=(32, 48), seed=0):
    g = torch.Generator().manual_seed(seed)
    frames = torch.randint(0, 256, (num_frames, *size, 3), generator=g, dtype=torch.uint8)
    keys = frames[keyframe_frames(num_frames)].permute(0, 3, 1, 2)  # (K, 3, H, W) "decoded"
    return frames, keys


def _trainer(seed=0, epochs=2, batch_size=2):
    torch.manual_seed(seed)
    model = build_model("tiny")
    frames, keys = _data()
    f2, k2 = _data(9, seed=1)
    return Trainer(model, [frames, f2], [keys, k2], batch_size=batch_size, epochs=epochs, seed=seed)


def test_trainer_keeps_the_last_partial_batch():
    tr = _trainer(batch_size=2)
    assert len(tr.clips) == 4  # 11 frames -> 2 clips, 9 frames -> 2 clips
    tr3 = _trainer(batch_size=3)
    assert tr3.steps_per_epoch == 2  # 3 + 1: the official loader would run 1 step
    stats = tr3.run_epoch()
    assert tr3.step == 2 and tr3.epoch == 1 and math.isfinite(stats["loss"])


def test_trainer_is_deterministic_and_resumes_exactly():
    a, b = _trainer(), _trainer()
    for tr in (a, b):
        tr.fit()
    for (n, x), y in zip(a.model.state_dict().items(), b.model.state_dict().values(), strict=True):
        assert torch.equal(x, y), n
    c = _trainer()
    c.run_epoch()
    state = c.state_dict()
    d = _trainer(seed=0)
    d.load_state_dict(state)
    d.run_epoch()
    assert d.epoch == 2 and d.step == a.step
    for (n, x), y in zip(a.model.state_dict().items(), d.model.state_dict().values(), strict=True):
        assert torch.equal(x, y), n
    with pytest.raises(InputError, match="finished"):
        a.run_epoch()


def test_trainer_rejects_mismatched_inputs():
    model = build_model("tiny")
    frames, keys = _data()
    with pytest.raises(InputError, match="keyframes"):
        Trainer(model, [frames], [keys[:2]])
    with pytest.raises(InputError, match="padded"):
        Trainer(model, [frames[:, :16]], [keys])


def test_weight_rate_bits_counts_relative_magnitudes():
    layer = torch.nn.Linear(4, 3)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[32.0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]))
    bits = weight_rate_bits(layer)  # the bias is not counted; max 32 -> step 1
    assert bits.item() == pytest.approx(math.log2(33))
    bits.backward()
    assert layer.weight.grad[0, 0] > 0 and layer.bias.grad is None


def test_weight_rate_term_makes_weights_cheaper():
    """Same seed and data: the rate term lowers the estimated bits of the trained weights."""
    bits = {}
    for rate in (0.0, 1.0):
        torch.manual_seed(0)
        model = build_model("tiny")
        frames, keys = _data()
        Trainer(model, [frames], [keys], batch_size=1, epochs=3, lr=2e-3, weight_rate=rate).fit()
        bits[rate] = weight_rate_bits(model).item()
    assert bits[1.0] < 0.97 * bits[0.0], bits
    with pytest.raises(InputError):
        Trainer(build_model("tiny"), [frames], [keys], weight_rate=-1)


def test_amp_runs_the_network_in_bf16_and_still_learns():
    """``amp=True``: the convolutions run under bf16 autocast (seen by a hook), the loss and the
    weights stay float32, and training lowers the loss as fp32 training does. Off by default."""
    assert _trainer().amp is False
    seen = []
    losses = {}
    for amp in (False, True):
        tr = _trainer(epochs=6)
        tr.amp = amp
        conv = next(m for m in tr.model.modules() if isinstance(m, torch.nn.Conv2d))
        hook = conv.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
        first = tr.run_epoch()["loss"]
        while tr.epoch < tr.epochs:
            last = tr.run_epoch()["loss"]
        hook.remove()
        losses[amp] = (first, last)
        assert all(p.dtype == torch.float32 for p in tr.model.parameters())
    assert seen[0] == torch.float32 and seen[-1] == torch.bfloat16
    for first, last in losses.values():
        assert math.isfinite(last) and last < first, losses
    assert losses[True][1] == pytest.approx(losses[False][1], rel=0.1), losses


def test_on_step_hook_sees_every_step():
    seen = []
    tr = _trainer(epochs=1)
    tr.on_step = seen.append
    tr.run_epoch()
    assert [s["step"] for s in seen] == [1, 2] and all(s["lr"] > 0 for s in seen)


# Measured (benchmarks/RESULTS.md, "Network speed"): `small` at 96x160, 16 real frames, lossless
# keyframes, lr 2e-3, 60 epochs of 2 clips (batch 1, 120 steps): 28.9 dB (mean training PSNR of the
# last epoch) in 100 s on 1 thread of a loaded 2-core machine. The bound leaves ~3 dB of margin.
# With the official RGB head (rgb_skip off): the network starts from noise, so what it reaches is
# learnt (with rgb_skip the untrained network already outputs the keyframes' blend).
OVERFIT_EPOCHS = 60
OVERFIT_MIN_PSNR = 26.0


@pytest.mark.slow
def test_overfits_real_clip(sample_clip):
    from dnerv_codec.video import read_video

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # robust on shared cores (OpenMP spin-waits stall 2 threads there)
    frames = torch.from_numpy(read_video(sample_clip, max_frames=16).frames)  # (16, 180, 320, 3)
    x = F.interpolate(frames.permute(0, 3, 1, 2).float(), size=(90, 160), mode="area")
    x = F.pad(x, (0, 0, 3, 3), mode="replicate").round().clamp(0, 255).to(torch.uint8)  # 96x160
    keys = x[keyframe_frames(16)]
    torch.manual_seed(0)
    model = build_model("small", (96, 160), rgb_skip=False)
    tr = Trainer(model, [x], [keys], batch_size=1, epochs=OVERFIT_EPOCHS, lr=2e-3, seed=0)
    t0 = time.perf_counter()
    try:
        history = tr.fit()
    finally:
        torch.set_num_threads(threads)
    print(f"overfit: {history[-1]} in {time.perf_counter() - t0:.0f} s")
    assert history[-1]["psnr"] > OVERFIT_MIN_PSNR
    assert history[-1]["psnr"] > history[0]["psnr"] + 10
