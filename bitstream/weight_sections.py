"""The one weights section of a file, whichever of the three layouts it uses (docs/FORMAT.md,
sections 7, 7.1 and 7.2): plain records (type 3) carry their names and shapes, compact (4) and
packed (5) sections take them from the network's layout (``bitstream.layout.dnerv_layout`` or
the decoder's model)."""

from __future__ import annotations

from typing import Any

from bitstream.errors import FormatError
from bitstream.ids import SECTION_TYPES, id_of
from bitstream.weights import (
    WeightRecord,
    describe_weights,
    unpack_weights,
    unpack_weights_compact,
)
from bitstream.weights_packed import describe_weights_packed, unpack_weights_packed

PLAIN, COMPACT, PACKED = (
    id_of(SECTION_TYPES, n) for n in ("weights", "weights-compact", "weights-packed")
)
TYPES = (PLAIN, COMPACT, PACKED)

Layout = list[tuple[str, tuple[int, ...]]]


def weights_section(reader) -> int | None:
    """The type of the file's weights section, None when it has none (a keyframe-only file).

    Raises:
        FormatError: more than one weights section.
    """
    present = [t for t in TYPES if reader.has_section(t)]
    if len(present) > 1:
        raise FormatError(
            f"{reader.name}: needs exactly one weights section (plain, compact or packed), "
            f"has {len(present)}"
        )
    return present[0] if present else None


def read_weights(reader, type_id: int, layout: Layout) -> list[WeightRecord]:
    """The records of weights section ``type_id``, each refused before its payload is decoded
    unless it is the layout's tensor."""
    data = reader.read_section(type_id)
    if type_id == PACKED:
        return unpack_weights_packed(data, layout)
    if type_id == COMPACT:
        return unpack_weights_compact(data, layout)
    return unpack_weights(data, layout)


def describe_section(reader, type_id: int, layout: Layout) -> list[dict[str, Any]]:
    """One row per tensor of weights section ``type_id`` (no symbol is decoded)."""
    data = reader.read_section(type_id)
    if type_id == PACKED:
        return describe_weights_packed(data, layout)
    if type_id == COMPACT:
        return describe_weights(data, layout)
    return describe_weights(data)
