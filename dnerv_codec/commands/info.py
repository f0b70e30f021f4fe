"""``dnerv info FILE [--json]``: what is inside a .dnerv file, read with ``bitstream`` only.

Shows the videos (frames, resolution, frame rate), the model, the keyframe codec, the bytes of
every section and the bits per pixel computed from the real file size. Every section's CRC32 is
checked, the metadata is validated (``bitstream.meta.validate_metadata``) and every weight record
is parsed (its symbols are not decoded). Text from the file is escaped in the output.
Imports no torch: the tensors of a compact or packed weights section come from the model
configuration (``bitstream.layout``).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import click

from bitstream.container import ContainerReader
from bitstream.errors import FormatError
from bitstream.ids import ARCHITECTURES, KEYFRAME_CODECS, SECTION_TYPES
from bitstream.keyframes import keyframe_index
from bitstream.layout import dnerv_layout
from bitstream.meta import is_keyframe_only, printable, read_metadata, validate_metadata
from bitstream.weight_sections import PLAIN, describe_section, weights_section


def _fps(video: dict[str, Any]) -> float:
    return video["fps_num"] / video["fps_den"]


def inspect(path: str | Path) -> dict[str, Any]:
    """Everything ``dnerv info --json`` prints, as a dict.

    Raises:
        FormatError (or another DnervError): the file is not a sound .dnerv container.
    """
    with ContainerReader(path) as reader:
        reader.verify()
        meta = validate_metadata(read_metadata(reader))
        sections = {
            SECTION_TYPES.get(e.type_id, f"type_{e.type_id}"): e.length for e in reader.sections
        }
        keyframes = len(keyframe_index(reader).entries)
        tensors: list[dict[str, Any]] = []
        kind = weights_section(reader)
        if kind is not None and is_keyframe_only(meta):
            raise FormatError(f"{path}: a keyframe-only file has a weights section")
        if kind is not None:
            layout = [] if kind == PLAIN else dnerv_layout(meta["model"]["config"])
            tensors = describe_section(reader, kind, layout)
        size, version = reader.file_size, reader.version
    videos = [
        {
            "name": v["name"],
            "frames": v["frames"],
            "width": v["width"],
            "height": v["height"],
            "fps": _fps(v),
        }
        for v in meta["videos"]
    ]
    pixels = sum(v["width"] * v["height"] * v["frames"] for v in videos)
    model = meta.get("model")  # none in a keyframe-only file
    keyframe = meta["keyframe"]
    return {
        "file": str(path),
        "format_version": f"{version[0]}.{version[1]}",
        "encoder": meta["encoder"],
        "videos": videos,
        "clip_length": meta["clip_length"],
        "bytes": size,
        "bpp": size * 8 / pixels,
        "sections": sections,
        "overhead_bytes": size - sum(sections.values()),
        "keyframe_codec": KEYFRAME_CODECS[keyframe["codec"]],  # the id decides (validated)
        "keyframe_quality": keyframe.get("quality"),
        "keyframes": keyframes,
        "model": ARCHITECTURES[model["arch"]] if model else None,
        "model_config": model.get("config", {}) if model else {},
        "quant": meta.get("quant", {}),
        "weights": {
            "tensors": len(tensors),
            "parameters": sum(t["elements"] for t in tensors),
            "entropy_models": dict(Counter(t["model"] or t["scheme"] for t in tensors)),
        },
        "tensors": tensors,
    }


def _fps_text(video: dict[str, Any]) -> str:
    fps = video["fps"]
    return f"{fps:g}" if fps == round(fps, 3) else f"{fps:.3f}"


def _text(info: dict[str, Any], tensors: bool = False) -> str:
    lines = [
        f"{info['file']}: .dnerv format {info['format_version']}, {info['bytes']} bytes, "
        f"written by {info['encoder']}",
        f"videos: {len(info['videos'])} (clips of {info['clip_length']} frames)",
    ]
    for v in info["videos"]:
        lines.append(
            f"  {v['name']}: {v['frames']} frames, {v['width']}x{v['height']}, {_fps_text(v)} fps"
        )
    if info["model"] is None:
        lines.append("model: none (keyframe-only: every frame is a keyframe)")
    else:
        config = ", ".join(f"{k}={v}" for k, v in info["model_config"].items())
        lines.append(f"model: {info['model']} ({config})" if config else f"model: {info['model']}")
        weights = info["weights"]
        quant = ", ".join(f"{k}={v}" for k, v in info["quant"].items())
        lines.append(
            f"weights: {weights['tensors']} tensors, {weights['parameters']} parameters; {quant}"
        )
        models = ", ".join(f"{name} x{n}" for name, n in weights["entropy_models"].items())
        lines.append(f"entropy models: {models}" if models else "entropy models: none")
    lines.append(
        f"keyframes: {info['keyframes']} coded with {info['keyframe_codec']} "
        f"(quality {info['keyframe_quality']})"
    )
    lines.append("sections:")
    width = max(len(name) for name in [*info["sections"], "header+table"])
    for name, length in info["sections"].items():
        lines.append(f"  {name:<{width}} {length:>10} bytes")
    lines.append(f"  {'header+table':<{width}} {info['overhead_bytes']:>10} bytes")
    lines.append(f"bpp: {info['bpp']:.5f} (all {info['bytes']} bytes of the file over all pixels)")
    if tensors:
        lines.append("tensors:")
        for t in info["tensors"]:
            shape = "x".join(map(str, t["shape"])) or "scalar"
            lines.append(
                f"  {t['name']}: {shape} {t['scheme']} {t['bits']}-bit axis {t['axis']}, "
                f"{t['payload_bytes']} bytes, model {t['model'] or '-'} "
                f"(table {t['table_bytes']} bytes)"
            )
    return "\n".join(lines)


@click.command("info")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@click.option("--tensors", is_flag=True, help="Also list every weight tensor (text output).")
def info(file: Path, as_json: bool, tensors: bool) -> None:
    """Show what is inside a .dnerv FILE: videos, model, keyframes, section sizes, bpp."""
    result = inspect(file)
    if as_json:
        click.echo(json.dumps(_strict(result), indent=2, allow_nan=False))
    else:  # names and strings come from the file: escaped before they reach a terminal
        click.echo("\n".join(printable(line) for line in _text(result, tensors).split("\n")))


def _strict(value: object) -> object:
    """Metadata may hold bytes and non-finite floats, which JSON cannot: show them as strings."""
    if isinstance(value, dict):
        return {key: _strict(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_strict(item) for item in value]
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value
