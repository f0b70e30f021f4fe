"""The D-NeRV network (https://arxiv.org/abs/2303.14124): forward only, no training code."""

from __future__ import annotations

from .dnerv import DNeRV, fc_grid, make_config, model_from_config
from .layers import interp_weights, time_encoding, width_rule
from .presets import (
    PRESETS,
    Preset,
    build_model,
    count_parameters,
    get_preset,
    preset_names,
    register,
    required_multiple,
)

__all__ = [
    "PRESETS",
    "DNeRV",
    "Preset",
    "build_model",
    "count_parameters",
    "fc_grid",
    "get_preset",
    "interp_weights",
    "make_config",
    "model_from_config",
    "preset_names",
    "register",
    "required_multiple",
    "time_encoding",
    "width_rule",
]
