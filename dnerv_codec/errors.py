"""Errors of the codec layer, in the same family as the container's (``bitstream.errors``)."""

from __future__ import annotations

from bitstream.errors import (
    ChecksumError,
    DnervError,
    FormatError,
    OutputExistsError,
    TruncatedError,
    UnsupportedVersionError,
)


class InputError(DnervError, ValueError):
    """An input the user named cannot be used: unreadable, not a video, no frames, bad option."""


class WeightsError(DnervError):
    """Weights a codec needs are missing, or differ from the ones a file was encoded with."""


class Interrupted(KeyboardInterrupt):
    """Work stopped by Ctrl-C or SIGTERM; the message says what was kept (e.g. a checkpoint)."""


class CodecMismatchError(DnervError):
    """An encoded bitstream did not decode to the reconstruction the encoder used."""


__all__ = [
    "ChecksumError",
    "CodecMismatchError",
    "DnervError",
    "FormatError",
    "InputError",
    "Interrupted",
    "OutputExistsError",
    "TruncatedError",
    "UnsupportedVersionError",
    "WeightsError",
]
