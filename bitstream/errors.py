"""The error family of dnerv-codec.

Every error a user can cause by handing us a bad file or a bad option derives from
:class:`DnervError`; members also subclass the matching builtin so callers that only know
``ValueError`` or ``FileExistsError`` still catch them. The CLI turns any of these into one
line on stderr and a non-zero exit.
"""

from __future__ import annotations


class DnervError(Exception):
    """Root of every error raised on purpose by dnerv-codec."""


class FormatError(DnervError, ValueError):
    """A .dnerv file (or a payload inside one) is malformed."""


class ChecksumError(FormatError):
    """A CRC32 stored in the file does not match the bytes it covers."""


class UnsupportedVersionError(FormatError):
    """The file was written by a format major version this reader does not know."""


class TruncatedError(FormatError):
    """The file ends before the data it announces."""


class LimitError(FormatError):
    """A size claimed by a file exceeds a limit of this reader; nothing was allocated for it."""


class OutputExistsError(DnervError, FileExistsError):
    """The output file exists and overwriting was not asked for."""
