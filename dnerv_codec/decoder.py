"""Reading a .dnerv file back into frames: the decoder.

``open(path)`` gives a :class:`DnervFile` with ``.videos`` and ``.frames(video, start, stop)``,
which decodes only the clips that cover the requested range and only the keyframes those clips
need, clip by clip, so memory stays bounded whatever the video length. Writing output files
(``decode(path, outdir)``) and the clips as a Dataset (``ClipDataset``) are
:mod:`dnerv_codec.decoding`, whose names can be imported from here too.

This module imports no training code: the network, the stored weights (dequantised by the
normative ``bitstream.weights.dequantize``) and the keyframe codec are all it needs.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from bitstream.container import ContainerReader
from bitstream.errors import LimitError
from bitstream.keyframes import CompactKeyframeIndex, keyframe_index
from bitstream.meta import is_keyframe_only, read_metadata, validate_metadata
from bitstream.weight_sections import read_weights, weights_section
from bitstream.weights import MAX_TOTAL_ELEMENTS
from dnerv_codec.clips import Structure, clip_inputs
from dnerv_codec.errors import FormatError, InputError
from dnerv_codec.geometry import Geometry, from_patches, to_patches
from dnerv_codec.memory import trim
from dnerv_codec.model import model_from_config
from dnerv_codec.quant import records_to_state, weight_layout


def stored_layout(config: object) -> list[tuple[str, tuple[int, ...]]]:
    """(name, shape) of each stored weight tensor of the network ``config`` describes, sized on
    the meta device (nothing allocated); FormatError for a bad configuration or a network of
    more than ``MAX_TOTAL_ELEMENTS`` weights."""
    return _network(config)[0]


def _network(config: object) -> tuple[list[tuple[str, tuple[int, ...]]], dict]:
    """The stored layout and the full configuration (defaults filled in) of a network."""
    try:
        with torch.device("meta"):
            model = model_from_config(config)
            layout = weight_layout(model)
    except Exception as exc:  # anything a configuration from a file makes the model raise
        raise FormatError(f"metadata: bad model configuration ({_brief(exc)})") from None
    total = sum(math.prod(shape) for _, shape in layout)
    if total > MAX_TOTAL_ELEMENTS:
        raise LimitError(
            f"metadata: the network has {total} weights, more than the limit {MAX_TOTAL_ELEMENTS}"
        )
    return layout, model.config


def _brief(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


@dataclass(frozen=True)
class VideoInfo:
    """One video of a .dnerv file."""

    name: str
    frames: int
    width: int
    height: int
    fps: Fraction


def resolve_device(device: str) -> torch.device:
    """``auto`` picks CUDA when present; ``cuda`` without a GPU is an input error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda was asked for, but no CUDA GPU is available")
    if device not in ("cpu", "cuda"):
        raise InputError(f"unknown device {device!r}: use auto, cpu or cuda")
    return torch.device(device)


def _meta_videos(meta: dict) -> list[VideoInfo]:
    """The videos of validated metadata."""
    return [
        VideoInfo(
            v["name"], v["frames"], v["width"], v["height"], Fraction(v["fps_num"], v["fps_den"])
        )
        for v in meta["videos"]
    ]


_CPU_PATCHES = 4  # patch clips per network call on a CPU
_CACHED_GROUP = 32  # keyframe groups up to this long are decoded whole and cached


class DnervFile:
    """An open .dnerv file. Use as a context manager, or call :meth:`close`.

    Args:
        path: the .dnerv file.
        device: ``auto``, ``cpu`` or ``cuda``.
        half: run the network in float16 (CUDA only).
        batch: clips decoded per network call; default 1 on CPU (measured faster than 4 there,
            benchmarks/RESULTS.md "Decoder") and 4 on CUDA.
        keyframe_weights: weights file of a learned keyframe codec, if the file uses one.
    """

    def __init__(
        self,
        path: str | Path,
        device: str = "auto",
        half: bool = False,
        batch: int | None = None,
        keyframe_weights: str | Path | None = None,
    ) -> None:
        self.path = Path(path)
        self.device = resolve_device(device)
        if half and self.device.type != "cuda":
            raise InputError("--half needs a CUDA GPU (float16 convolutions are slow on CPU)")
        if batch is None:
            batch = 4 if self.device.type == "cuda" else 1
        if batch < 1:
            raise InputError(f"--batch must be at least 1, got {batch}")
        self.half, self.batch = half, batch
        self._reader = ContainerReader(self.path)
        try:
            self._open()
        except BaseException:
            self._reader.close()
            raise
        self._keyframe_weights = keyframe_weights
        self._model: torch.nn.Module | None = None
        self._codec = None
        self._cache: dict[tuple[int, int], np.ndarray] = {}  # (video, first of group) -> frames

    def _open(self) -> None:
        """Check the whole file against its metadata before anything is decoded: the schema
        and limits (``bitstream.meta.validate_metadata``), the network it describes (sized on
        the meta device), the geometry, the keyframe codec and every video's keyframe count."""
        self.meta = validate_metadata(read_metadata(self._reader))
        self.videos = _meta_videos(self.meta)
        self.clip_length = self.meta["clip_length"]
        self._codec_name = _codec_name(self.meta["keyframe"])
        self._weights_section = weights_section(self._reader)  # refuses several
        # keyframe-only: no network, every frame a keyframe shown as decoded
        self.keyframe_only = is_keyframe_only(self.meta)
        if self.keyframe_only:
            if self._weights_section is not None:
                raise FormatError(f"{self.path.name}: a keyframe-only file has a weights section")
            self.layout, self.geometry = [], None
        else:
            self._open_network()
        # where each video's keyframes are: videos[i].keyframes (gaps), else every T frames
        self.structures = [
            Structure.from_gaps(info.frames, self.clip_length, video.get("keyframes"))
            for info, video in zip(self.videos, self.meta["videos"], strict=True)
        ]
        self._keyframe_index = keyframe_index(self._reader)
        placed = any("keyframes" in video for video in self.meta["videos"])
        if placed and not isinstance(self._keyframe_index, CompactKeyframeIndex):
            raise FormatError("metadata: 'videos[i].keyframes' needs the compact keyframes section")
        stored = Counter(e.video for e in self._keyframe_index.entries)
        for v, structure in enumerate(self.structures):
            need = structure.keyframe_count
            if stored.pop(v, 0) != need:
                raise FormatError(f"keyframes section: video {v} needs {need} keyframes")
        if stored:
            raise FormatError(
                f"keyframes section: keyframes of video {min(stored)}, not in the file"
            )

    def _open_network(self) -> None:
        """The network's part of :meth:`_open`: its configuration, geometry and weights."""
        self.layout, config = _network(self.meta["model"]["config"])
        if config["clip_length"] != self.clip_length:
            raise FormatError(
                f"metadata: clip_length {self.clip_length} differs from the model's "
                f"{config['clip_length']}"
            )
        # validate_metadata checked it: patches of patch_h x patch_w, the model's frame size
        self.geometry = Geometry.from_meta(self.meta["geometry"])
        if self._weights_section is None:
            raise FormatError(
                f"{self.path.name}: needs exactly one weights section (plain, compact or "
                "packed), has 0"
            )

    # -- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        self._reader.close()

    def __enter__(self) -> DnervFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- parts, built on first use -----------------------------------------------------------
    @property
    def model(self) -> torch.nn.Module:
        if self.keyframe_only:
            raise InputError(f"{self.path.name} is keyframe-only: it holds no network")
        if self._model is None:
            records = self._weight_records(self.layout)
            model = model_from_config(self.meta["model"]["config"])
            try:
                model.load_state_dict(records_to_state(records))
            except RuntimeError as exc:
                raise FormatError(f"weights section does not fit the model: {exc}") from None
            model.eval().to(self.device)
            self._model = model.half() if self.half else model
        return self._model

    def _weight_records(self, layout: list[tuple[str, tuple[int, ...]]]) -> list:
        """The weight records of the file's one weights section (plain, compact or packed),
        each refused before its payload is decoded unless it is the layout's tensor."""
        return read_weights(self._reader, self._weights_section, layout)

    @property
    def keyframe_codec(self):
        if self._codec is None:
            from dnerv_codec.keyframe import get_codec

            kf = self.meta["keyframe"]
            codec = get_codec(self._codec_name, kf["quality"], weights=self._keyframe_weights)
            codec.check_weights(kf.get("weights_digest", ""))
            self._codec = codec
        return self._codec

    def video_index(self, video: str | int) -> int:
        """Index of a video given by name or index."""
        if isinstance(video, int) and 0 <= video < len(self.videos):
            return video
        for i, info in enumerate(self.videos):
            if info.name == video:
                return i
        names = ", ".join(v.name for v in self.videos)
        raise InputError(f"no video {video!r} in {self.path.name} (it holds: {names})")

    def keyframe(self, video: int, index: int) -> np.ndarray:
        """Decoded keyframe ``index`` of ``video``, uint8 (H, W, 3).

        Keyframes are decoded a codec group at a time (one keyframe for intra codecs, up to 32
        for ``hevc-ld`` and ``hevc-ra``) and the last few groups are cached. The long groups of
        ``hevc-ra-long`` are decoded up to the keyframe asked for, a picture at a time, and
        not cached.
        """
        group = self.keyframe_codec.group
        first = index - index % group
        if group > _CACHED_GROUP:
            with closing(self._pictures(video, first, first + group)) as pictures:
                for k, picture in enumerate(pictures, first):
                    if k == index:
                        return picture
        key = (video, first)
        if key not in self._cache:
            frames = np.stack(list(self._pictures(video, first, first + group)))
            if len(self._cache) >= (4 if group == 1 else 2):  # a clip spans at most 2 groups
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = frames
        return self._cache[key][index - first]

    def _pictures(self, video: int, first: int, stop: int) -> Iterator[np.ndarray]:
        """Keyframes ``first .. stop - 1`` of ``video`` (``first`` a group boundary; ``stop``
        past the video's last keyframe is its end), decoded one at a time."""
        info = self.videos[video]
        stop = min(stop, self._keyframe_index.count(video))
        data = self._keyframe_index.read(self._reader, video, first, stop)
        try:
            yield from self.keyframe_codec.iter_decompress(data, (info.height, info.width))
        except FormatError as exc:
            which = f"keyframe {first}" if stop == first + 1 else f"keyframes {first}..{stop - 1}"
            raise type(exc)(f"{which} of video {video}: {exc}") from None

    # -- decoding --------------------------------------------------------------------------
    def _clip_batch(self, video: int, clips: list) -> np.ndarray:
        """Decode clips of one video; returns uint8 (len(clips), T, H, W, 3)."""
        info, model, T = self.videos[video], self.model, self.clip_length
        keys, ts, poss = [], [], []
        for clip in clips:
            pair = np.stack(
                [
                    self.keyframe(video, clip.key_start_index),
                    self.keyframe(video, clip.key_end_index),
                ]
            )  # (2, H, W, 3)
            keys.append(to_patches(pair, self.geometry))  # (P, 2, ph, pw, 3)
            _, _, t, pos = clip_inputs(clip, info.frames, T)
            ts.append(t)
            poss.append(pos)
        patches = keys[0].shape[0]
        kf = torch.from_numpy(np.concatenate(keys))  # (B*P, 2, ph, pw, 3) uint8
        kf = kf.permute(0, 1, 4, 2, 3).to(self.device, torch.float32) / 255.0  # (B*P, 2, 3, ph, pw)
        t = torch.from_numpy(np.repeat(np.stack(ts), patches, axis=0)).to(self.device)  # (B*P, T)
        pos = torch.from_numpy(np.repeat(np.stack(poss), patches, axis=0)).to(self.device)
        dtype = torch.float16 if self.half else torch.float32
        # On a CPU the patches of large frames run a few at a time: the activations of twelve
        # 720p patches at once took about 2 GB.
        step = len(kf) if self.device.type == "cuda" else _CPU_PATCHES
        parts = []
        with torch.inference_mode():
            for i in range(0, len(kf), step):
                part = model(
                    model.normalize(kf[i : i + step]).to(dtype),
                    t[i : i + step].to(dtype),
                    pos[i : i + step].to(dtype),
                )
                parts.append((part.float().clamp(0, 1) * 255.0).round().to(torch.uint8))
        out = torch.cat(parts).permute(0, 1, 3, 4, 2).cpu().numpy()  # (B*P, T, ph, pw, 3)
        out = out.reshape(len(clips), patches, T, *out.shape[2:])
        return np.stack(
            [from_patches(o, self.geometry, info.height, info.width) for o in out]
        )  # (B, T, H, W, 3)

    def frames(
        self,
        video: str | int = 0,
        start: int | None = None,
        stop: int | None = None,
        as_tensor: bool = False,
    ) -> Iterator[np.ndarray | torch.Tensor]:
        """Yield frames ``start..stop-1`` of a video in order, as uint8 (H, W, 3).

        Only the clips covering the range are run through the network. With ``as_tensor`` the
        frames are uint8 torch tensors (H, W, 3) instead of numpy arrays.
        """
        v = self.video_index(video)
        n = self.videos[v].frames
        start = 0 if start is None else start
        stop = n if stop is None else stop
        if not 0 <= start < stop <= n:
            raise InputError(f"frame range {start}:{stop} is outside 0:{n} of video {video!r}")
        if self.keyframe_only:  # every frame is its keyframe, decoded a picture at a time
            codec = self.keyframe_codec
            first = start - start % codec.group
            while first < stop:
                with closing(self._pictures(v, first, first + codec.per_chunk)) as pictures:
                    for f, frame in enumerate(pictures, first):
                        if f >= stop:
                            break
                        if f >= start:
                            yield torch.from_numpy(frame) if as_tensor else frame
                first += codec.per_chunk
                trim()
            return
        clips = self.structures[v].covering(start, stop)
        for i in range(0, len(clips), self.batch):
            group = clips[i : i + self.batch]
            decoded = self._clip_batch(v, group)
            for clip, frames in zip(group, decoded, strict=True):
                for f in range(max(clip.start, start), min(clip.stop, stop)):
                    frame = frames[f - clip.start]
                    yield torch.from_numpy(frame) if as_tensor else frame
            del decoded
            trim()


def _codec_name(keyframe: dict) -> str:
    """The registered keyframe codec of validated ``keyframe`` metadata, from its id (the name
    agrees: validate_metadata checked), with its quality in the codec's range."""
    from dnerv_codec.keyframe import codec_name, quality_range

    try:
        name = codec_name(keyframe["codec"])
    except InputError:
        raise FormatError(
            f"metadata: keyframe codec id {keyframe['codec']} has no decoder"
        ) from None
    lo, hi = quality_range(name)
    if not lo <= keyframe["quality"] <= hi:
        raise FormatError(
            f"metadata: keyframe quality {keyframe['quality']} is outside {lo}..{hi} of {name}"
        )
    return name


def open(
    path: str | Path,
    device: str = "auto",
    half: bool = False,
    batch: int | None = None,
    keyframe_weights: str | Path | None = None,
) -> DnervFile:
    """Open a .dnerv file for decoding (see :class:`DnervFile`)."""
    return DnervFile(path, device=device, half=half, batch=batch, keyframe_weights=keyframe_weights)


_DECODING = ("ClipDataset", "decode", "parse_range")


def __getattr__(name: str):
    """``decode``, ``parse_range`` and ``ClipDataset``, from :mod:`dnerv_codec.decoding` on first
    use: that module imports this one, so this one does not import it at load time."""
    if name in _DECODING:
        from dnerv_codec import decoding

        return getattr(decoding, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
