"""Keyframe-only files: every frame a keyframe, no network (docs/FORMAT.md, "Keyframe-only
files").

Such a file is the keyframe codec's own stream (with ``hevc-ra``: x265 random access in 4:4:4
over every frame) in the container, a few hundred bytes more than the codec alone. It is the
encoder's floor: under rate control :func:`dnerv_codec.encoder.pipeline.run` codes the set this
way too, at the same byte budget, and keeps whichever file decodes closer to the source, so a
clip the network cannot predict is never coded much worse than its keyframe codec would code it
(``--mode``). :func:`search` finds the highest keyframe quality whose whole file fits a budget.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from bitstream.container import write_container
from bitstream.keyframes import pack_keyframes_compact
from dnerv_codec import ratecontrol
from dnerv_codec.clips import CLIP_LENGTH, keyframe_count
from dnerv_codec.errors import InputError
from dnerv_codec.memory import trim

from .options import EncodeOptions, EncodeReport
from .sections import container_size, keyframe_only_sections
from .verify import psnr_summary, verify


@dataclass
class KeyframeOnlyFile:
    """One keyframe-only coding of a set: its sections, exact size and measured quality."""

    quality: int
    sections: list[tuple[int, bytes]]
    size: int
    keyframe_bytes: int
    psnr: float | None = None  # mean per-frame PSNR-RGB of the decoded frames (measure())
    frame_psnr: dict | None = None  # the worst frame, as EncodeReport.frame_psnr


def code(videos, codec) -> KeyframeOnlyFile:
    """Every frame of every video through ``codec`` (at its quality), a few groups at a time."""
    streams: dict[tuple[int, int], bytes] = {}
    for v, video in enumerate(videos):
        data = codec.compress_in_chunks(video.frames, np.arange(video.num_frames))
        streams.update({(v, k): d for k, d in enumerate(data)})
    sections = keyframe_only_sections(videos, codec, pack_keyframes_compact(streams))
    return KeyframeOnlyFile(
        codec.quality, sections, container_size(sections), sum(map(len, streams.values()))
    )


def search(
    videos,
    codec_name: str,
    budget: int,
    *,
    weights=None,
    start: int | None = None,
    log: Callable[[str], None] | None = None,
) -> KeyframeOnlyFile | None:
    """The keyframe-only file at the highest quality of ``codec_name`` whose exact size is at
    most ``budget`` bytes, or None when even the lowest quality exceeds it
    (:func:`~dnerv_codec.ratecontrol.search.highest_fitting`, first trying ``start`` when
    given)."""
    from dnerv_codec.keyframe import get_codec, quality_range
    from dnerv_codec.ratecontrol.search import highest_fitting

    lo, hi = quality_range(codec_name)
    tried: dict[int, KeyframeOnlyFile] = {}

    def size(quality: int) -> int:
        if quality not in tried:
            tried[quality] = code(videos, get_codec(codec_name, quality, weights=weights))
            if log is not None:
                log(f"keyframe-only: quality {quality}: {tried[quality].size:,} bytes")
        return tried[quality].size

    found = highest_fitting(size, lo, hi, budget, start=start)
    return None if found is None else tried[found]


def measure(found: KeyframeOnlyFile, videos, codec) -> KeyframeOnlyFile:
    """Decode ``found`` (as the decoder would, a picture at a time) and set its PSNR-RGB: the
    mean over all frames and the worst frame."""
    from bitstream.keyframes import SECTION_COMPACT, unpack_keyframes_compact
    from dnerv_codec.metrics import psnr_frames

    streams = unpack_keyframes_compact(dict(found.sections)[SECTION_COMPACT])
    if codec.quality != found.quality:
        raise InputError("keyframe-only: measured with another quality than it was coded at")
    per_chunk = codec.per_chunk
    psnrs = []
    for v, video in enumerate(videos):
        p = []
        for first in range(0, video.num_frames, per_chunk):
            stop = min(first + per_chunk, video.num_frames)
            pictures = codec.iter_decompress(
                [streams[(v, k)] for k in range(first, stop)], (video.height, video.width)
            )
            for f, picture in enumerate(pictures, first):
                p.append(psnr_frames(np.asarray(video.frames[f : f + 1]), picture[None]))
            trim()
        psnrs.append(np.concatenate(p))
    found.psnr, found.frame_psnr = psnr_summary(psnrs, videos)
    return found


# --------------------------------------------------------------------------- the encoder's use


def codec_for(videos, opts: EncodeOptions) -> str:
    """The codec of the set's keyframe-only file: ``--keyframe-codec``, or the codec that codes
    every frame in its place (:func:`~dnerv_codec.keyframe.every_frame_codec`)."""
    from dnerv_codec.keyframe import every_frame_codec

    return every_frame_codec(opts.keyframe_codec, max(v.num_frames for v in videos))


def _start_quality(plan: ratecontrol.Plan, videos) -> int | None:
    """A first quality to try for all frames: the highest of the qualities planning measured
    whose keyframe bytes, scaled from the planned keyframes to all frames, fit the budget."""
    clip_length = plan.overrides.get("clip_length", CLIP_LENGTH)
    frames = sum(v.num_frames for v in videos)
    keyframes = sum(keyframe_count(v.num_frames, clip_length) for v in videos)
    fits = [
        q
        for q, size in plan.keyframe_sizes.items()
        if size * frames / keyframes <= plan.target - plan.fixed_bytes
    ]
    return max(fits) if fits else None


def floor(
    output: Path,
    result: EncodeReport,
    plan: ratecontrol.Plan,
    videos,
    opts: EncodeOptions,
    progress,
    start: float,
) -> EncodeReport:
    """``--mode auto`` after the network's file is written: code the set keyframe-only at the
    same budget and keep whichever file decodes with the higher mean PSNR-RGB (replacing the
    written file, atomically, when the keyframe-only one wins). The network's file must be
    measured: without ``verify`` it is decoded and measured here."""
    from dnerv_codec.keyframe import get_codec

    if result.psnr is None:
        quality = verify(output, videos, opts, progress)
        result = replace(
            result, psnr=quality.psnr, ms_ssim=quality.ms_ssim, frame_psnr=quality.frame_psnr
        )
    name = codec_for(videos, opts)
    found = search(
        videos,
        name,
        plan.target,
        weights=opts.keyframe_weights,
        start=_start_quality(plan, videos),
    )
    if found is None:
        progress.write("keyframe-only: the lowest keyframe quality exceeds the budget")
        return result
    codec = get_codec(name, found.quality, weights=opts.keyframe_weights)
    measure(found, videos, codec)
    progress.write(
        f"keyframe-only at the same budget: quality {found.quality}, {found.size:,} bytes, "
        f"{found.psnr:.2f} dB; the network's file: {result.bytes:,} bytes, {result.psnr:.2f} dB"
    )
    mine = {"structure": "network", "bytes": result.bytes, "psnr": result.psnr}
    other = {"structure": "keyframes", "bytes": found.size, "psnr": found.psnr}
    if found.psnr <= result.psnr:
        return replace(result, alternative=other)
    progress.write("keyframe-only: it decodes closer to the source; it replaces the network's file")
    written = write_container(output, found.sections, overwrite=True)
    return _report(output, written, found, videos, opts, progress, start, result, mine)


def keyframes_only(
    output: Path,
    videos,
    opts: EncodeOptions,
    dist,
    progress,
    start: float,
    target: int | None = None,
    reason: Exception | None = None,
) -> EncodeReport:
    """``--mode keyframes`` (and ``auto`` when the budget cannot hold a network): write the set
    keyframe-only, at ``--keyframe-quality`` or at the highest quality within the rate-control
    budget. ``reason`` is raised again when even the lowest quality does not fit."""
    from dnerv_codec.keyframe import get_codec

    pixels = sum(v.num_frames * v.width * v.height for v in videos)
    if target is None and opts.rate_controlled:
        target = ratecontrol.target_bytes(pixels, opts.target_bpp, opts.target_size, opts.quality)

    name = codec_for(videos, opts)

    def code_here() -> tuple[int, KeyframeOnlyFile]:
        if opts.keyframe_quality is not None:
            codec = get_codec(name, opts.keyframe_quality, weights=opts.keyframe_weights)
            found = code(videos, codec)
        else:
            found = search(videos, name, target, weights=opts.keyframe_weights)
            if found is None:
                raise reason or InputError(
                    f"target {target:,} bytes ({target * 8 / pixels:.4g} bpp) is too small for "
                    f"every frame as a keyframe at the lowest {name} quality"
                )
        progress.write(
            f"keyframe-only: {name} quality {found.quality}, {found.size:,} bytes"
            + (f" of {target:,}" if target is not None else "")
        )
        return write_container(output, found.sections, overwrite=opts.force), found

    written, found = dist.on_main(code_here, share=True)
    if not dist.is_main:
        return EncodeReport(
            str(output),
            written,
            0,
            found.keyframe_bytes,
            0,
            pixels,
            written * 8 / pixels,
            None,
            None,
            0,
            0,
            0.0,
            time.monotonic() - start,
            structure="keyframes",
        )
    return _report(output, written, found, videos, opts, progress, start)


def _report(output, written, found, videos, opts, progress, start, trained=None, alternative=None):
    """The :class:`EncodeReport` of a written keyframe-only file (verified when asked)."""
    from .sections import video_entries

    quality = verify(output, videos, opts, progress) if opts.verify else None
    pixels = sum(v.num_frames * v.width * v.height for v in videos)
    return EncodeReport(
        output=str(output),
        bytes=written,
        weight_bytes=0,
        keyframe_bytes=found.keyframe_bytes,
        overhead_bytes=written - found.keyframe_bytes,
        pixels=pixels,
        bpp=written * 8 / pixels,
        psnr=quality.psnr if quality else found.psnr,
        ms_ssim=quality.ms_ssim if quality else None,
        parameters=0,
        epochs=trained.epochs if trained else 0,
        train_seconds=trained.train_seconds if trained else 0.0,
        encode_seconds=time.monotonic() - start,
        videos=[dict(v) for v in video_entries(videos)],
        rate=None,
        frame_psnr=quality.frame_psnr if quality else found.frame_psnr,
        structure="keyframes",
        alternative=alternative,
    )
