"""The .dnerv container and the entropy coding of integer symbols.

This package imports numpy and constriction only, never torch: a .dnerv file can be
inspected, validated and entropy-decoded without a deep-learning framework. The normative
description of the bytes is ``docs/FORMAT.md``.
"""

from bitstream.container import (
    MAGIC,
    VERSION,
    ContainerReader,
    ContainerWriter,
    SectionEntry,
    write_container,
)
from bitstream.entropy import decode_symbols, describe, encode_symbols
from bitstream.errors import (
    ChecksumError,
    DnervError,
    FormatError,
    LimitError,
    OutputExistsError,
    TruncatedError,
    UnsupportedVersionError,
)
from bitstream.keyframes import KeyframeIndex, pack_keyframes, unpack_keyframes
from bitstream.meta import (
    decode_meta,
    deflate_meta,
    dict_meta,
    encode_meta,
    inflate_meta,
    read_metadata,
    undict_meta,
    validate_metadata,
)
from bitstream.weights import (
    WeightRecord,
    dequantize,
    describe_weights,
    pack_weights,
    pack_weights_compact,
    quantize,
    unpack_weights,
    unpack_weights_compact,
)
from bitstream.weights_packed import (
    describe_weights_packed,
    pack_weights_packed,
    packable,
    unpack_weights_packed,
)

__all__ = [
    "MAGIC",
    "VERSION",
    "ChecksumError",
    "ContainerReader",
    "ContainerWriter",
    "DnervError",
    "FormatError",
    "KeyframeIndex",
    "LimitError",
    "OutputExistsError",
    "SectionEntry",
    "TruncatedError",
    "UnsupportedVersionError",
    "WeightRecord",
    "decode_meta",
    "deflate_meta",
    "decode_symbols",
    "dict_meta",
    "dequantize",
    "describe",
    "describe_weights",
    "describe_weights_packed",
    "encode_meta",
    "encode_symbols",
    "inflate_meta",
    "pack_keyframes",
    "pack_weights",
    "pack_weights_compact",
    "pack_weights_packed",
    "packable",
    "quantize",
    "read_metadata",
    "undict_meta",
    "unpack_keyframes",
    "unpack_weights",
    "unpack_weights_compact",
    "unpack_weights_packed",
    "validate_metadata",
    "write_container",
]
