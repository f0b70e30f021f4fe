"""Decoding a .dnerv file to output files, and its clips as a torch Dataset.

``decode(path, outdir)`` writes every frame as it is decoded: PNG frames, or one y4m or mp4
file per video (:mod:`dnerv_codec.writers`). :class:`ClipDataset` gives the decoded clips to a
``DataLoader``. Both read the file through :class:`dnerv_codec.decoder.DnervFile`.
"""

from __future__ import annotations

import bisect
from pathlib import Path

import numpy as np
import torch

from dnerv_codec.decoder import DnervFile
from dnerv_codec.errors import InputError


def parse_range(text: str | None) -> tuple[int | None, int | None]:
    """``"A:B"`` -> (A, B) for ``--frames`` (0-based, B exclusive; either side may be empty)."""
    if text is None:
        return None, None
    parts = text.split(":")
    try:
        if len(parts) != 2:
            raise ValueError
        return tuple(int(p) if p.strip() else None for p in parts)  # type: ignore[return-value]
    except ValueError:
        raise InputError(
            f"--frames must look like A:B (0-based, B exclusive), got {text!r}"
        ) from None


def decode(
    path: str | Path,
    outdir: str | Path,
    *,
    video: str | None = None,
    frames: str | tuple[int | None, int | None] | None = None,
    format: str = "png",
    crf: int | None = None,
    device: str = "auto",
    half: bool = False,
    batch: int | None = None,
    keyframe_weights: str | Path | None = None,
    force: bool = False,
    quiet: bool = False,
) -> dict:
    """Decode a .dnerv file into ``outdir`` (``outdir/<video>/000001.png``... or one y4m/mp4 per
    video), writing as it goes. Returns a summary dict (frames written, seconds, frames/s).

    Raises:
        OutputExistsError: ``outdir`` exists and is not empty, and ``force`` is not set.
        InputError: unknown video name, bad range, bad option.
    """
    import time

    from dnerv_codec.errors import OutputExistsError
    from dnerv_codec.progress import Progress
    from dnerv_codec.writers import FORMATS, open_writer

    if format not in FORMATS:
        raise InputError(f"unknown output format {format!r}: use one of {', '.join(FORMATS)}")
    outdir = Path(outdir)
    if outdir.exists() and (not outdir.is_dir() or any(outdir.iterdir())) and not force:
        raise OutputExistsError(f"{outdir} exists and is not empty; use --force to write into it")
    start, stop = parse_range(frames) if isinstance(frames, (str, type(None))) else frames
    progress = Progress(quiet)
    began = time.monotonic()
    written = 0
    with DnervFile(path, device, half, batch, keyframe_weights) as f:
        chosen = [f.video_index(video)] if video is not None else range(len(f.videos))
        made_outdir = not outdir.exists()
        outdir.mkdir(parents=True, exist_ok=True)
        writers: list = []
        try:
            for v in chosen:
                info = f.videos[v]
                lo, hi = start or 0, info.frames if stop is None else stop
                writers.append(open_writer(outdir, info.name, format, info.fps, lo + 1, crf, force))
                with progress.bar(total=hi - lo, desc=info.name, unit="frame") as bar:
                    for frame in f.frames(v, lo, hi):
                        writers[-1].write(frame)
                        written += 1
                        bar.update(1)
                writers[-1].close()
        except BaseException:  # a failed decode leaves no partial output behind
            for writer in writers:
                writer.abort()
            if made_outdir and not any(outdir.iterdir()):
                outdir.rmdir()
            raise
    seconds = time.monotonic() - began
    return {"frames": written, "seconds": seconds, "fps": written / max(seconds, 1e-9)}


class ClipDataset(torch.utils.data.Dataset):
    """Decoded clips of a .dnerv file as a ``torch.utils.data.Dataset``.

    Item ``i`` is ``(frames uint8 (T, 3, H, W), video index)`` for the i-th clip over all videos
    (the last clip of a video is shorter when its length is not a multiple of T). Each worker
    opens the file itself, so it works with ``DataLoader(num_workers=...)``.
    """

    def __init__(self, path: str | Path, device: str = "cpu", **kwargs) -> None:
        self.path, self.device, self.kwargs = Path(path), device, kwargs
        with DnervFile(self.path, device, **kwargs) as f:
            self.clips = [s.clips() for s in f.structures]
            self.clip_length = f.clip_length
        self.starts = [0]  # index of each video's first clip, then the total
        for clips in self.clips:
            self.starts.append(self.starts[-1] + len(clips))
        self._file: DnervFile | None = None

    def __len__(self) -> int:
        return self.starts[-1]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"clip {i} of {len(self)}")
        i %= len(self)
        if self._file is None:
            self._file = DnervFile(self.path, self.device, **self.kwargs)
        v = bisect.bisect_right(self.starts, i) - 1
        clip = self.clips[v][i - self.starts[v]]
        frames = np.stack(list(self._file.frames(v, clip.start, clip.stop)))  # (T, H, W, 3)
        return torch.from_numpy(frames).permute(0, 3, 1, 2), v
