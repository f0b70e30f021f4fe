"""The keyframe codec interface shared by every registered codec, and input checks.

A keyframe codec turns ``N`` RGB frames of one size into ``N`` byte strings (one per frame) and
back; ``decompress`` needs nothing but the strings and the frame size ``(H, W)``. Strings decode in
*groups* of :attr:`KeyframeCodec.group` consecutive frames (the last group of a video may be
shorter): an intra codec has groups of 1, so every string decodes on its own; a predictive codec
must be given a run of strings that starts at a group boundary, in order (``hevc-ld``), or a
whole group (``hevc-ra`` and ``hevc-ra-long``, whose strings are in decoding order). The decoder
fetches whole groups for random access.

>>> from dnerv_codec.keyframe import get_codec
>>> codec = get_codec("png", 1)
>>> frames = np.zeros((2, 5, 7, 3), dtype=np.uint8)
>>> data = codec.compress(frames)
>>> bool((codec.decompress(data, (5, 7)) == frames).all())
True
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator

import numpy as np

from bitstream import meta
from dnerv_codec.errors import DnervError, FormatError, InputError, WeightsError
from dnerv_codec.memory import trim

MAX_SIDE = meta.MAX_SIDE  # refuse frame sizes beyond the format's limit before allocating


class KeyframeCodecError(DnervError, RuntimeError):
    """An external codec (ffmpeg, CompressAI) failed while encoding valid input."""


CHUNK_PICTURES = 32  # keyframes compressed at a time (rounded to whole groups)


class KeyframeCodec(ABC):
    """One image codec at one quality, with the weights it uses (if any).

    Attributes:
        name: registered name, e.g. ``"hevc-intra"``.
        codec_id: on-disk id from ``bitstream.ids.KEYFRAME_CODECS``.
        quality: integer quality, higher is better, within ``quality_range(name)``.
        weights_digest: sha256 hex of the weights (learned codecs), ``""`` for classical ones.
        group: frames per independently decodable group (1: every frame is intra coded). Frame
            ``k`` of a video is decodable from the strings ``k - k % group`` .. ``k``.
    """

    name: str = ""
    codec_id: int = 0
    group: int = 1

    def __init__(self, quality: int) -> None:
        self.quality = int(quality)
        self.weights_digest = ""

    def __repr__(self) -> str:
        digest = f", weights={self.weights_digest[:12]}" if self.weights_digest else ""
        return f"<{type(self).__name__} {self.name} q{self.quality}{digest}>"

    # -- the interface -------------------------------------------------------------------------
    def compress(self, frames: np.ndarray) -> list[bytes]:
        """Encode uint8 frames ``(N, H, W, 3)``; one self-contained byte string per frame."""
        return self.compress_with_reconstruction(frames)[0]

    @abstractmethod
    def compress_with_reconstruction(self, frames: np.ndarray) -> tuple[list[bytes], np.ndarray]:
        """Encode, and return the bytes with exactly what :meth:`decompress` will give for them.

        Raises:
            InputError: frames are not uint8 ``(N, H, W, 3)`` with N >= 1.
            CodecMismatchError: (learned codecs) the bitstream did not decode to the encoder's
                reconstruction.
        """

    def compress_in_chunks(
        self, frames: np.ndarray, indices: np.ndarray, into: np.ndarray | None = None
    ) -> list[bytes]:
        """Compress ``frames[indices]`` a few whole groups at a time (memory: one chunk of
        pictures, however many keyframes a long video has), writing the reconstructions into
        ``into`` (``(len(indices), H, W, 3)`` uint8, e.g. a memory map) when given. Groups are
        coded independently, so the strings are those of one call on all the frames."""
        data: list[bytes] = []
        for start in range(0, len(indices), self.per_chunk):
            part = np.asarray(frames[indices[start : start + self.per_chunk]])
            strings, recon = self.compress_with_reconstruction(part)
            data.extend(strings)
            if into is not None:
                into[start : start + len(part)] = recon
            del part, recon
            trim()
        return data

    @property
    def per_chunk(self) -> int:
        """Keyframes coded or decoded at a time: about CHUNK_PICTURES, in whole groups."""
        return self.group * max(1, CHUNK_PICTURES // self.group)

    def decompress_in_chunks(
        self, data: list[bytes], size: tuple[int, int], into: np.ndarray | None = None
    ) -> np.ndarray:
        """:meth:`decompress` a few whole groups at a time into ``into`` (``(len(data), H, W,
        3)`` uint8, e.g. a memory map; a new array when None), which is returned."""
        if into is None:
            into = np.empty((len(data), *size, 3), np.uint8)
        for start in range(0, len(data), self.per_chunk):
            part = data[start : start + self.per_chunk]
            for i, picture in enumerate(self.iter_decompress(part, size), start):
                into[i] = picture
            trim()
        return into

    @abstractmethod
    def decompress(self, data: list[bytes], size: tuple[int, int]) -> np.ndarray:
        """Decode byte strings to uint8 frames ``(N, H, W, 3)`` of size ``size = (H, W)``.

        ``data`` starts at a group boundary (see :attr:`group`) and is in coding order.

        Raises:
            FormatError: a string is not a valid keyframe of this codec at this size.
        """

    def iter_decompress(self, data: list[bytes], size: tuple[int, int]) -> Iterator[np.ndarray]:
        """The frames of :meth:`decompress`, one at a time, in order. The ffmpeg codecs hold one
        decoded picture at a time however long the group (stopping early stops the decoder);
        others decode ``data`` at once."""
        yield from self.decompress(data, size)

    def check_weights(self, digest: str) -> None:
        """Refuse to decode a file whose keyframes were coded with other weights.

        Raises:
            WeightsError: ``digest`` (from the file) differs from :attr:`weights_digest`.
        """
        if digest != self.weights_digest:
            have = self.weights_digest[:16] or "none (classical codec)"
            want = digest[:16] or "none (classical codec)"
            raise WeightsError(
                f"keyframes were coded with {self.name} weights {want}..., but the loaded weights "
                f"are {have}...; pass the same weights file with --keyframe-weights"
            )


def check_frames(frames: np.ndarray) -> np.ndarray:
    """Validate uint8 RGB frames ``(N, H, W, 3)``; returns them C-contiguous."""
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8:
        raise InputError(f"keyframes must be a uint8 numpy array, got {_describe(frames)}")
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] < 1:
        raise InputError(f"keyframes must have shape (N>=1, H, W, 3), got {frames.shape}")
    check_size(frames.shape[1:3])
    return np.ascontiguousarray(frames)


def check_size(size: tuple[int, int]) -> tuple[int, int]:
    """Validate a frame size ``(H, W)``; returns it as two ints."""
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError):
        raise InputError(f"frame size must be (H, W), got {size!r}") from None
    if not (1 <= h <= MAX_SIDE and 1 <= w <= MAX_SIDE):
        raise InputError(f"frame size {h}x{w} (HxW) is out of range 1..{MAX_SIDE}")
    return h, w


def check_data(data: list[bytes]) -> list[bytes]:
    """Validate the list of byte strings handed to ``decompress``."""
    if not isinstance(data, (list, tuple)) or not data:
        raise FormatError("keyframe data must be a non-empty list of byte strings")
    if not all(isinstance(d, (bytes, bytearray, memoryview)) and len(d) > 0 for d in data):
        raise FormatError("every keyframe must be a non-empty byte string")
    return [bytes(d) for d in data]


def _describe(x: object) -> str:
    if isinstance(x, np.ndarray):
        return f"{x.dtype} array of shape {x.shape}"
    return type(x).__name__
