"""Content-adaptive structure end to end: scene cuts found in real footage start clips, the file
stores where its keyframes are (``videos[i].keyframes``, format 1.3), and the decoder, random
access and ``ClipDataset`` follow it."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

import dnerv_codec
from bitstream.errors import FormatError
from bitstream.meta import validate_metadata
from dnerv_codec.clips import Structure
from dnerv_codec.decoder import ClipDataset
from dnerv_codec.rd.stress import SAMPLE, SAMPLE_640, cuts
from dnerv_codec.video import Video, read_video

FAST = {"preset": "tiny", "keyframe_codec": "png", "keyframe_quality": 1, "quiet": True}


@pytest.fixture(scope="module")
def shots() -> Video:
    """Four real 4-frame shots joined by hard cuts (16 frames, 320x180)."""
    frames = cuts(read_video(SAMPLE).frames, read_video(SAMPLE_640).frames, shot=4)
    return Video("shots", frames, Fraction(25))


@pytest.fixture(scope="module")
def encoded(shots, tmp_path_factory):
    out = tmp_path_factory.mktemp("cuts") / "cuts.dnerv"
    report = dnerv_codec.encode([shots], out, epochs=2, clip_length=4, seed=0, **FAST)
    return out, report


def test_cuts_are_keyframes_and_the_file_says_where(encoded):
    out, _ = encoded
    with dnerv_codec.open(out, device="cpu") as f:
        gaps = f.meta["videos"][0]["keyframes"]
        structure = f.structures[0]
    assert structure == Structure.with_cuts(16, 4, [4, 8, 12])
    assert structure.keys == (0, 3, 4, 7, 8, 11, 12, 15) and gaps == structure.gaps()


def test_decoding_follows_the_structure(encoded, shots):
    out, report = encoded
    with dnerv_codec.open(out, device="cpu") as f:
        whole = np.stack(list(f.frames(0)))
        part = np.stack(list(f.frames(0, 3, 9)))  # across two cuts
    assert whole.shape == shots.frames.shape and np.array_equal(part, whole[3:9])
    dataset = ClipDataset(out)
    assert len(dataset) == len(Structure.with_cuts(16, 4, [4, 8, 12]).clips())
    clip, video = dataset[2]  # clips [0, 3), [3, 4), [4, 7): the second shot's first
    assert video == 0 and np.array_equal(clip.permute(0, 2, 3, 1).numpy(), whole[4:7])
    assert report.psnr > 10


def test_no_cuts_keeps_the_official_structure(shots, tmp_path):
    out = tmp_path / "plain.dnerv"
    dnerv_codec.encode([shots], out, epochs=1, clip_length=4, cuts=False, verify=False, **FAST)
    with dnerv_codec.open(out, device="cpu") as f:
        assert "keyframes" not in f.meta["videos"][0]
        assert f.structures[0] == Structure.uniform(16, 4)


@pytest.mark.parametrize(
    "gaps, words",
    [
        (b"\x04\x04\x04", "not the last frame"),  # reaches 12 of 15
        (b"\x05\x05\x05", "outside 1..4"),
        (b"\x00\x04\x04\x04\x03", "outside 1..4"),
        ([4, 4, 4, 3], "must be bytes"),
    ],
)
def test_bad_keyframe_gaps_are_refused(gaps, words):
    meta = {
        "encoder": "test",
        "videos": [
            {"name": "a", "frames": 16, "width": 8, "height": 8, "fps_num": 25, "fps_den": 1}
        ],
        "clip_length": 4,
        "keyframe": {"codec": 1, "name": "png", "quality": 1, "weights_digest": ""},
        "model": {"arch": 1, "config": {}},
        "norm": {"mean": [0.5] * 3, "std": [0.25] * 3},
        "quant": {},
        "geometry": {"mode": "patches", "patch_h": 8, "patch_w": 8},
    }
    validate_metadata(meta)
    meta["videos"][0]["keyframes"] = gaps
    with pytest.raises(FormatError, match=words):
        validate_metadata(meta)


def test_placed_keyframes_need_the_compact_section(encoded, tmp_path):
    """A 1.2 reader does not know section 7, so a file whose keyframes are placed by
    ``videos[i].keyframes`` must use it: with the plain section it is refused."""
    from bitstream.container import ContainerReader, write_container
    from bitstream.keyframes import pack_keyframes, unpack_keyframes_compact

    out, _ = encoded
    with ContainerReader(out) as reader:
        sections = {e.type_id: reader.read_section(e.type_id) for e in reader.sections}
    plain = pack_keyframes(unpack_keyframes_compact(sections.pop(7)))
    legacy = tmp_path / "plain-keyframes.dnerv"
    write_container(legacy, sorted([*sections.items(), (2, plain)]))
    with pytest.raises(FormatError, match="needs the compact keyframes section"):
        dnerv_codec.open(legacy, device="cpu")
