"""The keyframes sections: one bitstream per keyframe, addressable by (video, keyframe index).

Two layouts (``docs/FORMAT.md``, "Keyframes section" and "Compact keyframes section"). Type 2::

    u32 count | u32 CRC32 of the index | index: count x (u32 video, u32 index, u32 length,
    u32 CRC32) | payloads, contiguous, in index order (offsets are prefix sums of lengths)

Type 7 (format 1.3), the one the encoder writes: the same payloads behind an index of about two
bytes a keyframe instead of sixteen (varint counts and lengths, one CRC32 per group of
:data:`GROUP` keyframes of a video)::

    u32 CRC32 of the index | varint videos | varint group | per video: varint count |
    per keyframe: varint length | per group: u32 CRC32 of its payloads | payloads

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

from bitstream._binary import Reader, put_varint
from bitstream.errors import ChecksumError, FormatError, LimitError, TruncatedError
from bitstream.ids import SECTION_TYPES, id_of
from bitstream.schema import MAX_FRAMES, MAX_VIDEOS

SECTION = id_of(SECTION_TYPES, "keyframes")
SECTION_COMPACT = id_of(SECTION_TYPES, "keyframes-compact")
GROUP = 32  # keyframes per CRC32 group of the compact section (the hevc-ld/-ra group)
MAX_KEYFRAMES = MAX_FRAMES  # per video: one per frame at most
MAX_GROUP = 1 << 16
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
        self._counts: dict[int, int] = {}
        for e in entries:
            self._counts[e.video] = self._counts.get(e.video, 0) + 1

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
        return self._counts.get(video, 0)

    def entry(self, video: int, index: int) -> KeyframeEntry:
        try:
            return self._by_key[(video, index)]
        except KeyError:
            raise FormatError(f"keyframes section: no keyframe {index} of video {video}") from None

    def get(self, reader: _RangeReader, video: int, index: int) -> bytes:
        """Read one keyframe bitstream and check its CRC32."""
        e = self.entry(video, index)
        return _checked(reader.read_range(SECTION, e.offset, e.length), e)

    def read(self, reader: _RangeReader, video: int, first: int, stop: int) -> list[bytes]:
        """Keyframes ``first .. stop - 1`` of ``video``, each checked."""
        return [self.get(reader, video, k) for k in range(first, stop)]


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


# ----------------------------------------------------------------------- compact (type 7)


def pack_keyframes_compact(entries: dict[tuple[int, int], bytes]) -> bytes:
    """Build a compact keyframes section from {(video, keyframe index): bitstream}.

    The keys must be videos 0 .. V-1, each with keyframes 0 .. K_v-1 (the compact index stores
    counts, not keys).

    Raises:
        ValueError: keys that do not form that shape.
    """
    counts: list[int] = []
    for video, index in sorted(entries):
        if video == len(counts) and index == 0:
            counts.append(1)
        elif video == len(counts) - 1 and index == counts[-1]:
            counts[-1] += 1
        else:
            raise ValueError(
                f"keyframe keys must be videos 0.. with keyframes 0..; got {video, index}"
            )
    index = bytearray()
    put_varint(index, len(counts))
    put_varint(index, GROUP)
    for count in counts:
        put_varint(index, count)
    payloads = [bytes(entries[key]) for key in sorted(entries)]
    for payload in payloads:
        put_varint(index, len(payload))
    start = 0
    for count in counts:
        for first in range(0, count, GROUP):
            group = payloads[start + first : start + min(first + GROUP, count)]
            crc = 0
            for payload in group:
                crc = zlib.crc32(payload, crc)
            index += struct.pack("<I", crc)
        start += count
    return b"".join([struct.pack("<I", zlib.crc32(index)), bytes(index), *payloads])


class CompactKeyframeIndex(KeyframeIndex):
    """The validated index of a compact keyframes section (type 7). ``entries[i].crc`` is the
    CRC32 of the entry's group, which :meth:`read` checks over the whole group."""

    section = SECTION_COMPACT

    def __init__(self, entries: list[KeyframeEntry], group: int, groups: dict) -> None:
        super().__init__(entries)
        self.group = group
        self._groups = groups  # (video, first index) -> (offset, length, crc)

    @classmethod
    def parse_compact(cls, read: Callable[[int, int], bytes], section_length: int):
        """Validate the index, reading the section through ``read(offset, length)``."""
        if section_length < 4:
            raise TruncatedError(f"compact keyframes section: {section_length} bytes, no room")
        # The index is at most 10 bytes per varint plus 4 per group; read it in growing chunks.
        size = min(section_length, 4096)
        while True:
            data = read(0, size)
            try:
                parsed = cls._parse_index(data, section_length)
                break
            except TruncatedError:
                if size == section_length:
                    raise
                size = min(section_length, size * 4)
        entries, group, groups, index_end = parsed
        if zlib.crc32(data[4:index_end]) != struct.unpack_from("<I", data)[0]:
            raise ChecksumError("compact keyframes section: index CRC32 mismatch (offset 0)")
        return cls(entries, group, groups)

    @staticmethod
    def _parse_index(data: bytes, section_length: int):
        r = Reader(data, "compact keyframes index")
        r.take(4)
        videos = r.varint()
        if not 1 <= videos <= MAX_VIDEOS:
            raise LimitError(f"compact keyframes section: {videos} videos (1..{MAX_VIDEOS})")
        group = r.varint()
        if not 1 <= group <= MAX_GROUP:
            raise FormatError(f"compact keyframes section: group of {group} keyframes")
        counts = [r.varint() for _ in range(videos)]
        for v, count in enumerate(counts):
            if not 1 <= count <= MAX_KEYFRAMES:
                raise LimitError(f"compact keyframes section: video {v} has {count} keyframes")
        lengths = [r.varint() for _ in range(sum(counts))]
        crcs = [r.u32() for count in counts for _ in range(0, count, group)]
        offset = index_end = r.pos
        entries: list[KeyframeEntry] = []
        groups: dict[tuple[int, int], tuple[int, int, int]] = {}
        k = g = 0
        for v, count in enumerate(counts):
            for first in range(0, count, group):
                start, crc = offset, crcs[g]
                for i in range(first, min(first + group, count)):
                    entries.append(KeyframeEntry(v, i, offset, lengths[k], crc))
                    offset += lengths[k]
                    k += 1
                groups[(v, first)] = (start, offset - start, crc)
                g += 1
                if offset > section_length:
                    raise TruncatedError(
                        f"compact keyframes section: video {v}'s keyframes end at {offset}, "
                        f"past the section end ({section_length})"
                    )
        if offset != section_length:
            raise FormatError(
                f"compact keyframes section: {section_length - offset} bytes after the last"
            )
        return entries, group, groups, index_end

    def get(self, reader: _RangeReader, video: int, index: int) -> bytes:
        return self.read(reader, video, index, index + 1)[0]

    def read(self, reader: _RangeReader, video: int, first: int, stop: int) -> list[bytes]:
        """Keyframes ``first .. stop - 1`` of ``video``; every group they touch is read whole
        and checked against its CRC32."""
        out: list[bytes] = []
        if not 0 <= first < stop <= self.count(video):
            self.entry(video, stop - 1 if stop > first else first)  # raises: no such keyframe
        g = first - first % self.group
        while g < stop:
            offset, length, crc = self._groups[(video, g)]
            data = reader.read_range(self.section, offset, length)
            if zlib.crc32(data) != crc:
                raise ChecksumError(
                    f"keyframes {g}..{min(g + self.group, self.count(video)) - 1} of video "
                    f"{video} (section offset {offset}) fail their CRC32"
                )
            for i in range(max(g, first), min(g + self.group, stop)):
                e = self.entry(video, i)
                out.append(data[e.offset - offset : e.offset - offset + e.length])
            g += self.group
        return out


def keyframe_index(reader) -> KeyframeIndex:
    """The index of the file's keyframes section, compact (type 7) or plain (type 2); a file
    has exactly one of them."""
    if reader.has_section(SECTION_COMPACT) == reader.has_section(SECTION):
        raise FormatError("a file needs exactly one keyframes section (type 2 or 7)")
    if reader.has_section(SECTION_COMPACT):
        length = reader.section_length(SECTION_COMPACT)
        return CompactKeyframeIndex.parse_compact(
            lambda offset, n: reader.read_range(SECTION_COMPACT, offset, n), length
        )
    return KeyframeIndex.from_reader(reader)


def unpack_keyframes_compact(data: bytes) -> dict[tuple[int, int], bytes]:
    """Every keyframe of a whole compact section, each group checked."""
    index = CompactKeyframeIndex.parse_compact(lambda o, n: data[o : o + n], len(data))

    class _Bytes:
        def read_range(self, type_id: int, offset: int, length: int) -> bytes:
            return data[offset : offset + length]

    out: dict[tuple[int, int], bytes] = {}
    videos = sorted({e.video for e in index.entries})
    for v in videos:
        for i, payload in enumerate(index.read(_Bytes(), v, 0, index.count(v))):
            out[(v, i)] = payload
    return out
