"""The encoder's inputs: the output checked before any work, the videos read into a
memory-mapped frame cache, their normalisation, scene cuts, and the checkpoint folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dnerv_codec import distributed, framecache
from dnerv_codec.checkpoint import Checkpoint
from dnerv_codec.clips import find_cuts
from dnerv_codec.errors import InputError, OutputExistsError
from dnerv_codec.progress import Progress
from dnerv_codec.video import Video

from .options import EncodeOptions


def check_output(output: Path, force: bool) -> None:
    """Refuse an output that exists (without ``force``), is a folder, or has no folder."""
    if output.exists() and not force:
        raise OutputExistsError(f"{output} exists; use --force to overwrite it")
    if output.exists() and output.is_dir():
        raise InputError(f"{output} is a folder, not a file name")
    parent = output.parent if str(output.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"cannot write {output}: folder {parent} does not exist")


def read_inputs(inputs, output: Path, opts: EncodeOptions, dist):
    """The inputs' videos and the scratch folder of :func:`_read_videos`, after checking the
    keyframe codec's name and weights (under rate control its quality is planned later), so
    that a bad option stops before any work."""
    from dnerv_codec.keyframe import get_codec

    inputs = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    if not inputs:
        raise InputError("no input given")
    get_codec(opts.keyframe_codec, opts.keyframe_quality or 1, weights=opts.keyframe_weights)
    return _read_videos(inputs, output, opts, dist)


def _read_videos(inputs: list, output: Path, opts: EncodeOptions, dist):
    """The video set, memory-mapped from a frame cache: ``--cache-dir``'s (shared by the
    processes of a distributed run), or by default a transient one beside the output, so that
    memory does not grow with the videos' length; and the folder for other transient memory
    maps (the decoded keyframes) in that default case, else None. Decoded videos handed in stay
    in memory."""
    if opts.cache_dir is not None or dist.active or any(isinstance(i, Video) for i in inputs):
        return distributed.read_videos(inputs, opts.max_frames, opts.cache_dir, dist), None
    parent = output.parent if str(output.parent) else Path(".")
    progress, bars = Progress(quiet=opts.quiet), []

    def on_frames(count: int) -> None:  # the bar opens with the first frames, so that an input
        if not bars:  # refused before any is decoded leaves one line on stderr, no bar
            bars.append(progress.bar(desc="reading", unit="frame", leave=False))
        bars[0].update(count)

    try:
        videos = framecache.load_transient(inputs, opts.max_frames, parent, on_frames)
    finally:
        for bar in bars:
            bar.close()
    return videos, parent


def norm_stats(videos: list[Video]) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of all frames in [0, 1] (the set's normalisation)."""
    total, total_sq, count = framecache.frame_moments(videos)
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean * mean, 1e-6))
    return [round(float(x), 6) for x in mean], [round(float(x), 6) for x in std]


def open_checkpoint(opts: EncodeOptions, run_identity: dict) -> Checkpoint | None:
    if not opts.checkpoint_dir:
        return None
    ckpt = Checkpoint(opts.checkpoint_dir, run_identity)
    if not opts.resume and ckpt.exists:
        raise InputError(
            f"{opts.checkpoint_dir} already holds a checkpoint: add --resume to continue it, "
            "or name an empty folder"
        )
    return ckpt


def find_shot_cuts(videos, opts: EncodeOptions, progress: Progress) -> list[list[int]]:
    """Per video, the frames that start a new shot (``--cuts``; none without it)."""
    if not opts.cuts:
        return [[] for _ in videos]
    found = [find_cuts(v.frames) for v in progress.iter(videos, "finding cuts")]
    if any(found):
        where = "; ".join(
            f"{v.name}: {', '.join(map(str, c))}" for v, c in zip(videos, found, strict=True) if c
        )
        progress.write(f"cuts: {sum(map(len, found))} found, each starts a clip ({where})")
    return found
