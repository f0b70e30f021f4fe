"""The keyframes section: one bitstream per keyframe, addressable by (video, keyframe index).

Layout (``docs/FORMAT.md``, "Keyframes section")::

    u32 count | u32 CRC32 of the index | index: count x (u32 video, u32 index, u32 length,
    u32 CRC32) | payloads, contiguous, in index order (offsets are prefix sums of lengths)

A decoder that needs frames 40..47 of video 2 reads the index (:meth:`KeyframeIndex.from_reader`,
two small range reads) and then only the two keyframes of that clip (:meth:`KeyframeIndex.get`),
each verified by its own CRC32.

Example:
    >>> from bitstream.container import ContainerReader, ContainerWriter
    >>> section = pack_keyframes({(0, 0): b"png0", (0, 1): b"png1"})
    >>> with ContainerReader(ContainerWriter().add(2, section).finish()) as reader:
    ...     index = KeyframeIndex.from_reader(reader)
    ...     assert index.get(reader, 0, 1) == b"png1" and index.count(0) == 2
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from typing import NamedTuple, Protocol

from bitstream.errors import ChecksumError, FormatError, TruncatedError
from bitstream.ids import SECTION_TYPES, id_of

SECTION = id_of(SECTION_TYPES, "keyframes")
HEAD = struct.Struct("<II")
ENTRY = struct.Struct("<IIII")


class KeyframeEntry(NamedTuple):
    video: int
    index: int
    offset: int  # from the start of the section
    length: int
    crc: int


class _RangeReader(Protocol):
    def read_range(self, type_id: int, offset: int, length: int) -> bytes: ...

    def section_length(self, type_id: int) -> int: ...


def pack_keyframes(entries: dict[tuple[int, int], bytes]) -> bytes:
    """Build the section from {(video, keyframe index): bitstream}; entries are sorted by key.

    Raises:
        ValueError: a key outside the u32 range.
    """
    keys = sorted(entries)
    table = bytearray()
    for video, index in keys:
        if not (0 <= video < 1 << 32 and 0 <= index < 1 << 32):
            raise ValueError(f"keyframe key ({video}, {index}) outside the u32 range")
        payload = entries[(video, index)]
        table += ENTRY.pack(video, index, len(payload), zlib.crc32(payload))
    head = HEAD.pack(len(keys), zlib.crc32(table))
    return b"".join([head, bytes(table)] + [bytes(entries[key]) for key in keys])


class KeyframeIndex:
    """The validated index of a keyframes section."""

    def __init__(self, entries: list[KeyframeEntry]) -> None:
        self.entries = entries
        self._by_key = {(e.video, e.index): e for e in entries}

    @classmethod
    def parse(
        cls, head: bytes, read_table: Callable[[int], bytes], section_length: int
    ) -> KeyframeIndex:
        """Validate the 8-byte head, then the table returned by ``read_table(length)``."""
        if section_length < HEAD.size:
            raise TruncatedError(f"keyframes section: {section_length} bytes, no room for its head")
        count, crc = HEAD.unpack(head)
        table_end = HEAD.size + ENTRY.size * count
        if table_end > section_length:
            raise TruncatedError(
                f"keyframes section: index of {count} entries ends at {table_end}, "
                f"past the section end ({section_length})"
            )
        table = read_table(table_end - HEAD.size)
        if zlib.crc32(table) != crc:
            raise ChecksumError("keyframes section: index CRC32 mismatch (offset 4)")
        entries: list[KeyframeEntry] = []
        expected = table_end
        for i in range(count):
            video, index, length, entry_crc = ENTRY.unpack_from(table, i * ENTRY.size)
            if entries and (video, index) <= (entries[-1].video, entries[-1].index):
                raise FormatError(f"keyframes index entry {i}: keys must ascend without repeats")
            entries.append(KeyframeEntry(video, index, expected, length, entry_crc))
            expected += length
            if expected > section_length:
                raise TruncatedError(
                    f"keyframes index entry {i}: ends at {expected}, past the section end "
                    f"({section_length})"
                )
        if expected != section_length:
            raise FormatError(
                f"keyframes section: {section_length - expected} bytes after the last"
            )
        return cls(entries)

    @classmethod
    def from_reader(cls, reader: _RangeReader) -> KeyframeIndex:
        """Read only the index of the keyframes section of an open ContainerReader."""
        length = reader.section_length(SECTION)
        head = reader.read_range(SECTION, 0, min(HEAD.size, length))
        return cls.parse(head, lambda n: reader.read_range(SECTION, HEAD.size, n), length)

    @classmethod
    def from_bytes(cls, data: bytes) -> KeyframeIndex:
        """Parse the index of a whole keyframes section held in memory."""
        return cls.parse(data[: HEAD.size], lambda n: data[HEAD.size : HEAD.size + n], len(data))

    def keys(self) -> list[tuple[int, int]]:
        return [(e.video, e.index) for e in self.entries]

    def count(self, video: int) -> int:
        """Number of keyframes stored for ``video``."""
        return sum(1 for e in self.entries if e.video == video)

    def entry(self, video: int, index: int) -> KeyframeEntry:
        try:
            return self._by_key[(video, index)]
        except KeyError:
            raise FormatError(f"keyframes section: no keyframe {index} of video {video}") from None

    def get(self, reader: _RangeReader, video: int, index: int) -> bytes:
        """Read one keyframe bitstream and check its CRC32."""
        e = self.entry(video, index)
        return _checked(reader.read_range(SECTION, e.offset, e.length), e)


def _checked(payload: bytes, e: KeyframeEntry) -> bytes:
    if zlib.crc32(payload) != e.crc:
        raise ChecksumError(
            f"keyframe {e.index} of video {e.video} (section offset {e.offset}) fails its CRC32"
        )
    return payload


def unpack_keyframes(data: bytes) -> dict[tuple[int, int], bytes]:
    """Every keyframe of a whole section, each checked: {(video, index): bitstream}."""
    index = KeyframeIndex.from_bytes(data)
    return {
        (e.video, e.index): _checked(data[e.offset : e.offset + e.length], e) for e in index.entries
    }
