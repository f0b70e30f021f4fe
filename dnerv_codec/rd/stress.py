"""The stress set: short clips of what real footage does, generated from data in the repository.

The sample clip moves slowly; a codec tuned on it alone can fall apart on ordinary footage. This
module builds, deterministically, clips that cover the cases a viewer meets, from the bundled
Big Buck Bunny excerpts (``data/``) and scikit-image's bundled photographs (real photos; the
``bench`` extra installs scikit-image):

===============  ======  ============================================================
clip             frames  content
===============  ======  ============================================================
sample           64      ``data/bbb_320x180_64f.mp4`` as it is
sub2 / 4 / 8     32..8   the sample clip keeping every 2nd / 4th / 8th frame (2-8x motion)
cuts             32      four 8-frame shots joined by hard cuts: the sample clip's start,
                         a close-up (a 320x180 crop of ``bbb_640x360_32f.mp4``), the
                         sample clip's end, another close-up
pan-2/4/8        32      a camera pan over ``skimage.data.coffee()``: 2, 4 or 8 px a frame
                         horizontally, a quarter of that vertically (sub-pixel positions)
zoom-1/3         32      a zoom into ``skimage.data.astronaut()``: the field of view
                         shrinks 1 % or 3 % a frame
grain            32      the sample clip's first 32 frames with film grain (Gaussian,
                         sigma 6 on 0..255, the same on R, G and B, seeded)
still            32      one photograph (``skimage.data.chelsea()``, centre 320x180),
                         unchanged for 32 frames
===============  ======  ============================================================

All clips are 320x180 at 25 fps (``downscale`` divides both sides by an integer, ``max_frames``
caps the length). Pans and zooms sample the photo bilinearly on a 2x2 sub-pixel grid per output
pixel (a small box filter against aliasing). :func:`write_stress_set` stores each clip losslessly
(FFV1 in Matroska, planar RGB) with a ``manifest.json`` that records every clip's SHA-256, so a
rerun can check it built the same frames.

>>> from dnerv_codec.rd.stress import CLIPS
>>> CLIPS[:4]
('sample', 'sub2', 'sub4', 'sub8')
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np

from dnerv_codec.errors import InputError
from dnerv_codec.video import Video, ffmpeg_exe, read_video

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "bbb_320x180_64f.mp4"
SAMPLE_640 = REPO / "data" / "bbb_640x360_32f.mp4"
HEIGHT, WIDTH, FPS = 180, 320, Fraction(25)
LENGTH = 32  # frames of the generated clips
GRAIN_SIGMA = 6.0
PAN_SPEEDS = (2, 4, 8)  # pixels a frame, horizontally
ZOOM_STEPS = (1, 3)  # % of the field of view lost a frame

CLIPS = ("sample", "sub2", "sub4", "sub8", "cuts")
CLIPS += tuple(f"pan-{s}" for s in PAN_SPEEDS) + tuple(f"zoom-{z}" for z in ZOOM_STEPS)
CLIPS += ("grain", "still")
"""Every clip's name, in the order of the set."""

PHOTOS = {"pan": "coffee", "zoom": "astronaut", "still": "chelsea"}
"""Which scikit-image photograph each synthetic camera move uses."""


def load_photos() -> dict[str, np.ndarray]:
    """The photographs of :data:`PHOTOS` (uint8 RGB) from scikit-image.

    Raises:
        InputError: scikit-image is not installed.
    """
    try:
        import skimage.data
    except ImportError:
        raise InputError(
            "the stress set's pan, zoom and still clips need scikit-image's photographs: "
            "pip install 'dnerv-codec[bench]' (or scikit-image)"
        ) from None
    return {
        use: np.ascontiguousarray(getattr(skimage.data, name)()) for use, name in PHOTOS.items()
    }


def camera(photo: np.ndarray, centres: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """Frames a camera sees over ``photo``: one (HEIGHT, WIDTH) view per centre and scale.

    Args:
        photo: uint8 RGB (H, W, 3).
        centres: (N, 2) view centres (y, x) in photo pixels.
        scales: (N,) photo pixels per output pixel (1 = native, < 1 = zoomed in).

    Returns:
        uint8 (N, HEIGHT, WIDTH, 3): each output pixel averages 2x2 bilinear samples.

    Raises:
        InputError: a view leaves the photo.
    """
    image = photo.astype(np.float32)
    h, w = image.shape[:2]
    sub = (
        (np.arange(2 * HEIGHT) + 0.5) / 2 - HEIGHT / 2,
        (np.arange(2 * WIDTH) + 0.5) / 2 - WIDTH / 2,
    )
    frames = []
    for (cy, cx), scale in zip(centres, scales, strict=True):
        ys, xs = cy + scale * sub[0] - 0.5, cx + scale * sub[1] - 0.5
        if ys.min() < 0 or xs.min() < 0 or ys.max() > h - 1 or xs.max() > w - 1:
            raise InputError(f"a camera view at ({cy:.0f}, {cx:.0f}) x{scale:.2f} leaves the photo")
        y0, x0 = np.minimum(ys.astype(int), h - 2), np.minimum(xs.astype(int), w - 2)
        fy, fx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
        top = image[y0][:, x0] * (1 - fx) + image[y0][:, x0 + 1] * fx
        bottom = image[y0 + 1][:, x0] * (1 - fx) + image[y0 + 1][:, x0 + 1] * fx
        view = top * (1 - fy) + bottom * fy
        view = view.reshape(HEIGHT, 2, WIDTH, 2, 3).mean(axis=(1, 3))
        frames.append(np.clip(np.rint(view), 0, 255).astype(np.uint8))
    return np.stack(frames)


def pan(photo: np.ndarray, speed: float, n: int = LENGTH, keep: int | None = None) -> np.ndarray:
    """A pan left to right (and a quarter as fast downwards) at ``speed`` px a frame.

    ``n`` frames centred on the photo; ``keep`` renders only the first ``keep`` of them.
    """
    t = np.arange(n, dtype=np.float64)[:keep] - (n - 1) / 2
    h, w = photo.shape[:2]
    centres = np.stack([h / 2 + 0.25 * speed * t, w / 2 + speed * t], axis=1)
    return camera(photo, centres, np.ones(len(t)))


def zoom(photo: np.ndarray, step_percent: float, n: int = LENGTH) -> np.ndarray:
    """A zoom in: the view starts almost as wide as the photo, then shrinks ``step_percent`` %."""
    h, w = photo.shape[:2]
    start = 0.98 * min(h / HEIGHT, w / WIDTH)
    scales = start * (1 - step_percent / 100) ** np.arange(n)
    return camera(photo, np.tile([h / 2, w / 2], (n, 1)), scales)


def still(photo: np.ndarray, n: int = LENGTH) -> np.ndarray:
    """The photo's centre HEIGHT x WIDTH, repeated ``n`` times."""
    h, w = photo.shape[:2]
    top, left = (h - HEIGHT) // 2, (w - WIDTH) // 2
    return np.repeat(photo[None, top : top + HEIGHT, left : left + WIDTH], n, axis=0)


def grain(frames: np.ndarray, sigma: float = GRAIN_SIGMA, seed: int = 0) -> np.ndarray:
    """``frames`` plus monochrome Gaussian grain, new every frame, from a seeded generator."""
    noise = np.random.default_rng(seed).normal(0.0, sigma, frames.shape[:3] + (1,))
    return np.clip(np.rint(frames + noise), 0, 255).astype(np.uint8)


def cuts(sample: np.ndarray, sample_640: np.ndarray, shot: int = 8) -> np.ndarray:
    """Four shots of ``shot`` frames: start, close-up, end, another close-up (hard cuts)."""
    close_a = sample_640[shot : 2 * shot, 40 : 40 + HEIGHT, 300 : 300 + WIDTH]
    close_b = sample_640[-shot:, 150 : 150 + HEIGHT, 100 : 100 + WIDTH]
    return np.concatenate([sample[:shot], close_a, sample[-shot:], close_b])


def _downscale(frames: np.ndarray, factor: int) -> np.ndarray:
    if factor == 1:
        return frames
    n, h, w, _ = frames.shape
    h, w = h // factor * factor, w // factor * factor
    blocks = frames[:, :h, :w].reshape(n, h // factor, factor, w // factor, factor, 3)
    return np.rint(blocks.mean(axis=(2, 4))).astype(np.uint8)


def stress_set(
    names: Sequence[str] = CLIPS,
    *,
    max_frames: int | None = None,
    downscale: int = 1,
    seed: int = 0,
    photos: Mapping[str, np.ndarray] | None = None,
) -> list[Video]:
    """Build the stress set's clips in memory.

    Args:
        names: which clips (a subset of :data:`CLIPS`, in any order).
        max_frames: keep at most this many frames of each clip.
        downscale: divide width and height by this integer (box filter).
        seed: the grain's seed.
        photos: ``{"pan": ..., "zoom": ..., "still": ...}`` uint8 RGB photographs (default:
            :func:`load_photos`; tests pass small ones).

    Raises:
        InputError: an unknown clip name, a bad ``downscale``/``max_frames``, or no
            scikit-image when a photo clip is asked for without ``photos``.
    """
    unknown = [n for n in names if n not in CLIPS]
    if unknown:
        raise InputError(f"unknown stress clip {unknown[0]!r}; clips: {', '.join(CLIPS)}")
    if downscale < 1 or (max_frames is not None and max_frames < 1):
        raise InputError("downscale and max_frames must be at least 1")
    needs_photo = any(n.split("-")[0] in PHOTOS for n in names)
    if needs_photo and photos is None:
        photos = load_photos()
    sample = read_video(SAMPLE).frames
    builders: dict[str, Callable[[], np.ndarray]] = {
        "sample": lambda: sample,
        "cuts": lambda: cuts(sample, read_video(SAMPLE_640).frames),
        "grain": lambda: grain(sample[:LENGTH], seed=seed),
        "still": lambda: still(photos["still"]),
    }
    for step in (2, 4, 8):
        builders[f"sub{step}"] = lambda step=step: sample[::step]
    for speed in PAN_SPEEDS:
        builders[f"pan-{speed}"] = lambda speed=speed: pan(photos["pan"], speed, keep=max_frames)
    for step in ZOOM_STEPS:
        builders[f"zoom-{step}"] = lambda step=step: zoom(
            photos["zoom"], step, min(max_frames or LENGTH, LENGTH)
        )
    videos = []
    for name in names:
        frames = builders[name]()[:max_frames]
        frames = np.ascontiguousarray(_downscale(frames, downscale))
        videos.append(Video(name, frames, FPS))
    return videos


def digest(frames: np.ndarray) -> str:
    """SHA-256 of a clip's shape and raw RGB bytes."""
    h = hashlib.sha256(repr(frames.shape).encode())
    h.update(np.ascontiguousarray(frames).tobytes())
    return h.hexdigest()


def write_video(video: Video, path: Path) -> Path:
    """Store ``video`` losslessly: FFV1 (planar RGB, gbrp) in Matroska."""
    n, h, w, _ = video.frames.shape
    cmd = [ffmpeg_exe(), "-v", "error", "-nostdin", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24"]
    cmd += ["-s", f"{w}x{h}", "-r", str(video.fps), "-i", "pipe:"]
    cmd += ["-c:v", "ffv1", "-level", "3", "-pix_fmt", "gbrp", str(path)]
    proc = subprocess.run(cmd, input=video.frames.tobytes(), capture_output=True, check=False)
    if proc.returncode != 0:
        raise InputError(f"cannot write {path}: {proc.stderr.decode(errors='replace').strip()}")
    return path


def write_stress_set(out: str | Path, **kwargs: object) -> dict[str, object]:
    """Build the clips (:func:`stress_set`'s arguments) and write them to ``out``.

    Each clip becomes ``out/<name>.mkv``; ``out/manifest.json`` lists them with frames, size
    and SHA-256 of the frames, and the arguments. Returns the manifest.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    videos = stress_set(**kwargs)  # type: ignore[arg-type]
    clips = {}
    for video in videos:
        path = write_video(video, out / f"{video.name}.mkv")
        clips[video.name] = {
            "file": path.name,
            "frames": video.num_frames,
            "width": video.width,
            "height": video.height,
            "sha256": digest(video.frames),
        }
    args = {k: v for k, v in kwargs.items() if k != "photos"}
    manifest = {"clips": clips, "arguments": {**args, "names": list(clips)}}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def read_stress_set(folder: str | Path, check: bool = True) -> list[Video]:
    """Read the clips :func:`write_stress_set` wrote, in manifest order.

    Raises:
        InputError: no manifest, or (``check``) a clip whose frames differ from the manifest.
    """
    folder = Path(folder)
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{folder} holds no stress set manifest: {exc}") from None
    videos = []
    for name, info in manifest["clips"].items():
        video = read_video(folder / info["file"], name=name)
        if check and digest(video.frames) != info["sha256"]:
            raise InputError(f"{folder / info['file']} differs from its manifest")
        videos.append(video)
    return videos
