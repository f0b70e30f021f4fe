"""RGB <-> Y'CbCr conversion in exact integer arithmetic, and 4:2:0 chroma resampling.

Classical keyframe codecs code Y'CbCr planes; we convert ourselves instead of letting ffmpeg's
swscale do it, because swscale picks SIMD paths per CPU and its rounding is not specified. Integer
numpy arithmetic gives the same bytes on every machine, so the encoder and any decoder see the same
keyframes bit for bit.

The conversion is BT.709 (Kr = 0.2126, Kb = 0.0722), **full range**: Y' in [0, 2^b - 1], Cb/Cr
centred on 2^(b-1), no footroom or headroom (the bitstreams carry no VUI colour flags; this module
is the only place the convention lives). Coefficients are fixed-point with 16 fractional bits and
every division rounds half up. 4:2:0 chroma is the rounded mean of each 2x2 block (centre siting);
upsampling is bilinear with centre siting, i.e. weights 9/16, 3/16, 3/16, 1/16, edges replicated.

>>> rgb = np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [128, 128, 128]]], dtype=np.uint8)
>>> back = yuv444_to_rgb(rgb_to_yuv444(rgb, 10), 10)
>>> int(np.abs(back.astype(int) - rgb).max()) <= 1
True
"""

from __future__ import annotations

import numpy as np

_FRAC = 16  # fractional bits of the fixed-point coefficients

# Forward matrix rows (Y', Cb, Cr), each scaled by 2^16; the Y' row sums to 2^16, chroma rows to 0.
_FWD = np.array(
    [
        [13933, 46871, 4732],
        [-7509, -25259, 32768],
        [32768, -29763, -3005],
    ],
    dtype=np.int64,
)
# Inverse: R = Y' + 1.5748 Cr, G = Y' - 0.187324 Cb - 0.468124 Cr, B = Y' + 1.8556 Cb.
_R_CR, _G_CB, _G_CR, _B_CB = 103207, 12276, 30679, 121609


def _per_frame(convert, frames: np.ndarray, frame_dims: int, out_shape, dtype, *args):
    """``convert`` applied to each frame of ``frames`` (its last ``frame_dims`` dimensions) into
    one array: the int64 intermediates stay the size of one frame, not of the whole batch."""
    lead = frames.shape[: frames.ndim - frame_dims]
    out = np.empty(lead + out_shape, dtype)
    for index in np.ndindex(*lead):
        out[index] = convert(frames[index], *args)
    return out


def rgb_to_yuv444(rgb: np.ndarray, bits: int = 8) -> np.ndarray:
    """Convert uint8 RGB ``(..., H, W, 3)`` to Y'CbCr planes ``(..., 3, H, W)`` of ``bits`` bits.

    Returns uint8 for 8 bits, uint16 for 9-16 bits.
    """
    dtype = np.uint8 if bits == 8 else np.uint16
    if rgb.ndim > 3:
        h, w = rgb.shape[-3:-1]
        return _per_frame(rgb_to_yuv444, rgb, 3, (3, h, w), dtype, bits)
    shift = _FRAC - (bits - 8)  # output scaled by 2^(bits - 8)
    x = rgb.astype(np.int64)
    planes = np.einsum("...c,kc->...k", x, _FWD)  # (..., H, W, 3)
    planes = np.moveaxis(planes, -1, -3)  # (..., 3, H, W)
    planes[..., 1:, :, :] += 128 << _FRAC
    out = (planes + (1 << (shift - 1))) >> shift
    return np.clip(out, 0, (1 << bits) - 1).astype(dtype)


def yuv444_to_rgb(yuv: np.ndarray, bits: int = 8) -> np.ndarray:
    """Convert Y'CbCr planes ``(..., 3, H, W)`` of ``bits`` bits to uint8 RGB ``(..., H, W, 3)``."""
    if yuv.ndim > 3:
        h, w = yuv.shape[-2:]
        return _per_frame(yuv444_to_rgb, yuv, 3, (h, w, 3), np.uint8, bits)
    x = yuv.astype(np.int64)
    y = x[..., 0, :, :] << _FRAC
    cb = x[..., 1, :, :] - (128 << (bits - 8))
    cr = x[..., 2, :, :] - (128 << (bits - 8))
    shift = _FRAC + (bits - 8)
    half = 1 << (shift - 1)
    r = (y + _R_CR * cr + half) >> shift
    g = (y - _G_CB * cb - _G_CR * cr + half) >> shift
    b = (y + _B_CB * cb + half) >> shift
    return np.clip(np.stack([r, g, b], axis=-1), 0, 255).astype(np.uint8)


def downsample_420(plane: np.ndarray) -> np.ndarray:
    """Rounded mean of each 2x2 block of ``(..., H, W)`` (H, W even) -> ``(..., H/2, W/2)``."""
    x = plane.astype(np.int64)
    s = x[..., 0::2, 0::2] + x[..., 1::2, 0::2] + x[..., 0::2, 1::2] + x[..., 1::2, 1::2]
    return ((s + 2) >> 2).astype(plane.dtype)


def _up2_axis(x: np.ndarray, axis: int) -> np.ndarray:
    """Double ``axis`` with centre-sited taps (3/4, 1/4); returns values scaled by 4."""
    n = x.shape[axis]
    prev = np.take(x, np.clip(np.arange(n) - 1, 0, n - 1), axis=axis)
    nxt = np.take(x, np.clip(np.arange(n) + 1, 0, n - 1), axis=axis)
    even = 3 * x + prev  # output sample 2i sits a quarter step before chroma sample i
    odd = 3 * x + nxt
    out = np.stack([even, odd], axis=axis + 1 if axis >= 0 else axis)
    shape = list(x.shape)
    shape[axis] = 2 * n
    return out.reshape(shape)


def upsample_420(plane: np.ndarray) -> np.ndarray:
    """Bilinear 2x upsampling of ``(..., h, w)`` chroma to ``(..., 2h, 2w)``, exact integers."""
    x = plane.astype(np.int64)
    up = _up2_axis(_up2_axis(x, x.ndim - 2), x.ndim - 1)  # scaled by 16
    return ((up + 8) >> 4).astype(plane.dtype)
