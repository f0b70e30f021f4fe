"""Little-endian primitives shared by every part of the format: a bounds-checked reader and
LEB128 variable-length integers (``docs/FORMAT.md``, "Conventions").

Every read goes through :class:`Reader`, which raises :class:`~bitstream.errors.TruncatedError`
naming the structure and the offset when the bytes run out, so no caller indexes past an end.
"""

from __future__ import annotations

import struct

from bitstream.errors import FormatError, TruncatedError

_U64_LIMIT = 1 << 64


def put_varint(out: bytearray, value: int) -> None:
    """Append ``value`` (0 <= value < 2**64) as unsigned LEB128: 7 bits per byte, low first."""
    if value < 0 or value >= _U64_LIMIT:
        raise ValueError(f"varint out of range: {value}")
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return


def zigzag(value: int) -> int:
    """Map a signed 64-bit integer to an unsigned one: 0, -1, 1, -2, ... -> 0, 1, 2, 3, ..."""
    if value < -(1 << 63) or value >= (1 << 63):
        raise ValueError(f"integer outside the signed 64-bit range: {value}")
    return (value << 1) if value >= 0 else ((-value) << 1) - 1


def unzigzag(value: int) -> int:
    """Inverse of :func:`zigzag`."""
    return (value >> 1) if not value & 1 else -((value + 1) >> 1)


def put_svarint(out: bytearray, value: int) -> None:
    """Append a signed 64-bit integer as a zigzag LEB128 varint."""
    put_varint(out, zigzag(value))


class Reader:
    """Sequential reads from a byte buffer that never pass its end.

    Args:
        data: the bytes to read.
        what: a name for error messages ("metadata", "weights record 3", ...).
        base: the absolute file offset of ``data[0]``, so that messages give file offsets.
    """

    def __init__(self, data: bytes | bytearray | memoryview, what: str, base: int = 0) -> None:
        self.data = memoryview(data).cast("B") if not isinstance(data, bytes) else data
        self.pos = 0
        self.what = what
        self.base = base

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos

    def where(self) -> str:
        return f"{self.what} at offset {self.base + self.pos}"

    def take(self, n: int) -> bytes:
        """Return the next ``n`` bytes; raise TruncatedError if fewer are left."""
        if n < 0 or n > self.remaining:
            raise TruncatedError(f"{self.where()}: needs {n} bytes, only {self.remaining} left")
        chunk = bytes(self.data[self.pos : self.pos + n])
        self.pos += n
        return chunk

    def _unpack(self, fmt: str) -> int | float:
        size = struct.calcsize(fmt)
        return struct.unpack(fmt, self.take(size))[0]

    def u8(self) -> int:
        return int(self._unpack("<B"))

    def i8(self) -> int:
        return int(self._unpack("<b"))

    def u16(self) -> int:
        return int(self._unpack("<H"))

    def u32(self) -> int:
        return int(self._unpack("<I"))

    def f64(self) -> float:
        return float(self._unpack("<d"))

    def varint(self) -> int:
        """Read a canonical unsigned LEB128 varint (at most 10 bytes, below 2**64)."""
        start = self.pos
        value = 0
        for shift in range(0, 70, 7):
            byte = self.u8()
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                if byte == 0 and shift:
                    raise FormatError(f"{self.what} at offset {self.base + start}: overlong varint")
                if value >= _U64_LIMIT:
                    raise FormatError(f"{self.what} at offset {self.base + start}: varint >= 2**64")
                return value
        raise FormatError(f"{self.what} at offset {self.base + start}: varint longer than 10 bytes")

    def svarint(self) -> int:
        """Read a zigzag LEB128 signed integer."""
        return unzigzag(self.varint())

    def expect_end(self) -> None:
        """Raise FormatError if unread bytes are left."""
        if self.remaining:
            raise FormatError(f"{self.where()}: {self.remaining} unexpected trailing bytes")
