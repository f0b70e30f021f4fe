"""The metadata schema: the keys, types, names and limits a reader checks on decoded metadata.

:func:`validate_metadata` runs on the value :mod:`bitstream.meta` decodes, before anything a
declared size asks for is allocated (``docs/FORMAT.md``, "Schema", "Names", "Keyframe-only
files" and "Limits"). A video name is a label, never a path (:func:`name_problem`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from bitstream.errors import FormatError
from bitstream.ids import ARCHITECTURES, KEYFRAME_CODECS, KEYFRAME_ONLY_CODECS

if TYPE_CHECKING:
    from bitstream.meta import MetaValue

MAX_VIDEOS = 4096  # videos per file
MAX_FRAMES = 1 << 20  # frames per video: 11.6 hours at 25 fps
MAX_SIDE = 8192  # frame width and height in pixels (8K)
MAX_CLIP_LENGTH = 64  # frames per clip
MAX_PATCH_PIXELS = 1 << 20  # patch_h * patch_w of the geometry
MAX_PATCHES = 4096  # patches per frame
MAX_NAME_BYTES = 255  # a video name, in UTF-8 bytes
MAX_TEXT_BYTES = 1024  # any other string the decoder reads (encoder, codec name, digest)
MAX_WIDTH = 1 << 16  # channel counts of a model configuration
MAX_RATE_TERM = (1 << 31) - 1  # fps_num, fps_den

MUST_KEYS = ("encoder", "videos", "clip_length", "keyframe")
# MUST in a file with a network; a keyframe-only file (format 1.3) has none of them, a clip
# length of 1 and no weights section: every frame is a keyframe and is shown as decoded.
NETWORK_KEYS = ("model", "norm", "quant", "geometry")


def is_keyframe_only(meta: dict) -> bool:
    """Whether validated metadata describes a keyframe-only file (no network)."""
    return "model" not in meta


_NAME_CHARS = frozenset("/\\:")


def name_problem(name: object) -> str | None:
    """Why ``name`` cannot be a video name (a label, never a path), or None if it can.

    A name is a non-empty str of at most MAX_NAME_BYTES UTF-8 bytes, not ``.`` or ``..``, that
    does not start with ``-`` and holds no ``/``, ``\\``, ``:`` or unprintable character (NUL,
    control characters, line and paragraph separators, format characters).
    """
    if not isinstance(name, str):
        return "is not a string"
    if not name:
        return "is empty"
    if name in (".", ".."):
        return f"is {name!r}"
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        return f"has more than {MAX_NAME_BYTES} UTF-8 bytes"
    if name.startswith("-"):
        return "starts with '-'"
    bad = next((ch for ch in name if ch in _NAME_CHARS or not ch.isprintable()), None)
    if bad is not None:
        return f"holds {bad!r}"
    return None


def safe_name(text: str, max_bytes: int = MAX_NAME_BYTES, fallback: str = "video") -> str:
    """A name that :func:`name_problem` accepts, made from ``text`` (a file name, say):
    forbidden characters become ``_``, a leading ``-`` too, and it is cut to ``max_bytes``."""
    name = "".join("_" if ch in _NAME_CHARS or not ch.isprintable() else ch for ch in text)
    if name.startswith("-"):
        name = "_" + name[1:]
    name = name.encode("utf-8")[:max_bytes].decode("utf-8", "ignore")
    return fallback if name in ("", ".", "..") else name


def printable(text: object) -> str:
    """``text`` with every unprintable character escaped (``\\x1b``, ``\\u202e``...), for a
    terminal: strings from a file never reach one raw."""
    return "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in str(text)
    )


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _int(value: object, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        what = f"an int in {low}..{high}"
        raise FormatError(f"metadata: {where!r} must be {what}, not {_show(value)}")
    return value


def _number(value: object, where: str, low: float, high: float, positive: bool = False) -> float:
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    if not ok or not low <= value <= high or (positive and value <= 0):
        what = f"a finite number in {'(' if positive else '['}{low}, {high}]"
        raise FormatError(f"metadata: {where!r} must be {what}, not {_show(value)}")
    return float(value)


def _text(value: object, where: str, max_bytes: int = MAX_TEXT_BYTES) -> str:
    if not isinstance(value, str) or len(value.encode("utf-8")) > max_bytes:
        raise FormatError(f"metadata: {where!r} must be a str of at most {max_bytes} bytes")
    return value


def _dict(value: object, where: str) -> dict:
    if not isinstance(value, dict):
        raise FormatError(f"metadata: {where!r} must be a dict, not {_show(value)}")
    return value


def _ints(value: object, where: str, count: tuple[int, int], low: int, high: int) -> list[int]:
    if not isinstance(value, list) or not count[0] <= len(value) <= count[1]:
        size = str(count[0]) if count[0] == count[1] else f"{count[0]}..{count[1]}"
        raise FormatError(f"metadata: {where!r} must be a list of {size} ints, not {_show(value)}")
    return [_int(v, f"{where}[{i}]", low, high) for i, v in enumerate(value)]


def _triple(value: object, where: str, positive: bool = False) -> list[float]:
    if not isinstance(value, list) or len(value) != 3:
        raise FormatError(f"metadata: {where!r} must be a list of 3 numbers, not {_show(value)}")
    return [_number(v, f"{where}[{i}]", -1e6, 1e6, positive) for i, v in enumerate(value)]


def _bool(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise FormatError(f"metadata: {where!r} must be true or false, not {_show(value)}")
    return value


def _strides(value: object, where: str) -> list[int]:
    strides = _ints(value, where, (1, 64), 1, 16)
    if math.prod(strides) > MAX_SIDE:
        raise FormatError(f"metadata: {where!r} multiply to more than {MAX_SIDE}")
    return strides


# The dnerv configuration (docs/FORMAT.md 4.3.1): every key a reader uses, checked when present;
# a missing key takes the architecture's default. Other keys are ignored.
_DNERV_CONFIG = {
    "arch": lambda v, w: _text(v, w, 64),
    "version": lambda v, w: _int(v, w, 1, 2),
    "frame_size": lambda v, w: _ints(v, w, (2, 2), 1, MAX_SIDE),
    "fc_hw": lambda v, w: _ints(v, w, (2, 2), 1, MAX_SIDE),
    "fc_dim": lambda v, w: _int(v, w, 1, MAX_WIDTH),
    "strides": _strides,
    "clip_length": lambda v, w: _int(v, w, 1, MAX_CLIP_LENGTH),
    "expansion": lambda v, w: _number(v, w, 0, 256, positive=True),
    "lower_width": lambda v, w: _int(v, w, 1, MAX_WIDTH),
    "encoder_dim": lambda v, w: _int(v, w, 1, MAX_WIDTH),
    "embed_base": lambda v, w: _number(v, w, 0, 1024, positive=True),
    "embed_levels": lambda v, w: _int(v, w, 1, 4096),
    "stem_hidden": lambda v, w: _int(v, w, 1, MAX_WIDTH),
    "rgb_skip": _bool,
    "head_hidden": lambda v, w: _int(v, w, 0, MAX_WIDTH),
    "flow_cascade": _bool,
    "mean": _triple,
    "std": lambda v, w: _triple(v, w, positive=True),
}


def validate_metadata(meta: MetaValue) -> dict:
    """Check decoded metadata against the schema, names and limits of ``docs/FORMAT.md``: the
    one check a reader runs when it opens a file, before it allocates or decodes anything a
    declared size asks for. Unknown keys are allowed (and ignored). Returns ``meta``.

    Raises:
        FormatError: a MUST key is missing, a value has the wrong type, lies outside its limit,
            disagrees with another (clip length, geometry, keyframe codec id and name), or a
            video name is not a plain label (:func:`name_problem`) or repeats.
    """
    meta = _dict(meta, "metadata")
    network = "model" in meta or meta.get("clip_length") != 1
    missing = [key for key in MUST_KEYS + (NETWORK_KEYS if network else ()) if key not in meta]
    if missing:
        raise FormatError(f"metadata: missing required keys {', '.join(missing)}")
    _text(meta["encoder"], "encoder")
    videos = meta["videos"]
    if not isinstance(videos, list) or not 1 <= len(videos) <= MAX_VIDEOS:
        raise FormatError(f"metadata: 'videos' must be a list of 1..{MAX_VIDEOS} dicts")
    names: set[str] = set()
    for i, video in enumerate(videos):
        _video(_dict(video, f"videos[{i}]"), i, names)
    clip_length = _int(meta["clip_length"], "clip_length", 1, MAX_CLIP_LENGTH)
    for i, video in enumerate(videos):
        if "keyframes" in video:
            _keyframe_gaps(video["keyframes"], f"videos[{i}].keyframes", video, clip_length)
    codec = _keyframe(_dict(meta["keyframe"], "keyframe"))
    if not network:  # keyframe-only: the network's keys are absent
        return meta
    if codec in KEYFRAME_ONLY_CODECS:
        raise FormatError(
            f"metadata: keyframe codec {KEYFRAME_CODECS[codec]} codes keyframe-only files, but "
            "this file has a network"
        )
    _model(_dict(meta["model"], "model"), clip_length)
    norm = _dict(meta["norm"], "norm")
    _triple(norm.get("mean"), "norm.mean")
    _triple(norm.get("std"), "norm.std", positive=True)
    _dict(meta["quant"], "quant")
    _geometry(_dict(meta["geometry"], "geometry"), videos, meta["model"].get("config"))
    return meta


def _video(video: dict, i: int, names: set[str]) -> None:
    problem = name_problem(video.get("name"))
    if problem:
        raise FormatError(f"metadata: the name of video {i} {problem}; a name is a label")
    if video["name"] in names:
        raise FormatError(f"metadata: two videos are named {_show(video['name'])}")
    names.add(video["name"])
    _int(video.get("frames"), f"videos[{i}].frames", 1, MAX_FRAMES)
    for key in ("width", "height"):
        _int(video.get(key), f"videos[{i}].{key}", 1, MAX_SIDE)
    for key in ("fps_num", "fps_den"):
        _int(video.get(key), f"videos[{i}].{key}", 1, MAX_RATE_TERM)


def _keyframe_gaps(gaps: object, where: str, video: dict, clip_length: int) -> None:
    """``videos[i].keyframes`` (format 1.3): one byte per keyframe after frame 0, its distance
    from the one before, 1..clip_length, adding up to the video's last frame."""
    if not isinstance(gaps, bytes):
        raise FormatError(f"metadata: '{where}' must be bytes, got {type(gaps).__name__}")
    if any(not 1 <= gap <= clip_length for gap in gaps):
        raise FormatError(f"metadata: '{where}' holds a gap outside 1..{clip_length}")
    if sum(gaps) != video["frames"] - 1:
        raise FormatError(
            f"metadata: '{where}' reaches frame {sum(gaps)}, not the last frame "
            f"{video['frames'] - 1}"
        )


def _model(model: dict, clip_length: int) -> None:
    arch = _int(model.get("arch"), "model.arch", 0, 1 << 16)
    if arch not in ARCHITECTURES:
        raise FormatError(f"metadata: unknown architecture id {arch}")
    config = _dict(model.get("config"), "model.config")
    if ARCHITECTURES[arch] == "dnerv":
        for key, check in _DNERV_CONFIG.items():
            if key in config:
                check(config[key], f"model.config.{key}")
    if config.get("clip_length", clip_length) != clip_length:
        raise FormatError(
            f"metadata: clip_length {clip_length} differs from the model's {config['clip_length']}"
        )


def _keyframe(keyframe: dict) -> int:
    codec = _int(keyframe.get("codec"), "keyframe.codec", 0, 1 << 16)
    if codec not in KEYFRAME_CODECS:
        raise FormatError(f"metadata: unknown keyframe codec id {codec}")
    name = _text(keyframe.get("name"), "keyframe.name", 64)
    if name != KEYFRAME_CODECS[codec]:
        raise FormatError(
            f"metadata: keyframe codec id {codec} is {KEYFRAME_CODECS[codec]}, but its name "
            f"says {_show(name)}"
        )
    _int(keyframe.get("quality"), "keyframe.quality", -(1 << 31), 1 << 31)
    digest = _text(keyframe.get("weights_digest", ""), "keyframe.weights_digest", 128)
    if digest.strip("0123456789abcdef"):
        raise FormatError("metadata: 'keyframe.weights_digest' must be lowercase hex")
    return codec


def _geometry(geometry: dict, videos: list[dict], config: object) -> None:
    if geometry.get("mode") != "patches":
        raise FormatError(
            f"metadata: 'geometry.mode' must be \"patches\", not {_show(geometry.get('mode'))}"
        )
    ph = _int(geometry.get("patch_h"), "geometry.patch_h", 1, MAX_SIDE)
    pw = _int(geometry.get("patch_w"), "geometry.patch_w", 1, MAX_SIDE)
    if ph * pw > MAX_PATCH_PIXELS:
        raise FormatError(f"metadata: a patch of {pw}x{ph} exceeds {MAX_PATCH_PIXELS} pixels")
    frame_size = config.get("frame_size") if isinstance(config, dict) else None
    if frame_size is not None and frame_size != [ph, pw]:
        raise FormatError(
            f"metadata: geometry patches of {pw}x{ph} differ from the model's frame size "
            f"{frame_size[1]}x{frame_size[0]}"
        )
    for i, video in enumerate(videos):
        patches = -(-video["height"] // ph) * -(-video["width"] // pw)
        if patches > MAX_PATCHES:
            raise FormatError(
                f"metadata: video {i} needs {patches} patches a frame (limit {MAX_PATCHES})"
            )
