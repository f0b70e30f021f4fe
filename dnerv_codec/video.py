"""Reading videos and frame folders into uint8 RGB arrays, through the bundled ffmpeg.

The ffmpeg binary comes from the ``imageio-ffmpeg`` package (a static build with libx264,
libx265, libvvenc, libaom and libsvtav1), so no system install is needed. Commands are built with
``ffmpeg-python``. Every video is decoded once, to RGB24 in memory, with ``-fps_mode passthrough``
so that each coded frame comes out exactly once (no duplicated or dropped frames).

Colour: ffmpeg's own YUV->RGB conversion (swscale) is used for every codec this project compares,
so all codecs are measured on the same RGB frames.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import ffmpeg
import numpy as np

from bitstream.container import MAGIC
from bitstream.meta import MAX_NAME_BYTES, MAX_SIDE, safe_name
from dnerv_codec.errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
DEFAULT_FOLDER_FPS = Fraction(25)


@dataclass
class Video:
    """A decoded video: ``frames`` is uint8 (N, H, W, 3) RGB."""

    name: str
    frames: np.ndarray
    fps: Fraction

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def height(self) -> int:
        return int(self.frames.shape[1])

    @property
    def width(self) -> int:
        return int(self.frames.shape[2])


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary bundled with imageio-ffmpeg."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _last_line(stderr: bytes) -> str:
    lines = [ln.strip() for ln in stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    return lines[-1] if lines else "ffmpeg failed"


_SIZE_RE = re.compile(r"Video: .*?(\d{2,5})x(\d{2,5})")
_FPS_RE = re.compile(r"([\d.]+) (?:fps|tbr)")


def _parse_fps(text: str) -> Fraction:
    """Turn ffmpeg's printed rate (``25``, ``29.97``, ``23.98``) into an exact fraction."""
    value = Fraction(text)
    for base in (24, 30, 48, 60, 120):  # NTSC rates are printed rounded
        ntsc = Fraction(base * 1000, 1001)
        if abs(float(value - ntsc)) < 0.006:
            return ntsc
    return value.limit_denominator(1001)


def probe(path: str | Path) -> tuple[int, int, Fraction]:
    """Width, height (after ffmpeg's automatic rotation) and frame rate of a video file.

    Raises:
        InputError: the file is missing or ffmpeg finds no video stream in it.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    cmd = ffmpeg.input(str(path)).output("-", map="0:v:0", vframes=1, f="null")
    proc = subprocess.run(
        cmd.compile(cmd=ffmpeg_exe()) + ["-hide_banner"], capture_output=True, check=False
    )
    text = proc.stderr.decode("utf-8", "replace")
    if proc.returncode != 0:
        raise InputError(f"cannot read {path} as a video: {_last_line(proc.stderr)}")
    # The input stream line carries the frame rate; the output stream line the rotated size.
    in_part, _, out_part = text.partition("Output #0")
    size = _SIZE_RE.search(out_part) or _SIZE_RE.search(in_part)
    fps = None
    for line in in_part.splitlines():
        if "Video:" in line:
            fps = _FPS_RE.search(line)
            break
    if size is None:
        raise InputError(f"cannot read {path} as a video: no video stream found")
    rate = _parse_fps(fps.group(1)) if fps else DEFAULT_FOLDER_FPS
    return int(size.group(1)), int(size.group(2)), rate


def _decoder(path: Path, max_frames: int | None) -> tuple[list[str], int, int, Fraction]:
    """The ffmpeg command that decodes ``path`` to raw RGB on stdout, and width, height, fps."""
    _refuse_container(path)
    width, height, fps = probe(path)
    if not (width <= MAX_SIDE and height <= MAX_SIDE):
        raise InputError(f"{path} is {width}x{height}; frames up to {MAX_SIDE}x{MAX_SIDE} fit")
    out_args = {"format": "rawvideo", "pix_fmt": "rgb24", "map": "0:v:0", "fps_mode": "passthrough"}
    if max_frames is not None:
        if max_frames < 1:
            raise InputError(f"--max-frames must be at least 1, got {max_frames}")
        out_args["vframes"] = max_frames
    cmd = ffmpeg.input(str(path)).output("pipe:", **out_args)
    return cmd.compile(cmd=ffmpeg_exe()) + ["-v", "error", "-nostdin"], width, height, fps


def read_video(path: str | Path, max_frames: int | None = None, name: str | None = None) -> Video:
    """Decode a video file (anything ffmpeg reads) to uint8 RGB frames in memory.

    Args:
        path: the video file.
        max_frames: keep at most this many frames from the start.
        name: the video's name in a set (default: the file name without suffix).

    Raises:
        InputError: unreadable file, no video stream, or no frames.
    """
    path = Path(path)
    cmd, width, height, fps = _decoder(path, max_frames)
    proc = subprocess.run(cmd, capture_output=True, check=False)
    if proc.returncode != 0:
        raise InputError(f"cannot decode {path}: {_last_line(proc.stderr)}")
    frame_bytes = width * height * 3
    count = len(proc.stdout) // frame_bytes
    if count == 0:
        raise InputError(f"{path} has no video frames")
    frames = np.frombuffer(proc.stdout, np.uint8, count * frame_bytes)
    frames = frames.reshape(count, height, width, 3).copy()
    return Video(name or path.stem, frames, fps)


@dataclass
class VideoSource:
    """A video read a few frames at a time: ``chunks`` yields uint8 ``(n, H, W, 3)`` arrays."""

    name: str
    fps: Fraction
    chunks: Iterator[np.ndarray]


def stream_video(path: str | Path, max_frames: int | None = None, chunk: int = 16) -> VideoSource:
    """A video file decoded ``chunk`` frames at a time (memory: one chunk, whatever the length).

    Raises (when the chunks are read):
        InputError: unreadable file, no video stream, or no frames.
    """
    path = Path(path)
    cmd, width, height, fps = _decoder(path, max_frames)
    frame_bytes = width * height * 3

    def chunks() -> Iterator[np.ndarray]:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            count = 0
            while data := proc.stdout.read(chunk * frame_bytes):
                n = len(data) // frame_bytes
                if n:
                    count += n
                    yield np.frombuffer(data, np.uint8, n * frame_bytes).reshape(
                        n, height, width, 3
                    )
            if proc.wait() != 0:
                raise InputError(f"cannot decode {path}: {_last_line(proc.stderr.read())}")
            if count == 0:
                raise InputError(f"{path} has no video frames")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    return VideoSource(path.stem, fps, chunks())


def read_frame_folder(
    folder: str | Path, max_frames: int | None = None, fps: Fraction = DEFAULT_FOLDER_FPS
) -> Video:
    """Read a folder of PNG/JPEG frames, in file-name order, as one video.

    Raises:
        InputError: no images, or images of different sizes.
    """
    from PIL import Image, UnidentifiedImageError

    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(f"{folder} holds no PNG or JPEG frames")
    files = files[:max_frames] if max_frames else files
    frames = []
    for file in files:
        try:
            with Image.open(file) as img:
                frames.append(np.asarray(img.convert("RGB")))
        except (UnidentifiedImageError, OSError) as exc:
            raise InputError(f"cannot read frame {file}: {exc}") from None
        if frames[-1].shape != frames[0].shape:
            raise InputError(
                f"frame {file.name} is {frames[-1].shape[1]}x{frames[-1].shape[0]}, "
                f"the first frame is {frames[0].shape[1]}x{frames[0].shape[0]}"
            )
    return Video(folder.name, np.stack(frames), Fraction(fps))


def _is_image_folder(folder: Path) -> bool:
    return any(p.suffix.lower() in IMAGE_SUFFIXES for p in folder.iterdir())


def read_inputs(inputs: Sequence[str | Path | Video], max_frames: int | None = None) -> list[Video]:
    """Read what a user named on the command line into a video set.

    Each input is a video file, a folder of frames (one video), a folder of video files
    (each one a video of the set), or an already decoded :class:`Video`. A video's name is a
    label made from its file or folder name (``bitstream.meta.safe_name``: no ``/``, ``\\``,
    ``:`` or control characters); names are made unique by suffixing ``-2``, ``-3``...
    A .dnerv file given as an input is refused.

    Raises:
        InputError: a path is missing, unreadable, or holds nothing usable.
    """
    return list(iter_inputs(inputs, max_frames))


def iter_inputs(
    inputs: Sequence[str | Path | Video], max_frames: int | None = None
) -> Iterator[Video]:
    """:func:`read_inputs` one video at a time (a set larger than memory streams through)."""
    return _unique_names(_iter_videos(inputs, max_frames))


def iter_sources(
    inputs: Sequence[str | Path | Video], max_frames: int | None = None
) -> Iterator[VideoSource]:
    """As :func:`iter_inputs`, with video files decoded a few frames at a time (the frame cache
    builds from these: a video longer than memory streams through)."""
    return _unique_names(_iter_sources(inputs, max_frames))


def _iter_sources(inputs, max_frames: int | None) -> Iterator[VideoSource]:
    for item in inputs:
        path = None if isinstance(item, Video) else Path(item)
        if path is not None and path.is_file():
            yield stream_video(path, max_frames)
        elif path is not None and path.is_dir() and not _is_image_folder(path):
            members = sorted(p for p in path.iterdir() if p.is_file())
            if not members:
                raise InputError(f"{path} is an empty folder")
            yield from (stream_video(p, max_frames) for p in members)
        else:  # a decoded video, a folder of frames, or a missing path (one error for all)
            for video in _iter_videos([item], max_frames):
                yield VideoSource(video.name, video.fps, iter([video.frames]))


def _refuse_container(path: Path) -> None:
    """A .dnerv file is not a video: say so (found by its magic number, whatever its suffix)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(len(MAGIC))
    except OSError:
        return  # ffmpeg reports what is wrong with it
    if head == MAGIC:
        raise InputError(
            f"{path} is a .dnerv file, not a video; decode it first (dnerv decode {path} OUTDIR)"
        )


def _iter_videos(inputs: Sequence[str | Path | Video], max_frames: int | None) -> Iterator[Video]:
    for item in inputs:
        if isinstance(item, Video):
            frames = item.frames[:max_frames] if max_frames else item.frames
            yield Video(item.name, frames, item.fps)
            continue
        path = Path(item)
        if path.is_dir():
            if _is_image_folder(path):
                yield read_frame_folder(path, max_frames)
            else:
                members = sorted(p for p in path.iterdir() if p.is_file())
                if not members:
                    raise InputError(f"{path} is an empty folder")
                yield from (read_video(p, max_frames) for p in members)
        elif path.exists():
            yield read_video(path, max_frames)
        else:
            raise InputError(f"no such file or folder: {path}")


def _unique_names(videos: Iterable[Video]) -> Iterator[Video]:
    """Give every video a name a reader accepts (``bitstream.meta.safe_name``: a label made
    from the file name, never a path) that no other video of the set has."""
    seen: dict[str, int] = {}
    taken: set[str] = set()
    for video in videos:
        base = safe_name(video.name)
        name, count = base, seen.get(base, 0)
        while name in taken:
            count += 1
            suffix = f"-{count + 1}"
            name = safe_name(base, MAX_NAME_BYTES - len(suffix)) + suffix
        seen[base] = count
        taken.add(name)
        video.name = name
        yield video
