"""Writing decoded frames: PNG folders, y4m and mp4 (through the bundled ffmpeg).

Each writer takes frames one at a time, so a decoder can write as it goes and keep memory
bounded. mp4 is written with libx264: lossless (``-qp 0``, 4:4:4) by default, or at a CRF the
user gives (4:2:0, near-lossless at CRF 10-18).

A video name comes from the file being decoded, so it is treated as a label, never as a path:
:func:`output_path` refuses a name that is not one (``bitstream.meta.name_problem``) and any
output that would resolve outside OUTDIR (a symbolic link already there, say). Nothing existing
is overwritten unless ``force`` is given; a y4m or mp4 file is written under a temporary name
and appears whole, and :meth:`abort` removes what a failed decode wrote.
"""

from __future__ import annotations

import os
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from bitstream.container import publish, temp_file
from bitstream.meta import name_problem, printable
from dnerv_codec.errors import InputError, OutputExistsError
from dnerv_codec.video import ffmpeg_exe

FORMATS = ("png", "y4m", "mp4")


def output_path(outdir: str | Path, name: str, fmt: str) -> Path:
    """Where video ``name`` is written in format ``fmt``: ``OUTDIR/name`` (a PNG folder) or
    ``OUTDIR/name.fmt``, always directly inside OUTDIR.

    Raises:
        InputError: ``name`` is not a plain label, or the path resolves outside OUTDIR.
    """
    problem = name_problem(name)
    if problem:
        raise InputError(f"video name {printable(repr(name))} {problem}; not writing it")
    root = Path(outdir).resolve()
    path = root / (name if fmt == "png" else f"{name}.{fmt}")
    if path.resolve().parent != root:
        raise InputError(f"{printable(path)} leads outside {printable(root)}; not writing it")
    return path


class PngWriter:
    """``folder/000001.png``, ``000002.png``... (1-based, like ffmpeg's image2 muxer)."""

    def __init__(self, folder: Path, fps: Fraction, first: int = 1, force: bool = False) -> None:
        self.folder, self.index, self.force = folder, first, force
        self.created_folder = not folder.exists()
        folder.mkdir(exist_ok=True)
        self.written: list[Path] = []

    def write(self, frame: np.ndarray) -> None:
        path = self.folder / f"{self.index:06d}.png"
        flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
        flags |= os.O_TRUNC if self.force else os.O_EXCL
        try:
            fd = os.open(path, flags, 0o666)
        except FileExistsError:
            raise OutputExistsError(f"{path} exists; use --force to overwrite it") from None
        self.written.append(path)
        with os.fdopen(fd, "wb") as handle:
            Image.fromarray(frame).save(handle, format="PNG", compress_level=1)
        self.index += 1

    def close(self) -> None:
        pass

    def abort(self) -> None:
        """Remove the frames this writer wrote (and its folder, if it made it)."""
        for path in self.written:
            path.unlink(missing_ok=True)
        if self.created_folder:
            try:
                self.folder.rmdir()
            except OSError:
                pass


class FfmpegWriter:
    """Pipe RGB frames into the bundled ffmpeg: y4m (4:4:4, lossless container) or mp4 (x264).

    ffmpeg writes a temporary file next to ``path`` (named with the ``file:`` protocol, so no
    name is read as a URL); :meth:`close` moves it to ``path``, refusing to replace an existing
    file unless ``force``.
    """

    def __init__(
        self, path: Path, fps: Fraction, fmt: str, crf: int | None = None, force: bool = False
    ) -> None:
        self.path, self.force, self.proc, self.tmp = path, force, None, None
        if path.exists() and not force:
            raise OutputExistsError(f"{path} exists; use --force to overwrite it")
        self.args = [ffmpeg_exe(), "-v", "error", "-nostdin", "-y", "-f", "rawvideo"]
        self.args += ["-pix_fmt", "rgb24"]
        self.rate = f"{fps.numerator}/{fps.denominator}"
        if fmt == "y4m":
            self.codec = ["-pix_fmt", "yuv444p", "-f", "yuv4mpegpipe", "-strict", "-1"]
        elif crf is None:
            self.codec = ["-c:v", "libx264", "-qp", "0", "-preset", "medium", "-pix_fmt", "yuv444p"]
        else:
            if not 0 <= crf <= 51:
                raise InputError(f"--crf must be in 0..51, got {crf}")
            self.codec = ["-c:v", "libx264", "-crf", str(crf), "-pix_fmt", "yuv420p"]
        if fmt == "mp4":
            self.codec += ["-f", "mp4"]

    def write(self, frame: np.ndarray) -> None:
        if self.proc is None:
            fd, self.tmp = temp_file(self.path)
            os.close(fd)
            h, w = frame.shape[:2]
            cmd = self.args + ["-s", f"{w}x{h}", "-r", self.rate, "-i", "pipe:"]
            cmd += self.codec + [f"file:{self.tmp}"]
            self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        self.proc.stdin.write(np.ascontiguousarray(frame).tobytes())

    def close(self) -> None:
        if self.proc is None:
            return
        self.proc.stdin.close()
        err = self.proc.stderr.read()
        if self.proc.wait() != 0:
            self.abort()
            raise OSError(f"ffmpeg could not write {self.path}: {err.decode(errors='replace')}")
        publish(self.tmp, self.path, self.force)
        self.tmp = None

    def abort(self) -> None:
        """Stop ffmpeg and remove the temporary file."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.tmp is not None:
            Path(self.tmp).unlink(missing_ok=True)
            self.tmp = None


def open_writer(
    outdir: Path,
    name: str,
    fmt: str,
    fps: Fraction,
    first: int = 1,
    crf: int | None = None,
    force: bool = False,
):
    """A writer for one video named ``name`` directly inside ``outdir`` in format ``fmt``
    (:func:`output_path`); existing files are overwritten only with ``force``."""
    if fmt not in FORMATS:
        raise InputError(f"unknown output format {fmt!r}: use one of {', '.join(FORMATS)}")
    path = output_path(outdir, name, fmt)
    if fmt == "png":
        return PngWriter(path, fps, first, force)
    return FfmpegWriter(path, fps, fmt, crf, force)
