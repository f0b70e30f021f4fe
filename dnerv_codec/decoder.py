"""Reading a .dnerv file back into frames: the decoder.

``open(path)`` gives a :class:`DnervFile` with ``.videos`` and ``.frames(video, start, stop)``,
which decodes only the clips that cover the requested range and only the keyframes those clips
need, clip by clip, so memory stays bounded whatever the video length. ``decode(path, outdir)``
writes PNG, y4m or mp4 output (see :mod:`dnerv_codec.writers`).

This module imports no training code: the network, the stored weights (dequantised by the
normative ``bitstream.weights.dequantize``) and the keyframe codec are all it needs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from bitstream import ids
from bitstream.container import ContainerReader
from bitstream.keyframes import KeyframeIndex
from bitstream.meta import read_metadata, validate_metadata
from bitstream.weights import unpack_weights, unpack_weights_compact, unpack_weights_packed
from dnerv_codec.clips import clip_inputs, clips_covering, clips_of
from dnerv_codec.errors import DnervError, FormatError, InputError
from dnerv_codec.geometry import Geometry, from_patches, to_patches
from dnerv_codec.model import model_from_config
from dnerv_codec.quant import records_to_state, weight_layout

SECTION_KEYFRAMES = ids.id_of(ids.SECTION_TYPES, "keyframes")
SECTION_WEIGHTS = ids.id_of(ids.SECTION_TYPES, "weights")
SECTION_WEIGHTS_COMPACT = ids.id_of(ids.SECTION_TYPES, "weights-compact")
SECTION_WEIGHTS_PACKED = ids.id_of(ids.SECTION_TYPES, "weights-packed")
WEIGHT_SECTIONS = (SECTION_WEIGHTS, SECTION_WEIGHTS_COMPACT, SECTION_WEIGHTS_PACKED)


def stored_layout(config: object) -> list[tuple[str, tuple[int, ...]]]:
    """(name, shape) of each stored weight tensor of the network ``config`` describes, sized on
    the meta device (nothing allocated); FormatError for a bad configuration."""
    try:
        with torch.device("meta"):
            return weight_layout(model_from_config(config))
    except (DnervError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise FormatError(f"metadata: bad model configuration ({exc})") from None


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
    try:
        return [
            VideoInfo(
                str(v["name"]),
                int(v["frames"]),
                int(v["width"]),
                int(v["height"]),
                Fraction(int(v["fps_num"]), int(v["fps_den"])),
            )
            for v in meta["videos"]
        ]
    except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
        raise FormatError(f"metadata section: malformed video list ({exc})") from None


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
            self.meta = validate_metadata(read_metadata(self._reader))
            self.videos = _meta_videos(self.meta)
            self.clip_length = int(self.meta["clip_length"])
            self.geometry = Geometry.from_meta(self.meta["geometry"])
            self._keyframe_index = KeyframeIndex.from_reader(self._reader)
        except (KeyError, TypeError, ValueError) as exc:
            self._reader.close()
            if isinstance(exc, FormatError):
                raise
            raise FormatError(f"metadata section: missing or malformed field ({exc})") from None
        self._keyframe_weights = keyframe_weights
        self._model: torch.nn.Module | None = None
        self._codec = None
        self._cache: dict[tuple[int, int], np.ndarray] = {}  # (video, first of group) -> frames

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
        if self._model is None:
            config = self.meta["model"].get("config")
            layout = stored_layout(config)
            expected = sum(int(np.prod(shape)) for _, shape in layout)
            records = self._weight_records(layout)
            stored = sum(int(np.prod(r.shape)) for r in records)
            if expected != stored:
                raise FormatError(
                    f"weights section holds {stored} values, the model needs {expected}"
                )
            model = model_from_config(config)
            try:
                model.load_state_dict(records_to_state(records))
            except RuntimeError as exc:
                raise FormatError(f"weights section does not fit the model: {exc}") from None
            model.eval().to(self.device)
            self._model = model.half() if self.half else model
        return self._model

    def _weight_records(self, layout: list[tuple[str, tuple[int, ...]]]) -> list:
        """The weight records of the file's one weights section (plain, compact or packed)."""
        present = [t for t in WEIGHT_SECTIONS if self._reader.has_section(t)]
        if len(present) != 1:
            raise FormatError(
                f"{self.path.name}: needs exactly one weights section (plain, compact or "
                f"packed), has {len(present)}"
            )
        data = self._reader.read_section(present[0])
        if present[0] == SECTION_WEIGHTS_PACKED:
            return unpack_weights_packed(data, layout)
        if present[0] == SECTION_WEIGHTS_COMPACT:
            return unpack_weights_compact(data, layout)
        return unpack_weights(data)

    @property
    def keyframe_codec(self):
        if self._codec is None:
            from dnerv_codec.keyframe import get_codec

            kf = self.meta["keyframe"]
            codec = get_codec(str(kf["name"]), int(kf["quality"]), weights=self._keyframe_weights)
            codec.check_weights(str(kf.get("weights_digest", "")))
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
        for ``hevc-ld`` and ``hevc-ra``) and the last few groups are cached.
        """
        group = self.keyframe_codec.group
        first = index - index % group
        key = (video, first)
        if key not in self._cache:
            info = self.videos[video]
            last = min(first + group, self._keyframe_index.count(video))
            data = [self._keyframe_index.get(self._reader, video, k) for k in range(first, last)]
            frames = self.keyframe_codec.decompress(data, (info.height, info.width))
            if len(self._cache) >= (4 if group == 1 else 2):  # a clip spans at most 2 groups
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = frames
        return self._cache[key][index - first]

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
        with torch.inference_mode():
            out = model(model.normalize(kf).to(dtype), t.to(dtype), pos.to(dtype))
        out = (out.float().clamp(0, 1) * 255.0).round().to(torch.uint8)  # (B*P, T, 3, ph, pw)
        out = out.permute(0, 1, 3, 4, 2).cpu().numpy()  # (B*P, T, ph, pw, 3)
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
        clips = clips_covering(n, start, stop, self.clip_length)
        for i in range(0, len(clips), self.batch):
            group = clips[i : i + self.batch]
            decoded = self._clip_batch(v, group)
            for clip, frames in zip(group, decoded, strict=True):
                for f in range(max(clip.start, start), min(clip.stop, stop)):
                    frame = frames[f - clip.start]
                    yield torch.from_numpy(frame) if as_tensor else frame

    def num_clips(self, video: str | int) -> int:
        v = self.video_index(video)
        return len(clips_of(self.videos[v].frames, self.clip_length))


def open(
    path: str | Path,
    device: str = "auto",
    half: bool = False,
    batch: int | None = None,
    keyframe_weights: str | Path | None = None,
) -> DnervFile:
    """Open a .dnerv file for decoding (see :class:`DnervFile`)."""
    return DnervFile(path, device=device, half=half, batch=batch, keyframe_weights=keyframe_weights)


def parse_range(text: str | None) -> tuple[int | None, int | None]:
    """``"A:B"`` -> (A, B) for ``--frames`` (0-based, B exclusive; either side may be empty)."""
    if text is None:
        return None, None
    parts = text.split(":")
    try:
        if len(parts) != 2:
            raise ValueError
        return tuple(int(p) if p.strip() else None for p in parts)  # type: ignore[return-value]
    except ValueError:
        raise InputError(
            f"--frames must look like A:B (0-based, B exclusive), got {text!r}"
        ) from None


def decode(
    path: str | Path,
    outdir: str | Path,
    *,
    video: str | None = None,
    frames: str | tuple[int | None, int | None] | None = None,
    format: str = "png",
    crf: int | None = None,
    device: str = "auto",
    half: bool = False,
    batch: int | None = None,
    keyframe_weights: str | Path | None = None,
    force: bool = False,
    quiet: bool = False,
) -> dict:
    """Decode a .dnerv file into ``outdir`` (``outdir/<video>/000001.png``... or one y4m/mp4 per
    video), writing as it goes. Returns a summary dict (frames written, seconds, frames/s).

    Raises:
        OutputExistsError: ``outdir`` exists and is not empty, and ``force`` is not set.
        InputError: unknown video name, bad range, bad option.
    """
    import time

    from dnerv_codec.errors import OutputExistsError
    from dnerv_codec.progress import Progress
    from dnerv_codec.writers import FORMATS, open_writer

    if format not in FORMATS:
        raise InputError(f"unknown output format {format!r}: use one of {', '.join(FORMATS)}")
    outdir = Path(outdir)
    if outdir.exists() and (not outdir.is_dir() or any(outdir.iterdir())) and not force:
        raise OutputExistsError(f"{outdir} exists and is not empty; use --force to write into it")
    start, stop = parse_range(frames) if isinstance(frames, (str, type(None))) else frames
    progress = Progress(quiet)
    began = time.monotonic()
    written = 0
    with DnervFile(path, device, half, batch, keyframe_weights) as f:
        chosen = [f.video_index(video)] if video is not None else range(len(f.videos))
        outdir.mkdir(parents=True, exist_ok=True)
        for v in chosen:
            info = f.videos[v]
            lo, hi = start or 0, info.frames if stop is None else stop
            writer = open_writer(outdir, info.name, format, info.fps, first=lo + 1, crf=crf)
            with progress.bar(total=hi - lo, desc=info.name, unit="frame") as bar:
                for frame in f.frames(v, lo, hi):
                    writer.write(frame)
                    written += 1
                    bar.update(1)
            writer.close()
    seconds = time.monotonic() - began
    return {"frames": written, "seconds": seconds, "fps": written / max(seconds, 1e-9)}


class ClipDataset(torch.utils.data.Dataset):
    """Decoded clips of a .dnerv file as a ``torch.utils.data.Dataset``.

    Item ``i`` is ``(frames uint8 (T, 3, H, W), video index)`` for the i-th clip over all videos
    (the last clip of a video is shorter when its length is not a multiple of T). Each worker
    opens the file itself, so it works with ``DataLoader(num_workers=...)``.
    """

    def __init__(self, path: str | Path, device: str = "cpu", **kwargs) -> None:
        self.path, self.device, self.kwargs = Path(path), device, kwargs
        with DnervFile(self.path, device, **kwargs) as f:
            self.index = [
                (v, clip) for v, info in enumerate(f.videos) for clip in clips_of(info.frames)
            ]
        self._file: DnervFile | None = None

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        if self._file is None:
            self._file = DnervFile(self.path, self.device, **self.kwargs)
        v, clip = self.index[i]
        frames = np.stack(list(self._file.frames(v, clip.start, clip.stop)))  # (T, H, W, 3)
        return torch.from_numpy(frames).permute(0, 3, 1, 2), v
