"""The D-NeRV network (He et al., "Towards Scalable Neural Representation for Diverse Videos",
CVPR 2023, https://arxiv.org/abs/2303.14124), faithful to the official code (boheumd/D-NeRV).

A clip of T frames is predicted from its two decoded keyframes and the frames' time indices::

    model = build_model("tiny", (64, 96))
    key = model.normalize(torch.rand(1, 2, 3, 64, 96))  # (B, 2, 3, H, W) normalised keyframes
    t = torch.linspace(0, 1, 8)[None]                    # (B, T) position between the keyframes
    pos = torch.linspace(0, 0.5, 8)[None]                 # (B, T) frame index / (video length - 1)
    frames = model(key, t, pos)                           # (B, T, 3, H, W) in [0, 1]
    assert frames.shape == (1, 8, 3, 64, 96)

``model.config`` is a JSON-able dict that fully determines the architecture (and the keyframe
normalisation, which is not a parameter); ``model_from_config(model.config)`` rebuilds it.

Deviation from the official layout (same function): frames are processed in a ``(B * T, C, H, W)``
layout with Conv2d instead of ``(B, C, T, H, W)`` with ``(1, k, k)`` Conv3d. ``model.fast``
selects between the plain formulation (the official arithmetic step by step) and a faster one
(single-call warping without per-frame keyframe copies, lerp-based temporal interpolation, a
batched-matmul temporal MLP with its residual folded in, and on CPU 1x1 convolutions as batched
matrix products and the heads' last 3x3 convolutions on a channels-last copy).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import InputError
from .layers import (
    ENCODER_DIM,
    ContentEncoder,
    DNeRVBlock,
    Head,
    Stem,
    conv1x1,
    instance_norm_clip,
    interpolate_content,
    time_encoding,
    warp_fuse,
    width_rule,
)

ARCH = "dnerv"
CONFIG_VERSION = 1
# Version 2 = version 1 plus ``head_hidden`` and ``flow_cascade``. A config is written as version
# 2 only when one of them is on, so that a reader that knows only version 1 refuses it instead of
# silently building a different network; version-1 configs are still written when both are off.
CONFIG_VERSIONS = (1, 2)
UVG_MEAN = [0.4519, 0.4505, 0.4519]
UVG_STD = [0.2434, 0.2547, 0.2958]
MIN_FC = 2  # the coarsest grid needs 2 pixels per side: warping normalises by (size - 1)

_DEFAULTS: dict[str, Any] = {
    "arch": ARCH,
    "version": CONFIG_VERSION,
    "clip_length": 8,
    "expansion": 2.0,
    "lower_width": 32,
    "encoder_dim": ENCODER_DIM,
    "embed_base": 1.25,
    "embed_levels": 240,
    "stem_hidden": 512,
    # Not official: the RGB head predicts a correction to the fused warp of the keyframes (its
    # last conv starts at zero, so an untrained network already outputs the warped keyframes).
    "rgb_skip": False,
    # Not official: the heads' hidden layer has at least this many channels (official: C // 4,
    # a single channel for the 4- to 7-channel inputs of the narrowest compact models).
    "head_hidden": 0,
    # Not official: each level's flow is its head's output plus the previous level's flow,
    # upsampled (bilinear) and scaled by the block's stride (coarse to fine, as optical-flow
    # networks refine flow), so the full-resolution warp starts from the motion learned below.
    "flow_cascade": False,
    "mean": UVG_MEAN,
    "std": UVG_STD,
}


def required_multiple(strides: list[int]) -> int:
    """Frame height and width must be multiples of this (the product of the strides)."""
    return math.prod(strides)


def fc_grid(frame_size: tuple[int, int], strides: list[int]) -> tuple[int, int]:
    """The coarse grid ``(fc_h, fc_w)`` for a frame size, or InputError saying which sizes work."""
    H, W = (int(v) for v in frame_size)
    m = required_multiple(strides)
    if H % m or W % m or H < MIN_FC * m or W < MIN_FC * m:
        raise InputError(
            f"frame size {H}x{W} (HxW) does not fit strides {strides}: height and width must be "
            f"multiples of {m} and at least {MIN_FC * m} (pad the frames, e.g. to "
            f"{max(MIN_FC * m, -(-H // m) * m)}x{max(MIN_FC * m, -(-W // m) * m)})"
        )
    return H // m, W // m


def make_config(frame_size: tuple[int, int], fc_dim: int, strides: list[int], **kw: Any) -> dict:
    """A complete, validated architecture config (JSON-able: ints, floats, str, lists)."""
    unknown = set(kw) - set(_DEFAULTS)
    if unknown:
        raise InputError(f"unknown model option(s): {sorted(unknown)}")
    cfg = {**_DEFAULTS, **kw}
    fc_h, fc_w = fc_grid(frame_size, strides)
    cfg.update(
        frame_size=[int(frame_size[0]), int(frame_size[1])],
        fc_dim=int(fc_dim),
        fc_hw=[fc_h, fc_w],
        strides=[int(s) for s in strides],
        clip_length=int(cfg["clip_length"]),
        rgb_skip=bool(cfg["rgb_skip"]),
        head_hidden=int(cfg["head_hidden"]),
        flow_cascade=bool(cfg["flow_cascade"]),
        expansion=float(cfg["expansion"]),
        mean=[float(v) for v in cfg["mean"]],
        std=[float(v) for v in cfg["std"]],
        embed_base=float(cfg["embed_base"]),
    )
    cfg["version"] = 2 if cfg["head_hidden"] or cfg["flow_cascade"] else CONFIG_VERSION
    return cfg


class DNeRV(nn.Module):
    """D-NeRV: time MLP + keyframe content encoder + flow-guided, SAF-modulated decoder.

    Args:
        config: from :func:`make_config`; ``model.config`` holds it.
        fast: use the fast formulation (default); ``False`` is the plain reference arithmetic.
    """

    def __init__(self, config: dict, fast: bool = True):
        super().__init__()
        self.config = config = make_config(
            config["frame_size"],
            config["fc_dim"],
            config["strides"],
            **{k: v for k, v in config.items() if k in _DEFAULTS and k not in ("arch", "version")},
        )
        self.fast = fast
        self.channels_last = False  # fast mode only; measured slower on CPU (benchmarks/RESULTS.md)
        self.T = T = config["clip_length"]
        self.strides = strides = config["strides"]
        self.fc_hw = tuple(config["fc_hw"])
        self.required_multiple = required_multiple(strides)
        fc_dim, enc = config["fc_dim"], config["encoder_dim"]
        widths = width_rule(fc_dim, strides, config["expansion"], config["lower_width"])
        self.widths = widths

        self.stem = Stem(2 * config["embed_levels"], fc_dim, self.fc_hw, config["stem_hidden"])
        self.encoder = ContentEncoder(strides, enc)
        in_chs = [fc_dim + enc, *widths[:-1]]
        hh = config["head_hidden"]
        self.flow_heads = nn.ModuleList(Head(c, 4, hh) for c in [fc_dim + enc, *widths])
        self.blocks = nn.ModuleList(
            DNeRVBlock(c_in, c_out, s, T, enc)
            for c_in, c_out, s in zip(in_chs, widths, strides, strict=True)
        )
        self.rgb_head = Head(widths[-1] + 3, 3, hh)
        if config["rgb_skip"]:
            for head in [self.rgb_head, *self.flow_heads]:
                nn.init.zeros_(head.conv2.weight)
                nn.init.zeros_(head.conv2.bias)
        # Normalisation constants: plain attributes, not parameters, not in the state_dict.
        self.register_buffer("mean", torch.tensor(config["mean"]).view(1, 1, 3, 1, 1), False)
        self.register_buffer("std", torch.tensor(config["std"]).view(1, 1, 3, 1, 1), False)

    # ----------------------------------------------------------------------- helpers

    @property
    def frame_size(self) -> tuple[int, int]:
        return tuple(self.config["frame_size"])  # type: ignore[return-value]

    def normalize(self, frames01: Tensor) -> Tensor:
        """``(x - mean) / std`` of frames in [0, 1], channels at dim -3 (e.g. (B, 2, 3, H, W))."""
        return (frames01 - self.mean.view(3, 1, 1)) / self.std.view(3, 1, 1)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def _check(self, keyframes: Tensor, t: Tensor, pos: Tensor) -> None:
        B = keyframes.shape[0]
        want = (B, 2, 3, *self.frame_size)
        if tuple(keyframes.shape) != want:
            raise InputError(f"keyframes must have shape {want}, got {tuple(keyframes.shape)}")
        for name, v in (("t", t), ("pos", pos)):
            if tuple(v.shape) != (B, self.T):
                raise InputError(f"{name} must have shape {(B, self.T)}, got {tuple(v.shape)}")

    # ----------------------------------------------------------------------- forward

    def forward(self, keyframes: Tensor, t: Tensor, pos: Tensor) -> Tensor:
        """Predict a clip.

        Args:
            keyframes: ``(B, 2, 3, H, W)`` normalised decoded start and end keyframes.
            t: ``(B, T)`` float, (frame - start) / (end - start) of each frame.
            pos: ``(B, T)`` float in [0, 1], frame index / (video length - 1).
        Returns:
            ``(B, T, 3, H, W)`` frames in [0, 1].
        Raises:
            InputError: on shapes that do not match the model.
        """
        self._check(keyframes, t, pos)
        B, T, fast = keyframes.shape[0], self.T, self.fast
        fmt = torch.channels_last if fast and self.channels_last else torch.contiguous_format
        t = t.to(keyframes.dtype)

        kf = keyframes.flatten(0, 1).contiguous(memory_format=fmt)  # (2B, 3, H, W)
        levels = [f.unflatten(0, (B, 2)) for f in self.encoder(kf)]  # (B, 2, C_i, h_i, w_i)
        emb = time_encoding(pos, self.config["embed_base"], self.config["embed_levels"]).to(
            self.stem.fc1.weight.dtype
        )  # (B, T, 480), float32 math
        x = self.stem(emb).to(keyframes.dtype)  # (BT, fc_dim, fc_h, fc_w)
        content = interpolate_content(levels[0], T, fast).flatten(0, 1)  # (BT, 64, fc_h, fc_w)
        x = torch.cat([x, content], dim=1)  # (BT, fc_dim + 64, fc_h, fc_w)
        x = instance_norm_clip(x, B).contiguous(memory_format=fmt)  # (BT, fc_dim + 64, ...)

        cascade, below = self.config["flow_cascade"], None
        for i, block in enumerate(self.blocks):
            flow = self._flow(i, x, below, fast)  # (BT, 4, h_i, w_i)
            style = warp_fuse(levels[i], flow, t, fast)  # (BT, 64, h_i, w_i)
            x = block(x, style.contiguous(memory_format=fmt), fast)  # (BT, C_i+1, h_i+1, w_i+1)
            below = flow if cascade else None

        flow = self._flow(len(self.blocks), x, below, fast)  # (BT, 4, H, W)
        rgb = warp_fuse(levels[-1], flow, t, fast)  # (BT, 3, H, W) fused warp of the keyframes
        if fast:  # conv1 of the head split over [x, rgb]: no concatenated copy at full size
            head, C = self.rgb_head, x.shape[1]
            w1 = head.conv1.weight  # (C' , C + 3, 1, 1)
            y = conv1x1(x, w1[:, :C], head.conv1.bias).add_(conv1x1(rgb.to(x.dtype), w1[:, C:]))
            out = head.finish(y)  # (BT, 3, H, W)
        else:
            out = self.rgb_head(torch.cat([x, rgb], dim=1))  # on (BT, C + 3, H, W)
        if self.config["rgb_skip"]:  # the head predicts a correction to the fused warp
            out = out + rgb.to(out.dtype)
        out = out.float().reshape(B, T, 3, *self.frame_size)  # (B, T, 3, H, W)
        out = out * self.std.float() + self.mean.float()  # (B, T, 3, H, W)
        return out.clamp(0, 1).contiguous()

    def _flow(self, level: int, x: Tensor, below: Tensor | None, fast: bool) -> Tensor:
        """The flow of ``level``: its head's output, plus (``flow_cascade``) the flow of the
        level below, upsampled to this level's size and scaled to its pixels."""
        flow = self.flow_heads[level](x, fast)
        if below is None:
            return flow
        s = self.strides[level - 1]
        up = F.interpolate(below.float(), scale_factor=s, mode="bilinear", align_corners=False)
        return flow + (up * s).to(flow.dtype)


def model_from_config(config: dict, fast: bool = True) -> DNeRV:
    """Rebuild a network from ``model.config`` (raises InputError on an unknown arch/version)."""
    if config.get("arch") != ARCH or config.get("version") not in CONFIG_VERSIONS:
        raise InputError(
            f"unsupported model config arch={config.get('arch')!r} "
            f"version={config.get('version')!r}; this build reads "
            f"arch={ARCH!r} version {' or '.join(map(str, CONFIG_VERSIONS))}"
        )
    if config["version"] == 1 and (config.get("head_hidden") or config.get("flow_cascade")):
        raise InputError("model config version 1 cannot have head_hidden or flow_cascade")
    missing = {"frame_size", "fc_dim", "strides"} - set(config)
    if missing:
        raise InputError(f"model config lacks {sorted(missing)}")
    model = DNeRV(config, fast=fast)
    if config.get("fc_hw") not in (None, model.config["fc_hw"]):
        raise InputError(f"config fc_hw {config['fc_hw']} disagrees with its frame size/strides")
    return model
