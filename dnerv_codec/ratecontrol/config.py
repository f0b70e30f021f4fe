"""Every setting of rate control in one value, and the budget a user asks for.

:class:`RateControlConfig` holds the choices that steer the default encoder. Its defaults are
the measured ones (the evidence for each is in benchmarks/RESULTS.md, by topic: rate control,
keyframe codecs and clip length, compact models, quantisation-aware fine-tuning). An ablation
passes a changed copy (``dataclasses.replace(DEFAULT, keyframe_share=0.85)``) through
``EncodeOptions.rate_control``; nothing is assigned to module globals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from dnerv_codec.errors import InputError
from dnerv_codec.model.presets import compact_options

# --quality Q (1..10, higher is better) -> target bpp: 0.02 * 40 ** ((Q - 1) / 9), i.e. from
# 0.02 bpp (Q 1) to 0.8 bpp (Q 10), each step about 1.5x the bits of the one below. This is the
# user-facing scale (README, "Rate control"), not a tuning choice.
QUALITY_RANGE = (1.0, 10.0)


@dataclass(frozen=True)
class RateControlConfig:
    """What rate control chooses with, before and after training."""

    # -- structure: not the paper's (intra keyframes every 8 frames), measured better
    preset: str = "compact"  # the model family rate control sizes (model.presets.compact_options)
    keyframe_codec: str = "hevc-ra"  # keyframes as one random-access HEVC sequence
    # (below this bpp, clip length): fewer keyframes at low rates, more at high ones
    clip_length_by_bpp: tuple[tuple[float, int], ...] = ((0.09, 4), (math.inf, 2))

    # -- planning, before training
    keyframe_share: float = 0.95  # of the budget, at most, for keyframes
    plan_bits_per_weight: float = 5.0  # trained weights at 6-7 bits entropy-code to about this
    min_bits_per_weight: float = 2.5  # the cheapest a weight can be in the feasibility check
    min_pixels_per_parameter: float = 8.0  # more weights would not be trained in useful time
    min_width: int = 4
    max_width: int = 64
    fixed_bytes: int = 300  # header, table and metadata of a one-video file, estimated (~240 B)
    feasible_margin: float = 1.3  # a default target below the smallest file rises to this x it

    # -- the network (model.make_config options, not official)
    rgb_skip: bool = True  # the output is a correction to the fused warp of the keyframes
    head_hidden: int = 0  # the heads' hidden channels at least (0: official C // 4)
    flow_cascade: bool = True  # coarse-to-fine flows ...
    flow_cascade_max_clip: int = 2  # ... for clips of at most this many frames

    # -- landing, after training
    tolerance: float = 0.05  # the file lands in [(1 - tolerance) * target, target]
    land_bits: tuple[int, ...] = tuple(range(2, 13))
    # a channel of fewer weights shares its tensor's scale (quant.quantize_tensor)
    min_per_channel: int = 256
    eval_clips: int = 64  # candidates are compared on at most this many clips, evenly spread

    # -- quantisation-aware fine-tuning, inside the time budget, kept only if it measures better
    qat_share: float = 0.1  # its epochs as a share of the epochs trained
    qat_min_clip: int = 2  # the shortest clip length it runs for (every length used)
    qat_epoch_cost: float = 1.1  # a QAT epoch and the second landing, in training epochs

    def clip_length_for(self, bpp: float) -> int:
        """Frames per clip at ``bpp``."""
        return next(length for below, length in self.clip_length_by_bpp if bpp < below)

    def qat_share_for(self, clip_length: int) -> float:
        """Quantisation-aware fine-tuning by default: its epochs as a share of those trained."""
        return self.qat_share if clip_length >= self.qat_min_clip else 0.0

    def model_options(self, width: int, clip_length: int) -> dict[str, Any]:
        """The overrides of the ``compact`` preset for a network of ``width`` and
        ``clip_length``."""
        return {
            **compact_options(width, self.rgb_skip),
            "clip_length": clip_length,
            "head_hidden": self.head_hidden,
            "flow_cascade": self.flow_cascade and clip_length <= self.flow_cascade_max_clip,
        }


DEFAULT = RateControlConfig()


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
