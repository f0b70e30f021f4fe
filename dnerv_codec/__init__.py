"""dnerv-codec: a video-set codec built on D-NeRV (He et al., CVPR 2023, arXiv 2303.14124).

Layers (see docs/ARCHITECTURE.md): ``bitstream`` (container and entropy coding, no torch),
``dnerv_codec.model`` (the network), ``dnerv_codec.keyframe`` (image codecs for keyframes),
the encoder and decoder that join them, metrics and rate-distortion evaluation, and the CLI.

The top-level functions are imported lazily so that ``import dnerv_codec`` stays cheap:

- ``dnerv_codec.encode(inputs, output, **options) -> EncodeReport``
- ``dnerv_codec.decode(path, outdir, **options) -> dict``
- ``dnerv_codec.open(path) -> DnervFile`` (``.videos``, ``.frames(video, start, stop)``)
- ``dnerv_codec.ClipDataset(path)``: decoded clips as a torch Dataset
"""

from __future__ import annotations

from dnerv_codec._version import __version__

_LAZY = {
    "encode": "dnerv_codec.encoder",
    "EncodeReport": "dnerv_codec.encoder",
    "decode": "dnerv_codec.decoding",
    "open": "dnerv_codec.decoder",
    "DnervFile": "dnerv_codec.decoder",
    "ClipDataset": "dnerv_codec.decoding",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'dnerv_codec' has no attribute {name!r}")
