"""A small, deterministic, plausible container: the golden file of the tests, the input of the
``dnerv info`` tests and of the container-overhead benchmark. Its metadata follows the schema
the encoder writes (a complete ``dnerv`` configuration, the ``patches`` geometry); its weights
section is two illustrative records, not that network's tensors. Every value is fixed here (no
random numbers, no floats computed at run time), so the bytes never change unless the format does.
"""

from __future__ import annotations

import numpy as np

from bitstream.container import ContainerWriter
from bitstream.ids import ARCHITECTURES, KEYFRAME_CODECS, SECTION_TYPES, id_of
from bitstream.keyframes import pack_keyframes
from bitstream.meta import encode_meta
from bitstream.weights import WeightRecord, pack_weights

METADATA, KEYFRAMES, WEIGHTS = (
    id_of(SECTION_TYPES, n) for n in ("metadata", "keyframes", "weights")
)


def sample_metadata(frames: int = 16, width: int = 320, height: int = 180) -> dict:
    """The metadata dict an encoder writes for one video (schema in docs/FORMAT.md)."""
    return {
        "encoder": "dnerv-codec 0.1.0",
        "videos": [
            {
                "name": "bbb_320x180",
                "frames": frames,
                "width": width,
                "height": height,
                "fps_num": 25,
                "fps_den": 1,
            }
        ],
        "clip_length": 8,
        "geometry": {"mode": "patches", "patch_h": 192, "patch_w": 320},
        "model": {
            "arch": id_of(ARCHITECTURES, "dnerv"),
            "config": {
                "arch": "dnerv",
                "version": 1,
                "clip_length": 8,
                "expansion": 1.0,
                "lower_width": 4,
                "encoder_dim": 4,
                "embed_base": 1.25,
                "embed_levels": 32,
                "stem_hidden": 8,
                "rgb_skip": True,
                "head_hidden": 0,
                "flow_cascade": False,
                "mean": [0.5, 0.5, 0.5],
                "std": [0.25, 0.25, 0.25],
                "frame_size": [192, 320],
                "fc_dim": 4,
                "fc_hw": [6, 10],
                "strides": [2, 2, 2, 2, 2],
            },
        },
        "norm": {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]},
        "keyframe": {
            "codec": id_of(KEYFRAME_CODECS, "png"),
            "name": "png",
            "quality": 0,
            "weights_digest": "",
        },
        "quant": {"bits": 8, "prune": 0.0, "scheme": "affine", "axis": 0},
    }


def sample_records() -> list[WeightRecord]:
    """Two tensors: an 8-bit per-channel affine conv weight and a float16 bias."""
    symbols = (np.arange(4 * 3 * 3 * 3, dtype=np.int64) * 37 % 251).reshape(4, 3, 3, 3)
    conv = WeightRecord(
        name="decoder.0.conv.weight",
        shape=(4, 3, 3, 3),
        scheme="affine",
        bits=8,
        axis=0,
        scale=np.array([0.0078125, 0.00390625, 0.001953125, 0.015625], dtype=np.float32),
        offset=np.array([-1.0, -0.5, -0.25, -2.0], dtype=np.float32),
        symbols=symbols,
    )
    bias = WeightRecord(
        name="decoder.0.conv.bias",
        shape=(4,),
        scheme="float16",
        bits=16,
        values=np.array([0.5, -0.25, 0.125, 1.0], dtype=np.float16),
    )
    return [conv, bias]


def sample_sections(frames: int = 16) -> list[tuple[int, bytes]]:
    """(type id, payload) of the sample container, in order."""
    keyframes = {(0, k): bytes([0x89, 0x50, 0x4E, 0x47, k]) * 3 for k in range(frames // 8 + 1)}
    return [
        (METADATA, encode_meta(sample_metadata(frames))),
        (KEYFRAMES, pack_keyframes(keyframes)),
        (WEIGHTS, pack_weights(sample_records())),
    ]


def sample_container(frames: int = 16) -> bytes:
    """The whole sample container."""
    writer = ContainerWriter()
    for type_id, payload in sample_sections(frames):
        writer.add(type_id, payload)
    return writer.finish()
