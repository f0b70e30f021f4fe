"""Building blocks of D-NeRV (He et al., CVPR 2023, https://arxiv.org/abs/2303.14124).

Each block follows the official code (github.com/boheumd/D-NeRV, ``model.py``/``utils.py``) in
its arithmetic, but works on a *frame layout* ``(N, C, H, W)`` with ``N = B * T`` instead of the
official 5-D ``(B, C, T, H, W)`` layout with ``Conv3d`` kernels of temporal size 1. The two are the
same function: a ``(1, k, k)`` Conv3d is a Conv2d applied to every frame. We store Conv2d weights
``(C_out, C_in, k, k)``; official checkpoints hold the same numbers with an extra axis of size 1.

Blocks that have a straightforward ("plain") and a faster formulation take ``fast: bool``; the
network tests check that both agree to float tolerance.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ENCODER_DIM = 64  # channels of every content-encoder level (official constant)


def width_rule(
    fc_dim: int, strides: list[int], expansion: float = 2.0, lower: int = 32
) -> list[int]:
    """Output channels of each decoder block: ``int(expansion * fc_dim)``, then
    ``max(round(prev / stride), lower)`` (Python ``round``: half to even, as the official code)."""
    widths: list[int] = []
    for i, s in enumerate(strides):
        widths.append(int(fc_dim * expansion) if i == 0 else max(round(widths[-1] / s), lower))
    return widths


# --------------------------------------------------------------------------- time encoding


def time_encoding(pos: Tensor, base: float = 1.25, levels: int = 240) -> Tensor:
    """Sinusoidal encoding of the normalised frame position, float32, interleaved
    ``[sin0, cos0, sin1, cos1, ...]``.

    The argument is formed as the official code does it in float32: ``(pos * base**i) * pi`` with
    both factors rounded to float32, so the features match it bit for bit on the same kernels.
    High levels have huge arguments (``1.25**239 ~ 1e23``): their sin/cos are effectively fixed
    pseudo-random features of ``pos``; different sin implementations (CPU vs GPU) may differ there
    by an ulp, like any float op.

    Args:
        pos: ``(B, T)`` positions in [0, 1].
    Returns:
        ``(B, T, 2 * levels)`` float32.
    """
    scale = torch.tensor([base**i for i in range(levels)], dtype=torch.float32, device=pos.device)
    arg = pos.float()[..., None] * scale * torch.tensor(math.pi, dtype=torch.float32)  # (B, T, L)
    return torch.stack([arg.sin(), arg.cos()], dim=-1).flatten(-2)  # (B, T, 2L)


class Stem(nn.Module):
    """Time MLP: Linear(2L -> hidden), GELU, Linear(hidden -> fc_dim * fc_h * fc_w), GELU.

    The official code uses kernel-1 Conv1d layers, the same function and parameter count as Linear.
    """

    def __init__(self, in_dim: int, fc_dim: int, fc_hw: tuple[int, int], hidden: int = 512):
        super().__init__()
        self.fc_dim, self.fc_hw = fc_dim, fc_hw
        self.fc1 = nn.Linear(in_dim, hidden)
        self.fc2 = nn.Linear(hidden, fc_dim * fc_hw[0] * fc_hw[1])

    def forward(self, emb: Tensor) -> Tensor:
        B, T, _ = emb.shape
        x = F.gelu(self.fc1(emb))  # (B, T, hidden)
        x = F.gelu(self.fc2(x))  # (B, T, fc_dim * fc_h * fc_w)
        return x.reshape(B * T, self.fc_dim, *self.fc_hw)  # (BT, fc_dim, fc_h, fc_w)


# --------------------------------------------------------------------------- content encoder


class ContentEncoder(nn.Module):
    """Multi-scale keyframe features: conv 3x3 (3 -> 64) + GELU, then one non-overlapping conv
    (kernel = stride = s, 64 -> 64) + GELU per stride, strides in reverse decoder order.

    Returns the levels coarse to fine: the body outputs reversed, then the input (3 channels).
    """

    def __init__(self, strides: list[int], dim: int = ENCODER_DIM):
        super().__init__()
        self.head = nn.Conv2d(3, dim, 3, padding=1)
        self.body = nn.ModuleList(nn.Conv2d(dim, dim, s, stride=s) for s in reversed(strides))

    def forward(self, x: Tensor) -> list[Tensor]:
        levels = [x]  # (N, 3, H, W)
        x = F.gelu(self.head(x))  # (N, 64, H, W), not a level
        for conv in self.body:
            x = F.gelu(conv(x))  # (N, 64, H / s..., W / s...)
            levels.append(x)
        return levels[::-1]


# --------------------------------------------------------------------------- time interpolation


def interp_weights(T: int) -> Tensor:
    """Weight of the end keyframe for each of T frames under ``F.interpolate(trilinear,
    align_corners=False)`` from 2 to T steps (T=8: 0, 0, .125, .375, .625, .875, 1, 1)."""
    src = (torch.arange(T, dtype=torch.float64) + 0.5) * (2 / T) - 0.5
    return src.clamp(0, 1).float()


def interpolate_content(feat: Tensor, T: int, fast: bool) -> Tensor:
    """Spread the two coarse keyframe features over T frames.

    Args:
        feat: ``(B, 2, C, h, w)``.
    Returns:
        ``(B, T, C, h, w)``.
    """
    if not fast:  # the official call on the (B, C, 2, h, w) layout
        x = F.interpolate(feat.transpose(1, 2), size=(T, *feat.shape[-2:]), mode="trilinear")
        return x.transpose(1, 2)  # (B, T, C, h, w)
    w = interp_weights(T).to(feat)[None, :, None, None, None]  # (1, T, 1, 1, 1)
    return torch.lerp(feat[:, :1], feat[:, 1:], w)  # (B, T, C, h, w)


def instance_norm_clip(x: Tensor, B: int, eps: float = 1e-5) -> Tensor:
    """InstanceNorm3d(affine=False) over the whole clip: per sample and channel, across T x H x W.

    Args:
        x: ``(B * T, C, h, w)``. Returns the same shape.
    """
    BT, C, h, w = x.shape
    x5 = x.reshape(B, BT // B, C, h, w).transpose(1, 2)  # (B, C, T, h, w)
    y = F.instance_norm(x5.float(), eps=eps).to(x.dtype)  # (B, C, T, h, w)
    return y.transpose(1, 2).reshape(BT, C, h, w)  # (BT, C, h, w)


# --------------------------------------------------------------------------- flow and warping


def conv1x1(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``F.conv2d(x, weight, bias)`` for a 1x1 kernel, as a batched matrix product on CPU.

    On CPU, oneDNN's 1x1 convolution on the plain NCHW layout is slow when it has few output
    channels (the flow and RGB heads map 32 -> 8 and 3 -> 8 channels at full resolution) and in
    its backward pass: ``baddbmm`` over the ``(N, C, H*W)`` view computes the same sums several
    times faster there in isolated timings (the network-level effect is measured in
    ``benchmarks/RESULTS.md``, "Network speed"). The convolution is kept on other devices, and
    for inference with 32 or more outputs, where it was as fast.

    Args:
        x: ``(N, C, H, W)``; weight: ``(O, C, 1, 1)`` (or ``(O, C)``); bias: ``(O,)`` or None.
    Returns:
        ``(N, O, H, W)``.
    """
    N, C, H, W = x.shape
    O = weight.shape[0]
    if x.device.type != "cpu" or (O >= 32 and not torch.is_grad_enabled()):
        return F.conv2d(x, weight.reshape(O, C, 1, 1), bias)
    w = weight.reshape(1, O, C).expand(N, O, C)
    flat = x.reshape(N, C, H * W)
    if bias is None:
        return torch.bmm(w, flat).view(N, O, H, W)
    return torch.baddbmm(bias.reshape(1, O, 1).expand(N, O, 1), w, flat).view(N, O, H, W)


class Head(nn.Module):
    """Conv 1x1 (C -> C // 4), GELU, conv 3x3 (C // 4 -> out): the flow heads and the RGB head.

    ``min_hidden`` (not official; model option ``head_hidden``) widens the hidden layer to at
    least that many channels."""

    def __init__(self, in_ch: int, out_ch: int, min_hidden: int = 0):
        super().__init__()
        hidden = max(in_ch // 4, min_hidden)
        self.conv1 = nn.Conv2d(in_ch, hidden, 1)
        self.conv2 = nn.Conv2d(hidden, out_ch, 3, padding=1)

    def forward(self, x: Tensor, fast: bool = False) -> Tensor:
        if fast:
            return self.finish(conv1x1(x, self.conv1.weight, self.conv1.bias))
        return self.conv2(F.gelu(self.conv1(x)))  # (N, out, H, W)

    def finish(self, y: Tensor) -> Tensor:
        """GELU and conv2 of the fast path, on conv1's output ``y``.

        On CPU, oneDNN runs this 3x3 convolution with 3 or 4 outputs faster (forward and
        backward) on a channels-last copy of its input than on the plain layout, conversions
        included, in isolated timings (the output comes back in the plain layout).
        """
        y = F.gelu(y)
        if y.device.type == "cpu":
            return self.conv2(y.contiguous(memory_format=torch.channels_last)).contiguous()
        return self.conv2(y)


def pixel_grid(h: int, w: int, device: torch.device | None = None) -> Tensor:
    """``(h, w, 2)`` float32 pixel coordinates in (x, y) order."""
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    return torch.stack([xs, ys], dim=-1).float().to(device)


def warp_fuse(key: Tensor, flow: Tensor, t: Tensor, fast: bool) -> Tensor:
    """Warp the start and end keyframe features to every frame and fuse them with (1 - t, t).

    Sampling is ``grid_sample(bilinear, padding_mode="border", align_corners=True)`` at
    ``pixel + flow`` normalised by ``(W - 1, H - 1)``; flows are in pixels of this scale, (x, y).

    Args:
        key: ``(B, 2, C, h, w)`` start and end keyframe features.
        flow: ``(B * T, 4, h, w)``: channels 0:2 flow to the start keyframe, 2:4 to the end one.
        t: ``(B, T)`` position of each frame between its keyframes.
    Returns:
        ``(B * T, C, h, w)`` fused warp ``(1 - t) * warp(start) + t * warp(end)``, in key's dtype.
        The warp itself always runs in float32: half-precision pixel coordinates would be off by
        up to a quarter (fp16) or two (bf16) pixels at a width of 320.
    """
    dtype, key, flow, t = key.dtype, key.float(), flow.float(), t.float()
    B, _, C, h, w = key.shape
    T = t.shape[1]
    norm = torch.tensor([w - 1, h - 1], dtype=flow.dtype, device=flow.device)
    grid = pixel_grid(h, w, flow.device)  # (h, w, 2)
    f = flow.reshape(B, T, 2, 2, h, w).permute(0, 2, 1, 4, 5, 3)  # (B, 2, T, h, w, xy)
    coords = 2 * (grid + f) / norm - 1  # (B, 2, T, h, w, 2)
    tw = t.to(key.dtype).reshape(B, T, 1, 1, 1)  # (B, T, 1, 1, 1)
    if fast:
        # No copy of the keyframes per frame: the T sampling grids of a keyframe are stacked along
        # the output height, so each keyframe is sampled once, in one call, for all its frames.
        c = coords.reshape(B, 2, T * h, w, 2)
        ws, we = (
            F.grid_sample(key[:, k], c[:, k], padding_mode="border", align_corners=True)
            for k in range(2)
        )  # (B, C, T h, w) each
        fused = torch.lerp(
            ws, we, tw.reshape(B, 1, T, 1, 1).expand(B, 1, T, h, 1).reshape(B, 1, T * h, 1)
        )
        return fused.reshape(B, C, T, h, w).transpose(1, 2).reshape(B * T, C, h, w).to(dtype)
    warped = []
    for k in range(2):  # as the official WarpKeyframe: expand the keyframe over T frames
        src = key[:, k, None].expand(B, T, C, h, w).reshape(B * T, C, h, w)
        g = coords[:, k].reshape(B * T, h, w, 2)
        warped.append(F.grid_sample(src, g, padding_mode="border", align_corners=True))
    tw = tw.reshape(B * T, 1, 1, 1)
    return (warped[0] * (1 - tw) + warped[1] * tw).to(dtype)  # (BT, C, h, w)


# --------------------------------------------------------------------------- decoder block


class DNeRVBlock(nn.Module):
    """Spatially-adaptive fusion, conv 3x3 -> PixelShuffle -> GELU, residual global temporal MLP.

    SAF: conv 1x1 on the 64-channel fused warp gives gamma, beta (C_in each);
    ``x = x * (1 + gamma) + beta`` before the conv. Temporal MLP: per output channel a T x T matrix
    plus bias across the frames of a clip (official: grouped Conv2d over C_out * T channels,
    ``groups = C_out``; we keep its weight shape ``(C_out * T, T, 1, 1)``).
    Init as official: xavier_uniform weights and zero bias for the SAF and main convs; the
    temporal MLP keeps the PyTorch default.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int, T: int, style_ch: int = ENCODER_DIM):
        super().__init__()
        self.stride, self.T, self.out_ch = stride, T, out_ch
        self.to_style = nn.Conv2d(style_ch, 2 * in_ch, 1)
        self.conv = nn.Conv2d(in_ch, out_ch * stride * stride, 3, padding=1)
        self.tfc = nn.Conv2d(out_ch * T, out_ch * T, 1, groups=out_ch)
        for m in (self.to_style, self.conv):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)

    def temporal_mlp(self, x: Tensor) -> Tensor:
        """Residual T x T mixing per channel, the official arithmetic (a grouped conv on the
        ``(B, C * T, H, W)`` view of ``(B, C, T, H, W)``). ``x``: ``(B * T, C, H, W)``; same
        shape back. The fast path is :meth:`_mlp_shuffle`."""
        BT, C, H, W = x.shape
        T = self.T
        B = BT // T
        x5 = x.reshape(B, T, C, H, W).transpose(1, 2).reshape(B, C * T, H, W)
        y = F.conv2d(x5, self.tfc.weight, self.tfc.bias, groups=C)  # (B, C T, H, W)
        return x + y.reshape(B, C, T, H, W).transpose(1, 2).reshape(BT, C, H, W)

    def forward(self, x: Tensor, style: Tensor, fast: bool) -> Tensor:
        if fast:  # 1 + gamma comes out of the conv (its bias shifted by one): one fused pass
            C = x.shape[1]
            one = torch.cat(
                [torch.ones_like(self.to_style.bias[:C]), self.to_style.bias.new_zeros(C)]
            )
            gamma1, beta = conv1x1(style, self.to_style.weight, self.to_style.bias + one).chunk(
                2, dim=1
            )  # (BT, C_in, h, w) each
            x = torch.addcmul(beta, x, gamma1)  # (BT, C_in, h, w)
        else:
            gamma, beta = self.to_style(style).chunk(2, dim=1)  # (BT, C_in, h, w) each
            x = x * (1 + gamma) + beta  # (BT, C_in, h, w)
        if fast:  # GELU and the temporal MLP commute with PixelShuffle: one copy at the end
            return self._mlp_shuffle(F.gelu(self.conv(x)))  # (BT, C_out, h s, w s)
        x = F.gelu(F.pixel_shuffle(self.conv(x), self.stride))  # (BT, C_out, h s, w s)
        return self.temporal_mlp(x)  # (BT, C_out, h s, w s)

    def _mlp_shuffle(self, z: Tensor) -> Tensor:
        """Temporal MLP then PixelShuffle, on the conv output ``z`` ``(B * T, C s s, h, w)``.

        Both act per channel, so the MLP runs on the unshuffled channels (channel ``c s s + k``
        uses channel c's matrix), and the MLP's clip-major output goes to the frame layout and
        through the shuffle in a single permuted copy instead of two. Per clip, one batched
        matmul over channels; the residual is folded into the matrix, x + (W x + b) =
        (W + I) x + b, which saves a pass over the activations; ``unbind`` rather than indexing
        per clip, whose backward would zero-fill a full-size gradient for each.
        """
        BT, Cs, h, w = z.shape
        T, s, C = self.T, self.stride, self.out_ch
        B = BT // T
        mats = self.tfc.weight.reshape(C, T, T) + torch.eye(T, dtype=z.dtype, device=z.device)
        mats = mats.repeat_interleave(s * s, dim=0)  # (C s s, T, T)
        bias = self.tfc.bias.reshape(C, T, 1).repeat_interleave(s * s, dim=0)  # (C s s, T, 1)
        zs = z.reshape(B, T, Cs, h * w)  # (B, T, C s s, hw)
        ys = [torch.baddbmm(bias, mats, zb.transpose(0, 1)) for zb in zs.unbind(0)]
        y = torch.stack(ys).reshape(B, C, s, s, T, h, w)  # (B, C, i, j, T, h, w)
        return y.permute(0, 4, 1, 5, 2, 6, 3).reshape(BT, C, h * s, w * s)  # (BT, C, h i, w j)
