"""The container: golden bytes, round trips, the writer's refusals, atomic writes, and one test
per kind of damage (each raising its specific error of the DnervError family), plus a fuzz test.

Regenerate the golden file after a deliberate format change (and bump the version in
docs/FORMAT.md)::

    DNERV_REGEN_GOLDEN=1 .venv/bin/python -m pytest tests/test_bitstream_container.py
"""

from __future__ import annotations

import os
import random
import struct
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bitstream import (
    ChecksumError,
    ContainerReader,
    ContainerWriter,
    DnervError,
    FormatError,
    KeyframeIndex,
    LimitError,
    OutputExistsError,
    TruncatedError,
    UnsupportedVersionError,
    decode_meta,
    unpack_keyframes,
    unpack_weights,
    write_container,
)
from bitstream._sample import sample_container
from bitstream.container import ENTRY, HEADER, MAGIC, VERSION

GOLDEN = Path(__file__).parent / "data" / "golden_v1.dnerv"


def _rebuild(header: dict, entries: list[list[int]], payload: bytes) -> bytes:
    """Assemble a container from (possibly bad) fields with a correct header CRC."""
    table = b"".join(ENTRY.pack(t, 0, c, o, n) for t, c, o, n in entries)
    head = HEADER.pack(
        header.get("magic", MAGIC),
        header.get("major", 1),
        header.get("minor", 0),
        header.get("count", len(entries)),
        header.get("size", HEADER.size + len(table) + len(payload)),
        0,
        0,
    )[:-4]
    crc = zlib.crc32(table, zlib.crc32(head))
    return head + struct.pack("<I", crc) + table + payload


def _fields(data: bytes) -> tuple[list[list[int]], bytes]:
    count = struct.unpack_from("<I", data, 12)[0]
    entries = []
    for i in range(count):
        t, _, c, o, n = ENTRY.unpack_from(data, HEADER.size + i * ENTRY.size)
        entries.append([t, c, o, n])
    return entries, data[HEADER.size + ENTRY.size * count :]


def _read_all(data: bytes) -> None:
    with ContainerReader(data) as reader:
        meta = decode_meta(reader.read_section(1))
        assert isinstance(meta, dict)
        unpack_keyframes(reader.read_section(2))
        unpack_weights(reader.read_section(3))


# -- golden bytes and round trips -----------------------------------------------------------
def test_golden_bytes():
    data = sample_container()
    if os.environ.get("DNERV_REGEN_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_bytes(data)
    assert data == GOLDEN.read_bytes(), "the format changed: see docs/FORMAT.md, version history"
    _read_all(GOLDEN.read_bytes())


@pytest.mark.parametrize("minor", [1, 2, 3])
def test_golden_bytes_of_older_minor_versions_still_read(minor):
    """The sample container as formats 1.1, 1.2 and 1.3 wrote it: the same sections in each (an
    older sample's metadata), only the header's minor version and CRC differ; all still read."""
    data = (GOLDEN.parent / f"golden_v1_{minor}.dnerv").read_bytes()
    with ContainerReader(data) as reader:
        assert reader.version == (1, minor)
    _read_all(data)
    first = (GOLDEN.parent / "golden_v1_1.dnerv").read_bytes()

    def rest(b):
        return b[:10] + b[12:28] + b[32:]

    assert rest(data) == rest(first)


def test_golden_bytes_of_format_1_4_still_read():
    """The current sample container as format 1.4 wrote it: only the header's minor version and
    CRC differ from the golden file (1.5 added a keyframe codec id, no section)."""
    data = (GOLDEN.parent / "golden_v1_4.dnerv").read_bytes()
    with ContainerReader(data) as reader:
        assert reader.version == (1, 4)
    _read_all(data)
    golden = GOLDEN.read_bytes()
    assert data[:10] + data[12:28] + data[32:] == golden[:10] + golden[12:28] + golden[32:]


@settings(max_examples=60, deadline=None)
@given(sections=st.dictionaries(st.sampled_from([1, 2, 3]), st.binary(max_size=300)))
def test_random_sections_round_trip(sections, tmp_path_factory):
    items = sorted(sections.items())
    path = tmp_path_factory.mktemp("c") / "x.dnerv"
    size = write_container(path, items)
    assert size == path.stat().st_size == 32 + 24 * len(items) + sum(len(p) for _, p in items)
    with ContainerReader(path) as reader:
        assert reader.version == VERSION
        assert [e.type_id for e in reader.sections] == [t for t, _ in items]
        for type_id, payload in items:
            assert reader.has_section(type_id)
            assert reader.read_section(type_id) == payload
            if payload:
                assert reader.read_range(type_id, 1, len(payload) - 1) == payload[1:]
        reader.verify()


def test_keyframe_index_reads_only_what_it_needs():
    data = sample_container()
    with ContainerReader(data) as reader:
        index = KeyframeIndex.from_reader(reader)
        assert index.count(0) == 3 and index.count(1) == 0
        assert index.get(reader, 0, 2) == bytes([0x89, 0x50, 0x4E, 0x47, 2]) * 3
        with pytest.raises(FormatError):
            index.get(reader, 1, 0)


# -- the writer -------------------------------------------------------------------------------
def test_writer_refuses_out_of_order_duplicate_unknown_and_late_sections():
    writer = ContainerWriter().add(2, b"x")
    with pytest.raises(FormatError, match="out-of-order"):
        writer.add(1, b"y")
    with pytest.raises(FormatError, match="duplicate"):
        writer.add(2, b"y")
    with pytest.raises(FormatError, match="unknown"):
        writer.add(999, b"y")
    writer.finish()
    with pytest.raises(FormatError):
        writer.add(3, b"z")
    with pytest.raises(FormatError):
        writer.finish()


def test_write_refuses_existing_file_unless_overwrite(tmp_path):
    path = tmp_path / "a.dnerv"
    write_container(path, [(1, b"one")])
    with pytest.raises(OutputExistsError) as info:
        write_container(path, [(1, b"two")])
    assert isinstance(info.value, FileExistsError)
    with ContainerReader(path) as reader:
        assert reader.read_section(1) == b"one"
    write_container(path, [(1, b"two")], overwrite=True)
    with ContainerReader(path) as reader:
        assert reader.read_section(1) == b"two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.dnerv"]


def test_write_without_hard_links_still_refuses_to_clobber(tmp_path, monkeypatch):
    def no_links(src, dst):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    path = tmp_path / "n.dnerv"
    write_container(path, [(1, b"first")])
    with pytest.raises(OutputExistsError):
        write_container(path, [(1, b"second")])
    with ContainerReader(path) as reader:
        assert reader.read_section(1) == b"first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["n.dnerv"]


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    def broken_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError):
        write_container(tmp_path / "b.dnerv", [(1, b"x" * 1000)])
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(FormatError):
        write_container(tmp_path / "c.dnerv", [(3, b"x"), (1, b"y")])
    assert list(tmp_path.iterdir()) == []


# -- one test per kind of damage ------------------------------------------------------------
def test_empty_file(tmp_path):
    (tmp_path / "e.dnerv").write_bytes(b"")
    with pytest.raises(TruncatedError, match="empty"):
        ContainerReader(tmp_path / "e.dnerv")


def test_wrong_magic():
    data = bytearray(sample_container())
    data[1] ^= 0x20
    with pytest.raises(FormatError, match="magic") as info:
        ContainerReader(bytes(data))
    assert type(info.value) is FormatError
    with pytest.raises(FormatError, match="magic"):
        ContainerReader(b"RIFF")


def test_future_major_version_is_refused_by_name():
    entries, payload = _fields(sample_container())
    with pytest.raises(UnsupportedVersionError, match=r"2\.0"):
        ContainerReader(_rebuild({"major": 2}, entries, payload))


def test_newer_minor_skips_unknown_sections_and_same_minor_refuses_them():
    entries, payload = _fields(sample_container())
    extra = b"future"
    size = 32 + 24 * 4 + len(payload) + len(extra)
    shifted = [[t, c, o + 24, n] for t, c, o, n in entries]
    shifted.append([77, zlib.crc32(extra), size - len(extra), len(extra)])
    newer = _rebuild({"minor": VERSION[1] + 1}, shifted, payload + extra)
    with ContainerReader(newer) as reader:
        assert reader.version == (1, VERSION[1] + 1)
        assert not reader.has_section(76) and reader.has_section(77)
        assert decode_meta(reader.read_section(1))["clip_length"] == 8
    for minor in range(VERSION[1] + 1):
        with pytest.raises(FormatError, match=f"unknown in format version 1.{minor}"):
            ContainerReader(_rebuild({"minor": minor}, shifted, payload + extra))


def test_compact_weights_section_needs_format_1_1():
    entries, payload = _fields(sample_container())
    assert [t for t, *_ in entries] == [1, 2, 3]
    entries[-1][0] = 4  # the weights section relabelled as compact weights
    with ContainerReader(_rebuild({"minor": 1}, entries, payload)) as reader:
        assert reader.has_section(4)
    with pytest.raises(FormatError, match="unknown in format version 1.0"):
        ContainerReader(_rebuild({"minor": 0}, entries, payload))


@pytest.mark.parametrize("type_id", [5, 6])  # packed weights, deflated metadata
def test_format_1_2_sections_need_format_1_2(type_id):
    entries, payload = _fields(sample_container())
    entries[-1][0] = type_id  # the last section relabelled
    with ContainerReader(_rebuild({"minor": 2}, entries, payload)) as reader:
        assert reader.has_section(type_id)
    with pytest.raises(FormatError, match="unknown in format version 1.1"):
        ContainerReader(_rebuild({"minor": 1}, entries, payload))


def test_truncated_at_every_section_boundary():
    data = sample_container()
    with ContainerReader(data) as reader:
        cuts = {32, 32 + 24 * len(reader.sections)}
        for entry in reader.sections:
            cuts |= {entry.offset, entry.offset + entry.length - 1}
    for cut in sorted(cuts):
        with pytest.raises(TruncatedError):
            ContainerReader(data[:cut])


def test_flipped_bit_in_each_section():
    data = sample_container()
    with ContainerReader(data) as reader:
        sections = list(reader.sections)
    for entry in sections:
        damaged = bytearray(data)
        damaged[entry.offset + entry.length // 2] ^= 0x04
        with ContainerReader(bytes(damaged)) as reader:
            with pytest.raises(ChecksumError, match=f"offset {entry.offset}"):
                reader.read_section(entry.type_id)
    for offset in (12, 20, 40, 60):  # header and table
        damaged = bytearray(data)
        damaged[offset] ^= 0x01
        with pytest.raises(DnervError):
            ContainerReader(bytes(damaged))
    damaged = bytearray(data)
    damaged[36] ^= 0x01  # a CRC field of the table: only the table checksum can see it
    with pytest.raises(ChecksumError):
        ContainerReader(bytes(damaged))


def test_length_past_end():
    entries, payload = _fields(sample_container())
    entries[-1][3] += 10
    with pytest.raises(TruncatedError, match="pass the end"):
        ContainerReader(_rebuild({"size": 32 + 72 + len(payload)}, entries, payload))


def test_overlapping_sections():
    entries, payload = _fields(sample_container())
    entries[1][2] -= 4
    entries[1][3] += 4
    with pytest.raises(FormatError, match="overlaps"):
        ContainerReader(_rebuild({}, entries, payload))


def test_hole_between_sections():
    entries, payload = _fields(sample_container())
    entries[1][2] += 4
    entries[1][3] -= 4
    with pytest.raises(FormatError, match="hole"):
        ContainerReader(_rebuild({}, entries, payload))


def test_huge_claimed_sizes_are_refused_before_allocation():
    entries, payload = _fields(sample_container())
    with pytest.raises(LimitError):
        ContainerReader(_rebuild({"count": 0xFFFFFFFF}, entries, payload))
    with pytest.raises(TruncatedError):
        ContainerReader(_rebuild({"size": 1 << 62}, entries, payload))
    entries[-1][3] = 1 << 62
    with pytest.raises(TruncatedError):
        ContainerReader(_rebuild({}, entries, payload))
    small = _rebuild({"count": 200}, [], b"")  # 40 bytes that claim 200 table entries
    assert len(small) == 32
    with pytest.raises(TruncatedError):
        ContainerReader(small)


def test_fuzz_random_mutations_raise_only_dnerv_errors():
    data = sample_container()
    rng = random.Random(1234)
    outcomes = {"ok": 0, "error": 0}
    for _ in range(3000):
        damaged = bytearray(data)
        kind = rng.randrange(4)
        if kind == 0:
            for _ in range(rng.randint(1, 4)):
                damaged[rng.randrange(len(damaged))] ^= 1 << rng.randrange(8)
        elif kind == 1:
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        elif kind == 2:
            del damaged[rng.randrange(len(damaged)) :]
        else:
            pos = rng.randrange(len(damaged))
            damaged[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        try:
            _read_all(bytes(damaged))
            outcomes["ok"] += 1
        except DnervError:
            outcomes["error"] += 1
    assert outcomes["error"] > 2900, outcomes
