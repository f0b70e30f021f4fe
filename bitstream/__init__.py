"""The .dnerv container and the entropy coding of integer symbols.

This package imports numpy and constriction only, never torch: a .dnerv file can be
inspected, validated and entropy-decoded without a deep-learning framework. The normative
description of the bytes is ``docs/FORMAT.md``.
"""

from bitstream.errors import (
    ChecksumError,
    DnervError,
    FormatError,
    TruncatedError,
    UnsupportedVersionError,
)

__all__ = [
    "ChecksumError",
    "DnervError",
    "FormatError",
    "TruncatedError",
    "UnsupportedVersionError",
]
