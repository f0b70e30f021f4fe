"""Size presets of the D-NeRV network: one registry, name -> :class:`Preset`.

The official presets (https://arxiv.org/abs/2303.14124, boheumd/D-NeRV ``train.py``) are defined at
256x320 patches, T = 8, strides [4, 2, 2, 2, 2]; any frame size that is a multiple of 64 works
with them. The small presets are for CPU tests, the demo and benchmarks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from ..errors import InputError
from .dnerv import DNeRV, make_config
from .dnerv import required_multiple as _multiple


@dataclass(frozen=True)
class Preset:
    """An architecture preset. ``frame_size`` is its native (height, width)."""

    name: str
    fc_dim: int
    strides: tuple[int, ...]
    frame_size: tuple[int, int]
    keyframe_quality: int | None = None  # official keyframe codec quality, where it has one
    description: str = ""
    options: dict[str, Any] = field(default_factory=dict)  # architecture options (make_config)
    training: dict[str, Any] = field(default_factory=dict)  # encoder defaults: lr, batch_size


PRESETS: dict[str, Preset] = {}


def register(preset: Preset) -> Preset:
    """Add a preset; a duplicate name raises ValueError."""
    if preset.name in PRESETS:
        raise ValueError(f"preset {preset.name!r} is already registered")
    PRESETS[preset.name] = preset
    return preset


def preset_names() -> list[str]:
    return list(PRESETS)


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise InputError(f"unknown preset {name!r}; choose one of {preset_names()}") from None


def required_multiple(preset_or_strides: str | list[int] | tuple[int, ...]) -> int:
    """Frame height and width must be multiples of this for a preset (or stride list)."""
    if isinstance(preset_or_strides, str):
        return _multiple(list(get_preset(preset_or_strides).strides))
    return _multiple(list(preset_or_strides))


def build_model(
    preset: str, frame_size: tuple[int, int] | None = None, *, fast: bool = True, **overrides: Any
) -> DNeRV:
    """Build a freshly initialised network.

    Args:
        preset: a name from :func:`preset_names`.
        frame_size: (height, width) of the padded frames; the preset's native size if omitted.
        fast: fast (default) or plain reference formulation (same function).
        **overrides: ``fc_dim``, ``strides`` or any :func:`make_config` option
            (``clip_length``, ``mean``, ``std``, ``expansion``, ``lower_width``, ...).
    Raises:
        InputError: unknown preset or option, or a frame size the strides cannot divide.
    """
    p = get_preset(preset)
    opts = {**p.options, **overrides}
    fc_dim = opts.pop("fc_dim", p.fc_dim)
    strides = list(opts.pop("strides", p.strides))
    return DNeRV(make_config(frame_size or p.frame_size, fc_dim, strides, **opts), fast=fast)


def count_parameters(preset: str, frame_size: tuple[int, int] | None = None, **kw: Any) -> int:
    """Exact parameter count without allocating weights (built on the meta device)."""
    with torch.device("meta"):
        return build_model(preset, frame_size, **kw).num_parameters()


_OFFICIAL = (4, 2, 2, 2, 2)
for _name, _fc, _q in [
    ("uvg-xs", 107, 3),
    ("uvg-s", 166, 3),
    ("uvg-m", 213, 4),
    ("uvg-l", 291, 5),
    ("uvg-xl", 382, 6),
    ("ucf-s", 198, 3),
    ("ucf-m", 281, 3),
    ("ucf-l", 361, 3),
]:
    register(Preset(_name, _fc, _OFFICIAL, (256, 320), _q, "official D-NeRV size"))

register(
    Preset(
        "official-small",
        14,
        (2, 2, 2, 2),
        (144, 176),
        None,
        "the small config measured with the official code on 2 CPU cores (docs/METHOD.md)",
    )
)
# Our compact presets (not official): the RGB head adds its output to the fused warped keyframes
# (``rgb_skip``), so training starts from the keyframe interpolation instead of from noise, and
# they train with a higher learning rate and one clip per step (more steps on short clips).
# Measured in benchmarks/RESULTS.md ("Compact presets").
_COMPACT_TRAINING = {"lr": 2e-3, "batch_size": 1}
register(
    Preset(
        "tiny", 8, (2, 2, 2), (32, 48), None, "unit tests only", {"rgb_skip": True},
        _COMPACT_TRAINING,
    )
)  # fmt: skip
register(
    Preset(
        "small",
        24,
        (4, 2, 2, 2),
        (192, 320),
        None,
        "CPU encodes of short clips (multiple of 64)",
        {"rgb_skip": True},
        _COMPACT_TRAINING,
    )
)
register(
    Preset(
        "demo",
        16,
        (4, 2, 2, 2),
        (192, 320),
        None,
        "compact CPU preset for short clips and `make demo` (narrow encoder, stem and blocks)",
        {"encoder_dim": 16, "stem_hidden": 64, "lower_width": 8, "rgb_skip": True},
        _COMPACT_TRAINING,
    )
)


def compact_options(width: int, rgb_skip: bool = True) -> dict[str, Any]:
    """Overrides of the compact family at ``width`` (rate control sizes models with it).

    Made for short clips, where every weight must serve few pixels: five stride-2 blocks (the
    official first stride of 4 makes block 0 16x wider than its input), expansion 1, a content
    encoder, fc grid and stem of ``width`` channels, a stem hidden layer of ``2 * width`` and 32
    time-encoding levels (the 240 official ones separate thousands of frames; 1.25**31 ~ 1000
    already separates any clip length we code). The stem stays below about half of the model,
    where the official one holds 77 % of a small model. ``rgb_skip``: the output is a
    residual over the fused warp of the keyframes (see :func:`dnerv_codec.model.make_config`).
    """
    w = int(width)
    return {
        "fc_dim": w,
        "strides": (2, 2, 2, 2, 2),
        "encoder_dim": w,
        "stem_hidden": 2 * w,
        "lower_width": max(4, w // 2),
        "expansion": 1.0,
        "embed_levels": 32,
        "rgb_skip": bool(rgb_skip),
    }


_COMPACT_WIDTH = 16
register(
    Preset(
        "compact",
        _COMPACT_WIDTH,
        (2, 2, 2, 2, 2),
        (192, 320),
        None,
        "compact family for short clips (width 16); rate control picks the width",
        {
            k: v
            for k, v in compact_options(_COMPACT_WIDTH).items()
            if k not in ("fc_dim", "strides")
        },
        _COMPACT_TRAINING,
    )
)
