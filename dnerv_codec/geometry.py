"""How frames of any size become the fixed-size patches the network works on, and back.

One model serves a whole video set, so it works on one patch size (ph, pw). Each video's frames
are padded at the bottom and right by repeating the edge pixels up to a whole number of patches,
then cut into a grid of patches. Every patch position of a video is its own *stream* for the
network (D-NeRV treated each 256x320 patch of a 1080p video as its own video). The decoder runs
the network per stream and stitches the patches back, then crops to the original size.

The policy (recorded in the file's metadata as ``geometry``):

- frames whose padded size fits in ``max_patch`` pixels are one patch: (ph, pw) is the largest
  padded frame size of the set, each dimension rounded up to the model's multiple;
- larger frames are cut into patches of ``large_patch`` (default 256x320, the paper's size).

Numpy only, so the decoder and ``dnerv info`` can use it without torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Frames up to this many pixels after padding are coded as one patch.
MAX_SINGLE_PATCH_PIXELS = 640 * 384
LARGE_PATCH = (256, 320)


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


@dataclass(frozen=True)
class Geometry:
    """Patch size of a video set. ``patch`` is (height, width)."""

    patch_h: int
    patch_w: int

    def grid(self, height: int, width: int) -> tuple[int, int]:
        """Rows and columns of patches that cover a frame of this size."""
        return -(-height // self.patch_h), -(-width // self.patch_w)

    def to_meta(self) -> dict:
        return {"mode": "patches", "patch_h": self.patch_h, "patch_w": self.patch_w}

    @classmethod
    def from_meta(cls, meta: dict) -> Geometry:
        return cls(int(meta["patch_h"]), int(meta["patch_w"]))


def choose_geometry(
    sizes: list[tuple[int, int]],
    multiple: int,
    max_single_patch_pixels: int = MAX_SINGLE_PATCH_PIXELS,
    large_patch: tuple[int, int] = LARGE_PATCH,
) -> Geometry:
    """Pick the patch size for a set of (height, width) frame sizes.

    Args:
        sizes: frame size of every video in the set.
        multiple: the network accepts sizes that are multiples of this.
        max_single_patch_pixels: above this padded area, frames are split into patches.
        large_patch: patch size for large frames (rounded up to ``multiple``).
    """
    ph = round_up(max(h for h, _ in sizes), multiple)
    pw = round_up(max(w for _, w in sizes), multiple)
    if ph * pw <= max_single_patch_pixels:
        return Geometry(ph, pw)
    return Geometry(round_up(large_patch[0], multiple), round_up(large_patch[1], multiple))


def to_patches(frames: np.ndarray, geometry: Geometry) -> np.ndarray:
    """Pad (edge-replicate) and cut frames into patches.

    Args:
        frames: (N, H, W, C) array.

    Returns:
        (P, N, ph, pw, C) with P = rows * cols patches in row-major order.
    """
    n, h, w, c = frames.shape
    rows, cols = geometry.grid(h, w)
    ph, pw = geometry.patch_h, geometry.patch_w
    padded = np.pad(frames, ((0, 0), (0, rows * ph - h), (0, cols * pw - w), (0, 0)), mode="edge")
    tiles = padded.reshape(n, rows, ph, cols, pw, c)  # (N, R, ph, C', pw, C)
    return tiles.transpose(1, 3, 0, 2, 4, 5).reshape(rows * cols, n, ph, pw, c)


def from_patches(patches: np.ndarray, geometry: Geometry, height: int, width: int) -> np.ndarray:
    """Inverse of :func:`to_patches`: stitch (P, N, ph, pw, C) patches and crop to (H, W)."""
    rows, cols = geometry.grid(height, width)
    p, n, ph, pw, c = patches.shape
    if p != rows * cols:
        raise ValueError(f"expected {rows * cols} patches for {width}x{height}, got {p}")
    full = patches.reshape(rows, cols, n, ph, pw, c).transpose(2, 0, 3, 1, 4, 5)
    return full.reshape(n, rows * ph, cols * pw, c)[:, :height, :width]
