"""Keyframe-only files and the encoder's floor (format 1.3): the compact keyframes section
(type 7), files without a network, ``--mode keyframes`` / ``network`` / ``auto``, and the
fallback when a budget cannot hold a network. Real clips, real x265 (the default ``hevc-ra``
keyframe codec), real files on disk.

Regenerate the golden section after a deliberate format change::

    DNERV_REGEN_GOLDEN=1 .venv/bin/python -m pytest tests/test_keyframe_only.py -k golden
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from bitstream import ContainerWriter, deflate_meta
from bitstream.errors import ChecksumError, FormatError, TruncatedError
from bitstream.ids import SECTION_TYPES, id_of
from bitstream.keyframes import (
    CompactKeyframeIndex,
    pack_keyframes_compact,
    unpack_keyframes_compact,
)
from bitstream.meta import validate_metadata
from dnerv_codec.decoder import DnervFile
from dnerv_codec.encoder import encode
from dnerv_codec.encoder.keyframe_only import code
from dnerv_codec.keyframe import get_codec
from dnerv_codec.video import read_video

GOLDEN = Path(__file__).parent / "data" / "golden_v1_3_section7_keyframes_compact.bin"
SECTION = {name: type_id for type_id, name in SECTION_TYPES.items()}


def _entries() -> dict[tuple[int, int], bytes]:
    """Two videos: 35 keyframes (two CRC groups) and 3, fixed bytes."""
    out = {(0, k): bytes([k % 251]) * (k % 7 + 1) for k in range(35)}
    out.update({(1, k): b"v1-" + bytes([k]) * 200 for k in range(3)})
    return out


def _container(sections) -> bytes:
    writer = ContainerWriter()
    for type_id, payload in sections:
        writer.add(type_id, payload)
    return writer.finish()


# -- the compact keyframes section ------------------------------------------------------------
def test_compact_section_golden_bytes_and_round_trip():
    data = pack_keyframes_compact(_entries())
    if os.environ.get("DNERV_REGEN_GOLDEN"):
        GOLDEN.write_bytes(data)
    assert data == GOLDEN.read_bytes(), "the format changed: see docs/FORMAT.md, version history"
    assert unpack_keyframes_compact(data) == _entries()
    index = CompactKeyframeIndex.parse_compact(lambda o, n: data[o : o + n], len(data))
    assert index.count(0) == 35 and index.count(1) == 3 and index.group == 32
    # the index costs about two bytes a keyframe (type 2: sixteen)
    payload = sum(len(b) for b in _entries().values())
    assert len(data) - payload < 4 + 1 + 1 + 2 + 38 * 2 + 3 * 4


def test_compact_section_refuses_damage():
    data = pack_keyframes_compact(_entries())
    payload_start = len(data) - sum(len(b) for b in _entries().values())
    damaged = bytearray(data)
    damaged[payload_start + 40] ^= 1  # a byte of video 0's first group
    with pytest.raises(ChecksumError, match="keyframes 0..31 of video 0"):
        unpack_keyframes_compact(bytes(damaged))
    damaged = bytearray(data)
    damaged[6] ^= 1  # a count in the index
    with pytest.raises((ChecksumError, FormatError, TruncatedError)):
        unpack_keyframes_compact(bytes(damaged))
    with pytest.raises((TruncatedError, FormatError)):
        unpack_keyframes_compact(data[:-1])
    with pytest.raises(FormatError, match="after the last"):
        unpack_keyframes_compact(data[:4] + data[4:] + b"x")
    with pytest.raises(ValueError, match="keyframes 0"):
        pack_keyframes_compact({(0, 1): b"a"})


def _png_meta(frames: int) -> dict:
    """The metadata of a keyframe-only file of one 8x8 video with PNG keyframes."""
    return {
        "encoder": "dnerv-codec test",
        "videos": [
            {"name": "a", "frames": frames, "width": 8, "height": 8, "fps_num": 25, "fps_den": 1}
        ],
        "clip_length": 1,
        "keyframe": {"codec": 1, "name": "png", "quality": 1, "weights_digest": ""},
    }


def test_keyframe_only_metadata_rules():
    meta = _png_meta(3)
    validate_metadata(meta)  # no model, norm or quant: keyframe-only
    with pytest.raises(FormatError, match="missing required keys model, norm, quant"):
        validate_metadata({**meta, "clip_length": 2})


def test_keyframe_only_file_with_weights_section_is_refused(tmp_path):
    import io

    from PIL import Image

    frame = np.zeros((8, 8, 3), np.uint8)
    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="PNG")
    meta = _png_meta(1)
    sections = [
        (SECTION["metadata-deflate"], deflate_meta(meta)),
        (SECTION["keyframes-compact"], pack_keyframes_compact({(0, 0): buf.getvalue()})),
    ]
    good, bad = tmp_path / "good.dnerv", tmp_path / "bad.dnerv"
    good.write_bytes(_container(sections))
    with DnervFile(good, device="cpu") as f:
        assert f.keyframe_only and np.array_equal(next(f.frames(0)), frame)
    bad.write_bytes(_container([(SECTION["weights"], b""), *sections]))
    with pytest.raises(FormatError, match="keyframe-only file has a weights section"):
        DnervFile(bad, device="cpu")


# -- the encoder ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def clip16(sample_clip):
    return read_video(sample_clip, max_frames=16)


def test_mode_keyframes_is_the_keyframe_codec_on_every_frame(tmp_path, clip16):
    out = tmp_path / "kf.dnerv"
    report = encode([clip16], out, mode="keyframes", target_bpp=0.08, quiet=True)
    assert report.structure == "keyframes" and report.parameters == 0
    assert report.bytes == out.stat().st_size <= 0.08 * clip16.frames[0].size / 3 * 16 / 8
    with DnervFile(out, device="cpu") as f:
        assert f.keyframe_only and f.clip_length == 1
        quality = f.meta["keyframe"]["quality"]
        decoded = np.stack(list(f.frames(0)))
        middle = np.stack(list(f.frames(0, 5, 9)))  # random access
    codec = get_codec("hevc-ra", quality)
    streams, recon = codec.compress_with_reconstruction(np.asarray(clip16.frames))
    assert np.array_equal(decoded, recon) and np.array_equal(middle, recon[5:9])
    # the file is the codec's own stream plus a few hundred bytes
    assert 0 < report.bytes - sum(map(len, streams)) < 400
    # one more quality step no longer fits the budget
    assert code([clip16], get_codec("hevc-ra", quality + 1)).size > 0.08 * 320 * 180 * 16 / 8
    assert report.psnr is not None and report.frame_psnr["mean_minus_min"] >= 0


def test_mode_keyframes_at_a_fixed_quality_and_info(tmp_path, clip16):
    out = tmp_path / "q.dnerv"
    report = encode([clip16], out, mode="keyframes", preset="tiny", keyframe_quality=10, quiet=True)
    assert report.structure == "keyframes"
    result = subprocess.run(
        [sys.executable, "-m", "dnerv_codec", "info", str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "keyframe-only" in result.stdout and "format 1.5" in result.stdout
    assert "keyframes: 16 coded with hevc-intra (quality 10)" in result.stdout


def test_budget_too_small_for_a_network_falls_back_to_keyframes(tmp_path, clip16):
    """8 frames at 0.06 bpp cannot hold keyframes and the smallest network; auto codes them
    keyframe-only, network mode refuses with one line."""
    frames = clip16.frames[:8]
    video = type(clip16)(clip16.name, frames, clip16.fps)
    report = encode([video], tmp_path / "a.dnerv", target_bpp=0.06, quiet=True)
    assert report.structure == "keyframes" and report.bytes <= 0.06 * 320 * 180 * 8 / 8
    from dnerv_codec.errors import InputError

    with pytest.raises(InputError, match="too small"):
        encode([video], tmp_path / "n.dnerv", target_bpp=0.06, mode="network", quiet=True)
    assert not (tmp_path / "n.dnerv").exists()


def test_auto_keeps_the_file_that_decodes_better(tmp_path, clip16):
    """With one epoch the network cannot beat its keyframe codec on every frame: auto keeps
    the keyframe-only file, reports the network's, and never keeps the worse of the two."""
    out = tmp_path / "auto.dnerv"
    report = encode([clip16], out, target_bpp=0.1, epochs=1, quiet=True)
    other = report.alternative
    assert other is not None and {report.structure, other["structure"]} == {"network", "keyframes"}
    assert report.psnr >= other["psnr"]
    assert report.bytes == out.stat().st_size <= 0.1 * 320 * 180 * 16 / 8
    with DnervFile(out, device="cpu") as f:
        assert f.keyframe_only == (report.structure == "keyframes")
    network = encode(
        [clip16], tmp_path / "net.dnerv", target_bpp=0.1, epochs=1, mode="network", quiet=True
    )
    assert network.structure == "network" and network.alternative is None


def test_compact_section_is_what_the_encoder_writes(tmp_path, clip16):
    out = tmp_path / "p.dnerv"
    encode([clip16], out, preset="tiny", epochs=1, quiet=True, verify=False)
    data = out.read_bytes()
    assert struct.unpack_from("<HH", data, 8) == (1, 5)
    from bitstream.container import ContainerReader

    with ContainerReader(out) as reader:
        assert reader.has_section(SECTION["keyframes-compact"])
        assert not reader.has_section(SECTION["keyframes"])
        # format 1.4: the metadata with the preset dictionary, the only metadata section
        assert reader.has_section(SECTION["metadata-dict"])
        assert not reader.has_section(SECTION["metadata-deflate"])
        section = reader.read_section(SECTION["keyframes-compact"])
    assert zlib.crc32(section) >= 0 and len(unpack_keyframes_compact(section)) == 3
    assert id_of(SECTION_TYPES, "keyframes-compact") == 7
