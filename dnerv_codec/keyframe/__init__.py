"""Keyframe codecs: one interface over learned (CompressAI) and classical (ffmpeg) image codecs.

D-NeRV stores the keyframes of every clip next to the network, and predicts every other frame from
their *decoded* versions, so the keyframe codec is part of the format: its on-disk id comes from
``bitstream.ids.KEYFRAME_CODECS`` and a learned codec's weights are pinned by a digest.

>>> import numpy as np
>>> from dnerv_codec.keyframe import get_codec
>>> codec = get_codec("avif", 6)
>>> frames = np.random.default_rng(0).integers(0, 256, (2, 33, 47, 3), dtype=np.uint8)
>>> data, recon = codec.compress_with_reconstruction(frames)
>>> len(data), recon.shape
(2, (2, 33, 47, 3))
>>> bool((codec.decompress(data, (33, 47)) == recon).all())
True

Registered codecs and quality scales (higher is better):

====================  =======  ==================================================================
name                  quality  meaning
====================  =======  ==================================================================
png                   1        lossless RGB (reference)
hevc-intra            1..12    x265 all-intra, QP = 54 - 3q, Y'CbCr 4:4:4 8-bit
hevc-ld               1..12    x265 low-delay P over the keyframes (groups of 32), as hevc-intra
hevc-ra               1..34    x265 random access (B pictures) over the keyframes, CRF = 52 - q
hevc-ra-long          1..34    hevc-ra in groups of 256: keyframe-only files (every frame)
vvc-intra             1..12    vvenc all-intra, QP = 54 - 3q, Y'CbCr 4:2:0 10-bit
avif                  1..12    libaom AV1 all-intra, cq-level = 66 - 5q, Y'CbCr 4:4:4 8-bit
bmshj2018-factorized  1..8     CompressAI zoo quality, mse
bmshj2018-hyperprior  1..8     CompressAI zoo quality, mse
mbt2018-mean          1..8     CompressAI zoo quality, mse
cheng2020-anchor      1..6     CompressAI zoo quality, mse (the paper's codec)
====================  =======  ==================================================================
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from pathlib import Path

from bitstream import ids
from dnerv_codec.errors import InputError
from dnerv_codec.keyframe.base import KeyframeCodec, KeyframeCodecError
from dnerv_codec.keyframe.classical import (
    FINE_QUALITIES,
    LOSSY_QUALITIES,
    AvifIntra,
    HevcIntra,
    HevcLowDelay,
    HevcRandomAccess,
    HevcRandomAccessLong,
    PngCodec,
    VvcIntra,
)

# Chosen by benchmarks/bitstream/keyframe_bench.py among codecs that need no downloaded weights:
# fewest bits at PSNR-RGB 33-38 dB on both sample clips among codecs encoding a 720p keyframe in
# <= 2 s; q8 (QP 30) is the lowest quality at >= 35 dB on them. See benchmarks/RESULTS.md,
# "Keyframe codecs".
DEFAULT_CODEC = "hevc-intra"
DEFAULT_QUALITY = 8

# need no weights
CLASSICAL_CODECS = ("png", "hevc-intra", "vvc-intra", "avif", "hevc-ld", "hevc-ra", "hevc-ra-long")

_Factory = Callable[[int, "str | Path | None", str], KeyframeCodec]
_REGISTRY: dict[str, tuple[tuple[int, int], _Factory]] = {}


def register(name: str, qualities: tuple[int, int], factory: _Factory) -> None:
    """Add a codec; its name must have an id in ``bitstream.ids.KEYFRAME_CODECS``."""
    if name in _REGISTRY:
        raise ValueError(f"keyframe codec {name!r} is already registered")
    ids.id_of(ids.KEYFRAME_CODECS, name)  # KeyError if it has no on-disk id
    _REGISTRY[name] = (qualities, factory)


def _classical(cls: type) -> _Factory:
    return lambda quality, weights, device: cls(quality)


def _learned(name: str) -> _Factory:
    def make(quality: int, weights: str | Path | None, device: str) -> KeyframeCodec:
        from dnerv_codec.keyframe.learned import CompressAICodec  # imports torch + compressai

        return CompressAICodec(name, quality, weights=weights, device=device)

    return make


register("png", (1, 1), _classical(PngCodec))
register("hevc-intra", LOSSY_QUALITIES, _classical(HevcIntra))
register("vvc-intra", LOSSY_QUALITIES, _classical(VvcIntra))
register("avif", LOSSY_QUALITIES, _classical(AvifIntra))
register("hevc-ld", LOSSY_QUALITIES, _classical(HevcLowDelay))
register("hevc-ra", FINE_QUALITIES, _classical(HevcRandomAccess))
register("hevc-ra-long", FINE_QUALITIES, _classical(HevcRandomAccessLong))
for _name, _q in [
    ("bmshj2018-factorized", (1, 8)),
    ("bmshj2018-hyperprior", (1, 8)),
    ("mbt2018-mean", (1, 8)),
    ("cheng2020-anchor", (1, 6)),
]:
    register(_name, _q, _learned(_name))


def every_frame_codec(name: str, longest: int) -> str:
    """The codec a keyframe-only file uses for keyframe codec ``name`` when its longest video
    has ``longest`` frames: ``hevc-ra-long`` for ``hevc-ra`` where a video is longer than one
    ``hevc-ra`` group (its longer groups save the IDR pictures), else ``name`` itself."""
    if name == HevcRandomAccess.name and longest > HevcRandomAccess.group:
        return HevcRandomAccessLong.name
    return name


def keyframe_only(name: str) -> bool:
    """Whether codec ``name`` codes keyframe-only files only (a file with a network MUST NOT
    use it: docs/FORMAT.md, "Keyframe codecs")."""
    return ids.id_of(ids.KEYFRAME_CODECS, name) in ids.KEYFRAME_ONLY_CODECS


def available() -> list[str]:
    """Names of the registered keyframe codecs, in on-disk id order."""
    return sorted(_REGISTRY, key=lambda n: ids.id_of(ids.KEYFRAME_CODECS, n))


def quality_range(name: str) -> tuple[int, int]:
    """Inclusive ``(lo, hi)`` quality range of codec ``name``; raises InputError if unknown."""
    return _lookup(name)[0]


def codec_name(codec_id: int) -> str:
    """Registered name of on-disk keyframe codec id ``codec_id``; raises InputError if unknown."""
    name = ids.KEYFRAME_CODECS.get(int(codec_id))
    if name is None or name not in _REGISTRY:
        raise InputError(f"unknown keyframe codec id {codec_id}")
    return name


def get_codec(
    name: str,
    quality: int,
    *,
    weights: str | Path | None = None,
    device: str = "cpu",
) -> KeyframeCodec:
    """The keyframe codec ``name`` at ``quality``.

    Args:
        name: one of :func:`available`.
        quality: integer in :func:`quality_range` ``(name)``, higher is better.
        weights: learned codecs only: a state-dict file, or ``"random:SEED"`` for a randomly
            initialised model (tests); ``None`` looks in the torch hub cache, then downloads.
        device: accepted for the caller's convenience; learned codecs always code on CPU.

    Raises:
        InputError: unknown name, quality out of range, or weights given to a classical codec.
        WeightsError: a learned codec's weights cannot be found or loaded.
    """
    (lo, hi), factory = _lookup(name)
    if isinstance(quality, bool) or not isinstance(quality, numbers.Integral):
        raise InputError(f"keyframe codec {name}: quality {quality!r} is not an integer")
    if not lo <= int(quality) <= hi:
        raise InputError(f"keyframe codec {name}: quality {quality!r} is not in {lo}..{hi}")
    quality = int(quality)
    if weights is not None and name in CLASSICAL_CODECS:
        raise InputError(f"keyframe codec {name} takes no weights (got {weights})")
    return factory(quality, weights, device)


def weights_present(name: str, quality: int) -> bool:
    """True if pretrained weights of learned codec ``name`` at ``quality`` are in the hub cache.

    Lets a caller prefer a learned codec where its weights were installed; always False for
    classical codecs (they need none). Never downloads anything.
    """
    lo, hi = quality_range(name)
    if name in CLASSICAL_CODECS or not lo <= quality <= hi:
        return False
    from dnerv_codec.keyframe.weights import hub_cache_path

    return hub_cache_path(name, quality).is_file()


def _lookup(name: str) -> tuple[tuple[int, int], _Factory]:
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise InputError(
            f"unknown keyframe codec {name!r}; choose one of {', '.join(available())}"
        ) from None


__all__ = [
    "CLASSICAL_CODECS",
    "DEFAULT_CODEC",
    "DEFAULT_QUALITY",
    "KeyframeCodec",
    "KeyframeCodecError",
    "available",
    "codec_name",
    "every_frame_codec",
    "get_codec",
    "keyframe_only",
    "quality_range",
    "register",
    "weights_present",
]
