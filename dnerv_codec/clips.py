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
