"""The D-NeRV network: exact sizes, fixed arithmetic of its parts, shapes, errors, fast == plain."""

from __future__ import annotations

import contextlib
import json
import math

import pytest
import torch
import torch.nn.functional as F

from dnerv_codec.errors import InputError
from dnerv_codec.model import (
    PRESETS,
    Preset,
    build_model,
    count_parameters,
    interp_weights,
    model_from_config,
    preset_names,
    register,
    required_multiple,
    time_encoding,
    width_rule,
)
from dnerv_codec.model.layers import interpolate_content, warp_fuse

# Official counts (train.py sizes at 256x320, T=8, strides [4,2,2,2,2]); official-small is the
# config measured with the official code (docs/METHOD.md, "The official code on a 2-core CPU").
OFFICIAL_COUNTS = {
    "uvg-xs": 8_017_893,  # 8.02 M
    "uvg-s": 15_955_472,  # 15.96 M
    "uvg-m": 24_197_711,  # 24.20 M
    "uvg-l": 41_660_324,  # 41.66 M
    "uvg-xl": 67_953_362,  # 67.95 M
    "ucf-s": 21_388_894,  # 21.39 M
    "ucf-m": 39_144_463,  # 39.14 M (fc_dim 281, as the official code)
    "ucf-l": 61_302_972,  # 61.30 M
    "official-small": 1_245_829,
}


def _inputs(model, B=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    H, W = model.frame_size
    key = model.normalize(torch.rand(B, 2, 3, H, W, generator=g))
    t = torch.rand(B, model.T, generator=g)
    pos = torch.rand(B, model.T, generator=g)
    return key, t, pos


@pytest.mark.parametrize("name", sorted(OFFICIAL_COUNTS))
def test_parameter_counts_are_exact(name):
    assert count_parameters(name) == OFFICIAL_COUNTS[name]


def test_published_sizes_in_millions():
    published = {"uvg-xs": 8.02, "uvg-s": 15.96, "uvg-m": 24.20, "uvg-l": 41.66, "uvg-xl": 67.95}
    published |= {"ucf-s": 21.39, "ucf-m": 39.14, "ucf-l": 61.30}
    assert {n: round(count_parameters(n) / 1e6, 2) for n in published} == published


def test_width_rule_rounds_half_to_even():
    assert width_rule(107, [4, 2, 2, 2, 2]) == [214, 107, 54, 32, 32]  # 53.5 -> 54
    assert width_rule(109, [4, 2, 2, 2, 2]) == [218, 109, 54, 32, 32]  # 54.5 -> 54, not 55
    assert width_rule(14, [2, 2, 2, 2]) == [28, 32, 32, 32]  # lower bound 32


def test_temporal_interpolation_weights():
    w = interp_weights(8).tolist()
    assert w == [0, 0, 0.125, 0.375, 0.625, 0.875, 1, 1]
    feat = torch.randn(2, 2, 5, 3, 4)  # (B, 2, C, h, w)
    plain = interpolate_content(feat, 8, fast=False)
    fast = interpolate_content(feat, 8, fast=True)
    want = feat[:, :1] + (feat[:, 1:] - feat[:, :1]) * torch.tensor(w).view(1, 8, 1, 1, 1)
    torch.testing.assert_close(plain, want)
    torch.testing.assert_close(fast, want)


@pytest.mark.parametrize("fast", [False, True])
def test_zero_flow_is_identity_and_fusion_is_one_minus_t_t(fast):
    key = torch.randn(2, 2, 6, 5, 7)  # (B, 2, C, h, w)
    t = torch.tensor([[0.0, 0.25, 1.0], [0.5, 0.75, 0.1]])  # (B, T)
    flow = torch.zeros(6, 4, 5, 7)  # (B T, 4, h, w)
    out = warp_fuse(key, flow, t, fast).reshape(2, 3, 6, 5, 7)
    want = (1 - t)[..., None, None, None] * key[:, :1] + t[..., None, None, None] * key[:, 1:]
    torch.testing.assert_close(out, want)
    torch.testing.assert_close(out[0, 0], key[0, 0])  # t = 0: the start keyframe
    torch.testing.assert_close(out[0, 2], key[0, 1])  # t = 1: the end keyframe


@pytest.mark.parametrize("fast", [False, True])
def test_flow_is_in_pixels_x_then_y(fast):
    key = torch.arange(5 * 7.0).view(1, 1, 1, 5, 7).expand(1, 2, 1, 5, 7).contiguous()
    flow = torch.zeros(1, 4, 5, 7)
    flow[:, 0] = 1.0  # start keyframe: one pixel to the right
    flow[:, 3] = -1.0  # end keyframe: one pixel up
    t = torch.tensor([[0.0]])
    start = warp_fuse(key, flow, t, fast)[0, 0]
    torch.testing.assert_close(start[:, :-1], key[0, 0, 0, :, 1:])
    torch.testing.assert_close(start[:, -1], key[0, 0, 0, :, -1])  # border padding
    end = warp_fuse(key, flow, torch.tensor([[1.0]]), fast)[0, 0]
    torch.testing.assert_close(end[1:], key[0, 1, 0, :-1])


def test_time_encoding_is_interleaved_sin_cos():
    pos = torch.tensor([[0.0, 0.3, 1.0]])
    e = time_encoding(pos)
    assert e.shape == (1, 3, 480) and e.dtype == torch.float32
    torch.testing.assert_close(e[..., 0], torch.sin(torch.pi * pos))
    torch.testing.assert_close(e[..., 1], torch.cos(torch.pi * pos))
    torch.testing.assert_close(e[..., 2], torch.sin(1.25 * torch.pi * pos))


@pytest.mark.parametrize(
    ("preset", "size"),
    [
        ("tiny", (144, 176)),
        ("tiny", (192, 320)),
        ("official-small", (48, 64)),
        ("demo", (192, 320)),
    ],
)
def test_output_shape_and_range(preset, size):
    torch.manual_seed(0)
    model = build_model(preset, size)
    key, t, pos = _inputs(model, B=1)
    with torch.no_grad():
        out = model(key * 40, t, pos)  # large inputs push outputs to the clamp
    assert out.shape == (1, 8, 3, *model.frame_size)
    assert out.min() >= 0 and out.max() <= 1
    assert (out == 0).any() or (out == 1).any()


def test_uvg_xs_forward_at_256x320():
    torch.manual_seed(0)
    model = build_model("uvg-xs", (256, 320))
    assert model.config["fc_hw"] == [4, 5] and model.required_multiple == 64
    key, t, pos = _inputs(model)
    with torch.no_grad():
        out = model(key, t, pos)
    assert out.shape == (1, 8, 3, 256, 320) and 0 <= out.min() <= out.max() <= 1


@pytest.mark.parametrize(
    ("preset", "size"),
    [("uvg-xs", (180, 320)), ("uvg-xs", (64, 320)), ("tiny", (8, 48)), ("small", (190, 320))],
)
def test_unusable_frame_sizes_raise(preset, size):
    with pytest.raises(InputError, match="multiples of"):
        build_model(preset, size)


def test_required_multiple():
    assert required_multiple("uvg-xs") == 64 == build_model("uvg-xs").required_multiple
    assert required_multiple([2, 2, 2, 2]) == 16


def test_wrong_input_shapes_raise():
    model = build_model("tiny")
    key, t, pos = _inputs(model)
    with pytest.raises(InputError):
        model(key[:, :1], t, pos)
    with pytest.raises(InputError):
        model(key, t[:, :4], pos)


@pytest.mark.parametrize("preset", ["tiny", "official-small"])
def test_fast_equals_plain_forward_and_gradients(preset):
    torch.manual_seed(0)
    model = build_model(preset, (48, 64), fast=False)
    key, t, pos = _inputs(model, B=2)
    target = torch.rand(2, 8, 3, *model.frame_size)
    grads = []
    outs = []
    for fast in (False, True):
        model.fast = fast
        model.zero_grad()
        out = model(key, t, pos)
        (out - target).square().mean().backward()
        outs.append(out.detach())
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
    torch.testing.assert_close(outs[1], outs[0], atol=1e-5, rtol=1e-4)
    for n in grads[0]:
        torch.testing.assert_close(grads[1][n], grads[0][n], atol=1e-6, rtol=1e-3, msg=n)


def test_config_is_json_and_rebuilds_the_same_network():
    torch.manual_seed(0)
    model = build_model("tiny", (64, 96), mean=[0.5, 0.4, 0.3], std=[0.2, 0.25, 0.3])
    cfg = json.loads(json.dumps(model.config))
    assert cfg == model.config
    assert cfg["fc_hw"] == [8, 12] and cfg["strides"] == [2, 2, 2] and cfg["clip_length"] == 8
    assert cfg["mean"] == [0.5, 0.4, 0.3] and cfg["std"] == [0.2, 0.25, 0.3]
    clone = model_from_config(cfg)
    assert all(k not in model.state_dict() for k in ("mean", "std"))
    assert not any("mean" in n or "std" in n for n, _ in model.named_parameters())
    clone.load_state_dict(model.state_dict())
    key, t, pos = _inputs(model)
    with torch.no_grad():
        torch.testing.assert_close(clone(key, t, pos), model(key, t, pos), atol=0, rtol=0)
    with pytest.raises(InputError):
        model_from_config({**cfg, "version": 99})


def test_state_dict_names_are_stable():
    names = sorted({k.rsplit(".", 1)[0] for k in build_model("tiny").state_dict()})
    blocks = [f"blocks.{i}.{n}" for i in range(3) for n in ("conv", "tfc", "to_style")]
    flows = [f"flow_heads.{i}.conv{j}" for i in range(4) for j in (1, 2)]
    encoder = ["encoder.body.0", "encoder.body.1", "encoder.body.2", "encoder.head"]
    want = blocks + encoder + flows + ["rgb_head.conv1", "rgb_head.conv2", "stem.fc1", "stem.fc2"]
    assert names == sorted(want)
    tfc = build_model("tiny").state_dict()["blocks.0.tfc.weight"]
    assert tuple(tfc.shape) == (16 * 8, 8, 1, 1)  # official grouped-conv layout


def test_block_init_is_xavier_with_zero_bias():
    model = build_model("tiny")
    for block in model.blocks:
        assert torch.count_nonzero(block.conv.bias) == 0
        assert torch.count_nonzero(block.to_style.bias) == 0
        fan = block.conv.weight[0].numel() + block.conv.weight[:, 0].numel()
        bound = (6 / fan) ** 0.5
        assert block.conv.weight.abs().max() <= bound


def test_normalize_uses_config_mean_std():
    model = build_model("tiny")
    x = torch.rand(1, 2, 3, 32, 48)
    mean = torch.tensor(model.config["mean"]).view(3, 1, 1)
    std = torch.tensor(model.config["std"]).view(3, 1, 1)
    torch.testing.assert_close(model.normalize(x), (x - mean) / std)


def test_registry():
    assert {"uvg-xs", "ucf-m", "official-small", "tiny", "small", "demo"} <= set(preset_names())
    assert count_parameters("demo") == 283_501  # the README's preset table
    with pytest.raises(ValueError, match="already registered"):
        register(PRESETS["tiny"])
    with pytest.raises(InputError, match="unknown preset"):
        build_model("nope")
    with pytest.raises(InputError, match="unknown model option"):
        build_model("tiny", colour="blue")
    assert isinstance(PRESETS["uvg-xs"], Preset) and PRESETS["uvg-xs"].keyframe_quality == 3


def test_official_interpolate_call_matches():
    feat = torch.randn(1, 64, 2, 4, 5)  # official (B, C, 2, h, w)
    official = F.interpolate(feat, scale_factor=(4, 1, 1), mode="trilinear")
    ours = interpolate_content(feat.transpose(1, 2), 8, fast=True).transpose(1, 2)
    torch.testing.assert_close(ours, official)


def test_reduced_precision_runs_and_stays_close():
    """bf16 autocast (GPU training, CPU option) and a half-precision model (GPU decoding)."""
    torch.manual_seed(0)
    model = build_model("tiny").eval()
    key, t, pos = _inputs(model)
    with torch.no_grad():
        ref = model(key, t, pos)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = model(key, t, pos)
        half = model.half()(key.half(), t, pos)
    assert bf16.dtype == half.dtype == torch.float32
    torch.testing.assert_close(bf16, ref, atol=2e-2, rtol=0)
    torch.testing.assert_close(half, ref, atol=2e-3, rtol=0)


@pytest.mark.parametrize("fast", [False, True])
def test_rgb_skip_starts_from_the_fused_keyframes(fast):
    """With rgb_skip (our compact presets) the RGB head and the flow heads start at zero, so the
    untrained network outputs the (1 - t, t) blend of the keyframes; the official presets keep
    the plain head and the official initialisation."""
    torch.manual_seed(0)
    model = build_model("tiny", (32, 48), fast=fast)
    assert model.config["rgb_skip"] and not build_model("official-small").config["rgb_skip"]
    assert float(build_model("official-small").flow_heads[0].conv2.weight.detach().abs().max()) > 0
    frames01 = torch.rand(1, 2, 3, 32, 48)
    t = torch.linspace(0, 1, 8)[None]
    with torch.no_grad():
        out = model(model.normalize(frames01), t, torch.rand(1, 8))
    want = (1 - t)[..., None, None, None] * frames01[:, :1] + t[..., None, None, None] * frames01[
        :, 1:
    ]
    torch.testing.assert_close(out, want, atol=1e-5, rtol=1e-5)


def test_head_hidden_widens_only_the_narrow_heads():
    """``head_hidden`` N gives every head at least N hidden channels; 0 is the official C // 4."""
    plain = build_model("tiny", (32, 48))
    wide = build_model("tiny", (32, 48), head_hidden=6)
    heads = zip([*plain.flow_heads, plain.rgb_head], [*wide.flow_heads, wide.rgb_head], strict=True)
    for a, b in heads:
        c = a.conv1.in_channels
        assert a.conv1.out_channels == c // 4 and b.conv1.out_channels == max(c // 4, 6)
        assert b.conv2.in_channels == b.conv1.out_channels
    assert wide.num_parameters() > plain.num_parameters()
    assert model_from_config(json.loads(json.dumps(wide.config))).num_parameters() == (
        wide.num_parameters()
    )


@pytest.mark.parametrize("fast", [False, True])
def test_flow_cascade_adds_the_upsampled_flow_of_the_level_below(fast):
    """With ``flow_cascade``, a flow of (1, -2) pixels from the coarsest head alone reaches the
    full-resolution warp as (1, -2) x the product of the strides, everywhere (bilinear
    upsampling of a constant); without it, the other heads' zero output means no motion."""
    torch.manual_seed(0)
    outs = {}
    for cascade in (False, True):
        model = build_model("tiny", (32, 48), fast=fast, flow_cascade=cascade)
        assert model.config["flow_cascade"] is cascade
        seen = []
        with torch.no_grad():
            for head in model.flow_heads:  # rgb_skip: every flow head starts at zero
                assert not head.conv2.weight.any()
            model.flow_heads[0].conv2.bias.copy_(torch.tensor([1.0, -2.0, 1.0, -2.0]))
            key, t, pos = _inputs(model)
            with patch_flow(model, seen):
                outs[cascade] = model(key, t, pos)
        scale = math.prod(model.strides)
        want = torch.tensor([1.0, -2.0, 1.0, -2.0]).view(1, 4, 1, 1) * (scale if cascade else 0)
        torch.testing.assert_close(seen[-1], want.expand_as(seen[-1]), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(outs[True], outs[False])


@contextlib.contextmanager
def patch_flow(model, seen: list):
    """Record every level's flow as the model computes it (``DNeRV._flow``)."""
    original = model._flow

    def recording(*args):
        flow = original(*args)
        seen.append(flow)
        return flow

    model._flow = recording
    try:
        yield
    finally:
        del model._flow


def test_fast_equals_plain_with_flow_cascade():
    torch.manual_seed(0)
    model = build_model("tiny", (32, 48), fast=False, flow_cascade=True, head_hidden=4)
    for head in model.flow_heads:
        torch.nn.init.normal_(head.conv2.weight, 0, 0.1)
    key, t, pos = _inputs(model)
    with torch.no_grad():
        plain = model(key, t, pos)
        model.fast = True
        torch.testing.assert_close(model(key, t, pos), plain, atol=1e-5, rtol=1e-4)


def test_config_version_2_only_when_a_version_2_option_is_on():
    """Files from before head_hidden / flow_cascade keep version 1; a config with either is
    version 2, so a version-1 reader refuses it rather than building another network."""
    assert build_model("tiny").config["version"] == 1
    for kw in ({"head_hidden": 4}, {"flow_cascade": True}):
        cfg = build_model("tiny", **kw).config
        assert cfg["version"] == 2
        assert model_from_config(json.loads(json.dumps(cfg))).config == cfg
        with pytest.raises(InputError, match="version 1 cannot"):
            model_from_config({**cfg, "version": 1})
    with pytest.raises(InputError, match="version"):
        model_from_config({**build_model("tiny").config, "version": 3})
