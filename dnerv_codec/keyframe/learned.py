"""Learned keyframe codecs from the CompressAI zoo (mse-trained), run on CPU in float32.

Cross-device safety (CompressAI issues 235, 279, 309, 320): hyperprior and autoregressive models
compute entropy parameters with floating point, and a 1-ulp difference between encoder and decoder
desynchronises the range decoder. So both ends run on CPU, float32, one thread, with deterministic
algorithms; the integer CDF tables of a checkpoint are kept as shipped; the weights digest covers
those tables; and after encoding, the bitstream is decoded once and must reproduce the encoder's
reconstruction exactly (else :class:`CodecMismatchError`). The encoder's reconstruction is the
non-entropy forward pass for the factorized, hyperprior and mean-scale models (quantisation is
``round(y - mu) + mu`` in both paths), and for the autoregressive cheng2020-anchor, whose serial
quantisation only the decoding path reproduces, the first of two decodes that must agree.

Bytes per keyframe: for a model with k latent strings (factorized 1, others 2), the lengths of the
first k-1 strings as LEB128 varints, then the strings. Latent shapes follow from ``(H, W)``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from bitstream import ids
from dnerv_codec.errors import CodecMismatchError, FormatError
from dnerv_codec.keyframe import weights as weights_mod
from dnerv_codec.keyframe.base import KeyframeCodec, check_data, check_frames, check_size

PAD = 64  # all four architectures downsample by 64 in total (16 for the factorized latent)

# name -> (qualities, number of latent strings, latent downsampling, autoregressive)
LEARNED: dict[str, tuple[tuple[int, int], int, int, bool]] = {
    "bmshj2018-factorized": ((1, 8), 1, 16, False),
    "bmshj2018-hyperprior": ((1, 8), 2, 64, False),
    "mbt2018-mean": ((1, 8), 2, 64, False),
    "cheng2020-anchor": ((1, 6), 2, 64, True),
}


@contextlib.contextmanager
def deterministic_cpu() -> Iterator[None]:
    """One thread, deterministic algorithms, no autograd; restores the previous settings."""
    threads = torch.get_num_threads()
    det = torch.are_deterministic_algorithms_enabled()
    warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        with torch.inference_mode():
            yield
    finally:
        torch.use_deterministic_algorithms(det, warn_only=warn)
        torch.set_num_threads(threads)


class CompressAICodec(KeyframeCodec):
    """One CompressAI zoo model at one quality; see the module docstring for the guarantees."""

    def __init__(
        self,
        name: str,
        quality: int,
        *,
        weights: str | Path | None = None,
        device: str = "cpu",
    ) -> None:
        super().__init__(quality)
        self.name = name
        self.codec_id = ids.id_of(ids.KEYFRAME_CODECS, name)
        _, self.n_strings, self.latent_factor, self.autoregressive = LEARNED[name]
        self.device = device  # accepted for symmetry; coding always runs on CPU (see above)
        self.model = weights_mod.build_model(name, quality, weights)
        self.weights_digest = weights_mod.digest(self.model)

    # -- helpers ---------------------------------------------------------------------------------
    def _to_tensor(self, frame: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(frame).permute(2, 0, 1)[None].float().div_(255.0)  # (1, 3, H, W)
        h, w = frame.shape[:2]
        return F.pad(x, (0, -w % PAD, 0, -h % PAD), mode="replicate")  # (1, 3, Hp, Wp)

    @staticmethod
    def _to_uint8(x_hat: torch.Tensor, h: int, w: int) -> np.ndarray:
        x = x_hat[0, :, :h, :w].clamp(0.0, 1.0).mul(255.0).round()  # (3, h, w)
        return x.to(torch.uint8).permute(1, 2, 0).contiguous().numpy()

    def _latent_shape(self, h: int, w: int) -> tuple[int, int]:
        hp, wp = h + (-h % PAD), w + (-w % PAD)
        return hp // self.latent_factor, wp // self.latent_factor

    def _pack(self, strings: list[list[bytes]]) -> bytes:
        parts = [s[0] for s in strings]
        if len(parts) != self.n_strings:
            raise CodecMismatchError(f"{self.name}: model returned {len(parts)} strings")
        return b"".join(_varint(len(p)) for p in parts[:-1]) + b"".join(parts)

    def _unpack(self, blob: bytes) -> list[list[bytes]]:
        lengths, pos = [], 0
        for _ in range(self.n_strings - 1):
            value, pos = _read_varint(blob, pos)
            lengths.append(value)
        if sum(lengths) > len(blob) - pos:
            raise FormatError(f"{self.name} keyframe: string lengths exceed the data")
        parts = []
        for n in lengths:
            parts.append(blob[pos : pos + n])
            pos += n
        parts.append(blob[pos:])
        return [[p] for p in parts]

    def _decode_one(self, blob: bytes, h: int, w: int) -> np.ndarray:
        strings = self._unpack(blob)
        try:
            x_hat = self.model.decompress(strings, list(self._latent_shape(h, w)))["x_hat"]
        except (RuntimeError, ValueError, IndexError) as exc:
            raise FormatError(f"{self.name} keyframe cannot be decoded: {exc}") from None
        return self._to_uint8(x_hat, h, w)

    # -- interface -------------------------------------------------------------------------------
    def compress_with_reconstruction(self, frames: np.ndarray) -> tuple[list[bytes], np.ndarray]:
        frames = check_frames(frames)
        _, h, w, _ = frames.shape
        data, recon = [], np.empty_like(frames)
        with deterministic_cpu():
            for i, frame in enumerate(frames):
                x = self._to_tensor(frame)
                blob = self._pack(self.model.compress(x)["strings"])
                decoded = self._decode_one(blob, h, w)
                if self.autoregressive:
                    reference = self._decode_one(blob, h, w)
                else:
                    reference = self._to_uint8(self.model(x)["x_hat"], h, w)
                if not np.array_equal(decoded, reference):
                    bad = int(np.count_nonzero(decoded != reference))
                    raise CodecMismatchError(
                        f"{self.name} q{self.quality}: keyframe {i} decodes differently from the "
                        f"encoder's reconstruction ({bad} samples differ); not writing it"
                    )
                data.append(blob)
                recon[i] = decoded
        return data, recon

    def decompress(self, data: list[bytes], size: tuple[int, int]) -> np.ndarray:
        data = check_data(data)
        h, w = check_size(size)
        with deterministic_cpu():
            return np.stack([self._decode_one(blob, h, w) for blob in data])


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _read_varint(blob: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(blob) or shift > 35:
            raise FormatError("learned keyframe: bad string length")
        byte = blob[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        shift += 7
        if not byte & 0x80:
            return value, pos
