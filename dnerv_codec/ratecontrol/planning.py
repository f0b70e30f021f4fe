"""Planning, before training: from a byte budget to a keyframe quality and a network width.

The keyframes are compressed at candidate qualities (cheap: a few tenths of a second per quality
on small clips) and the highest quality whose bytes stay within ``keyframe_share`` of the budget
is kept; the rest, less the container and metadata, goes to the weights. The network is the
compact family at the widest width whose predicted size (record headers measured by packing the
untrained model + ``plan_bits_per_weight`` bits per weight) fits, capped at
``min_pixels_per_parameter`` pixels per weight; budget the cap leaves over raises the keyframe
quality. If the keyframes at the lowest quality plus the smallest model cannot fit, it stops
with one line saying so, before any training.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from dnerv_codec import quant
from dnerv_codec.clips import CLIP_LENGTH, Structure
from dnerv_codec.errors import InputError
from dnerv_codec.geometry import choose_geometry
from dnerv_codec.model import build_model, required_multiple
from dnerv_codec.model.presets import count_parameters

from .config import DEFAULT, RateControlConfig
from .search import highest_fitting

_HINT = "; raise the target, or name a --preset for a fixed-size network"


class TargetTooSmall(InputError):
    """The budget cannot hold the keyframes and the smallest network (``target``: its bytes)."""

    def __init__(self, message: str, target: int) -> None:
        super().__init__(message)
        self.target = target


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
    # the bitstreams of the chosen quality, per video in keyframe order (the keyframe step
    # decodes them instead of coding the keyframes again)
    keyframe_streams: list[list[bytes]] | None = field(default=None, repr=False)

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


class KeyframeSizes:
    """Bytes of a set's keyframes at each quality of one codec, measured once per quality."""

    def __init__(
        self, videos, codec_name: str, clip_length: int, weights=None, cuts=None, on_probe=None
    ) -> None:
        self.videos, self.codec_name, self.clip_length = videos, codec_name, clip_length
        self.weights = weights
        self.cuts = cuts or [[] for _ in videos]
        self.sizes: dict[int, int] = {}
        self.streams: dict[int, list[list[bytes]]] = {}  # quality -> per video, per keyframe
        self.on_probe = on_probe  # called with (quality, bytes, keyframes) after each probe

    def __call__(self, quality: int) -> int:
        if quality not in self.sizes:
            self.streams[quality] = self._code(quality)
            self.sizes[quality] = sum(len(d) for video in self.streams[quality] for d in video)
            if self.on_probe is not None:
                keyframes = sum(len(video) for video in self.streams[quality])
                self.on_probe(quality, self.sizes[quality], keyframes)
        return self.sizes[quality]

    def _code(self, quality: int) -> list[list[bytes]]:
        from dnerv_codec.keyframe import get_codec

        codec = get_codec(self.codec_name, quality, weights=self.weights)
        coded = []
        for video, cuts in zip(self.videos, self.cuts, strict=True):
            structure = Structure.with_cuts(video.num_frames, self.clip_length, cuts)
            coded.append(codec.compress_in_chunks(video.frames, np.array(structure.keys)))
        return coded

    def best_quality(self, lo: int, hi: int, budget: int) -> int:
        """Highest quality in ``lo..hi`` whose keyframes fit ``budget`` (``lo`` if none does;
        :func:`~dnerv_codec.ratecontrol.search.highest_fitting`)."""
        found = highest_fitting(self, lo, hi, budget, known=self.sizes)
        return lo if found is None else found


@functools.lru_cache(maxsize=256)
def _record_overhead(preset: str, frame_size, options: tuple, min_per_channel: int) -> int:
    """Bytes of the weights section (quant.pack_records) for the model of ``options`` with every
    weight zero: the headers and per-channel scales, which a small model pays in full."""
    model = build_model(preset, frame_size, **dict(options))
    state = {k: torch.zeros_like(v) for k, v in model.state_dict().items()}
    records = quant.quantize_state(state, 8, min_per_channel=min_per_channel)
    return len(quant.pack_records(records)[1])


@functools.lru_cache(maxsize=256)
def _parameters(preset: str, frame_size, options: tuple) -> int:
    return count_parameters(preset, frame_size, **dict(options))


def predict_weight_bytes(
    config: RateControlConfig, frame_size, width: int, bits_per_weight: float, clip_length: int
) -> tuple[int, int]:
    """(predicted bytes of the weights section, parameters) of the network of ``width``."""
    options = tuple(sorted(config.model_options(width, clip_length).items()))
    n = _parameters(config.preset, frame_size, options)
    overhead = _record_overhead(config.preset, frame_size, options, config.min_per_channel)
    return overhead + math.ceil(n * bits_per_weight / 8), n


def _best_width(config: RateControlConfig, frame_size, clip_length: int, pixels: int, budget: int):
    """Widest model whose predicted size fits ``budget`` bytes and that keeps at least
    ``min_pixels_per_parameter`` pixels per weight (bisection: both grow with the width)."""

    def fits(width: int) -> bool:
        size, n = predict_weight_bytes(
            config, frame_size, width, config.plan_bits_per_weight, clip_length
        )
        return size <= budget and pixels / n >= config.min_pixels_per_parameter

    a, b = config.min_width, config.max_width
    if not fits(a):
        return a
    while a < b:
        m = (a + b + 1) // 2
        a, b = (m, b) if fits(m) else (a, m - 1)
    return a


def plan(
    videos,
    target: int,
    codec_name: str,
    *,
    config: RateControlConfig = DEFAULT,
    keyframe_weights=None,
    fixed_quality: int | None = None,
    clip_length: int = CLIP_LENGTH,
    log: Callable[[str], None] | None = None,
    raise_to_feasible: bool = False,
    cuts: list[list[int]] | None = None,
    on_probe: Callable[[int, int, int], None] | None = None,
) -> Plan:
    """Choose keyframe quality and model width for a budget of ``target`` bytes.

    ``cuts``: per video, the frames that start a shot (each starts a clip: more keyframes).
    ``raise_to_feasible``: a target below the smallest file these videos allow is raised to
    that size plus a margin (and logged) instead of refused; the encoder's default rate does
    this, so that ``dnerv encode`` alone also codes a one-frame or tiny video.
    ``on_probe``: called with (quality, bytes, keyframes) after the keyframes are coded at a
    quality.

    Raises:
        InputError: the budget cannot be met (one line saying what alone exceeds it).
    """
    from dnerv_codec.keyframe import quality_range

    pixels = sum(v.num_frames * v.width * v.height for v in videos)
    multiple = required_multiple(config.preset)
    geometry = choose_geometry([(v.height, v.width) for v in videos], multiple)
    frame_size = (int(geometry.patch_h), int(geometry.patch_w))
    fixed_bytes = config.fixed_bytes
    lo, hi = quality_range(codec_name)
    kf = KeyframeSizes(videos, codec_name, clip_length, keyframe_weights, cuts, on_probe)

    if fixed_quality is not None and not lo <= fixed_quality <= hi:
        raise InputError(f"--keyframe-quality must be in {lo}..{hi} for {codec_name}")
    min_weights, _ = predict_weight_bytes(
        config, frame_size, config.min_width, config.min_bits_per_weight, clip_length
    )
    smallest = kf(lo if fixed_quality is None else fixed_quality) + fixed_bytes + min_weights
    if raise_to_feasible and smallest > target:
        raised = int(math.ceil(smallest * config.feasible_margin))
        if log is not None:
            log(
                f"rate control: {target:,} bytes is below the smallest file for this input; "
                f"aiming at {raised:,} bytes ({raised * 8 / pixels:.4g} bpp) instead"
            )
        target = raised
    bpp = target * 8 / pixels
    if kf(lo) + fixed_bytes >= target:
        raise TargetTooSmall(
            f"target {target:,} bytes ({bpp:.4g} bpp) is too small: the keyframes alone take "
            f"{kf(lo):,} bytes at the lowest {codec_name} quality ({lo}), and the container "
            f"about {fixed_bytes}{_HINT}",
            target,
        )
    if kf(lo) + fixed_bytes + min_weights > target:
        raise TargetTooSmall(
            f"target {target:,} bytes ({bpp:.4g} bpp) is too small: keyframes at the lowest "
            f"quality ({kf(lo):,} bytes) plus the smallest model (about {min_weights:,} bytes) "
            f"exceed it{_HINT}",
            target,
        )
    if fixed_quality is not None:  # the user chose the keyframe quality
        lo = hi = fixed_quality
        if kf(lo) + fixed_bytes + min_weights > target:
            raise InputError(
                f"target {target:,} bytes ({bpp:.4g} bpp) is too small: keyframes at quality "
                f"{lo} take {kf(lo):,} bytes, and the smallest model about {min_weights:,}{_HINT}"
            )
    # The keyframes get their share, but always leave room for the smallest model.
    share = int(config.keyframe_share * (target - fixed_bytes))
    q = kf.best_quality(lo, hi, min(share, target - fixed_bytes - min_weights))
    width = _best_width(config, frame_size, clip_length, pixels, target - fixed_bytes - kf(q))
    # Budget the width cap leaves over goes to keyframe quality.
    predicted, n = predict_weight_bytes(
        config, frame_size, width, config.plan_bits_per_weight, clip_length
    )
    q = max(q, kf.best_quality(lo, hi, target - fixed_bytes - predicted))
    chosen = Plan(
        target=target,
        pixels=pixels,
        keyframe_quality=q,
        keyframe_bytes=kf(q),
        width=width,
        overrides=config.model_options(width, clip_length),
        parameters=n,
        predicted_weight_bytes=predicted,
        fixed_bytes=fixed_bytes,
        keyframe_sizes=dict(sorted(kf.sizes.items())),
        keyframe_streams=kf.streams[q],
    )
    if log is not None:
        log(
            f"rate control: target {target:,} bytes ({bpp:.4g} bpp): keyframes {codec_name} "
            f"q{q} ({kf(q):,} bytes, a keyframe every {clip_length} frames), compact width "
            f"{width} ({n:,} parameters, "
            f"~{chosen.predicted_weight_bytes:,} bytes of weights predicted)"
        )
    return chosen
