"""The tensor layout of a ``dnerv`` network, derived from its ``model.config`` alone.

Weight sections 4 and 5 (compact and packed) store no tensor names or shapes: a reader takes
them, in order, from this list (docs/FORMAT.md, "Tensor order of the dnerv network"). Plain
Python, no torch: ``dnerv info`` describes such a section without building the network
(``tests/test_golden.py`` checks the list against the network's own state dict).
"""

from __future__ import annotations

import math


def _widths(cfg: dict) -> list[int]:
    widths: list[int] = []
    for i, s in enumerate(cfg["strides"]):
        if i == 0:
            widths.append(int(cfg["fc_dim"] * cfg["expansion"]))
        else:
            widths.append(max(round(widths[-1] / s), cfg["lower_width"]))
    return widths


def dnerv_layout(cfg: dict) -> list[tuple[str, tuple[int, ...]]]:
    """(name, shape) of every tensor of a `dnerv` network, in the order weight sections store
    them (docs/FORMAT.md, "Tensor order of the dnerv network")."""
    strides, T = cfg["strides"], cfg["clip_length"]
    F, E, hh = cfg["fc_dim"], cfg["encoder_dim"], cfg["head_hidden"]
    fh = cfg["frame_size"][0] // math.prod(strides)
    fw = cfg["frame_size"][1] // math.prod(strides)
    widths = _widths(cfg)
    inputs = [F + E, *widths[:-1]]  # block i's input channels
    out: list[tuple[str, tuple[int, ...]]] = []

    def conv(name: str, o: int, i: int, k: int) -> None:
        out.extend([(f"{name}.weight", (o, i, k, k)), (f"{name}.bias", (o,))])

    out += [("stem.fc1.weight", (cfg["stem_hidden"], 2 * cfg["embed_levels"]))]
    out += [("stem.fc1.bias", (cfg["stem_hidden"],))]
    out += [
        ("stem.fc2.weight", (F * fh * fw, cfg["stem_hidden"])),
        ("stem.fc2.bias", (F * fh * fw,)),
    ]
    conv("encoder.head", E, 3, 3)
    for j, s in enumerate(reversed(strides)):
        conv(f"encoder.body.{j}", E, E, s)
    for i, c in enumerate([F + E, *widths]):
        hidden = max(c // 4, hh)
        conv(f"flow_heads.{i}.conv1", hidden, c, 1)
        conv(f"flow_heads.{i}.conv2", 4, hidden, 3)
    for i, (c_in, c_out, s) in enumerate(zip(inputs, widths, strides, strict=True)):
        conv(f"blocks.{i}.to_style", 2 * c_in, E, 1)
        conv(f"blocks.{i}.conv", c_out * s * s, c_in, 3)
        out += [
            (f"blocks.{i}.tfc.weight", (c_out * T, T, 1, 1)),
            (f"blocks.{i}.tfc.bias", (c_out * T,)),
        ]
    c = widths[-1] + 3
    hidden = max(c // 4, hh)
    conv("rgb_head.conv1", hidden, c, 1)
    conv("rgb_head.conv2", 3, hidden, 3)
    return out
