"""Clips and keyframes: which frames a D-NeRV clip covers and what the network is told about them.

A video of L frames is cut into clips of T frames (T = 8 in the paper). Clip c covers frames
[c*T, min((c+1)*T, L)). Its start keyframe is frame c*T and its end keyframe is frame
min((c+1)*T, L-1): keyframes sit every T frames, neighbouring clips share them, and the last frame
of a video is always a keyframe. These rules follow the official D-NeRV code (see
docs/METHOD.md, "Clips and keyframes").

Numpy only: the encoder, the decoder and the trainer all index frames through this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from itertools import pairwise

import numpy as np

CLIP_LENGTH = 8


@dataclass(frozen=True)
class Clip:
    """One clip of a video.

    Attributes:
        index: clip number c within its video.
        start: first frame (inclusive), c*T.
        stop: one past the last real frame, min((c+1)*T, L).
        key_start: frame number of the start keyframe (== start).
        key_end: frame number of the end keyframe, min((c+1)*T, L-1).
        key_start_index: position of ``key_start`` in :func:`keyframe_frames`.
        key_end_index: position of ``key_end`` in :func:`keyframe_frames`.
    """

    index: int
    start: int
    stop: int
    key_start: int
    key_end: int
    key_start_index: int
    key_end_index: int

    @property
    def length(self) -> int:
        """Number of real (unpadded) frames in the clip."""
        return self.stop - self.start


def _check(num_frames: int, clip_length: int) -> None:
    if num_frames < 1:
        raise ValueError(f"a video needs at least one frame, got {num_frames}")
    if clip_length < 1:
        raise ValueError(f"clip length must be at least 1, got {clip_length}")


def keyframe_frames(num_frames: int, clip_length: int = CLIP_LENGTH) -> list[int]:
    """Frame numbers of the keyframes of a video: 0, T, 2T, ... and the last frame.

    >>> keyframe_frames(20, 8)
    [0, 8, 16, 19]
    """
    _check(num_frames, clip_length)
    frames = list(range(0, num_frames, clip_length))
    if frames[-1] != num_frames - 1:
        frames.append(num_frames - 1)
    return frames


def keyframe_count(num_frames: int, clip_length: int = CLIP_LENGTH) -> int:
    """``len(keyframe_frames(num_frames, clip_length))``, without building the list."""
    _check(num_frames, clip_length)
    return clip_count(num_frames, clip_length) + ((num_frames - 1) % clip_length != 0)


def clip_count(num_frames: int, clip_length: int = CLIP_LENGTH) -> int:
    """Number of clips of a video of ``num_frames`` frames."""
    _check(num_frames, clip_length)
    return -(-num_frames // clip_length)


def clip_at(num_frames: int, c: int, clip_length: int = CLIP_LENGTH) -> Clip:
    """Clip ``c`` of a video (0 <= c < :func:`clip_count`), built alone."""
    if not 0 <= c < clip_count(num_frames, clip_length):
        raise ValueError(f"clip {c} is outside the {clip_count(num_frames, clip_length)} clips")
    start = c * clip_length
    stop = min(start + clip_length, num_frames)
    key_end = min(start + clip_length, num_frames - 1)
    # keyframe k is frame kT, and the last frame (when it is no multiple of T) comes after them
    return Clip(c, start, stop, start, key_end, c, c if key_end == start else c + 1)


def clips_of(num_frames: int, clip_length: int = CLIP_LENGTH) -> list[Clip]:
    """All clips of a video of ``num_frames`` frames, in order."""
    return [clip_at(num_frames, c, clip_length) for c in range(clip_count(num_frames, clip_length))]


def clip_inputs(
    clip: Clip, num_frames: int, clip_length: int = CLIP_LENGTH
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """What the network is given for one clip, and which of its outputs are real frames.

    Returns:
        frame_idx: (T,) int64 frame numbers, past-the-end entries clamped to the last frame.
        mask: (T,) bool, False for padding past the end of a short last clip.
        t: (T,) float32 fusion weight, (f - key_start) / max(1, key_end - key_start).
        pos: (T,) float32 time-encoding input, f / (L - 1) (0 for a one-frame video).
    """
    f = clip.start + np.arange(clip_length, dtype=np.int64)  # (T,)
    mask = f < clip.stop
    frame_idx = np.minimum(f, num_frames - 1)
    span = max(1, clip.key_end - clip.key_start)
    t = ((frame_idx - clip.key_start) / span).astype(np.float32)
    pos = (frame_idx / max(1, num_frames - 1)).astype(np.float32)
    return frame_idx, mask, t, pos


def clips_covering(
    num_frames: int, start: int, stop: int, clip_length: int = CLIP_LENGTH
) -> list[Clip]:
    """The clips that hold frames [start, stop) of a video (for random access)."""
    if not 0 <= start < stop <= num_frames:
        raise ValueError(f"frame range {start}:{stop} is outside 0:{num_frames}")
    first, last = start // clip_length, (stop - 1) // clip_length
    return [clip_at(num_frames, c, clip_length) for c in range(first, last + 1)]


# ----------------------------------------------------------------- content-adaptive structure

# A cut starts where the scene-change score of ffmpeg's scdet filter reaches its default
# threshold: the score of frame f is min(d_f, |d_f - d_{f-1}|), d_f the mean absolute difference
# between frames f and f-1 over all samples, in percent of the 8-bit range.
CUT_THRESHOLD = 10.0


def find_cuts(frames, threshold: float = CUT_THRESHOLD) -> list[int]:
    """Frames that start a new shot: f (1 <= f < N) where the scene-change score reaches
    ``threshold``. ``frames``: uint8 (N, H, W, 3), read two at a time (a memory map stays on
    disk)."""
    cuts: list[int] = []
    previous = 0.0
    for f in range(1, len(frames)):
        pair = np.asarray(frames[f - 1 : f + 1], dtype=np.int16)  # (2, H, W, 3)
        d = float(np.abs(pair[1] - pair[0]).mean()) * 100.0 / 255.0
        if min(d, abs(d - previous)) >= threshold:
            cuts.append(f)
        previous = d
    return cuts


@dataclass(frozen=True)
class Structure:
    """Where the keyframes of one video are, and so its clips (docs/FORMAT.md, "keyframes").

    Keyframes are frame numbers ``keys`` from 0 to N-1, at most ``clip_length`` apart. Clip c
    covers frames [keys[c], keys[c+1]) and is predicted from those two keyframes; the last
    frame joins the last clip when that clip stays within ``clip_length`` frames, else it is a
    clip of its own. With keyframes every T frames (:meth:`uniform`) these are exactly the
    clips of :func:`clips_of`, the official rule; :meth:`with_cuts` makes every cut start a
    clip.
    """

    num_frames: int
    clip_length: int
    keys: tuple[int, ...]

    def __post_init__(self) -> None:
        _check(self.num_frames, self.clip_length)
        k = self.keys
        if not k or k[0] != 0 or k[-1] != self.num_frames - 1:
            raise ValueError(f"keyframes must run from frame 0 to {self.num_frames - 1}")
        if any(not 1 <= b - a <= self.clip_length for a, b in pairwise(k)):
            raise ValueError(f"keyframes must ascend at most {self.clip_length} frames apart")

    @classmethod
    def uniform(cls, num_frames: int, clip_length: int = CLIP_LENGTH) -> Structure:
        """Keyframes every ``clip_length`` frames and the last frame (the official rule)."""
        return cls(num_frames, clip_length, tuple(keyframe_frames(num_frames, clip_length)))

    @classmethod
    def with_cuts(cls, num_frames: int, clip_length: int, cuts) -> Structure:
        """Frames f - 1 and f are keyframes for every cut f, so that no clip spans a cut, and
        from each such keyframe on a keyframe every ``clip_length`` frames; with no cuts this
        is :meth:`uniform`."""
        forced = {0, num_frames - 1}
        for f in cuts:
            if not 1 <= f < num_frames:
                raise ValueError(f"cut at frame {f} is outside 1..{num_frames - 1}")
            forced.update((f - 1, f))
        keys: list[int] = []
        anchors = sorted(forced)
        for a, b in pairwise([*anchors, num_frames]):
            keys.extend(range(a, min(b, num_frames), clip_length))
        return cls(num_frames, clip_length, tuple(keys))

    @classmethod
    def from_gaps(cls, num_frames: int, clip_length: int, gaps: bytes | None) -> Structure:
        """The structure a file stores as the gaps between its keyframes (None: uniform)."""
        if gaps is None:
            return cls.uniform(num_frames, clip_length)
        keys = [0]
        for gap in gaps:
            keys.append(keys[-1] + gap)
        return cls(num_frames, clip_length, tuple(keys))

    def gaps(self) -> bytes:
        """One byte per keyframe after the first: its distance from the one before."""
        return bytes(b - a for a, b in pairwise(self.keys))

    @property
    def is_uniform(self) -> bool:
        return self.keys == tuple(keyframe_frames(self.num_frames, self.clip_length))

    @property
    def keyframe_count(self) -> int:
        return len(self.keys)

    def clips(self) -> list[Clip]:
        """Every clip of the video, in order."""
        return list(self._clips)

    @cached_property
    def _clips(self) -> tuple[Clip, ...]:
        k, n, T = self.keys, self.num_frames, self.clip_length
        out = []
        for c in range(len(k) - 1):
            stop = k[c + 1]
            if c == len(k) - 2 and k[c + 1] - k[c] + 1 <= T:
                stop = n  # the last frame joins the last clip
            out.append(Clip(c, k[c], stop, k[c], k[c + 1], c, c + 1))
        if not out or out[-1].stop < n:
            last = len(k) - 1
            out.append(Clip(len(out), k[-1], n, k[-1], k[-1], last, last))
        return tuple(out)

    def covering(self, start: int, stop: int) -> list[Clip]:
        """The clips that hold frames [start, stop) (for random access)."""
        if not 0 <= start < stop <= self.num_frames:
            raise ValueError(f"frame range {start}:{stop} is outside 0:{self.num_frames}")
        return [c for c in self._clips if c.start < stop and c.stop > start]
