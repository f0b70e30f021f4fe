"""The preset dictionaries of the metadata-dict section (type 8, format 1.4).

A metadata section of a few hundred bytes is mostly key names and structure that every file
repeats; DEFLATE cannot find repeats in so short an input, but it can when its window starts
primed with a dictionary that holds them (RFC 1951's preset dictionary, zlib's ``zdict``). A
dictionary is the metadata encoding (docs/FORMAT.md 5.1) of a fixed template value, so it is
written down as values, not bytes. Dictionaries are append-only, like the ids of
:mod:`bitstream.ids`: once released, a dictionary's bytes never change (tests pin their SHA-256).

Dictionary 1 is a file with a network followed by a keyframe-only file (docs/FORMAT.md 5.7); the
keyframe-only template comes last, nearest the data, because those files are the smallest and
their metadata is the largest share of them.
"""

from __future__ import annotations

# Dictionary 1: a file with a network, as the encoder writes its metadata (key order included).
# The numbers are round, typical values; only the structure and the strings matter.
_NETWORK_1 = {
    "encoder": "dnerv-codec 1.0.0",
    "videos": [
        {
            "name": "video",
            "frames": 300,
            "width": 1280,
            "height": 720,
            "fps_num": 30,
            "fps_den": 1,
            "keyframes": b"\x04\x04\x04\x04",
        }
    ],
    "clip_length": 4,
    "geometry": {"mode": "patches", "patch_h": 384, "patch_w": 640},
    "model": {
        "arch": 1,
        "config": {
            "arch": "dnerv",
            "version": 1,
            "clip_length": 4,
            "expansion": 1.0,
            "lower_width": 16,
            "encoder_dim": 16,
            "embed_base": 1.25,
            "embed_levels": 32,
            "stem_hidden": 32,
            "rgb_skip": True,
            "head_hidden": 0,
            "flow_cascade": False,
            "mean": [0.5, 0.5, 0.5],
            "std": [0.25, 0.25, 0.25],
            "frame_size": [384, 640],
            "fc_dim": 16,
            "fc_hw": [12, 20],
            "strides": [2, 2, 2, 2, 2],
        },
    },
    "norm": {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]},
    "keyframe": {"codec": 10, "name": "hevc-ra", "quality": 20, "weights_digest": ""},
    "quant": {"bits": 6, "scheme": "symmetric", "prune": 0.0, "preset": "compact"},
}

# ... then a keyframe-only file (docs/FORMAT.md 5.5).
_KEYFRAME_ONLY_1 = {
    "encoder": "dnerv-codec 1.0.0",
    "videos": [
        {"name": "video", "frames": 300, "width": 1280, "height": 720, "fps_num": 30, "fps_den": 1}
    ],
    "clip_length": 1,
    "keyframe": {"codec": 10, "name": "hevc-ra", "quality": 20, "weights_digest": ""},
}

# id -> the template values whose metadata encodings, concatenated, are the dictionary
TEMPLATES: dict[int, tuple[dict, ...]] = {
    1: (_NETWORK_1, _KEYFRAME_ONLY_1),
}
WRITTEN = 1  # the dictionary the reference writer uses
