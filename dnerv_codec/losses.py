"""The loss the network is fitted with, and the per-frame PSNR training reports.

The official D-NeRV loss (He et al., CVPR 2023): 0.7 L1 + 0.3 (1 - SSIM) for UVG, MSE + 0.03
(1 - SSIM) for UCF101, with SSIM as ``pytorch_msssim`` defines it (computed here with shifted
sums, faster on a CPU; ``tests/test_train.py`` checks value and gradient against it); and the
differentiable estimate of the weights' coded size that entropy-aware training adds.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .errors import InputError
from .metrics import _blur_axis, _gaussian_taps

LOSS_KINDS = ("uvg", "ucf")


class _GaussianBlur(torch.autograd.Function):
    """Valid separable 11-tap Gaussian (sigma 1.5) over the last two dims of ``(M, H, W)``.

    A dimension shorter than the window is left unfiltered, as in ``pytorch_msssim``. On CPU the
    shifted sums are faster than the grouped ``conv2d`` pytorch_msssim uses, forward and backward
    (the backward of a valid correlation with symmetric taps is the same filter on the gradient
    zero-padded by 10 on each side).
    """

    TAPS = _gaussian_taps(11, 1.5)

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        ctx.dims = [d for d in (-2, -1) if x.shape[d] >= len(_GaussianBlur.TAPS)]
        for d in ctx.dims:
            x = _blur_axis(x, _GaussianBlur.TAPS, d)
        return x

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        pad = len(_GaussianBlur.TAPS) - 1
        for d in ctx.dims:
            widths = [0, 0, 0, 0]
            widths[2 * (-1 - d)] = widths[2 * (-1 - d) + 1] = pad  # F.pad lists the last dim first
            grad = _blur_axis(F.pad(grad, widths), _GaussianBlur.TAPS, d)
        return grad


def ssim(x: Tensor, y: Tensor) -> Tensor:
    """Mean SSIM of ``(N, C, H, W)`` images in [0, 1], differentiable.

    The definition of ``pytorch_msssim.ssim(x, y, data_range=1, win_size=11, win_sigma=1.5)``
    (valid Gaussian windows, K = (0.01, 0.03)); ``tests/test_train.py`` checks value and gradient
    against it. The five local statistics are filtered in one call.
    """
    c1, c2 = 0.01**2, 0.03**2
    N, C, H, W = x.shape
    stats = _GaussianBlur.apply(torch.cat([x, y, x * x, y * y, x * y]).reshape(5 * N * C, H, W))
    mu_x, mu_y, xx, yy, xy = stats.reshape(5, N * C, *stats.shape[-2:]).unbind(0)
    mu_xx, mu_yy, mu_xy = mu_x * mu_x, mu_y * mu_y, mu_x * mu_y
    cs = (2 * (xy - mu_xy) + c2) / ((xx - mu_xx) + (yy - mu_yy) + c2)
    return ((2 * mu_xy + c1) / (mu_xx + mu_yy + c1) * cs).mean()


def dnerv_loss(pred: Tensor, target: Tensor, mask: Tensor, kind: str = "uvg") -> Tensor:
    """The official D-NeRV loss over the real (unmasked) frames of a batch of clips.

    ``uvg``: 0.7 * L1 + 0.3 * (1 - SSIM); ``ucf``: MSE + 0.03 * (1 - SSIM). SSIM as pytorch_msssim's
    ``ssim`` (11x11 Gaussian window, sigma 1.5, data_range 1), averaged over the selected frames
    (:func:`ssim`).

    Args:
        pred, target: ``(B, T, 3, H, W)`` in [0, 1].
        mask: ``(B, T)`` bool, False for padded frames past the end of a video.
    """
    p, y = pred[mask].float(), target[mask].float()  # (n, 3, H, W)
    s = 1 - ssim(p, y)
    if kind == "uvg":
        return 0.7 * (p - y).abs().mean() + 0.3 * s
    if kind == "ucf":
        return F.mse_loss(p, y) + 0.03 * s
    raise InputError(f"unknown loss kind {kind!r}; choose one of {LOSS_KINDS}")


def weight_rate_bits(model: torch.nn.Module, step_fraction: float = 1 / 32) -> Tensor:
    """A differentiable estimate of the weights' coded size in bits (entropy-aware training).

    Each weight tensor (biases and other 1-D tensors are left out: they are few) costs
    ``sum log2(1 + |w| / step)`` with ``step = step_fraction * max|w|`` (the step of a 6-bit
    symmetric quantiser, the range detached): about the bits of an adaptive code of the
    quantised value under a heavy-tailed (log-Laplace-like) model. Pulling weights that are small
    relative to their tensor's range toward zero lowers it, which is what makes quantised weights
    entropy-code into fewer bytes (as Boosting-NeRV and HiNeRV add a rate term for).
    """
    total = torch.zeros((), device=next(model.parameters()).device)
    for p in model.parameters():
        if p.dim() < 2 or not p.requires_grad:
            continue
        step = (p.detach().abs().amax() * step_fraction).clamp_min(1e-12)
        total = total + torch.log2(1 + p.abs() / step).sum()
    return total


@torch.no_grad()
def frame_psnr(pred: Tensor, target: Tensor) -> Tensor:
    """Per-frame PSNR in dB of ``(..., 3, H, W)`` images in [0, 1] (MSE floored at 1e-10)."""
    mse = (pred.float() - target.float()).pow(2).mean(dim=(-3, -2, -1))
    return -10 * torch.log10(mse.clamp_min(1e-10))
