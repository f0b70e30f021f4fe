"""A frame cache on disk, for video sets larger than memory (``dnerv encode --cache-dir DIR``).

The inputs are decoded once, one video at a time, into one raw file of uint8 RGB frames; every
process of an encode then memory-maps that file, so the operating system pages frames in as the
trainer asks for them and shares the pages between the processes of a machine.

Layout of ``DIR``: one folder per input set, named by a digest of the inputs' absolute paths,
sizes and modification times (and ``--max-frames``), so an edited or replaced input makes a new
cache instead of reusing stale frames::

    DIR/<digest>/frames.u8     every video's frames, back to back, (N, H, W, 3) uint8 each
    DIR/<digest>/index.json    names, shapes, byte offsets, frame rates, per-channel moments

A cache folder is built under a temporary name and renamed when complete, so a killed build leaves
nothing that a later run would trust. The folder is never deleted by the encoder: remove it when
the set is encoded. In a distributed encode the first process of each machine builds it and the
others wait; on a file system shared by several machines, the first complete one wins.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from dnerv_codec.errors import InputError
from dnerv_codec.geometry import Geometry, to_patches
from dnerv_codec.video import Video, iter_sources

CACHE_VERSION = 2  # 2: names are labels (bitstream.meta.safe_name); built a chunk at a time


class VideoSet(list):
    """A list of :class:`Video` that may carry its per-channel ``moments`` (sum, sum of squares,
    count over all pixels in [0, 1]), so the normalisation needs no pass over the frames."""

    moments: tuple[np.ndarray, np.ndarray, int] | None = None


def frame_moments(videos: Sequence[Video]) -> tuple[np.ndarray, np.ndarray, int]:
    """Per-channel sum and sum of squares of every pixel in [0, 1], and the pixel count."""
    if getattr(videos, "moments", None) is not None:
        return videos.moments  # type: ignore[attr-defined]
    sums = _Moments()
    for video in videos:
        sums.add(video.frames)
    return sums.result()


class _Moments:
    """Exact integer sums of pixel values and their squares, per channel, two frames at a
    time (int64: 48 bytes a pixel for the frames being summed)."""

    FRAMES = 2

    def __init__(self) -> None:
        self.total, self.total_sq, self.count = np.zeros(3, np.int64), np.zeros(3, np.int64), 0

    def add(self, frames: np.ndarray) -> None:
        for start in range(0, len(frames), self.FRAMES):
            f = frames[start : start + self.FRAMES].reshape(-1, 3).astype(np.int64)
            self.total += f.sum(0)
            self.total_sq += (f * f).sum(0)
            self.count += f.shape[0]

    def result(self) -> tuple[np.ndarray, np.ndarray, int]:
        """Sum and sum of squares of the values in [0, 1], and the pixel count."""
        return self.total / 255.0, self.total_sq / 255.0**2, self.count


def _stat(path: Path) -> list:
    st = path.stat()
    return [str(path.resolve()), st.st_size, st.st_mtime_ns]


def cache_key(inputs: Sequence[str | Path], max_frames: int | None) -> str:
    """Digest of what the inputs are: paths, sizes and mtimes (a folder's files one level down)."""
    items = []
    for item in inputs:
        path = Path(item)
        if not path.exists():
            raise InputError(f"no such file or folder: {path}")
        entry = _stat(path)
        if path.is_dir():
            entry.append([_stat(p) for p in sorted(path.iterdir()) if p.is_file()])
        items.append(entry)
    text = json.dumps([CACHE_VERSION, max_frames, items])
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def build(
    folder: Path, inputs: Sequence[str | Path], max_frames: int | None, on_frames=None
) -> None:
    """Decode the inputs one by one into ``folder`` (skipped when it is already complete);
    ``on_frames``, when given, is called with the number of frames each decoded chunk holds."""
    if (folder / "index.json").is_file():
        return
    tmp = folder.parent / f".{folder.name}.{socket.gethostname()}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
    except OSError as exc:
        raise InputError(f"cannot create the frame cache in {folder.parent}: {exc}") from None
    try:
        entries, offset, moments = [], 0, _Moments()
        with open(tmp / "frames.u8", "wb") as fh:
            for source in iter_sources(list(inputs), max_frames):
                shape = None
                for chunk in source.chunks:
                    chunk = np.ascontiguousarray(chunk, dtype=np.uint8)
                    fh.write(chunk.data)
                    moments.add(chunk)
                    if on_frames is not None:
                        on_frames(len(chunk))
                    shape = [len(chunk) + (shape[0] if shape else 0), *chunk.shape[1:]]
                fps = [source.fps.numerator, source.fps.denominator]
                entries.append({"name": source.name, "shape": shape, "fps": fps, "offset": offset})
                offset += int(np.prod(shape))
            fh.flush()
            os.fsync(fh.fileno())
        total, total_sq, count = moments.result()
        index = {
            "version": CACHE_VERSION,
            "videos": entries,
            "moments": [total.tolist(), total_sq.tolist(), count],
        }
        (tmp / "index.json").write_text(json.dumps(index))
        try:
            os.rename(tmp, folder)
        except OSError:
            if not (folder / "index.json").is_file():  # not a concurrent builder that won
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load(folder: Path) -> VideoSet:
    """Memory-map a built cache: each video's ``frames`` is a read-only ``np.memmap`` view."""
    try:
        index = json.loads((folder / "index.json").read_text())
        raw = np.memmap(folder / "frames.u8", dtype=np.uint8, mode="r")
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the frame cache {folder}: {exc}") from None
    if index.get("version") != CACHE_VERSION:
        raise InputError(f"frame cache {folder} is from another version; delete it")
    videos = VideoSet()
    for e in index["videos"]:
        size = int(np.prod(e["shape"]))
        frames = raw[e["offset"] : e["offset"] + size].reshape(e["shape"])
        videos.append(Video(e["name"], frames, Fraction(*e["fps"])))
    s, sq, n = index["moments"]
    videos.moments = (np.array(s), np.array(sq), int(n))
    return videos


def load_transient(
    inputs: Sequence[str | Path], max_frames: int | None, parent: Path, on_frames=None
) -> VideoSet:
    """The inputs decoded into a cache in a fresh hidden folder of ``parent`` and memory-mapped,
    the folder removed at once: the mapping keeps the frames readable (and their disk space
    taken) until the process ends, and nothing is left behind, even after a crash.
    ``on_frames``: as for :func:`build`."""
    import tempfile

    try:
        folder = Path(tempfile.mkdtemp(prefix=".dnerv-frames-", dir=parent))
    except OSError as exc:
        raise InputError(f"cannot create the frame cache in {parent}: {exc}") from None
    try:
        build(folder / "set", inputs, max_frames, on_frames)
        return load(folder / "set")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class PatchStream:
    """One patch position of a memory-mapped video, read lazily as the trainer indexes it.

    Behaves like the ``(N, 3, ph, pw)`` uint8 tensor :func:`to_patches` would give for that
    position (``len``, ``shape``, indexing by an array of frame numbers), without holding it.
    """

    lazy = True

    def __init__(self, frames: np.ndarray, geometry: Geometry, patch: int) -> None:
        self.frames, self.geometry, self.patch = frames, geometry, patch
        self.shape = (frames.shape[0], 3, geometry.patch_h, geometry.patch_w)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index) -> torch.Tensor:
        idx = np.asarray(index, dtype=np.int64)
        ph, pw = self.geometry.patch_h, self.geometry.patch_w
        _, cols = self.geometry.grid(self.frames.shape[1], self.frames.shape[2])
        r, c = divmod(self.patch, cols)
        part = np.asarray(self.frames[idx, r * ph : (r + 1) * ph, c * pw : (c + 1) * pw])
        pad = ((0, 0), (0, ph - part.shape[1]), (0, pw - part.shape[2]), (0, 0))
        part = np.pad(part, pad, mode="edge")  # as to_patches: edge rows / columns repeated
        return torch.from_numpy(np.ascontiguousarray(part.transpose(0, 3, 1, 2)))


def patch_streams(frames: np.ndarray, geometry: Geometry) -> list:
    """Per patch position, the frames the trainer reads: lazy for a memory-mapped video, else
    tensors in memory."""
    if isinstance(frames, np.memmap):
        rows, cols = geometry.grid(frames.shape[1], frames.shape[2])
        return [PatchStream(frames, geometry, p) for p in range(rows * cols)]
    return [torch.from_numpy(p) for p in to_patches(frames, geometry)]
