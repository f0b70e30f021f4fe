"""The .dnerv container: magic, version, a checksummed section table, contiguous payloads.

Layout (normative text in ``docs/FORMAT.md``, "Container")::

    header (32 bytes) | section table (24 bytes per section) | payloads, in table order

Writing goes through :class:`ContainerWriter`, a small state machine that refuses sections out of
order or twice; :func:`write_container` adds the atomic file replacement. :class:`ContainerReader`
checks magic, version, table checksum and every offset and length against the real size of the
file before it reads (or allocates for) any payload.

Example:
    >>> data = ContainerWriter().add(1, b"meta").add(3, b"weights").finish()
    >>> with ContainerReader(data) as reader:
    ...     assert reader.read_section(3) == b"weights"
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import struct
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, NamedTuple

from bitstream.errors import (
    ChecksumError,
    FormatError,
    LimitError,
    OutputExistsError,
    TruncatedError,
    UnsupportedVersionError,
)
from bitstream.ids import SECTION_SINCE_MINOR, SECTION_TYPES

MAGIC = b"\x89DNV\r\n\x1a\n"
VERSION = (1, 5)  # (major, minor) of the format written; a reader accepts major 1, any minor
SUPPORTED_MAJORS = (1,)
HEADER = struct.Struct("<8sHHIQII")  # magic, major, minor, count, file size, reserved, CRC
ENTRY = struct.Struct("<HHIQQ")  # type, reserved, CRC32 of payload, offset, length
MAX_SECTIONS = 256


class SectionEntry(NamedTuple):
    """One row of the section table."""

    type_id: int
    offset: int
    length: int
    crc: int


def _section_name(type_id: int) -> str:
    return SECTION_TYPES.get(type_id, f"unknown type {type_id}")


class ContainerWriter:
    """Collects sections in ascending type order and assembles the container bytes.

    States: *open* (``add`` allowed) then *finished* (after ``finish``; nothing allowed).

    Raises:
        FormatError: a section type that is unknown, not above the previous one, a second
            ``finish``, or an ``add`` after it.
    """

    def __init__(self) -> None:
        self._sections: list[tuple[int, bytes]] = []
        self._finished = False

    def add(self, type_id: int, payload: bytes) -> ContainerWriter:
        """Append one section; returns ``self`` so calls chain."""
        if self._finished:
            raise FormatError("container writer: add() after finish()")
        if type_id not in SECTION_TYPES:
            raise FormatError(f"container writer: unknown section type {type_id}")
        if self._sections and type_id <= self._sections[-1][0]:
            last = self._sections[-1][0]
            what = "duplicate" if type_id == last else "out-of-order"
            raise FormatError(
                f"container writer: {what} section {_section_name(type_id)!r} ({type_id}) "
                f"after {_section_name(last)!r} ({last}); types must ascend"
            )
        if len(self._sections) >= MAX_SECTIONS:
            raise FormatError(f"container writer: more than {MAX_SECTIONS} sections")
        self._sections.append((type_id, bytes(payload)))
        return self

    def finish(self) -> bytes:
        """Return the whole container and close the writer."""
        if self._finished:
            raise FormatError("container writer: finish() called twice")
        self._finished = True
        offset = HEADER.size + ENTRY.size * len(self._sections)
        table = bytearray()
        for type_id, payload in self._sections:
            table += ENTRY.pack(type_id, 0, zlib.crc32(payload), offset, len(payload))
            offset += len(payload)
        head = HEADER.pack(MAGIC, *VERSION, len(self._sections), offset, 0, 0)[:-4]
        crc = zlib.crc32(table, zlib.crc32(head))
        parts = [head, struct.pack("<I", crc), bytes(table)]
        return b"".join(parts + [payload for _, payload in self._sections])


def write_container(
    path: str | os.PathLike[str], sections: list[tuple[int, bytes]], *, overwrite: bool = False
) -> int:
    """Write a container atomically: a temporary file in the same folder, fsync, rename.

    Args:
        path: the output file.
        sections: (section type id, payload) in ascending type order.
        overwrite: replace an existing file instead of refusing.

    Returns:
        The number of bytes written.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is false.
        FormatError: sections out of order, duplicated or of unknown type.
        OSError: the file system failed; no partial file is left behind.
    """
    writer = ContainerWriter()
    for type_id, payload in sections:
        writer.add(type_id, payload)
    data = writer.finish()
    target = Path(path)
    if target.exists() and not overwrite:
        raise OutputExistsError(f"{target} exists (pass overwrite to replace it)")
    with _term_raises():
        fd, tmp = temp_file(target)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            publish(tmp, target, overwrite)
        except BaseException:  # KeyboardInterrupt and SIGTERM (_term_raises) included
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    _fsync_dir(target.parent)
    return len(data)


def temp_file(target: Path) -> tuple[int, str]:
    """A new hidden temporary file next to ``target`` for :func:`publish`, with the mode a new
    file gets (0666 less the umask; mkstemp alone makes 0600): (open descriptor, path)."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    return fd, tmp


def _umask() -> int:
    """The process umask, read without changing it where the system says it (Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore at once
    os.umask(mask)
    return mask


@contextlib.contextmanager
def _term_raises() -> Iterator[None]:
    """While writing, a SIGTERM whose handler is the default one (kill the process) raises
    SystemExit instead, so the temporary file is removed; other handlers are left alone."""
    previous = None
    try:
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            previous = signal.signal(signal.SIGTERM, _raise_exit)
    except ValueError:  # not the main thread: signals cannot be handled here
        previous = None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _raise_exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def publish(tmp: str | os.PathLike[str], target: Path, overwrite: bool = False) -> None:
    """Move the finished file ``tmp`` to ``target`` in one step; unless ``overwrite``, refuse
    (OutputExistsError) when ``target`` exists, also when it appears meanwhile."""
    if overwrite:
        os.replace(tmp, target)
        return
    try:
        os.link(tmp, target)  # fails if the target appeared meanwhile: no clobbering
    except FileExistsError:
        raise OutputExistsError(f"{target} exists (pass overwrite to replace it)") from None
    except OSError:  # no hard links on this file system: check, then rename
        if target.exists():
            raise OutputExistsError(f"{target} exists (pass overwrite to replace it)") from None
        os.replace(tmp, target)
        return
    os.unlink(tmp)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - folders cannot be opened on some platforms
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


class ContainerReader:
    """A validated view of a container, from a path or from bytes.

    Opening reads and checks the header and section table only; payloads are read on demand.

    Raises:
        FormatError: bad magic, layout (overlap, hole, order) or a section unknown to its version;
            TruncatedError: the file is shorter than it claims; ChecksumError: table CRC;
            UnsupportedVersionError: unknown major version; LimitError: too many sections.
    """

    def __init__(self, source: str | os.PathLike[str] | bytes | bytearray | memoryview) -> None:
        if isinstance(source, (bytes, bytearray, memoryview)):
            self.name = "<bytes>"
            self._handle: BinaryIO = io.BytesIO(bytes(source))
        else:
            self.name = str(source)
            self._handle = open(source, "rb")  # closed by close()
        try:
            self.file_size = self._handle.seek(0, io.SEEK_END)
            self._parse()
        except BaseException:
            self._handle.close()
            raise

    def _read_at(self, offset: int, length: int) -> bytes:
        self._handle.seek(offset)
        data = self._handle.read(length)
        if len(data) != length:
            raise TruncatedError(f"{self.name}: short read at offset {offset}")
        return data

    def _parse(self) -> None:
        size = self.file_size
        if size == 0:
            raise TruncatedError(f"{self.name}: empty file, not a .dnerv container")
        prefix = self._read_at(0, min(size, len(MAGIC)))
        if prefix != MAGIC[: len(prefix)]:
            raise FormatError(f"{self.name}: not a .dnerv file (bad magic at offset 0)")
        if size < HEADER.size:
            raise TruncatedError(f"{self.name}: {size} bytes, shorter than the 32-byte header")
        _, major, minor, count, claimed, _, crc = HEADER.unpack(self._read_at(0, HEADER.size))
        self.version = (major, minor)
        if major not in SUPPORTED_MAJORS:
            raise UnsupportedVersionError(
                f"{self.name}: format version {major}.{minor} is not supported "
                f"(this reader knows major version {', '.join(map(str, SUPPORTED_MAJORS))})"
            )
        if count > MAX_SECTIONS:
            raise LimitError(f"{self.name}: header claims {count} sections (limit {MAX_SECTIONS})")
        if claimed > size:
            raise TruncatedError(f"{self.name}: file has {size} bytes, header claims {claimed}")
        if claimed < size:
            raise FormatError(
                f"{self.name}: {size - claimed} trailing bytes after offset {claimed}"
            )
        table_end = HEADER.size + ENTRY.size * count
        if table_end > size:
            raise TruncatedError(f"{self.name}: section table ends at {table_end}, file at {size}")
        table = self._read_at(HEADER.size, table_end - HEADER.size)
        head = self._read_at(0, HEADER.size - 4)
        if zlib.crc32(table, zlib.crc32(head)) != crc:
            raise ChecksumError(f"{self.name}: header/section table CRC32 mismatch (offset 28)")
        self.sections = self._check_table(table, table_end, minor)

    def _check_table(self, table: bytes, expected: int, minor: int) -> list[SectionEntry]:
        entries: list[SectionEntry] = []
        for i in range(len(table) // ENTRY.size):
            type_id, _, crc, offset, length = ENTRY.unpack_from(table, i * ENTRY.size)
            where = f"{self.name}: section {i} ({_section_name(type_id)})"
            known = type_id in SECTION_TYPES and minor >= SECTION_SINCE_MINOR.get(type_id, 0)
            if not known and minor <= VERSION[1]:
                raise FormatError(f"{where}: type unknown in format version 1.{minor}")
            if entries and type_id <= entries[-1].type_id:
                raise FormatError(f"{where}: types must ascend without duplicates")
            if offset + length > self.file_size:
                raise TruncatedError(
                    f"{where}: bytes {offset}..{offset + length} pass the end of the file "
                    f"({self.file_size} bytes)"
                )
            if offset < expected:
                raise FormatError(
                    f"{where}: offset {offset} overlaps the previous data ({expected})"
                )
            if offset > expected:
                raise FormatError(
                    f"{where}: hole of {offset - expected} bytes before offset {offset}"
                )
            entries.append(SectionEntry(type_id, offset, length, crc))
            expected = offset + length
        if expected != self.file_size:
            raise FormatError(
                f"{self.name}: {self.file_size - expected} bytes after the last section"
            )
        return entries

    # -- access --------------------------------------------------------------------------
    def _entry(self, type_id: int) -> SectionEntry:
        for entry in self.sections:
            if entry.type_id == type_id:
                return entry
        raise FormatError(f"{self.name}: no {_section_name(type_id)} section")

    def has_section(self, type_id: int) -> bool:
        """Whether the file has a section of this type."""
        return any(entry.type_id == type_id for entry in self.sections)

    def section_length(self, type_id: int) -> int:
        """Payload length of a section in bytes."""
        return self._entry(type_id).length

    def read_section(self, type_id: int) -> bytes:
        """A whole payload, after checking its CRC32 (ChecksumError on mismatch)."""
        entry = self._entry(type_id)
        data = self._read_at(entry.offset, entry.length)
        if zlib.crc32(data) != entry.crc:
            raise ChecksumError(
                f"{self.name}: {_section_name(type_id)} section at offset {entry.offset} "
                f"({entry.length} bytes) fails its CRC32"
            )
        return data

    def read_range(self, type_id: int, offset: int, length: int) -> bytes:
        """``length`` bytes at ``offset`` inside a section, without the section CRC check."""
        entry = self._entry(type_id)
        if offset < 0 or length < 0 or offset + length > entry.length:
            raise TruncatedError(
                f"{self.name}: range {offset}..{offset + length} passes the end of the "
                f"{_section_name(type_id)} section ({entry.length} bytes)"
            )
        return self._read_at(entry.offset + offset, length)

    def verify(self) -> None:
        """Check the CRC32 of every section (ChecksumError on the first mismatch)."""
        for entry in self.sections:
            self.read_section(entry.type_id)

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> ContainerReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
