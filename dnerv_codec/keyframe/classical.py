"""Classical codecs through the bundled ffmpeg: HEVC (x265) intra and low-delay P, VVC (vvenc)
and AV1 (libaom) intra, PNG.

Frames go to ffmpeg as raw Y'CbCr planes made by :mod:`dnerv_codec.keyframe.color` (BT.709 full
range, exact integers) and come back as raw planes, so ffmpeg never converts colours: encoding is
x265/vvenc/libaom, decoding is FFmpeg's HEVC and VVC decoders and dav1d, all bit-exact by their
standards. Sizes are edge-padded to a multiple of 8, at least 16 (4:2:0 needs even sizes, x265
at least 16x16) and cropped back; the padding follows from ``(H, W)`` alone, so none is stored.

Quality scale, the same for the four lossy codecs: ``q`` in 1..12, higher is better.
HEVC and VVC use a constant QP = 54 - 3q (51 .. 18, no adaptive QP; hevc-ra, on its own scale
1..34, x265's constant rate factor); AV1 uses libaom's constant
quality mode with cq-level = 66 - 5q (61 .. 6, aq-mode 0). Chroma: hevc-intra and avif code
4:4:4 (it gave higher PSNR-RGB than 4:2:0 at equal bytes in the 30-40 dB range on the sample
clip, benchmarks/RESULTS.md); vvc-intra codes 4:2:0 10-bit, the only format libvvenc takes.

>>> from dnerv_codec.keyframe import get_codec
>>> codec = get_codec("hevc-intra", 5)
>>> frames = np.full((1, 17, 23, 3), 100, dtype=np.uint8)
>>> data, recon = codec.compress_with_reconstruction(frames)
>>> bool((codec.decompress(data, (17, 23)) == recon).all())
True
"""

from __future__ import annotations

import io
import subprocess
import tempfile
import threading
import time
import warnings
from collections.abc import Iterable, Iterator

import numpy as np
from PIL import Image

from bitstream import ids
from dnerv_codec.errors import FormatError
from dnerv_codec.keyframe import bytestreams, color
from dnerv_codec.keyframe.base import (
    KeyframeCodec,
    KeyframeCodecError,
    check_data,
    check_frames,
    check_size,
)
from dnerv_codec.memory import trim

ALIGN = 8
_BOMB = (Image.DecompressionBombError, Image.DecompressionBombWarning)
MIN_SIDE = 16  # x265 refuses pictures smaller than 16x16
# x265 3.x's cutree (the constant rate factor's lookahead) corrupts its heap on some pictures of
# 16 or 24 coded rows (e.g. 40 or 48 columns wide): hevc-ra codes pictures under SMALL_ROWS rows
# without it. Only the encoder's choices change; any picture size decodes as before.
SMALL_ROWS = 32
LOSSY_QUALITIES = (1, 12)
FINE_QUALITIES = (1, 34)  # hevc-ra: one QP step per quality (QP 51 .. 18)


def ffmpeg_exe() -> str:
    """Path of the bundled ffmpeg binary."""
    try:
        from dnerv_codec.video import ffmpeg_exe as exe
    except ImportError:  # pragma: no cover - video.py is optional for this package
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    return exe()


def decode_timeout(n: int, hp: int, wp: int) -> float:
    """Seconds a decoder may take for ``n`` pictures of ``hp`` x ``wp``: generous, x265 decodes
    several 1080p pictures a second."""
    return 30 + n * hp * wp / 1e5


def _command(args: list[str]) -> list[str]:
    return [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", *args]


def _run(args: list[str], chunks: Iterable[bytes], what: str, error: type[Exception]) -> bytes:
    """Run ffmpeg with ``chunks`` (e.g. one picture at a time, made as they are written) on its
    standard input; returns its standard output."""
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(
            _command(args), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors
        )
        feeder = _Feeder(proc.stdin, chunks)
        feeder.start()
        try:
            out = proc.stdout.read()
            returncode = proc.wait()
        finally:
            _stop(proc, feeder)
        if feeder.error is not None:
            raise feeder.error
        if returncode != 0:
            errors.seek(0)
            raise error(f"{what} failed: {_last_line(errors.read(4096), returncode)}")
    return out


def _last_line(stderr: bytes, returncode: int) -> str:
    lines = stderr.decode("utf-8", "replace").strip().splitlines()
    return lines[-1] if lines else f"exit {returncode}"


def _decoded_pictures(
    args: list[str], stdin: bytes, what: str, size: int, count: int, timeout: float
) -> Iterator[bytes]:
    """Run the decoder and yield its output one picture of ``size`` bytes at a time: exactly
    ``count`` pictures within ``timeout`` seconds of the decoder's time (the time the caller
    spends between pictures does not count). A stream that decodes to more pictures (or larger
    ones), fewer, or takes longer is refused (FormatError) without more than one picture of its
    output ever being held in memory. Closing the generator early stops the decoder."""
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(
            _command(args), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors
        )
        feeder = _Feeder(proc.stdin, [stdin])
        watchdog = _Watchdog(proc, timeout)
        feeder.start()
        watchdog.start()
        got = 0
        try:
            while got < count:
                picture = _read_exactly(proc.stdout, size)
                if len(picture) < size:
                    break
                got += 1
                watchdog.pause()
                yield picture
                watchdog.resume()
            if got == count and proc.stdout.read(1):
                raise FormatError(
                    f"{what}: the stream decodes to more than {count} pictures of {size} bytes "
                    "(more pictures, or larger ones, than the metadata allows)"
                )
            returncode = proc.wait()
        finally:
            watchdog.stop()
            _stop(proc, feeder)
        if watchdog.expired.is_set():
            raise FormatError(f"{what}: gave up after {timeout:.0f} s")
        if returncode != 0:
            errors.seek(0)
            raise FormatError(f"{what} failed: {_last_line(errors.read(4096), returncode)}")
        if got < count:
            raise FormatError(
                f"{what}: the stream decodes to {got} pictures of {size} bytes, expected "
                f"{count}; wrong size, codec or data"
            )


class _Watchdog(threading.Thread):
    """Kills ``proc`` once it has run ``timeout`` seconds, not counting the time between
    :meth:`pause` and :meth:`resume` (while its reader is away; the process then stops as soon
    as its output pipe is full)."""

    def __init__(self, proc: subprocess.Popen, timeout: float) -> None:
        super().__init__(daemon=True)
        self.proc = proc
        self.deadline = time.monotonic() + timeout
        self.paused_at: float | None = None
        self.expired = threading.Event()
        self._done = threading.Event()

    def pause(self) -> None:
        self.paused_at = time.monotonic()

    def resume(self) -> None:
        if self.paused_at is not None:
            self.deadline += time.monotonic() - self.paused_at
            self.paused_at = None

    def run(self) -> None:
        while not self._done.wait(0.1):
            if self.paused_at is None and time.monotonic() > self.deadline:
                self.expired.set()
                self.proc.kill()
                return

    def stop(self) -> None:
        self._done.set()
        self.join()


def _read_exactly(pipe, size: int) -> bytes:
    """``size`` bytes from ``pipe``, fewer only at its end."""
    parts, left = [], size
    while left:
        part = pipe.read(left)
        if not part:
            break
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


class _Feeder(threading.Thread):
    """Writes chunks to a process's standard input on its own thread, then closes it. A process
    that stops reading ends the writing quietly (its exit status tells what happened); an error
    while making a chunk is kept in :attr:`error` for the caller to raise."""

    def __init__(self, pipe, chunks: Iterable[bytes]) -> None:
        super().__init__(daemon=True)
        self.pipe, self.chunks = pipe, chunks
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for chunk in self.chunks:
                try:
                    self.pipe.write(chunk)
                except (BrokenPipeError, OSError, ValueError):  # it stopped reading: it has enough
                    return
        except BaseException as exc:  # handed to the caller's thread
            self.error = exc
        finally:
            try:
                self.pipe.close()
            except OSError:
                pass


def _stop(proc: subprocess.Popen, feeder: _Feeder) -> None:
    """Kill ``proc`` if it still runs, and wait for it and its feeder."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    proc.stdout.close()
    feeder.join()


class FfmpegIntraCodec(KeyframeCodec):
    """All-intra coding of Y'CbCr planes through one ffmpeg process per call.

    Subclasses set the encoder arguments, the raw muxer/demuxer and the decoder.
    ``chroma`` ("420" or "444") is fixed per registered codec; other values exist for measurement.
    """

    muxer = ""  # raw elementary stream format written and read by ffmpeg
    decoder = ""  # ffmpeg decoder name
    bits = 8  # sample bit depth the encoder takes
    default_chroma = "420"

    def __init__(self, quality: int, *, chroma: str | None = None) -> None:
        super().__init__(quality)
        self.chroma = chroma or self.default_chroma
        if self.chroma not in ("420", "444"):
            raise ValueError(f"chroma must be '420' or '444', got {self.chroma!r}")

    # -- hooks -----------------------------------------------------------------------------------
    def encoder_args(self) -> list[str]:
        raise NotImplementedError

    def encoder_args_for(self, hp: int, wp: int) -> list[str]:
        """The encoder's arguments for pictures of coded size ``hp`` x ``wp``."""
        return self.encoder_args()

    def split(self, stream: bytes) -> list[bytes]:
        return bytestreams.split_annexb(stream, self.muxer)

    def join(self, data: list[bytes], width: int, height: int) -> bytes:
        return b"".join(data)

    def padded_size(self, h: int, w: int) -> tuple[int, int]:
        """Coded size: a multiple of ALIGN, at least MIN_SIDE, derived from (H, W) alone."""
        return max(h + (-h % ALIGN), MIN_SIDE), max(w + (-w % ALIGN), MIN_SIDE)

    # -- planes ----------------------------------------------------------------------------------
    @property
    def pix_fmt(self) -> str:
        base = "yuv420p" if self.chroma == "420" else "yuv444p"
        return base if self.bits == 8 else f"{base}{self.bits}le"

    def _to_planes(self, frames: np.ndarray) -> bytes:
        yuv = color.rgb_to_yuv444(frames, self.bits)  # (N, 3, H, W)
        dtype = "<u2" if self.bits > 8 else "u1"
        if self.chroma == "444":
            return yuv.astype(dtype).tobytes()
        y = yuv[:, 0].reshape(len(yuv), -1)
        uv = color.downsample_420(yuv[:, 1:]).reshape(len(yuv), -1)
        return np.concatenate([y, uv], axis=1).astype(dtype).tobytes()

    def _frame_bytes(self, hp: int, wp: int) -> int:
        """Bytes of one decoded picture of coded size ``hp`` x ``wp``."""
        luma = hp * wp
        return (luma + 2 * (luma if self.chroma == "444" else luma // 4)) * ((self.bits + 7) // 8)

    def _from_planes(self, raw: bytes, n: int, hp: int, wp: int) -> np.ndarray:
        dtype = np.dtype("<u2" if self.bits > 8 else "u1")
        luma = hp * wp
        per_frame = self._frame_bytes(hp, wp)
        if len(raw) != n * per_frame:
            raise FormatError(
                f"{self.name}: decoded {len(raw)} bytes, expected {n} frames of {hp}x{wp} "
                f"{self.pix_fmt} ({n * per_frame} bytes); wrong size, codec or data"
            )
        flat = np.frombuffer(raw, dtype=dtype).reshape(n, -1).astype(np.uint16)
        y = flat[:, :luma].reshape(n, hp, wp)
        uv = flat[:, luma:].reshape(n, 2, *(y.shape[1:] if self.chroma == "444" else _half(hp, wp)))
        if self.chroma == "420":
            uv = color.upsample_420(uv)
        return color.yuv444_to_rgb(np.concatenate([y[:, None], uv], axis=1), self.bits)

    # -- interface -------------------------------------------------------------------------------
    def encode(self, frames: np.ndarray, indices=None) -> list[bytes]:
        """The access units of ``frames[indices]`` (all frames when None), coded in one encoder
        run. Each picture is converted as the encoder takes it, so ``frames`` may be a memory
        map of a long video: memory holds a picture, not the run."""
        frames = check_frames(frames)
        indices = range(len(frames)) if indices is None else indices
        h, w = frames.shape[1:3]
        hp, wp = self.padded_size(h, w)
        pad = [(0, 0), (0, hp - h), (0, wp - w), (0, 0)]
        pictures = (self._to_planes(np.pad(frames[i : i + 1], pad, mode="edge")) for i in indices)
        args = ["-f", "rawvideo", "-pix_fmt", self.pix_fmt, "-s", f"{wp}x{hp}", "-r", "25"]
        args += ["-i", "pipe:0", *self.encoder_args_for(hp, wp), "-f", self.muxer, "pipe:1"]
        stream = _run(args, pictures, f"{self.name} encoder", KeyframeCodecError)
        data = self.split(stream)
        if len(data) != len(indices):
            raise KeyframeCodecError(
                f"{self.name}: encoder gave {len(data)} pictures for {len(indices)}"
            )
        return data

    def compress_with_reconstruction(self, frames: np.ndarray) -> tuple[list[bytes], np.ndarray]:
        frames = check_frames(frames)
        data = self.encode(frames)
        return data, self.decompress(data, frames.shape[1:3])

    def compress_in_chunks(
        self, frames: np.ndarray, indices: np.ndarray, into: np.ndarray | None = None
    ) -> list[bytes]:
        """As :meth:`KeyframeCodec.compress_in_chunks`, a picture at a time: the encoder takes
        each picture as it is converted and the reconstructions are decoded one by one into
        ``into``, so memory holds a picture whatever the chunk's length."""
        data: list[bytes] = []
        for start in range(0, len(indices), self.per_chunk):
            strings = self.encode(frames, indices[start : start + self.per_chunk])
            if into is not None:
                pictures = self.iter_decompress(strings, frames.shape[1:3])
                for i, picture in enumerate(pictures, start):
                    into[i] = picture
            data.extend(strings)
            trim()
        return data

    def decompress(self, data: list[bytes], size: tuple[int, int]) -> np.ndarray:
        data, (h, w) = check_data(data), check_size(size)
        out = np.empty((len(data), h, w, 3), np.uint8)
        for i, picture in enumerate(self.iter_decompress(data, (h, w))):
            out[i] = picture
        return out

    def iter_decompress(self, data: list[bytes], size: tuple[int, int]) -> Iterator[np.ndarray]:
        data = check_data(data)
        h, w = check_size(size)
        hp, wp = self.padded_size(h, w)
        n = len(data)
        args = ["-c:v", self.decoder, "-f", self.muxer, "-i", "pipe:0", "-map", "0:v:0"]
        # one picture more than asked for, to refuse a stream that holds more (not to use it)
        args += ["-frames:v", str(n + 1), "-fps_mode", "passthrough", "-f", "rawvideo", "pipe:1"]
        timeout = decode_timeout(n, hp, wp)
        stream = self.join(data, wp, hp)
        size_of = self._frame_bytes(hp, wp)  # a picture at the size asked for
        what = f"{self.name} decoder"
        for raw in _decoded_pictures(args, stream, what, size_of, n, timeout):
            yield self._from_planes(raw, 1, hp, wp)[0, :h, :w]


def _half(hp: int, wp: int) -> tuple[int, int]:
    return hp // 2, wp // 2


class HevcIntra(FfmpegIntraCodec):
    """HEVC all-intra with x265 (4:4:4 8-bit, preset medium, tune psnr, constant QP = 54 - 3q)."""

    name = "hevc-intra"
    codec_id = ids.id_of(ids.KEYFRAME_CODECS, name)
    muxer = decoder = "hevc"
    preset = "medium"
    default_chroma = "444"  # measured: better PSNR-RGB than 4:2:0 at equal bytes above ~0.8 bpp

    def encoder_args(self) -> list[str]:
        params = f"qp={54 - 3 * self.quality}:keyint=1:info=0:hash=0:aud=0:log-level=error"
        return ["-c:v", "libx265", "-preset", self.preset, "-tune", "psnr", "-x265-params", params]


class HevcLowDelay(HevcIntra):
    """HEVC low-delay P over the keyframe sequence (x265, 4:4:4 8-bit, preset medium, tune psnr).

    Not in the paper (which codes every keyframe as an image): keyframes 8 frames apart still
    look alike, and predicting each from the previous ones costs a fraction of an intra picture
    (measured in benchmarks/RESULTS.md, "Predictive keyframes"). Closed groups of :attr:`group`
    pictures, each opened by an IDR picture that carries its own parameter sets; P pictures
    reference up to 3 earlier ones of their group; constant QP = 54 - 3q on P slices (x265 gives
    the IDR picture its usual I offset, about 3 QP finer).
    """

    name = "hevc-ld"
    codec_id = ids.id_of(ids.KEYFRAME_CODECS, name)
    group = 32  # keyframes per IDR: random access decodes at most 31 extra keyframes
    bframes = 0

    rate = "qp"  # x265's rate mode: a constant QP

    def qp(self) -> int:
        return 54 - 3 * self.quality

    def encoder_args(self) -> list[str]:
        g = self.group
        params = (
            f"{self.rate}={self.qp()}:keyint={g}:min-keyint={g}:scenecut=0:"
            f"bframes={self.bframes}:"
            "open-gop=0:repeat-headers=1:ref=3:info=0:hash=0:aud=0:log-level=error"
        )
        return ["-c:v", "libx265", "-preset", self.preset, "-tune", "psnr", "-x265-params", params]


class HevcRandomAccess(HevcLowDelay):
    """HEVC random access over the keyframe sequence: as :class:`HevcLowDelay`, with B pictures.

    Not in the paper. D-NeRV itself is not low-delay (a clip needs its *end* keyframe), so
    the keyframes may as well use x265's bidirectional structure (up to 4 B pictures between
    references, adaptive placement, B-pyramid: x265 medium's defaults) inside the same closed
    groups of :attr:`group` pictures. The strings of a group hold its access units in decoding
    order, so a group decodes only as a whole, which is how the decoder reads it.

    Quality 1..34, one step each: x265's constant rate factor CRF = 52 - q (51 .. 18), the
    scale of its QP. The finer scale lets rate control fill the keyframes' share of a budget (a
    3-step change moves the keyframe bytes by about 1.5x). Under a constant rate factor x265
    spends its bits where they last (its lookahead and cutree: pictures that later ones predict
    from get a finer QP): 3.6 % fewer bytes than one constant QP at equal PSNR-RGB on average
    over the stress set's clips (-13 % to +1.4 %, 0.03-0.25 bpp; benchmarks/RESULTS.md,
    "Keyframe codecs").
    Rate control carries state from one picture to the next inside an encoder run, so every
    closed group is coded in its own run: a group's strings do not depend on the groups coded
    before it, however a video is cut into chunks.
    """

    name = "hevc-ra"
    codec_id = ids.id_of(ids.KEYFRAME_CODECS, name)
    bframes = 4
    rate = "crf"

    def qp(self) -> int:
        return 52 - self.quality

    def encoder_args_for(self, hp: int, wp: int) -> list[str]:
        args = self.encoder_args()
        if hp < SMALL_ROWS:
            args[-1] += ":cutree=0"
        return args

    def encode(self, frames: np.ndarray, indices=None) -> list[bytes]:
        frames = check_frames(frames)
        indices = range(len(frames)) if indices is None else indices
        code, g = super().encode, self.group
        return [d for i in range(0, len(indices), g) for d in code(frames, indices[i : i + g])]


class HevcRandomAccessLong(HevcRandomAccess):
    """:class:`HevcRandomAccess` in closed groups of 256 pictures (about ten seconds, x265's own
    default distance between IDR pictures is 250), for keyframe-only files, where every frame
    is a keyframe and the groups of 32 of ``hevc-ra`` would put an IDR picture a second or so
    apart (benchmarks/RESULTS.md, "Keyframe-only files in long groups"). Pictures are coded and
    decoded one at a time (:meth:`encode`, :meth:`iter_decompress`), so the group's length
    costs time for random access, not memory.
    """

    name = "hevc-ra-long"
    codec_id = ids.id_of(ids.KEYFRAME_CODECS, name)
    group = 256


class VvcIntra(FfmpegIntraCodec):
    """VVC all-intra with vvenc (preset fast, 10-bit, constant QP = 54 - 3q, no QPA)."""

    name = "vvc-intra"
    codec_id = ids.id_of(ids.KEYFRAME_CODECS, name)
    muxer = decoder = "vvc"
    bits = 10  # libvvenc takes yuv420p10le only
    preset = "fast"

    def encoder_args(self) -> list[str]:
        qp = str(54 - 3 * self.quality)
        extra = "IntraPeriod=1:GOPSize=1:SEIDecodedPictureHash=0"
        return ["-c:v", "libvvenc", "-preset", self.preset, "-qp", qp, "-qpa", "0"] + [
            "-vvenc-params",
            extra,
        ]


class AvifIntra(FfmpegIntraCodec):
    """AV1 intra (the coding tools of AVIF), libaom all-intra, 4:4:4 8-bit, cq-level = 66 - 5q."""

    name = "avif"
    codec_id = ids.id_of(ids.KEYFRAME_CODECS, name)
    muxer = "ivf"
    decoder = "libdav1d"
    cpu_used = 6
    default_chroma = "444"  # measured, as for hevc-intra

    def encoder_args(self) -> list[str]:
        crf = str(66 - 5 * self.quality)
        return ["-c:v", "libaom-av1", "-usage", "allintra", "-cpu-used", str(self.cpu_used)] + [
            *("-crf", crf, "-b:v", "0", "-aq-mode", "0"),
        ]

    def split(self, stream: bytes) -> list[bytes]:
        return bytestreams.split_ivf(stream)

    def join(self, data: list[bytes], width: int, height: int) -> bytes:
        return bytestreams.join_ivf(data, width, height)


class PngCodec(KeyframeCodec):
    """Lossless PNG (Pillow, zlib level 9), the reference point of the keyframe codecs."""

    name = "png"
    codec_id = ids.id_of(ids.KEYFRAME_CODECS, name)

    def compress_with_reconstruction(self, frames: np.ndarray) -> tuple[list[bytes], np.ndarray]:
        frames = check_frames(frames)
        data = []
        for frame in frames:
            buf = io.BytesIO()
            Image.fromarray(frame, "RGB").save(buf, format="PNG", compress_level=9)
            data.append(buf.getvalue())
        return data, frames.copy()

    def decompress(self, data: list[bytes], size: tuple[int, int]) -> np.ndarray:
        data = check_data(data)
        h, w = check_size(size)
        out = np.empty((len(data), h, w, 3), dtype=np.uint8)
        for i, blob in enumerate(data):
            # The header's size is checked before any pixel is decoded; Pillow's own
            # decompression-bomb check (a warning, or an error past twice its limit) is an error.
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("error", Image.DecompressionBombWarning)
                    with Image.open(io.BytesIO(blob), formats=["PNG"]) as img:
                        if img.size != (w, h) or img.mode != "RGB":
                            raise FormatError(
                                f"png keyframe {i} is {img.size[0]}x{img.size[1]} {img.mode}, "
                                f"expected {w}x{h} RGB"
                            )
                        img.load()
                        out[i] = np.asarray(img)
            except FormatError:
                raise
            except (OSError, SyntaxError, ValueError, *_BOMB) as exc:
                raise FormatError(f"png keyframe {i} cannot be decoded: {exc}") from None
        return out
