"""Rate control: from a byte budget to a model size, keyframe quality and quantisation.

A user states a budget in one of three ways (``dnerv encode --target-bpp``, ``--target-size``
or ``--quality``); the encoder then

1. **plans** before training (:func:`plan`): it compresses the set's keyframes at candidate
   qualities (cheap: a few tenths of a second per quality on small clips) and keeps the highest
   quality whose bytes stay within ``KEYFRAME_SHARE`` of the budget; the rest, less the container
   and metadata, goes to the weights. The network is the compact family
   (:func:`dnerv_codec.model.presets.compact_options`) at the widest width whose predicted size
   (record headers measured by packing the untrained model + ``PLAN_BITS_PER_WEIGHT`` bits per
   weight) fits, capped at ``MIN_PIXELS_PER_PARAMETER`` pixels per weight; budget the cap leaves
   over raises the keyframe quality. If the keyframes at the lowest quality plus the smallest
   model cannot fit, it stops with one line saying so, before any training;
2. **lands** after training (:func:`land`): it quantises and entropy-codes the trained weights
   for real at every candidate bit depth, and where the best depth that fits falls short of the
   5 % window it takes one more bit and prunes the smallest weights (global magnitude) until the
   file fits, measuring the exact container size each time. Among the candidates inside
   ``[0.95, 1] x budget`` it keeps the one whose reconstruction of the training frames is best.
   The written file is never larger than the budget.

3. **fine-tunes** with the chosen quantisation in the loop (straight-through estimator,
   :func:`quantisation_aware_finetune`) for ``QAT_SHARE`` of the epochs trained
   (:func:`qat_share`) and lands again, keeping whichever landed file reconstructs better.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from dnerv_codec import quant
from dnerv_codec.clips import CLIP_LENGTH, keyframe_frames
from dnerv_codec.errors import InputError
from dnerv_codec.geometry import choose_geometry
from dnerv_codec.model import build_model, required_multiple
from dnerv_codec.model.presets import compact_options, count_parameters

PRESET = "compact"
# Not the paper's choices, measured better under rate control on the sample clip
# (benchmarks/RESULTS.md, "Predictive keyframes and shorter clips" and "Session 5"): keyframes
# coded as one random-access HEVC sequence with one QP per quality step, and a keyframe every 4
# or 2 frames (the paper: 8) by the rate.
KEYFRAME_CODEC = "hevc-ra"
# (below this bpp, clip length): measured best of 8 / 4 / 2 at 0.03, 0.06 (4), 0.12, 0.25 (2)
CLIP_LENGTH_BY_BPP = ((0.09, 4), (math.inf, 2))
# Of the budget, at most, for keyframes: measured best of 0.5 / 0.7 / 0.85 at 0.1 bpp with
# intra keyframes (benchmarks/RESULTS.md, "Rate control and compact models"), then 0.95 against
# 0.85 with hevc-ra: +0.42 dB at 0.12 bpp, equal at 0.03 and 0.06 ("Session 5").
KEYFRAME_SHARE = 0.95
PLAN_BITS_PER_WEIGHT = 5.0  # trained weights at 6-7 bits entropy-code to about this
MIN_BITS_PER_WEIGHT = 2.5  # the cheapest a weight can be in the feasibility check
MIN_PIXELS_PER_PARAMETER = 8.0  # more weights than this would not be trained in useful time
MIN_WIDTH, MAX_WIDTH = 4, 64
RGB_SKIP = True  # compact models predict a correction to the fused warp of the keyframes
HEAD_HIDDEN = 0  # the heads' hidden channels at least (0: official C // 4); model.make_config
# Coarse-to-fine flows (model.make_config) for clips of 2 frames (rates >= 0.09 bpp): +0.26 and
# +1.71 dB at 0.12 and 0.25 bpp with 10 minutes of training, where at T = 4 (0.03, 0.06 bpp)
# the same run lost 0.58 and 0.96 dB (benchmarks/RESULTS.md, "Session 6").
FLOW_CASCADE = True
FLOW_CASCADE_MAX_CLIP = 2
# Quantisation-aware fine-tuning by default: 30 epochs after about 300 measured +0.43 and +0.93
# dB at 0.03 and 0.06 bpp (4-frame clips, 4-5-bit weights), 25 after 140-210 measured +0.04 and
# +0.14 dB at 0.12 and 0.25 bpp (2-frame clips), with 10 minutes of training (benchmarks/
# RESULTS.md, "Session 5" to "Session 7"). It runs for QAT_SHARE x the epochs trained, inside
# the time budget, and is kept only where the landed file measures better than the one before.
QAT_SHARE = 0.1
QAT_MIN_CLIP = 2  # every clip length rate control uses
QAT_EPOCH_COST = 1.1  # a QAT epoch and the second landing, in training epochs (measured 1.07-1.11)
TOLERANCE = 0.05  # the file lands in [(1 - TOLERANCE) * target, target]
LAND_BITS = range(2, 13)
MIN_PER_CHANNEL = 256  # smaller channels share one scale per tensor (see quant.quantize_tensor)
# --quality Q (1..10, higher is better) -> target bpp: 0.02 * 40 ** ((Q - 1) / 9), i.e. from
# 0.02 bpp (Q 1) to 0.8 bpp (Q 10), each step about 1.5x the bits of the one below.
QUALITY_RANGE = (1.0, 10.0)


_HINT = "; raise the target, or name a --preset for a fixed-size network"
# The container (header and table: 104 bytes for 3 sections) and the deflated metadata (about
# 475 bytes) of a file: 577 bytes measured on the sample clip (format 1.2; 1.1: about 795).
FIXED_BYTES = 600
FEASIBLE_MARGIN = 1.3  # a default target below the smallest possible file is raised to this x it


def clip_length_for(bpp: float) -> int:
    """Frames per clip under rate control: fewer keyframes at low rates, more at high ones."""
    return next(length for below, length in CLIP_LENGTH_BY_BPP if bpp < below)


def qat_share(clip_length: int) -> float:
    """Quantisation-aware fine-tuning by default: its epochs as a share of the epochs trained."""
    return QAT_SHARE if clip_length >= QAT_MIN_CLIP else 0.0


def quality_to_bpp(quality: float) -> float:
    """The bpp the ``--quality`` scale asks for (documented in README, "Rate control")."""
    lo, hi = QUALITY_RANGE
    if not lo <= quality <= hi:
        raise InputError(f"--quality must be in {lo:g}..{hi:g}, got {quality:g}")
    return 0.02 * 40 ** ((quality - lo) / (hi - lo))


def target_bytes(pixels: int, target_bpp=None, target_size=None, quality=None) -> int:
    """The byte budget of a set of ``pixels`` pixels from whichever knob was given."""
    given = [v is not None for v in (target_bpp, target_size, quality)]
    if sum(given) != 1:
        raise InputError("give exactly one of --target-bpp, --target-size and --quality")
    if target_size is not None:
        if target_size <= 0:
            raise InputError(f"--target-size must be positive, got {target_size}")
        return int(target_size)
    bpp = quality_to_bpp(quality) if quality is not None else float(target_bpp)
    if not bpp > 0 or not math.isfinite(bpp):
        raise InputError(f"--target-bpp must be positive, got {target_bpp}")
    return int(bpp * pixels / 8)


@dataclass
class Plan:
    """What :func:`plan` chose before training."""

    target: int  # bytes
    pixels: int
    keyframe_quality: int
    keyframe_bytes: int
    width: int
    overrides: dict[str, Any]
    parameters: int
    predicted_weight_bytes: int
    fixed_bytes: int  # container + metadata, estimated
    keyframe_sizes: dict[int, int] = field(default_factory=dict)  # quality -> bytes measured

    def to_dict(self) -> dict[str, Any]:
        return {
            "target_bytes": self.target,
            "target_bpp": self.target * 8 / self.pixels,
            "keyframe_quality": self.keyframe_quality,
            "keyframe_bytes": self.keyframe_bytes,
            "width": self.width,
            "clip_length": int(self.overrides.get("clip_length", CLIP_LENGTH)),
            "parameters": self.parameters,
            "predicted_weight_bytes": self.predicted_weight_bytes,
        }


def _keyframe_bytes(videos, codec_name: str, quality: int, clip_length: int, weights=None) -> int:
    from dnerv_codec.keyframe import get_codec

    codec = get_codec(codec_name, quality, weights=weights)
    total = 0
    for video in videos:
        frames = video.frames[keyframe_frames(video.num_frames, clip_length)]
        total += sum(len(d) for d in codec.compress_with_reconstruction(frames)[0])
    return total


@functools.lru_cache(maxsize=256)
def _record_overhead(frame_size, options: tuple) -> int:
    """Bytes of the weights section (quant.pack_records) for the model of ``options`` with every
    weight zero: the headers and per-channel scales, which a small model pays in full."""
    model = build_model(PRESET, frame_size, **dict(options))
    state = {k: torch.zeros_like(v) for k, v in model.state_dict().items()}
    return len(
        quant.pack_records(quant.quantize_state(state, 8, min_per_channel=MIN_PER_CHANNEL))[1]
    )


@functools.lru_cache(maxsize=256)
def _parameters(frame_size, options: tuple) -> int:
    return count_parameters(PRESET, frame_size, **dict(options))


def model_options(width: int, clip_length: int) -> dict[str, Any]:
    """The overrides of the ``compact`` preset for a network of ``width`` and ``clip_length``
    under the module's current settings (RGB_SKIP, HEAD_HIDDEN, FLOW_CASCADE)."""
    return {
        **compact_options(width, RGB_SKIP),
        "clip_length": clip_length,
        "head_hidden": HEAD_HIDDEN,
        "flow_cascade": FLOW_CASCADE and clip_length <= FLOW_CASCADE_MAX_CLIP,
    }


def _predict_weight_bytes(
    frame_size, width: int, bits_per_weight: float, clip_length: int
) -> tuple[int, int]:
    # the caches are keyed by the options themselves, so changing the settings above between
    # calls (benchmarks do) never reuses another network's sizes
    options = tuple(sorted(model_options(width, clip_length).items()))
    n = _parameters(frame_size, options)
    overhead = _record_overhead(frame_size, options)
    return overhead + math.ceil(n * bits_per_weight / 8), n


def plan(
    videos,
    target: int,
    codec_name: str,
    *,
    keyframe_weights=None,
    fixed_quality: int | None = None,
    fixed_bytes: int = FIXED_BYTES,
    clip_length: int = CLIP_LENGTH,
    log: Callable[[str], None] | None = None,
    raise_to_feasible: bool = False,
) -> Plan:
    """Choose keyframe quality and model width for a budget of ``target`` bytes.

    ``raise_to_feasible``: a target below the smallest file these videos allow is raised to
    that size plus a margin (and logged) instead of refused; the encoder's default rate does
    this, so that ``dnerv encode`` alone also codes a one-frame or tiny video.

    Raises:
        InputError: the budget cannot be met (one line saying what alone exceeds it).
    """
    from dnerv_codec.keyframe import quality_range

    pixels = sum(v.num_frames * v.width * v.height for v in videos)
    geometry = choose_geometry([(v.height, v.width) for v in videos], required_multiple(PRESET))
    frame_size = (int(geometry.patch_h), int(geometry.patch_w))
    lo, hi = quality_range(codec_name)
    sizes: dict[int, int] = {}

    def kf(q: int) -> int:
        if q not in sizes:
            sizes[q] = _keyframe_bytes(videos, codec_name, q, clip_length, keyframe_weights)
        return sizes[q]

    if fixed_quality is not None and not lo <= fixed_quality <= hi:
        raise InputError(f"--keyframe-quality must be in {lo}..{hi} for {codec_name}")
    min_weights, _ = _predict_weight_bytes(frame_size, MIN_WIDTH, MIN_BITS_PER_WEIGHT, clip_length)
    smallest = kf(lo if fixed_quality is None else fixed_quality) + fixed_bytes + min_weights
    if raise_to_feasible and smallest > target:
        raised = int(math.ceil(smallest * FEASIBLE_MARGIN))
        if log is not None:
            log(
                f"rate control: {target:,} bytes is below the smallest file for this input; "
                f"aiming at {raised:,} bytes ({raised * 8 / pixels:.4g} bpp) instead"
            )
        target = raised
    bpp = target * 8 / pixels
    if kf(lo) + fixed_bytes >= target:
        raise InputError(
            f"target {target:,} bytes ({bpp:.4g} bpp) is too small: the keyframes alone take "
            f"{kf(lo):,} bytes at the lowest {codec_name} quality ({lo}), and the container "
            f"about {fixed_bytes}{_HINT}"
        )
    if kf(lo) + fixed_bytes + min_weights > target:
        raise InputError(
            f"target {target:,} bytes ({bpp:.4g} bpp) is too small: keyframes at the lowest "
            f"quality ({kf(lo):,} bytes) plus the smallest model (about {min_weights:,} bytes) "
            f"exceed it{_HINT}"
        )

    def best_quality(budget: int) -> int:
        """Highest quality whose keyframes fit ``budget`` (bisection: bytes grow with q)."""
        if kf(lo) > budget:
            return lo
        a, b = lo, hi  # kf(a) fits; find the last that fits
        while a < b:
            m = (a + b + 1) // 2
            a, b = (m, b) if kf(m) <= budget else (a, m - 1)
        return a

    def fits(width: int) -> bool:
        size, n = _predict_weight_bytes(frame_size, width, PLAN_BITS_PER_WEIGHT, clip_length)
        return size <= budget_now and pixels / n >= MIN_PIXELS_PER_PARAMETER

    def best_width(budget: int) -> int:
        """Widest model that fits (bisection: size and parameters grow with the width)."""
        nonlocal budget_now
        budget_now = budget
        a, b = MIN_WIDTH, MAX_WIDTH
        if not fits(a):
            return a
        while a < b:
            m = (a + b + 1) // 2
            a, b = (m, b) if fits(m) else (a, m - 1)
        return a

    budget_now = 0

    if fixed_quality is not None:  # the user chose the keyframe quality
        lo = hi = fixed_quality
        if kf(lo) + fixed_bytes + min_weights > target:
            raise InputError(
                f"target {target:,} bytes ({bpp:.4g} bpp) is too small: keyframes at quality "
                f"{lo} take {kf(lo):,} bytes, and the smallest model about {min_weights:,}{_HINT}"
            )
    # The keyframes get their share, but always leave room for the smallest model.
    share = int(KEYFRAME_SHARE * (target - fixed_bytes))
    q = best_quality(min(share, target - fixed_bytes - min_weights))
    width = best_width(target - fixed_bytes - kf(q))
    # Budget the width cap leaves over goes to keyframe quality.
    predicted, n = _predict_weight_bytes(frame_size, width, PLAN_BITS_PER_WEIGHT, clip_length)
    q = max(q, best_quality(target - fixed_bytes - predicted))
    chosen = Plan(
        target=target,
        pixels=pixels,
        keyframe_quality=q,
        keyframe_bytes=kf(q),
        width=width,
        overrides=model_options(width, clip_length),
        parameters=n,
        predicted_weight_bytes=predicted,
        fixed_bytes=fixed_bytes,
        keyframe_sizes=dict(sorted(sizes.items())),
    )
    if log is not None:
        log(
            f"rate control: target {target:,} bytes ({bpp:.4g} bpp): keyframes {codec_name} "
            f"q{q} ({kf(q):,} bytes, a keyframe every {clip_length} frames), compact width "
            f"{width} ({n:,} parameters, "
            f"~{chosen.predicted_weight_bytes:,} bytes of weights predicted)"
        )
    return chosen


# --------------------------------------------------------------------------- landing


@dataclass
class Landing:
    bits: int
    prune: float
    size: int  # exact file size
    weights: tuple[int, bytes]  # (section type id, payload): quant.pack_records
    psnr: float | None = None
    tried: list[tuple[int, float, int]] = field(default_factory=list)  # (bits, prune, size)


def _quantised_weights(model, bits: int, prune: float) -> tuple[int, bytes]:
    """The weights section (quant.pack_records) of the model's weights pruned by ``prune``
    (global magnitude) at ``bits``; the model is left unchanged."""
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if prune > 0:
        masks = quant.magnitude_masks(model, prune)
        for name, mask in masks.items():
            state[name] = state[name] * mask
    records = quant.quantize_state(state, bits, min_per_channel=MIN_PER_CHANNEL)
    return quant.pack_records(records)


def _smallest_prune(size_of: Callable[[float], int], target: int) -> float | None:
    """Smallest prune fraction (bisection, 8 steps at most) whose size fits ``target``, stopping
    early within 1 % below it; None if even 0.95 does not fit."""
    hi = 0.95
    if size_of(hi) > target:
        return None
    lo = 0.0
    for _ in range(8):
        mid = (lo + hi) / 2
        size = size_of(mid)
        if size <= target:
            hi = mid
            if size >= 0.99 * target:
                break
        else:
            lo = mid
    return hi


def land(
    model,
    target: int,
    file_size: Callable[[tuple[int, bytes], int, float], int],
    evaluate: Callable[[int, float], float] | None = None,
) -> Landing:
    """Pick quantisation bits and prune fraction so the file lands in the 5 % window below
    ``target``.

    Args:
        model: the trained network.
        target: the budget in bytes.
        file_size: ``((section type, payload), bits, prune) -> exact file size``.
        evaluate: ``(bits, prune) -> PSNR`` of the training frames with those weights; picks
            among candidates inside the window (without it: the largest file that fits).

    Raises:
        InputError: nothing fits (the keyframes and record headers leave no room).
    """
    tried: list[tuple[int, float, int]] = []
    cache: dict[tuple[int, float], tuple[tuple[int, bytes], int]] = {}

    def measure(bits: int, prune: float) -> tuple[tuple[int, bytes], int]:
        key = (bits, round(prune, 6))
        if key not in cache:
            data = _quantised_weights(model, bits, prune)
            cache[key] = data, file_size(data, bits, prune)
            tried.append((bits, round(prune, 4), cache[key][1]))
        return cache[key]

    floor = (1 - TOLERANCE) * target
    fits = []
    for b in LAND_BITS:  # sizes grow with the bits: stop at the first that does not fit
        if measure(b, 0.0)[1] > target:
            break
        fits.append(b)
    candidates: list[tuple[int, float]] = []
    if fits:
        best = max(fits)
        if measure(best, 0.0)[1] >= floor:
            candidates.append((best, 0.0))
        for more in (best + 1, best + 2):
            if more > max(LAND_BITS):
                break
            p = _smallest_prune(lambda f, b=more: measure(b, f)[1], target)
            if p is not None and measure(more, p)[1] >= floor:
                candidates.append((more, p))
        if not candidates:  # nothing reaches the window: take the largest that fits
            candidates.append((best, 0.0))
    else:
        low = min(LAND_BITS)
        p = _smallest_prune(lambda f: measure(low, f)[1], target)
        if p is None:
            raise InputError(
                f"cannot fit the weights into {target:,} bytes even at {low} bits with 95 % "
                f"pruned ({measure(low, 0.95)[1]:,} bytes): raise the target"
            )
        candidates.append((low, p))
    scores: dict[tuple[int, float], float] = {}
    if evaluate is not None and len(candidates) > 1:
        scores = {c: evaluate(*c) for c in candidates}
        choice = max(candidates, key=lambda c: scores[c])
    else:
        choice = max(candidates, key=lambda c: measure(*c)[1])
    data, size = measure(*choice)
    return Landing(choice[0], choice[1], size, data, scores.get(choice), tried)


# --------------------------------------------------------------------------- evaluation, QAT


@torch.no_grad()
def training_psnr(trainer) -> float:
    """Mean PSNR of the network over every real frame the trainer holds (one pass)."""
    from dnerv_codec.train import frame_psnr

    model = trainer.model
    was_training = model.training
    model.eval()
    values = []
    with torch.no_grad():
        for start in range(0, len(trainer.clips), max(1, trainer.batch_size)):
            ids = list(range(start, min(start + trainer.batch_size, len(trainer.clips))))
            key, t, pos, target, mask = trainer._batch(ids)
            values.append(frame_psnr(model(key, t, pos), target)[mask])
    model.train(was_training)
    return torch.cat(values).mean().item()


def evaluate_quantised(trainer, bits: int, prune: float) -> float:
    """PSNR over the training frames with the weights pruned and quantised as the file would
    hold them; the model's float weights are restored afterwards."""
    model = trainer.model
    saved = {k: v.detach().clone() for k, v in model.state_dict().items()}
    try:
        _load_quantised(model, bits, prune)
        return training_psnr(trainer)
    finally:
        model.load_state_dict(saved)


def _load_quantised(model, bits: int, prune: float) -> None:
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if prune > 0:
        for name, mask in quant.magnitude_masks(model, prune).items():
            state[name] = state[name] * mask
    records = quant.quantize_state(state, bits, min_per_channel=MIN_PER_CHANNEL)
    back = quant.records_to_state(records)
    model.load_state_dict({**state, **back})


def _fake_quant(w: torch.Tensor, bits: int) -> torch.Tensor:
    """Symmetric quantise-dequantise with the rule of :func:`dnerv_codec.quant.quantize_tensor`."""
    levels = 2 ** (bits - 1) - 1
    per_channel = w.ndim >= 2 and w.shape[0] > 1 and w.numel() >= MIN_PER_CHANNEL * w.shape[0]
    rows = w.reshape(w.shape[0], -1) if per_channel else w.reshape(1, -1)
    peak = rows.abs().amax(dim=1, keepdim=True)
    scale = torch.where(peak > 0, peak / levels, torch.ones_like(peak))
    return (torch.round(rows / scale).clamp(-levels, levels) * scale).reshape(w.shape)


def quantisation_aware_finetune(
    trainer_factory, model, bits: int, prune: float, epochs: int, deadline: float | None = None
):
    """Fine-tune ``epochs`` epochs with the forward pass on pruned, quantised weights and the
    gradient applied to the float weights (straight-through estimator); the prune mask is held.

    ``trainer_factory(epochs, on_step)`` builds a :class:`dnerv_codec.train.Trainer` on the model.
    No epoch starts after ``deadline`` (a :func:`time.monotonic` time). Returns the trainer, whose
    ``epoch`` is the number of epochs run.
    """
    masks = quant.magnitude_masks(model, prune) if prune > 0 else {}
    quant.apply_masks(model, masks)
    params = [p for p in model.parameters() if p.is_floating_point()]
    floats: list[torch.Tensor] = []

    def swap_in(_module, _inputs):
        floats.clear()
        with torch.no_grad():
            for p in params:
                floats.append(p.detach().clone())
                p.copy_(_fake_quant(p, bits))

    def restore():
        if floats:
            with torch.no_grad():
                for p, f in zip(params, floats, strict=True):
                    p.copy_(f)
            floats.clear()

    hook = model.register_forward_pre_hook(swap_in)
    tuner = trainer_factory(epochs, lambda _stats: quant.apply_masks(model, masks))
    step = tuner.opt.step

    def stepped(*args, **kwargs):
        restore()  # the gradient of the quantised forward pass updates the float weights
        return step(*args, **kwargs)

    tuner.opt.step = stepped
    try:
        for _ in range(epochs):
            if deadline is not None and time.monotonic() >= deadline:
                break
            tuner.run_epoch()
    finally:
        hook.remove()
        restore()
        quant.apply_masks(model, masks)
    return tuner


def describe(plan_: Plan, landing: Landing) -> dict[str, Any]:
    """The choices made, for the encode report."""
    return {
        **plan_.to_dict(),
        "quant_bits": landing.bits,
        "prune": round(landing.prune, 4),
        "size": landing.size,
        "tried": [list(t) for t in landing.tried],
    }


__all__ = [
    "KEYFRAME_CODEC",
    "KEYFRAME_SHARE",
    "Landing",
    "Plan",
    "clip_length_for",
    "describe",
    "evaluate_quantised",
    "land",
    "plan",
    "qat_share",
    "quality_to_bpp",
    "quantisation_aware_finetune",
    "target_bytes",
    "training_psnr",
]
