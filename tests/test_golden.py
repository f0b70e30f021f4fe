"""Golden bytes of the sections a decoder of the current format must read: the compact weights
section (type 4, format 1.1), the packed weights section (type 5, format 1.2), the deflated
metadata section (type 6, format 1.2) and the metadata with a preset dictionary (type 8, format
1.4), each for one tiny `dnerv` network.

The weight sections store no names or shapes: a reader takes them from the network the metadata
describes. :func:`dnerv_layout` derives that list from ``model.config`` alone, as the table of
docs/FORMAT.md ("Tensor order of the dnerv network") states it, without torch; one test checks it
against the state_dict of real networks.

Every value here is fixed (no random numbers), so the files change only when the format does.
Regenerate them after a deliberate format change (and bump the version in docs/FORMAT.md)::

    DNERV_REGEN_GOLDEN=1 .venv/bin/python -m pytest tests/test_golden.py
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from bitstream.layout import dnerv_layout
from bitstream.meta import deflate_meta, dict_meta, inflate_meta, undict_meta, validate_metadata
from bitstream.weights import (
    WeightRecord,
    dequantize,
    pack_weights_compact,
    pack_weights_packed,
    unpack_weights_compact,
    unpack_weights_packed,
)

DATA = Path(__file__).parent / "data"
GOLDEN_COMPACT = DATA / "golden_v1_1_section4_weights_compact.bin"
GOLDEN_PACKED = DATA / "golden_v1_2_section5_weights_packed.bin"
GOLDEN_META = DATA / "golden_v1_2_section6_metadata_deflate.bin"
GOLDEN_META_DICT = DATA / "golden_v1_4_section8_metadata_dict.bin"

# A complete version-1 `dnerv` configuration (docs/FORMAT.md 4.3), as small as the network allows.
CONFIG = {
    "arch": "dnerv",
    "version": 1,
    "clip_length": 2,
    "expansion": 1.0,
    "lower_width": 2,
    "encoder_dim": 2,
    "embed_base": 1.25,
    "embed_levels": 2,
    "stem_hidden": 4,
    "rgb_skip": True,
    "head_hidden": 0,
    "flow_cascade": False,
    "mean": [0.5, 0.5, 0.5],
    "std": [0.25, 0.25, 0.25],
    "frame_size": [8, 12],
    "fc_dim": 4,
    "fc_hw": [2, 3],
    "strides": [2, 2],
}


# -- the tensor order of docs/FORMAT.md, from the configuration alone --------------------------
# -- the golden contents ------------------------------------------------------------------------
def golden_metadata() -> dict:
    """Metadata of one 12x8 video of 5 frames coded with the network of CONFIG."""
    return {
        "encoder": "dnerv-codec golden",
        "videos": [
            {"name": "tiny", "frames": 5, "width": 12, "height": 8, "fps_num": 25, "fps_den": 1}
        ],
        "clip_length": CONFIG["clip_length"],
        "geometry": {"mode": "patches", "patch_h": 8, "patch_w": 12},
        "model": {"arch": 1, "config": CONFIG},
        "norm": {"mean": CONFIG["mean"], "std": CONFIG["std"]},
        "keyframe": {"codec": 10, "name": "hevc-ra", "quality": 20, "weights_digest": ""},
        "quant": {"bits": 4, "prune": 0.0, "scheme": "symmetric"},
    }


def golden_records(layout, axis_rule: str) -> list[WeightRecord]:
    """4-bit symmetric records for ``layout``: symbols -7..7 in a fixed pattern, scales that are
    powers of two. ``axis_rule``: "mixed" gives weights of rank > 1 one scale per output channel
    (axis 0) and the rest one scale (axis -1); "tensor" gives every tensor one scale."""
    records, start = [], 0
    for k, (name, shape) in enumerate(layout):
        n = int(np.prod(shape))
        symbols = ((np.arange(start, start + n) * 5 + k) % 15 - 7).reshape(shape)
        start += n
        axis = 0 if axis_rule == "mixed" and len(shape) > 1 else -1
        channels = shape[0] if axis == 0 else 1
        scale = np.float32(2.0) ** -np.float32(4 + (np.arange(channels) + k) % 5)
        records.append(
            WeightRecord(
                name,
                tuple(shape),
                "symmetric",
                4,
                axis,
                scale.astype(np.float32),
                np.zeros(0, np.float32),
                symbols=symbols.astype(np.int64),
            )
        )
    return records


def _golden(path: Path, data: bytes) -> bytes:
    if os.environ.get("DNERV_REGEN_GOLDEN"):
        path.write_bytes(data)
    stored = path.read_bytes()
    assert data == stored, f"{path.name}: the format changed; see docs/FORMAT.md, version history"
    return stored


def _same(read: list[WeightRecord], expected: list[WeightRecord]) -> None:
    assert [(r.name, r.shape, r.scheme, r.bits, r.axis) for r in read] == [
        (r.name, r.shape, r.scheme, r.bits, r.axis) for r in expected
    ]
    for r, e in zip(read, expected, strict=True):
        np.testing.assert_array_equal(r.symbols, e.symbols)
        np.testing.assert_array_equal(r.scale, e.scale)
        scale = e.scale.reshape((-1,) + (1,) * (len(e.shape) - 1)) if e.axis == 0 else e.scale[0]
        np.testing.assert_array_equal(dequantize(r), e.symbols.astype(np.float32) * scale)


# -- the tests ------------------------------------------------------------------------------------
def test_layout_of_the_golden_network():
    layout = dnerv_layout(CONFIG)
    assert len(layout) == 14 + 12 * len(CONFIG["strides"])
    assert layout[0] == ("stem.fc1.weight", (4, 4))
    assert layout[-1] == ("rgb_head.conv2.bias", (3,))


def test_golden_section4_compact_weights():
    layout = dnerv_layout(CONFIG)
    records = golden_records(layout, "mixed")
    data = _golden(GOLDEN_COMPACT, pack_weights_compact(records))
    _same(unpack_weights_compact(data, layout), records)


def test_golden_section5_packed_weights():
    layout = dnerv_layout(CONFIG)
    records = golden_records(layout, "mixed")
    data = _golden(GOLDEN_PACKED, pack_weights_packed(records))
    _same(unpack_weights_packed(data, layout), records)
    # The header as docs/FORMAT.md 7.2 lays it out: n, scheme, bits, then the axis flags.
    n = len(layout)
    assert data[0] == n and data[1] == 3 and data[2] == 4
    flags = int.from_bytes(data[3 : 3 + (n + 7) // 8], "little")
    assert flags == sum(1 << k for k, (_, shape) in enumerate(layout) if len(shape) > 1)


def test_golden_section6_deflated_metadata():
    data = _golden(GOLDEN_META, deflate_meta(golden_metadata()))
    meta = inflate_meta(data)
    assert meta == golden_metadata()
    validate_metadata(meta)


def test_golden_section8_metadata_with_dictionary_1():
    data = _golden(GOLDEN_META_DICT, dict_meta(golden_metadata(), 1))
    meta = undict_meta(data)
    assert meta == golden_metadata()
    validate_metadata(meta)


@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors")
@pytest.mark.parametrize(
    "preset, size, options",
    [
        ("uvg-xs", (256, 320), {}),
        ("tiny", (32, 48), {}),
        ("compact", (64, 96), {"flow_cascade": True, "clip_length": 2}),
        ("compact", (64, 64), {"head_hidden": 4, "clip_length": 4}),
    ],
)
def test_layout_matches_the_network(preset, size, options):
    """The table of docs/FORMAT.md, computed from the configuration, is the network's own order."""
    torch = pytest.importorskip("torch")
    from dnerv_codec.model import build_model
    from dnerv_codec.quant import weight_layout

    with torch.device("meta"):
        model = build_model(preset, size, **options)
    assert dnerv_layout(model.config) == weight_layout(model)
    assert dnerv_layout(model.config) == [
        (k, tuple(v.shape)) for k, v in model.state_dict().items()
    ]
    assert dnerv_layout(CONFIG) == weight_layout(_model_of(CONFIG))


def _model_of(config: dict):
    from dnerv_codec.model import model_from_config

    return model_from_config(config)
