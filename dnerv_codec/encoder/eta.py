"""When an encode will end: an estimate from its first measured seconds, revised at each stage.

An encode under rate control is four stages, each estimated from a cost measured on this
machine as soon as one is known:

1. planning: rate control codes every keyframe at one quality per probe of a bisection over the
   keyframe codec's scale; the first probe gives the codec's seconds per keyframe;
2. training, quantisation-aware fine-tuning included: the time budget, which the trainer holds;
3. checking the written file: one pass of the network over every frame. After training this is
   the training steps' measured time times a forward pass's share of a step; before it, the
   keyframe codec's cost per frame stands in;
4. the floor (``--mode auto``): the keyframe codec over every frame at a few qualities (the
   probes of its quality search) and one decode, at the codec's measured cost per frame.

The first line comes with the first probe, seconds into the encode; later lines come as stages
end. What is not estimated (reading the input, landing) is small next to these at sizes where
the time matters, and the revised lines take it in.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import datetime, timedelta

FLOOR_PROBES = 3  # qualities the floor's search codes, typically (its start, then a bracket)
FORWARD_SHARE = 1 / 3  # a forward pass's share of a training step (backward is about twice it)
STAGES = ("planning", "training", "checking", "floor")


class EndEstimate:
    """The remaining seconds of one encode and the lines that announce them.

    Args:
        write: where a line goes (``Progress.write``).
        frames: frames of the whole set.
        budget: seconds of training (fine-tuning included), or None without a budget.
        floor: whether ``--mode auto`` codes the set keyframe-only after training.
        start: ``time.monotonic()`` when the encode started.
    """

    def __init__(
        self,
        write: Callable[[str], None],
        frames: int,
        budget: float | None,
        floor: bool,
        start: float,
    ) -> None:
        self.write, self.frames, self.budget, self.floor = write, frames, budget, floor
        self.start = start
        self.stage = STAGES[0]
        self.stage_start = start
        self.probes_left = 0
        self.keyframes = 0  # keyframes a planning probe codes
        self.per_keyframe: float | None = None  # keyframe codec: seconds per picture coded
        self._probed = (0.0, 0)  # seconds and keyframes of all probes so far
        self.per_frame_network: float | None = None  # a forward pass: seconds per frame
        self.announced: list[tuple[float, float]] = []  # (elapsed, estimated total) per line

    def bisection(self, lo: int, hi: int) -> None:
        """Planning is about to probe ``lo`` and bisect ``lo..hi``."""
        self.probes_left = 1 + math.ceil(math.log2(max(1, hi - lo + 1)))

    def probe(self, seconds: float, keyframes: int) -> None:
        """Planning coded ``keyframes`` keyframes at one quality in ``seconds`` (the cost per
        keyframe is the mean over the probes: finer qualities take longer)."""
        first = self.per_keyframe is None
        self.keyframes = keyframes
        total, count = self._probed
        self._probed = (total + seconds, count + keyframes)
        self.per_keyframe = self._probed[0] / max(1, self._probed[1])
        self.probes_left = max(0, self.probes_left - 1)
        if first:
            self.announce()

    def network(self, step_seconds: float, frames_per_step: float) -> None:
        """Training's measured seconds a step, for ``frames_per_step`` whole frames a step."""
        self.per_frame_network = FORWARD_SHARE * step_seconds / max(frames_per_step, 1e-9)

    def next_stage(self) -> None:
        """The current stage ended: announce the end as it now stands."""
        self.stage = STAGES[min(STAGES.index(self.stage) + 1, len(STAGES) - 1)]
        self.stage_start = time.monotonic()
        self.announce()

    def remaining(self) -> float | None:
        """Seconds left, or None before the keyframe codec's speed is measured."""
        if self.per_keyframe is None:
            return None
        todo = STAGES[STAGES.index(self.stage) :]
        left = 0.0
        if "planning" in todo:
            left += self.probes_left * self.keyframes * self.per_keyframe
        if "training" in todo and self.budget:
            spent = time.monotonic() - self.stage_start if self.stage == "training" else 0.0
            left += max(0.0, self.budget - spent)
        if "checking" in todo:
            left += self.frames * (self.per_frame_network or self.per_keyframe)
        if self.floor:
            left += (FLOOR_PROBES + 1) * self.frames * self.per_keyframe
        return left

    def announce(self) -> None:
        left = self.remaining()
        if left is None:
            return
        elapsed = time.monotonic() - self.start
        self.announced.append((round(elapsed, 1), round(elapsed + left, 1)))
        end = datetime.now() + timedelta(seconds=left)
        self.write(
            f"encode: {self.stage}; about {clock(left)} left, ends about {end:%H:%M:%S} "
            f"({clock(elapsed + left)} in all)"
        )


def clock(seconds: float) -> str:
    """``seconds`` as M:SS or H:MM:SS."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
