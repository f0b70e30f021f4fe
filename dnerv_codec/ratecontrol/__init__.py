"""Rate control: from a byte budget to a model size, keyframe quality and quantisation.

A user states a budget in one of three ways (``dnerv encode --target-bpp``, ``--target-size``
or ``--quality``); the encoder then

1. **plans** before training (:func:`plan`, :mod:`.planning`): keyframe quality and the width
   of the compact network;
2. **lands** after training (:func:`land`, :mod:`.landing`): quantisation bits and pruning that
   put the file in the window below the budget, measured on the exact file;
3. **fine-tunes** with the chosen quantisation in the forward pass (the trainer's
   ``fake_quant`` option) for a share of the epochs trained, and lands again, keeping whichever
   landed file reconstructs the training frames better (the encoder's land stage).

Every setting is a field of :class:`RateControlConfig` (:mod:`.config`); ``DEFAULT`` holds the
measured defaults.
"""

from .config import DEFAULT, QUALITY_RANGE, RateControlConfig, quality_to_bpp, target_bytes
from .landing import Landing, describe, evaluate_quantised, land, quantised_weights
from .planning import KeyframeSizes, Plan, TargetTooSmall, plan, predict_weight_bytes

__all__ = [
    "DEFAULT",
    "QUALITY_RANGE",
    "KeyframeSizes",
    "Landing",
    "Plan",
    "RateControlConfig",
    "TargetTooSmall",
    "describe",
    "evaluate_quantised",
    "land",
    "plan",
    "predict_weight_bytes",
    "quality_to_bpp",
    "quantised_weights",
    "target_bytes",
]
