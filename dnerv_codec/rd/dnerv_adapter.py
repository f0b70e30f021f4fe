"""The ``dnerv`` entry of the rate-distortion registry: encode a set, decode the written file.

Quality is a target rate in bits per pixel (``0.05``, ``0.1``, ...): the encoder's rate control
(:mod:`dnerv_codec.ratecontrol`) sizes the model and keyframes and lands the file within 5 % below
it, so the curve spans the bpp range of x264/x265. A network preset name (``tiny``, ``small``,
...) instead encodes that fixed preset without rate control. Any option of
:func:`dnerv_codec.encode` can be passed (``epochs``, ``time_budget``, ``keyframe_codec``,
``keyframe_quality``, ``prune``, ``quant_bits``...). The rate is the size of the written .dnerv
file; the frames are those a fresh decoder reads back from it.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dnerv_codec.errors import InputError
from dnerv_codec.rd.registry import Codec, combine, rate_point
from dnerv_codec.video import Video


class DnervCodec(Codec):
    name = "dnerv"
    description = "D-NeRV (He et al., CVPR 2023) with a real .dnerv bitstream"
    default_qualities = (0.02, 0.05, 0.1, 0.2, 0.4)
    quality_help = "a target bpp (rate control), or a network preset name (fixed size)"
    joint = True

    def parse_quality(self, text: str) -> float | str:
        text = text.strip()
        try:
            return float(text)
        except ValueError:
            return text

    def check(self, quality: Any, **options: Any) -> None:
        from dnerv_codec.encoder import EncodeOptions
        from dnerv_codec.model import preset_names

        if isinstance(quality, (int, float)) and not isinstance(quality, bool):
            if not quality > 0:
                raise InputError(f"dnerv: target bpp must be positive, got {quality}")
        elif quality not in preset_names():
            raise InputError(
                f"dnerv: quality {quality!r} is neither a target bpp nor a preset; "
                f"presets: {preset_names()}"
            )
        fields = set(EncodeOptions.__dataclass_fields__)
        unknown = sorted(set(options) - fields)
        if unknown:
            raise InputError(f"dnerv: unknown option(s) {', '.join(unknown)}")

    def label(self, **options: Any) -> str:
        extra = ", ".join(f"{k}={v}" for k, v in sorted(options.items()))
        return f"dnerv ({extra})" if extra else "dnerv"

    def evaluate(self, video: Video, quality: Any, **options: Any) -> dict[str, Any]:
        return self.evaluate_set([video], quality, **options)

    def evaluate_set(self, videos: Sequence[Video], quality: Any, **options: Any) -> dict[str, Any]:
        from dnerv_codec.decoder import DnervFile
        from dnerv_codec.encoder import encode

        options = {"quiet": True, **options, "verify": False, "force": True}
        with tempfile.TemporaryDirectory(prefix="dnerv-rd-") as tmp:
            path = Path(tmp) / "set.dnerv"
            began = time.monotonic()
            if isinstance(quality, str):
                report = encode(list(videos), path, preset=quality, **options)
            else:
                report = encode(list(videos), path, target_bpp=float(quality), **options)
            encoding_time = time.monotonic() - began
            size = path.stat().st_size
            began = time.monotonic()
            with DnervFile(path, device=options.get("device", "auto")) as f:
                decoded = [np.stack(list(f.frames(v))) for v in range(len(videos))]
            decoding_time = time.monotonic() - began
        pixels = [v.num_frames * v.width * v.height for v in videos]
        shares = [size * p // sum(pixels) for p in pixels]
        shares[-1] += size - sum(shares)  # the shares add up to the file size exactly
        points = [
            rate_point(
                self.name,
                quality,
                video,
                recon,
                share,
                encoding_time * p / sum(pixels),
                decoding_time * p / sum(pixels),
            )
            for video, recon, share, p in zip(videos, decoded, shares, pixels, strict=True)
        ]
        result = combine(points)
        result["dnerv"] = {  # what the bits are made of, for benchmarks
            "weight_bytes": report.weight_bytes,
            "keyframe_bytes": report.keyframe_bytes,
            "overhead_bytes": report.overhead_bytes,
            "parameters": report.parameters,
            "epochs": report.epochs,
            "train_seconds": round(report.train_seconds, 1),
            "rate": report.rate,
            "structure": report.structure,  # "keyframes": the keyframe-only file was kept
            "alternative": report.alternative,
        }
        return result
