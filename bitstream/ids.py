"""Every id that is written to disk, in one place.

These tables are append-only: an id, once released, keeps its meaning forever. Never renumber,
never reuse a retired id, never derive an id from dict order or enum auto-numbering. Each table
maps the on-disk integer to a stable name; ``docs/FORMAT.md`` repeats them normatively.
"""

from __future__ import annotations

# Section types of the container (u16 on disk).
SECTION_TYPES: dict[int, str] = {
    1: "metadata",
    2: "keyframes",
    3: "weights",
    4: "weights-compact",
    5: "weights-packed",
    6: "metadata-deflate",
    7: "keyframes-compact",
    8: "metadata-dict",
}
# The format minor version that introduced each section type (others: 1.0).
SECTION_SINCE_MINOR: dict[int, int] = {4: 1, 5: 2, 6: 2, 7: 3, 8: 4}

# Keyframe codecs (u16 on disk, also stored in metadata).
KEYFRAME_CODECS: dict[int, str] = {
    1: "png",
    2: "hevc-intra",
    3: "vvc-intra",
    4: "avif",
    5: "bmshj2018-factorized",
    6: "bmshj2018-hyperprior",
    7: "mbt2018-mean",
    8: "cheng2020-anchor",
    9: "hevc-ld",
    10: "hevc-ra",
    11: "hevc-ra-long",
}
# Keyframe codecs a file with a network MUST NOT use (their groups are for every frame).
KEYFRAME_ONLY_CODECS: frozenset[int] = frozenset({11})
# The format minor version that introduced each keyframe codec (others: 1.0 or 1.1).
KEYFRAME_CODEC_SINCE_MINOR: dict[int, int] = {9: 1, 10: 1, 11: 5}

# Network architectures (stored in metadata).
ARCHITECTURES: dict[int, str] = {
    1: "dnerv",
}

# Weight quantisation schemes (u8 on disk).
QUANT_SCHEMES: dict[int, str] = {
    0: "float32",
    1: "float16",
    2: "affine",
    3: "symmetric",
}

# Entropy models of bitstream.entropy (u8 on disk).
ENTROPY_MODELS: dict[int, str] = {
    0: "raw",
    1: "constant",
    2: "categorical",
    3: "laplace",
    4: "gaussian",
}


def id_of(table: dict[int, str], name: str) -> int:
    """Return the on-disk id of ``name`` in ``table``; raises KeyError for unknown names."""
    for key, value in table.items():
        if value == name:
            return key
    raise KeyError(name)


def _check_unique(table: dict[int, str]) -> None:
    names = list(table.values())
    if len(set(names)) != len(names):
        raise RuntimeError("duplicate name in an on-disk id table")


for _table in (SECTION_TYPES, KEYFRAME_CODECS, ARCHITECTURES, QUANT_SCHEMES, ENTROPY_MODELS):
    _check_unique(_table)
