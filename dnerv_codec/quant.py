"""Pruning and quantisation of a trained network into the integer records the file stores.

What the official D-NeRV code does, and what we do instead:

- Official: 8-bit affine quantisation per channel along axis 1 for conv weights, per tensor for
  biases and the stem, with ``scale = (max - min) / 2**bits`` and ``q = round((w - min) / scale)``.
  That gives 2**bits + 1 levels (0..256 at 8 bits: one more than 8 bits hold) and moves exact
  zeros off zero. It has no pruning.
- Here (default ``symmetric``): ``q = round(w / scale)`` with ``scale = max|w| / (2**(b-1) - 1)``,
  per output channel (axis 0) for tensors of two or more dimensions and per tensor for the rest.
  Levels are -(2**(b-1)-1)..2**(b-1)-1, zero stays exactly zero (pruned weights cost almost
  nothing after entropy coding) and symbols are centred, which the entropy coder likes.
  ``affine`` (2**b levels over [min, max], the official idea without the off-by-one) is kept as
  an option.
- Optional global magnitude pruning over all weights of two or more dimensions (NeRV's recipe),
  with the mask kept during fine-tuning.

The dequantisation formula is normative and lives in ``bitstream.weights.dequantize``: the
encoder evaluates exactly the weights the decoder will rebuild.
"""

from __future__ import annotations

import numpy as np
import torch

from bitstream.ids import SECTION_TYPES, id_of
from bitstream.weights import WeightRecord, dequantize, pack_weights_compact
from bitstream.weights_packed import pack_weights_packed, packable

SCHEMES = ("symmetric", "affine")


def _channel_view(w: np.ndarray, per_channel: bool) -> np.ndarray:
    return w.reshape(w.shape[0], -1) if per_channel else w.reshape(1, -1)


def quantize_tensor(
    name: str, tensor: torch.Tensor, bits: int, scheme: str, min_per_channel: int = 0
) -> WeightRecord:
    """Quantise one tensor into a :class:`WeightRecord` (see module docstring for the rule).

    ``min_per_channel``: tensors with fewer elements per output channel than this get one scale
    (a float32 scale per channel costs 32 bits, a lot for a channel of a few weights; rate
    control uses 256, the default 0 keeps per-channel scales everywhere)."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown quantisation scheme {scheme!r}; choose from {SCHEMES}")
    w = tensor.detach().to("cpu", torch.float32).numpy()
    shape = tuple(int(s) for s in w.shape)
    per_channel = w.ndim >= 2 and w.shape[0] > 1 and w.size >= min_per_channel * w.shape[0]
    rows = _channel_view(w, per_channel).astype(np.float64)
    axis = 0 if per_channel else -1
    if scheme == "symmetric":
        levels = 2 ** (bits - 1) - 1
        peak = np.abs(rows).max(axis=1) if rows.size else np.zeros(rows.shape[0])
        scale = np.where(peak > 0, peak / levels, 1.0).astype(np.float32)
        q = np.clip(np.rint(rows / scale[:, None]), -levels, levels)
        offset = np.zeros(0, np.float32)
    else:
        levels = 2**bits - 1
        low = rows.min(axis=1) if rows.size else np.zeros(rows.shape[0])
        high = rows.max(axis=1) if rows.size else np.zeros(rows.shape[0])
        scale = np.where(high > low, (high - low) / levels, 1.0).astype(np.float32)
        offset = low.astype(np.float32)
        q = np.clip(np.rint((rows - offset[:, None]) / scale[:, None]), 0, levels)
    return WeightRecord(
        name=name,
        shape=shape,
        scheme=scheme,
        bits=bits,
        axis=axis,
        scale=scale,
        offset=offset,
        symbols=q.astype(np.int64).reshape(-1),
        values=None,
    )


def quantize_state(
    state: dict[str, torch.Tensor],
    bits: int = 8,
    scheme: str = "symmetric",
    min_per_channel: int = 0,
) -> list[WeightRecord]:
    """Quantise every floating-point tensor of a state dict, in state-dict order."""
    if not 2 <= bits <= 16:
        raise ValueError(f"quantisation bits must be in 2..16, got {bits}")
    return [
        quantize_tensor(name, tensor, bits, scheme, min_per_channel)
        for name, tensor in state.items()
        if tensor.is_floating_point()
    ]


def pruned_records(
    model: torch.nn.Module, bits: int, prune: float, min_per_channel: int = 0
) -> list[WeightRecord]:
    """The symmetric records of the model's weights with the ``prune`` fraction smallest in
    magnitude removed (:func:`magnitude_masks`); the model is left unchanged."""
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if prune > 0:
        for name, mask in magnitude_masks(model, prune).items():
            state[name] = state[name] * mask
    return quantize_state(state, bits, min_per_channel=min_per_channel)


def fake_quantize(tensor: torch.Tensor, bits: int, min_per_channel: int = 0) -> torch.Tensor:
    """``tensor`` quantised symmetrically and dequantised: exactly the values a decoder rebuilds
    from :func:`quantize_tensor`'s record (same dtype and device as ``tensor``)."""
    record = quantize_tensor("", tensor, bits, "symmetric", min_per_channel)
    values = np.ascontiguousarray(dequantize(record))
    return torch.from_numpy(values).to(tensor.device, tensor.dtype)


def weight_layout(model: torch.nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    """(name, shape) of every tensor :func:`quantize_state` stores for ``model``, in order: the
    layout of a compact weights section (works on a model on the ``meta`` device)."""
    return [
        (name, tuple(int(d) for d in t.shape))
        for name, t in model.state_dict().items()
        if t.is_floating_point()
    ]


def pack_records(records: list[WeightRecord]) -> tuple[int, bytes]:
    """The weights section a file stores ``records`` in, as (section type id, payload): the
    smaller of the packed section (format 1.2: one scheme and bit depth for all, one entropy
    stream; chosen when equal) and the compact one (an entropy model per tensor)."""
    compact = (id_of(SECTION_TYPES, "weights-compact"), pack_weights_compact(records))
    if not packable(records):
        return compact
    packed = (id_of(SECTION_TYPES, "weights-packed"), pack_weights_packed(records))
    return packed if len(packed[1]) <= len(compact[1]) else compact


def records_to_state(records: list[WeightRecord]) -> dict[str, torch.Tensor]:
    """The float32 state dict a decoder rebuilds from the stored records."""
    return {r.name: torch.from_numpy(np.ascontiguousarray(dequantize(r))) for r in records}


def prunable(model: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
    """Parameters that global magnitude pruning applies to: weights of two or more dimensions."""
    return {n: p for n, p in model.named_parameters() if p.ndim >= 2}


def magnitude_masks(model: torch.nn.Module, fraction: float) -> dict[str, torch.Tensor]:
    """Boolean keep-masks removing the ``fraction`` of prunable weights smallest in magnitude."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"prune fraction must be in [0, 1), got {fraction}")
    params = prunable(model)
    if fraction == 0.0 or not params:
        return {n: torch.ones_like(p, dtype=torch.bool) for n, p in params.items()}
    flat = torch.cat([p.detach().abs().flatten() for p in params.values()])
    k = int(fraction * flat.numel())
    threshold = flat.kthvalue(max(k, 1)).values
    return {n: p.detach().abs() > threshold for n, p in params.items()}


@torch.no_grad()
def apply_masks(model: torch.nn.Module, masks: dict[str, torch.Tensor]) -> None:
    """Zero the pruned weights in place (call after every optimiser step while fine-tuning)."""
    params = dict(model.named_parameters())
    for name, mask in masks.items():
        params[name].mul_(mask)
