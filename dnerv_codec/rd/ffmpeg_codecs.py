"""Classical codecs (x264, x265, VVenC, SVT-AV1) through the bundled ffmpeg.

Every codec gets the same decoded RGB frames the neural codec sees, and is measured on them:

1. the uint8 RGB frames go to ffmpeg as ``rawvideo rgb24`` over a pipe (frames with an odd
   width or height are first edge-padded to even sizes: 4:2:0 needs them);
2. ffmpeg converts them to BT.709 limited-range YUV (``scale=out_color_matrix=bt709:
   out_range=tv:flags=accurate_rnd``; 4:2:0 8-bit by default, 4:4:4 with ``chroma=444`` for
   x264/x265, 10-bit 4:2:0 for VVenC, which takes nothing else) and
   encodes them into a minimal container: raw Annex B streams for H.264/HEVC/VVC (``.264``,
   ``.265``, ``.266``) and IVF for AV1 (32-byte file header + 12 bytes per frame);
3. the file is decoded back to rgb24 with the same matrix and ``-fps_mode passthrough``
   (one output frame per coded frame), cropped back, and measured by
   :func:`~dnerv_codec.rd.registry.rate_point`. ``bytes`` is the file's size.

Informational SEI messages are not kept: x264's version-and-options SEI (~0.7 KB, removed with
``-bsf:v filter_units=remove_types=6``) and x265's (~2.4 KB, ``info=0``). Decoders ignore them,
and on a short low-resolution clip they would otherwise be a large share of the low rates
(64 frames of 320x180 at 0.02 bpp is 9.2 KB). VVenC and SVT-AV1 write none.

Timings are wall-clock seconds of the ffmpeg processes, colour conversion and pipes included.
Encoders and decoders run with ``threads`` threads (default 1: reproducible bitstreams and fair
timings on a shared machine). Intra frames: one every ``intra_period`` seconds (default 10 s, so
x264/x265 keep their usual 250-frame GOP at 25 fps).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from dnerv_codec.errors import DnervError, InputError
from dnerv_codec.rd.registry import Codec, rate_point
from dnerv_codec.video import Video, ffmpeg_exe

TO_YUV = "scale=out_color_matrix=bt709:out_range=tv:flags=accurate_rnd"
# No accurate_rnd on the way back: with it, ffmpeg 9's swscale loses ~6 dB on a lossless round trip.
TO_RGB = "scale=in_color_matrix=bt709:in_range=tv"
COLOR_TAGS = ["-color_range", "tv", "-colorspace", "bt709"]
COLOR_TAGS += ["-color_primaries", "bt709", "-color_trc", "bt709"]

LOW_DELAY, RANDOM_ACCESS = "lowdelay", "randomaccess"
_CONFIG_ALIASES = {"ld": LOW_DELAY, "low-delay": LOW_DELAY, "ra": RANDOM_ACCESS}
_CONFIG_ALIASES.update({"random-access": RANDOM_ACCESS})


class ExternalCodecError(DnervError, RuntimeError):
    """ffmpeg failed to encode or decode, or decoded a different number of frames."""


def _last_line(stderr: bytes) -> str:
    lines = [ln.strip() for ln in stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    return lines[-1] if lines else "ffmpeg failed"


class FFmpegCodec(Codec):
    """A classical codec run through ffmpeg. Subclasses fill the table and :meth:`codec_args`.

    Options (all codecs): ``preset``, ``config`` (``lowdelay``/``randomaccess``, aliases
    ``ld``/``ra``), ``rate_control`` (``crf``/``qp`` where supported), ``threads`` (int >= 1),
    ``intra_period`` (seconds, > 0), ``chroma`` (``420``, or ``444`` where :attr:`chromas`
    allows), ``tune`` (``none``, or ``psnr`` where :attr:`tunes` allows: x264/x265's
    ``-tune psnr``, which turns off the psycho-visual tools that trade PSNR for looks) and
    ``bitstream_dir`` (keep each coded file there, named ``<video>_<codec>_<quality><suffix>``;
    the point's ``bitstream`` key gives its path).
    """

    encoder = ""
    muxer = ""
    suffix = ""
    container = ""
    pix_fmt = "yuv420p"  # of chroma=420; chroma=444 swaps 420 for 444 in the name
    chromas: tuple[str, ...] = ("420",)
    tunes: tuple[str, ...] = ("none",)
    presets: tuple[str, ...] = ()
    default_preset = ""
    configs: tuple[str, ...] = (LOW_DELAY, RANDOM_ACCESS)
    default_config = LOW_DELAY
    # rate control -> inclusive quality range
    rate_controls: dict[str, tuple[int, int]] = {}
    default_rate_control = "crf"
    default_qualities = (22, 27, 32, 37)

    # ----------------------------------------------------------------- options

    def settings(self, **options: Any) -> dict[str, Any]:
        """Options with defaults filled in and checked.

        Raises:
            InputError: an unknown option or a value outside its choices.
        """
        known = {"preset", "config", "rate_control", "threads", "intra_period", "bitstream_dir"}
        known |= {"chroma", "tune"}
        unknown = set(options) - known
        if unknown:
            names = ", ".join(sorted(known))
            raise InputError(f"{self.name} has no option {sorted(unknown)[0]!r}; options: {names}")
        preset = str(options.get("preset", self.default_preset))
        config = str(options.get("config", self.default_config)).lower()
        config = _CONFIG_ALIASES.get(config, config)
        rate_control = str(options.get("rate_control", self.default_rate_control)).lower()
        _choose(self.name, "preset", preset, self.presets)
        _choose(self.name, "config", config, self.configs)
        _choose(self.name, "rate_control", rate_control, tuple(self.rate_controls))
        chroma = str(options.get("chroma", "420")).replace(":", "")
        tune = str(options.get("tune", "none")).lower()
        _choose(self.name, "chroma", chroma, self.chromas)
        _choose(self.name, "tune", tune, self.tunes)
        try:
            threads = int(options.get("threads", 1))
            intra_period = float(options.get("intra_period", 10.0))
        except (TypeError, ValueError):
            raise InputError(f"{self.name}: threads and intra_period must be numbers") from None
        if threads < 1 or not intra_period > 0:
            raise InputError(f"{self.name}: threads must be >= 1 and intra_period > 0")
        return {
            "preset": preset,
            "config": config,
            "rate_control": rate_control,
            "threads": threads,
            "intra_period": intra_period,
            "chroma": chroma,
            "tune": tune,
        }

    def check(self, quality: Any, **options: Any) -> None:
        """Raises InputError for a quality outside the rate control's range or bad options."""
        rc = self.settings(**options)["rate_control"]
        low, high = self.rate_controls[rc]
        if isinstance(quality, bool) or not isinstance(quality, int | np.integer):
            raise InputError(f"{self.name}: {rc} must be an integer in {low}..{high}")
        if not low <= quality <= high:
            raise InputError(f"{self.name}: {rc} {quality} is outside {low}..{high}")

    def label(self, **options: Any) -> str:
        s = self.settings(**options)
        extra = " 444" if s["chroma"] == "444" else ""
        extra += f" tune {s['tune']}" if s["tune"] != "none" else ""
        return f"{self.name} {s['preset']} {s['config']}{extra} ({s['rate_control']})"

    def pixel_format(self, s: dict[str, Any]) -> str:
        """ffmpeg's pixel format of the coded YUV for checked settings ``s``."""
        return self.pix_fmt.replace("420", "444") if s["chroma"] == "444" else self.pix_fmt

    def codec_args(self, quality: int, s: dict[str, Any], fps: float) -> list[str]:
        """Encoder arguments after ``-c:v ENCODER`` for one quality and checked settings."""
        raise NotImplementedError

    # --------------------------------------------------------------- running

    def evaluate(self, video: Video, quality: Any, **options: Any) -> dict[str, Any]:
        """Encode, decode and measure ``video`` at ``quality`` (see the module docstring).

        Raises:
            InputError: bad quality or options.
            ExternalCodecError: ffmpeg failed or decoded a different number of frames.
        """
        self.check(quality, **options)
        s = self.settings(**options)
        keep = options.get("bitstream_dir")
        frames = video.frames
        n, height, width, _ = frames.shape
        pad_h, pad_w = height % 2, width % 2
        if pad_h or pad_w:
            frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
        coded_w, coded_h = width + pad_w, height + pad_h
        fps = float(video.fps) if video.fps else 25.0
        args = ["-c:v", self.encoder, *self.codec_args(int(quality), s, fps)]
        with tempfile.TemporaryDirectory(prefix=f"dnerv-rd-{self.name}-") as tmp:
            path = Path(tmp) / f"stream{self.suffix}"
            encode = [ffmpeg_exe(), "-v", "error", "-nostdin", "-y", "-f", "rawvideo"]
            encode += ["-pix_fmt", "rgb24", "-s", f"{coded_w}x{coded_h}", "-r", str(video.fps)]
            encode += ["-i", "pipe:", "-vf", f"{TO_YUV},format={self.pixel_format(s)}"]
            encode += args + COLOR_TAGS + ["-f", self.muxer, str(path)]
            start = time.perf_counter()
            self._run(encode, np.ascontiguousarray(frames).tobytes(), "encode")
            encoding_time = time.perf_counter() - start
            nbytes = path.stat().st_size
            extra = {}
            if keep:
                kept = Path(keep) / f"{video.name}_{self.name}_{quality}{self.suffix}"
                kept.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, kept)
                extra["bitstream"] = str(kept)
            decode = [ffmpeg_exe(), "-v", "error", "-nostdin", "-threads", str(s["threads"])]
            decode += ["-i", str(path), "-vf", TO_RGB, "-fps_mode", "passthrough"]
            decode += ["-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:"]
            start = time.perf_counter()
            raw = self._run(decode, None, "decode")
            decoding_time = time.perf_counter() - start
        frame_bytes = coded_w * coded_h * 3
        if len(raw) != n * frame_bytes:
            raise ExternalCodecError(
                f"{self.name} decoded {len(raw) / frame_bytes:g} frames from {n} encoded"
            )
        decoded = np.frombuffer(raw, np.uint8).reshape(n, coded_h, coded_w, 3)
        decoded = np.ascontiguousarray(decoded[:, :height, :width])
        return rate_point(
            self.name,
            int(quality),
            video,
            decoded,
            nbytes,
            encoding_time,
            decoding_time,
            **s,
            container=self.container,
            pix_fmt=self.pixel_format(s),
            encoder_args=" ".join(args),
            **extra,
        )

    def _run(self, cmd: list[str], stdin: bytes | None, what: str) -> bytes:
        proc = subprocess.run(cmd, input=stdin, capture_output=True, check=False)
        if proc.returncode != 0:
            raise ExternalCodecError(f"{self.name} {what} failed: {_last_line(proc.stderr)}")
        return proc.stdout


def _choose(codec: str, option: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise InputError(f"{codec}: {option} {value!r} is not one of {', '.join(choices)}")


X26X_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium")
X26X_PRESETS += ("slow", "slower", "veryslow", "placebo")


class X264(FFmpegCodec):
    """H.264 with libx264: CompressAI's anchor settings in the low-delay configuration.

    4:4:4 (``chroma=444``) is coded in the High 4:4:4 Predictive profile, 8-bit.
    """

    name = "x264"
    description = "H.264 (libx264) through ffmpeg, 8-bit 4:2:0 (or 4:4:4), raw Annex B stream"
    quality_help = "CRF 0..51 (default), or QP 0..51 with rate_control=qp (0 = lossless)"
    encoder, muxer, suffix, container = "libx264", "h264", ".264", "raw H.264 Annex B"
    presets, default_preset = X26X_PRESETS, "medium"
    rate_controls = {"crf": (0, 51), "qp": (0, 51)}
    chromas, tunes = ("420", "444"), ("none", "psnr")

    def codec_args(self, quality: int, s: dict[str, Any], fps: float) -> list[str]:
        args = ["-preset", s["preset"], f"-{s['rate_control']}", str(quality)]
        args += ["-g", str(round(s["intra_period"] * fps)), "-threads", str(s["threads"])]
        tunes = [s["tune"]] if s["tune"] != "none" else []
        if s["config"] == LOW_DELAY:
            args += ["-tune", ",".join([*tunes, "zerolatency"]), "-bf", "0"]
        elif tunes:
            args += ["-tune", tunes[0]]
        if s["chroma"] == "444":
            args += ["-profile:v", "high444"]
        return args + ["-bsf:v", "filter_units=remove_types=6"]  # drop the user-data SEI


class X265(FFmpegCodec):
    """HEVC with libx265; low delay = ``bframes=0`` as CompressAI's anchor.

    4:4:4 (``chroma=444``) is coded in the Main 4:4:4 profile, 8-bit.
    """

    name = "x265"
    description = "HEVC (libx265) through ffmpeg, 8-bit 4:2:0 (or 4:4:4), raw Annex B stream"
    quality_help = "CRF 0..51 (default), or QP 0..51 with rate_control=qp"
    encoder, muxer, suffix, container = "libx265", "hevc", ".265", "raw HEVC Annex B"
    presets, default_preset = X26X_PRESETS, "medium"
    rate_controls = {"crf": (0, 51), "qp": (0, 51)}
    chromas, tunes = ("420", "444"), ("none", "psnr")

    def codec_args(self, quality: int, s: dict[str, Any], fps: float) -> list[str]:
        params = f"log-level=error:info=0:pools={s['threads']}"
        params += f":frame-threads={min(s['threads'], 4)}"
        if s["config"] == LOW_DELAY:
            params += ":bframes=0"
        args = ["-preset", s["preset"], f"-{s['rate_control']}", str(quality)]
        if s["tune"] != "none":
            args += ["-tune", s["tune"]]
        return args + ["-g", str(round(s["intra_period"] * fps)), "-x265-params", params]


class VVC(FFmpegCodec):
    """VVC with Fraunhofer VVenC: random access (its GOP-32 hierarchy), PSNR-tuned (``qpa 0``)."""

    name = "vvc"
    description = "VVC (libvvenc) through ffmpeg, yuv420p10le, raw Annex B stream"
    quality_help = "QP 0..63 (VVenC takes only QP here)"
    encoder, muxer, suffix, container = "libvvenc", "vvc", ".266", "raw VVC Annex B"
    pix_fmt = "yuv420p10le"  # the only format the libvvenc wrapper accepts
    presets, default_preset = ("faster", "fast", "medium", "slow", "slower"), "medium"
    configs, default_config = (RANDOM_ACCESS,), RANDOM_ACCESS
    rate_controls, default_rate_control = {"qp": (0, 63)}, "qp"

    def codec_args(self, quality: int, s: dict[str, Any], fps: float) -> list[str]:
        period = max(1, round(s["intra_period"]))
        args = ["-preset", s["preset"], "-qp", str(quality), "-qpa", "0"]
        return args + ["-period", str(period), "-threads", str(s["threads"])]


class AV1(FFmpegCodec):
    """AV1 with SVT-AV1, PSNR-tuned (``tune=1``); presets 0 (slowest) .. 13 (fastest)."""

    name = "av1"
    description = "AV1 (libsvtav1) through ffmpeg, yuv420p 8-bit, IVF"
    quality_help = "CRF 1..63"
    encoder, muxer, suffix, container = "libsvtav1", "ivf", ".ivf", "IVF"
    presets, default_preset = tuple(str(p) for p in range(14)), "8"
    default_config = RANDOM_ACCESS
    rate_controls = {"crf": (1, 63)}
    default_qualities = (27, 35, 43, 51)

    def codec_args(self, quality: int, s: dict[str, Any], fps: float) -> list[str]:
        structure = 1 if s["config"] == LOW_DELAY else 2
        params = f"lp={s['threads']}:tune=1:pred-struct={structure}"
        params += f":keyint={round(s['intra_period'] * fps)}"
        return ["-preset", s["preset"], "-crf", str(quality), "-svtav1-params", params]
