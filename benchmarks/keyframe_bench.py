"""Rate-distortion and speed of the keyframe codecs; picks the default codec by measurement.

What it measures (results go to benchmarks/RESULTS.md, section "Keyframe codecs"):

1. RD of every classical codec over all its qualities on the D-NeRV keyframes (every 8th frame
   and the last) of a sample clip: bpp = all keyframe bytes * 8 / pixels, PSNR-RGB = mean over
   frames of the per-frame PSNR over the three RGB channels; encode/decode seconds per frame.
2. 4:4:4 (registered) against 4:2:0 coding for the codecs that support both (hevc-intra, avif).
3. Encode and decode seconds for one 1280x720 keyframe (a sample frame upscaled, bicubic), every
   codec; learned codecs use random weights here: their TIME is real, their RD is meaningless
   without pretrained weights, so no RD is reported for them.
4. The default: among codecs that need no downloaded weights, the lossy codec with the fewest
   bits at PSNR 33-38 dB (log-rate interpolation), unless it is more than 5x slower to encode
   than the fastest candidate; the default quality is the lowest whose mean PSNR is >= --target-db.

Run: .venv/bin/python benchmarks/keyframe_bench.py [--clip data/bbb_320x180_64f.mp4] [--json out]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
from PIL import Image

from dnerv_codec.keyframe import get_codec, quality_range
from dnerv_codec.keyframe.classical import AvifIntra, HevcIntra
from dnerv_codec.video import read_video

LOSSY = ["hevc-intra", "vvc-intra", "avif"]
LEARNED_TIMING = [
    ("bmshj2018-factorized", 4),
    ("bmshj2018-hyperprior", 4),
    ("mbt2018-mean", 4),
    ("cheng2020-anchor", 3),
]
PSNR_BAND = np.arange(33.0, 38.01, 0.5)


def psnr_rgb(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over frames of the PSNR of each frame over its three RGB channels."""
    diff = a.astype(np.float64) - b.astype(np.float64)
    mse = np.maximum((diff**2).reshape(len(a), -1).mean(axis=1), 1e-10)
    return float(np.mean(10 * np.log10(255.0**2 / mse)))


def keyframes(clip: Path, period: int = 8) -> np.ndarray:
    """The D-NeRV keyframes of ``clip``: frames 0, 8, 16, ... and the last frame."""
    frames = read_video(clip).frames
    idx = sorted(set(range(0, len(frames), period)) | {len(frames) - 1})
    return frames[idx]


def measure(codec, frames: np.ndarray) -> dict:
    """bpp, PSNR-RGB and per-frame encode/decode seconds of ``codec`` on ``frames``."""
    t0 = time.perf_counter()
    data, recon = codec.compress_with_reconstruction(frames)
    t1 = time.perf_counter()
    decoded = codec.decompress(data, frames.shape[1:3])
    t2 = time.perf_counter()
    if not np.array_equal(decoded, recon):
        raise SystemExit(f"{codec!r}: decode differs from the encoder's reconstruction")
    n, h, w, _ = frames.shape
    return {
        "bpp": sum(map(len, data)) * 8 / (n * h * w),
        "psnr": psnr_rgb(recon, frames),
        "enc_s": (t1 - t0) / n,
        "dec_s": (t2 - t1) / n,
    }


def rd_sweep(frames: np.ndarray) -> dict[str, list[dict]]:
    """Every quality of every classical lossy codec."""
    out: dict[str, list[dict]] = {}
    for name in LOSSY:
        lo, hi = quality_range(name)
        out[name] = [{"q": q, **measure(get_codec(name, q), frames)} for q in range(lo, hi + 1)]
        print(f"  {name}: done", flush=True)
    return out


def chroma_sweep(frames: np.ndarray) -> dict[str, list[dict]]:
    """4:2:0 against 4:4:4 at a few qualities for the codecs that can code both."""
    out: dict[str, list[dict]] = {}
    for cls in (HevcIntra, AvifIntra):
        for chroma in ("420", "444"):
            out[f"{cls.name} {chroma}"] = [
                {"q": q, **measure(cls(q, chroma=chroma), frames)} for q in (4, 6, 8, 10)
            ]
    return out


def timing_720p(frame: np.ndarray, lossy_q: int) -> list[dict]:
    """Encode (incl. verification) and single-keyframe decode seconds for one 1280x720 frame."""
    big = np.asarray(Image.fromarray(frame).resize((1280, 720), Image.BICUBIC))[None]
    rows = []
    cases = [("png", 1, None)] + [(n, lossy_q, None) for n in LOSSY]
    cases += [(n, q, "random:0") for n, q in LEARNED_TIMING]
    for name, q, weights in cases:
        r = measure(get_codec(name, q, weights=weights), big)
        rows.append({"codec": name, "q": q, "random_weights": weights is not None, **r})
        print(f"  720p {name}: enc {r['enc_s']:.2f}s dec {r['dec_s']:.2f}s", flush=True)
    return rows


def bits_at(rows: list[dict], db: np.ndarray) -> np.ndarray:
    """log2(bpp) interpolated at PSNR values ``db`` (NaN outside the measured range)."""
    p = np.array([r["psnr"] for r in rows])
    lb = np.log2([r["bpp"] for r in rows])
    order = np.argsort(p)
    res = np.interp(db, p[order], lb[order], left=np.nan, right=np.nan)
    return res


def choose_default(rd: dict[str, list[dict]], target_db: float) -> dict:
    """The rule of the module docstring; returns the choice with its reasons."""
    mean_log_bits = {n: float(np.nanmean(bits_at(rows, PSNR_BAND))) for n, rows in rd.items()}
    enc = {n: float(np.mean([r["enc_s"] for r in rows])) for n, rows in rd.items()}
    fastest = min(enc.values())
    candidates = [n for n in rd if enc[n] <= 5 * fastest]
    best = min(candidates, key=lambda n: mean_log_bits[n])
    quality = next((r["q"] for r in rd[best] if r["psnr"] >= target_db), rd[best][-1]["q"])
    ref = mean_log_bits[best]
    return {
        "codec": best,
        "quality": quality,
        "rate_vs_best_pct": {n: 100 * (2 ** (v - ref) - 1) for n, v in mean_log_bits.items()},
        "enc_s_per_frame": enc,
    }


def table(rows: list[dict], cols: list[str]) -> str:
    head = "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n"
    fmt = {"bpp": "{:.3f}", "psnr": "{:.2f}", "enc_s": "{:.3f}", "dec_s": "{:.3f}"}
    body = ""
    for r in rows:
        body += "| " + " | ".join(fmt.get(c, "{}").format(r[c]) for c in cols) + " |\n"
    return head + body


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", default="data/bbb_320x180_64f.mp4")
    ap.add_argument("--target-db", type=float, default=36.0)
    ap.add_argument("--json", help="write all figures to this JSON file")
    ap.add_argument("--skip-720p", action="store_true")
    ap.add_argument("--skip-chroma", action="store_true")
    args = ap.parse_args(argv)

    frames = keyframes(Path(args.clip))
    n, h, w, _ = frames.shape
    print(f"{args.clip}: {n} keyframes of {w}x{h}; load {Path('/proc/loadavg').read_text()[:14]}")
    results: dict = {"clip": args.clip, "keyframes": n, "size": [h, w], "machine": _machine()}
    results["rd"] = rd_sweep(frames)
    results["png"] = measure(get_codec("png", 1), frames)
    if not args.skip_chroma:
        results["chroma"] = chroma_sweep(frames)
    results["default"] = choose_default(results["rd"], args.target_db)
    if not args.skip_720p:
        results["timing_720p"] = timing_720p(frames[0], results["default"]["quality"])
    results["load_after"] = Path("/proc/loadavg").read_text().strip()

    for name, rows in results["rd"].items():
        print(f"\n### {name}\n" + table(rows, ["q", "bpp", "psnr", "enc_s", "dec_s"]))
    print("\npng: " + json.dumps(results["png"]))
    for name, rows in results.get("chroma", {}).items():
        print(f"\n### {name}\n" + table(rows, ["q", "bpp", "psnr"]))
    if "timing_720p" in results:
        print("\n### 1280x720\n" + table(results["timing_720p"], ["codec", "q", "enc_s", "dec_s"]))
    print("\ndefault: " + json.dumps(results["default"], indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


def _machine() -> dict:
    cpu = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    return {"cpu": cpu, "cores": nproc, "python": platform.python_version()}


if __name__ == "__main__":
    raise SystemExit(main())
