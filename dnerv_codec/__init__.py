"""dnerv-codec: a video-set codec built on D-NeRV (He et al., CVPR 2023, arXiv 2303.14124).

Layers (see docs/ARCHITECTURE.md): ``bitstream`` (container and entropy coding, no torch),
``dnerv_codec.model`` (the network), ``dnerv_codec.keyframe`` (image codecs for keyframes),
the encoder and decoder that join them, metrics and rate-distortion evaluation, and the CLI.
Heavy modules are imported lazily so that ``import dnerv_codec`` stays cheap.
"""

from __future__ import annotations

from dnerv_codec._version import __version__

__all__ = ["__version__"]
