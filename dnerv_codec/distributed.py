"""Encoding one video set with several processes: ``torchrun ... -m dnerv_codec encode ...``.

``torchrun`` (PyTorch's launcher) starts one process per GPU (or per CPU slot) on each machine
and tells each its place through the environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR``...). When the encoder finds ``WORLD_SIZE`` > 1 it joins the process group (nccl
on CUDA, gloo on CPU) and splits the work:

- keyframe compression: video v is compressed by rank v mod world; the bitstreams are gathered
  so every rank trains on the same decoded keyframes;
- training: :class:`dnerv_codec.train.Trainer` wraps the network in DistributedDataParallel;
  every rank draws the same seeded clip order and takes its share of each *global* batch of
  ``--batch-size`` clips (``--batch-size`` / world each); gradients are all-reduced with weights
  that make each step the step one process would take on the whole global batch, so the
  learning-rate schedule, the step count and the result match a one-process run;
- rank 0 alone writes checkpoints and the output file, and verifies it; the others wait for it.

A rank that dies makes the others stop with one line naming the failure (a collective that
fails, or ``--dist-timeout`` seconds without an answer), and ``torchrun`` stops the job. The
checkpoints of rank 0 let the same command with ``--resume`` continue.
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as tdist

from bitstream.errors import DnervError
from dnerv_codec.errors import InputError, Interrupted


class DistributedError(DnervError):
    """Another process of a distributed encode died or stopped answering."""


class Context:
    """Where this process stands in the job; one process alone is rank 0 of 1."""

    def __init__(self, device: torch.device, rank: int = 0, world: int = 1, local_rank: int = 0):
        self.device, self.rank, self.world, self.local_rank = device, rank, world, local_rank

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if not self.active:
            return obj
        box = [obj if self.is_main else None]
        tdist.broadcast_object_list(box, src=0, device=self._object_device())
        return box[0]

    def all_gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order."""
        if not self.active:
            return [obj]
        out: list[Any] = [None] * self.world
        tdist.all_gather_object(out, obj)
        return out

    def main_decides(self, flag: bool) -> bool:
        """Rank 0's ``flag`` on every rank (e.g. "time budget spent"), so all stop together."""
        return bool(self.broadcast(bool(flag)))

    def on_main(self, fn: Callable[[], Any], share: bool = False) -> Any:
        """Run ``fn`` on rank 0 only; if it fails with a user error, every rank fails with it.

        Returns ``fn()``'s result on rank 0, and on the other ranks too when ``share``.
        """
        result, error = None, None
        if self.is_main:
            try:
                result = fn()
            except DnervError as exc:
                if not self.active:
                    raise
                error = exc
        if not self.active:
            return result
        message = self.broadcast(None if error is None else str(error))
        if error is not None:
            raise error
        if message is not None:
            raise InputError(message)
        return self.broadcast(result) if share else result

    def _object_device(self) -> torch.device | None:
        return self.device if self.device.type == "cuda" else None


_current = Context(torch.device("cpu"))


def current() -> Context:
    """The context of the encode running in this process (rank 0 of 1 outside one)."""
    return _current


def world_from_env() -> int:
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise InputError(f"WORLD_SIZE={os.environ['WORLD_SIZE']!r} is not a number") from None


@contextmanager
def session(device: torch.device, timeout_s: float) -> Iterator[Context]:
    """Join the process group torchrun describes (if any) for the length of one encode.

    Raises:
        DistributedError: the group cannot be formed, or a collective fails or times out.
    """
    global _current
    world = world_from_env()
    if world <= 1:
        yield Context(device)
        return
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        if local >= torch.cuda.device_count():
            raise InputError(
                f"LOCAL_RANK {local} but only {torch.cuda.device_count()} GPUs: start at most "
                "one process per GPU (torchrun --nproc_per_node)"
            )
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    where = f"rank {rank} of {world}"
    owned = not tdist.is_initialized()  # a caller's own group is used as it is, and kept
    try:
        if owned:
            tdist.init_process_group(backend, timeout=timedelta(seconds=timeout_s))
    except (tdist.DistError, RuntimeError, ValueError) as exc:
        raise DistributedError(
            f"{where}: cannot join the process group: {_first_line(exc)}"
        ) from None
    _current = Context(device, rank, world, local)

    def on_term(signum, frame):  # torchrun stops the survivors of a failed process this way
        raise Interrupted(
            f"{where} stopped by the launcher (another process of the job failed?); "
            "rerun the same command with --resume"
        )

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield _current
        if owned:  # no process tears its group down while another still talks to it
            tdist.barrier()
    except RuntimeError as exc:  # DistError included
        if not _is_collective_failure(exc):
            raise
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # report the cause, not the teardown
        raise DistributedError(
            f"{where}: another process of the job died or stopped answering "
            f"({_first_line(exc)}); rerun the same command with --resume"
        ) from None
    finally:
        _current = Context(torch.device("cpu"))
        if owned:
            tdist.destroy_process_group()
        signal.signal(signal.SIGTERM, previous)


_COLLECTIVE_SIGNS = ("gloo", "nccl", "connection", "timed out", "timeout", "peer", "processgroup")


def _is_collective_failure(exc: RuntimeError) -> bool:
    """A failed or timed-out collective (gloo and DDP raise plain RuntimeErrors for these)."""
    text = str(exc).lower()
    return isinstance(exc, tdist.DistError) or any(sign in text for sign in _COLLECTIVE_SIGNS)


def _first_line(exc: BaseException) -> str:
    """The gist of an error: its first line, without gloo's ``[file.cc:123]`` prefix."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    text = re.sub(r"^\[[^\]]*\]\s*", "", lines[0]) if lines else type(exc).__name__
    return text.split(". ")[0][:200]


def read_videos(
    inputs: Sequence[str | Path], max_frames: int | None, cache_dir: str | None, ctx: Context
) -> list:
    """The video set: decoded into memory, or memory-mapped from the frame cache in ``cache_dir``
    (built by the first process of each machine while the others wait)."""
    from dnerv_codec import framecache
    from dnerv_codec.video import read_inputs

    if cache_dir is None:
        return read_inputs(inputs, max_frames)
    folder = Path(cache_dir) / framecache.cache_key(inputs, max_frames)
    error = None
    if ctx.local_rank == 0:
        try:
            framecache.build(folder, inputs, max_frames)
        except DnervError as exc:
            error = exc
    errors = [e for e in ctx.all_gather(None if error is None else str(error)) if e]
    if error is not None:
        raise error
    if errors:
        raise InputError(errors[0])
    return framecache.load(folder)


def keyframes(videos, codec, ckpt, progress, ctx: Context, structures, scratch=None, known=None):
    """The encoder's keyframe step: each rank compresses its share of the videos (the keyframes
    of each video's :class:`~dnerv_codec.clips.Structure`), the bitstreams are gathered, and
    every rank decodes the same keyframes. ``known``: the bitstreams already coded at this
    quality (rate control's plan: per video, in keyframe order), only decoded here. With a
    ``scratch`` folder, decoded keyframes are kept in memory maps there (files removed at once),
    not in memory."""
    saved = ctx.on_main(lambda: ckpt.load_keyframes() if ckpt is not None else None, share=True)
    streams = saved
    if streams is None and known is not None:
        if [len(k) for k in known] != [s.keyframe_count for s in structures]:
            raise ValueError("the planned keyframes do not match the videos' structures")
        streams = {(v, k): d for v, data in enumerate(known) for k, d in enumerate(data)}
    own: dict[int, np.ndarray] = {}
    if streams is None:
        mine = {}
        for v in progress.iter(range(ctx.rank, len(videos), ctx.world), "keyframes"):
            video = videos[v]
            indices = np.array(structures[v].keys)
            own[v] = _scratch((len(indices), video.height, video.width, 3), scratch)
            data = codec.compress_in_chunks(video.frames, indices, into=own[v])
            mine.update({(v, k): d for k, d in enumerate(data)})
        streams = {}
        for part in ctx.all_gather(mine):
            streams.update(part)
    if saved is None and ckpt is not None:
        ckpt.save_keyframes(streams)
    decoded = []
    for v, video in enumerate(videos):
        if v in own:
            decoded.append(own[v])
            continue
        count = structures[v].keyframe_count
        data = [streams[(v, k)] for k in range(count)]
        into = _scratch((count, video.height, video.width, 3), scratch)
        decoded.append(codec.decompress_in_chunks(data, (video.height, video.width), into))
    return streams, decoded


def _scratch(shape: tuple[int, ...], folder) -> np.ndarray:
    """A uint8 array of ``shape``: a memory map on an unlinked file in ``folder``, or in memory
    without a folder."""
    if folder is None:
        return np.empty(shape, np.uint8)
    import tempfile

    return np.memmap(tempfile.TemporaryFile(dir=folder), dtype=np.uint8, mode="w+", shape=shape)
