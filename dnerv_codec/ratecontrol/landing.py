"""Landing, after training: quantisation bits and pruning that put the file in the window.

The trained weights are quantised and entropy-coded for real at every candidate bit depth, and
where the best depth that fits falls short of the window, one or two more bits are taken with
the smallest global-magnitude pruning that fits, measuring the exact file size each time. Among
the candidates inside ``[1 - tolerance, 1] x budget`` the one whose reconstruction of the
training frames is best is kept. The written file is never larger than the budget.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dnerv_codec import quant
from dnerv_codec.errors import InputError

from .config import DEFAULT, RateControlConfig
from .planning import Plan

WeightsSection = tuple[int, bytes]  # (section type id, payload): quant.pack_records


@dataclass
class Landing:
    bits: int
    prune: float
    size: int  # exact file size
    weights: WeightsSection
    psnr: float | None = None
    tried: list[tuple[int, float, int]] = field(default_factory=list)  # (bits, prune, size)


def quantised_weights(model, bits: int, prune: float, min_per_channel: int) -> WeightsSection:
    """The weights section of the model pruned by ``prune`` at ``bits`` (model unchanged)."""
    return quant.pack_records(quant.pruned_records(model, bits, prune, min_per_channel))


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
    file_size: Callable[[WeightsSection, int, float], int],
    evaluate: Callable[[int, float], float] | None = None,
    config: RateControlConfig = DEFAULT,
) -> Landing:
    """Pick quantisation bits and prune fraction so the file lands in the window below
    ``target``.

    Args:
        model: the trained network.
        target: the budget in bytes.
        file_size: ``(weights section, bits, prune) -> exact file size`` (the encoder's
            :meth:`FileAssembly.size <dnerv_codec.encoder.sections.FileAssembly.size>`).
        evaluate: ``(bits, prune) -> PSNR`` of the training frames with those weights; picks
            among candidates inside the window (without it: the largest file that fits).

    Raises:
        InputError: nothing fits (the keyframes and record headers leave no room).
    """
    tried: list[tuple[int, float, int]] = []
    cache: dict[tuple[int, float], tuple[WeightsSection, int]] = {}

    def measure(bits: int, prune: float) -> tuple[WeightsSection, int]:
        key = (bits, round(prune, 6))
        if key not in cache:
            data = quantised_weights(model, bits, prune, config.min_per_channel)
            cache[key] = data, file_size(data, bits, prune)
            tried.append((bits, round(prune, 4), cache[key][1]))
        return cache[key]

    floor = (1 - config.tolerance) * target
    bit_depths = config.land_bits
    fits = []
    for b in bit_depths:  # sizes grow with the bits: stop at the first that does not fit
        if measure(b, 0.0)[1] > target:
            break
        fits.append(b)
    candidates: list[tuple[int, float]] = []
    if fits:
        best = max(fits)
        if measure(best, 0.0)[1] >= floor:
            candidates.append((best, 0.0))
        for more in (best + 1, best + 2):
            if more > max(bit_depths):
                break
            p = _smallest_prune(lambda f, b=more: measure(b, f)[1], target)
            if p is not None and measure(more, p)[1] >= floor:
                candidates.append((more, p))
        if not candidates:  # nothing reaches the window: take the largest that fits
            candidates.append((best, 0.0))
    else:
        low = min(bit_depths)
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


def evaluate_quantised(
    trainer, bits: int, prune: float, min_per_channel: int, max_clips: int | None = None
) -> float:
    """PSNR over the training frames (``max_clips`` of the clips, evenly spread, at most) with
    the weights pruned and quantised as the file would hold them; the model's float weights are
    restored afterwards."""
    model = trainer.model
    saved = {k: v.detach().clone() for k, v in model.state_dict().items()}
    try:
        records = quant.pruned_records(model, bits, prune, min_per_channel)
        model.load_state_dict({**saved, **quant.records_to_state(records)})
        return trainer.evaluate(max_clips)
    finally:
        model.load_state_dict(saved)


def describe(plan_: Plan, landing: Landing) -> dict[str, Any]:
    """The choices made, for the encode report."""
    return {
        **plan_.to_dict(),
        "quant_bits": landing.bits,
        "prune": round(landing.prune, 4),
        "size": landing.size,
        "tried": [list(t) for t in landing.tried],
    }
