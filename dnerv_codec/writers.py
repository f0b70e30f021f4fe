"""Writing decoded frames: PNG folders, y4m and mp4 (through the bundled ffmpeg).

Each writer takes frames one at a time, so a decoder can write as it goes and keep memory
bounded. mp4 is written with libx264: lossless (``-qp 0``, 4:4:4) by default, or at a CRF the
user gives (4:2:0, near-lossless at CRF 10-18).
"""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from dnerv_codec.errors import InputError
from dnerv_codec.video import ffmpeg_exe

FORMATS = ("png", "y4m", "mp4")


class PngWriter:
    """``folder/000001.png``, ``000002.png``... (1-based, like ffmpeg's image2 muxer)."""

    def __init__(self, folder: Path, fps: Fraction, first: int = 1) -> None:
        self.folder, self.index = folder, first
        folder.mkdir(parents=True, exist_ok=True)

    def write(self, frame: np.ndarray) -> None:
        Image.fromarray(frame).save(self.folder / f"{self.index:06d}.png", compress_level=1)
        self.index += 1

    def close(self) -> None:
        pass


class FfmpegWriter:
    """Pipe RGB frames into the bundled ffmpeg: y4m (4:4:4, lossless container) or mp4 (x264)."""

    def __init__(self, path: Path, fps: Fraction, fmt: str, crf: int | None = None) -> None:
        self.path, self.proc = path, None
        self.args = [ffmpeg_exe(), "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24"]
        self.rate = f"{fps.numerator}/{fps.denominator}"
        if fmt == "y4m":
            self.codec = ["-pix_fmt", "yuv444p", "-f", "yuv4mpegpipe", "-strict", "-1"]
        elif crf is None:
            self.codec = ["-c:v", "libx264", "-qp", "0", "-preset", "medium", "-pix_fmt", "yuv444p"]
        else:
            if not 0 <= crf <= 51:
                raise InputError(f"--crf must be in 0..51, got {crf}")
            self.codec = ["-c:v", "libx264", "-crf", str(crf), "-pix_fmt", "yuv420p"]

    def write(self, frame: np.ndarray) -> None:
        if self.proc is None:
            h, w = frame.shape[:2]
            cmd = self.args + ["-s", f"{w}x{h}", "-r", self.rate, "-i", "pipe:"]
            cmd += self.codec + [str(self.path)]
            self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        self.proc.stdin.write(np.ascontiguousarray(frame).tobytes())

    def close(self) -> None:
        if self.proc is None:
            return
        self.proc.stdin.close()
        err = self.proc.stderr.read()
        if self.proc.wait() != 0:
            raise OSError(f"ffmpeg could not write {self.path}: {err.decode(errors='replace')}")


def open_writer(
    outdir: Path, name: str, fmt: str, fps: Fraction, first: int = 1, crf: int | None = None
):
    """A writer for one video named ``name`` under ``outdir`` in format ``fmt``."""
    if fmt == "png":
        return PngWriter(outdir / name, fps, first)
    if fmt in ("y4m", "mp4"):
        return FfmpegWriter(outdir / f"{name}.{fmt}", fps, fmt, crf)
    raise InputError(f"unknown output format {fmt!r}: use one of {', '.join(FORMATS)}")
