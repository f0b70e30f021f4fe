"""Rate-distortion and speed of the keyframe codecs; picks the default codec by measurement.

What it measures (results go to benchmarks/RESULTS.md, section "Keyframe codecs"):

1. RD of every classical codec over all its qualities on the D-NeRV keyframes (every 8th frame
   and the last) of each sample clip: bpp = all keyframe bytes * 8 / pixels, PSNR-RGB = mean over
   frames of the per-frame PSNR over the three RGB channels; encode/decode seconds per frame.
2. 4:4:4 (registered) against 4:2:0 coding for the codecs that support both (hevc-intra, avif).
3. Encode and decode seconds for one 1280x720 keyframe (a sample frame upscaled, bicubic), every
   codec; learned codecs use random weights here: their TIME is real, their RD is meaningless
   without pretrained weights, so no RD is reported for them.
4. The default, among codecs that need no downloaded weights: drop codecs slower than
   ``--max-enc-720p`` seconds per 1280x720 keyframe (one keyframe per 8 frames: 2 s is 0.25 s per
   video frame, small next to training the network); of the rest, the one with the fewest bits
   at PSNR-RGB 33-38 dB (log-rate interpolation, averaged over the clips). Its default quality is
   the lowest whose PSNR, averaged over the clips, reaches ``--target-db``.

5. ``--predictive`` (only this part): keyframe bytes and PSNR-RGB of hevc-intra against
   hevc-ld (the same keyframes coded as one low-delay P sequence) and hevc-ra (random access,
   B pictures) for keyframes every 8, 4 and 2 frames, at qualities 3, 5, 7, 9 (hevc-ra: 7, 13,
   19, 25, the same QPs), and the BD-rates
   (PSNR-RGB) of hevc-ld against intra and of hevc-ra against hevc-ld.

Run: .venv/bin/python benchmarks/bitstream/keyframe_bench.py [--clip A.mp4 --clip B.mp4]
     [--json out]
     .venv/bin/python benchmarks/bitstream/keyframe_bench.py --predictive [--clip A.mp4]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[n]) for n in (2, 1)]  # repo, benchmarks/

import numpy as np
from PIL import Image

from dnerv_codec.keyframe import DEFAULT_QUALITY, get_codec, quality_range
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


def timing_720p(frame: np.ndarray, lossy_q: int, learned: bool = True) -> list[dict]:
    """Encode (incl. verification) and single-keyframe decode seconds for one 1280x720 frame."""
    big = np.asarray(Image.fromarray(frame).resize((1280, 720), Image.BICUBIC))[None]
    rows = []
    cases = [("png", 1, None)] + [(n, lossy_q, None) for n in LOSSY]
    cases += [(n, q, "random:0") for n, q in LEARNED_TIMING] if learned else []
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


def choose_default(
    rd_by_clip: dict[str, dict[str, list[dict]]],
    enc_720p: dict[str, float],
    target_db: float,
    max_enc_720p: float,
) -> dict:
    """The rule of the module docstring; returns the choice with its reasons."""
    names = list(next(iter(rd_by_clip.values())))
    log_bits = {
        n: float(np.mean([np.nanmean(bits_at(rd[n], PSNR_BAND)) for rd in rd_by_clip.values()]))
        for n in names
    }
    fast = [n for n in names if enc_720p.get(n, 0.0) <= max_enc_720p]
    best = min(fast, key=lambda n: log_bits[n])
    by_q: dict[int, list[float]] = {}
    for rd in rd_by_clip.values():
        for r in rd[best]:
            by_q.setdefault(r["q"], []).append(r["psnr"])
    mean_db = {q: float(np.mean(v)) for q, v in sorted(by_q.items())}
    quality = next((q for q, db in mean_db.items() if db >= target_db), max(mean_db))
    return {
        "codec": best,
        "quality": quality,
        "mean_psnr_at_quality": mean_db[quality],
        "rate_vs_best_pct": {n: 100 * (2 ** (v - log_bits[best]) - 1) for n, v in log_bits.items()},
        "enc_720p_s": enc_720p,
        "excluded_as_slow": sorted(set(names) - set(fast)),
    }


def table(rows: list[dict], cols: list[str]) -> str:
    head = "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n"
    fmt = {"bpp": "{:.3f}", "psnr": "{:.2f}", "enc_s": "{:.3f}", "dec_s": "{:.3f}"}
    body = ""
    for r in rows:
        body += "| " + " | ".join(fmt.get(c, "{}").format(r[c]) for c in cols) + " |\n"
    return head + body


def predictive(clips: list[str]) -> None:
    """Intra against low-delay P and random-access coding of the keyframe sequence (part 5)."""
    names = ("hevc-intra", "hevc-ld", "hevc-ra")
    print("| clip | keyframe every | keyframes | quality | hevc-intra bytes | PSNR | "
          "hevc-ld bytes | PSNR | hevc-ra bytes | PSNR |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    summary = []
    for clip in clips:
        for period in (8, 4, 2):
            frames = keyframes(Path(clip), period)
            curves: dict[str, list[tuple[int, float]]] = {n: [] for n in names}
            for q in (3, 5, 7, 9):
                for name in names:
                    codec = get_codec(name, 3 * q - 2 if name == "hevc-ra" else q)  # same QP
                    data, recon = codec.compress_with_reconstruction(frames)
                    curves[name].append((sum(map(len, data)), psnr_rgb(recon, frames)))
                cells = " | ".join(f"{b:,} | {p:.2f}" for b, p in (curves[n][-1] for n in names))
                row = f"| {Path(clip).name} | {period} | {len(frames)} | {q} | {cells} |"
                print(row, flush=True)

            summary.append(
                f"| {Path(clip).name} | {period} | {_bd(curves, 'hevc-ld', 'hevc-intra'):+.1f} % "
                f"| {_bd(curves, 'hevc-ra', 'hevc-ld'):+.1f} % |"
            )
    print("\n| clip | keyframe every | BD-rate hevc-ld vs intra | BD-rate hevc-ra vs hevc-ld |")
    print("|---|---:|---:|---:|")
    print("\n".join(summary))


def _bd(curves: dict[str, list[tuple[int, float]]], test: str, anchor: str) -> float:
    """BD-rate (%, PSNR-RGB) of two (bytes, PSNR) curves on the same frames."""
    from dnerv_codec.rd.bd import bd_rate

    a, t = (
        {"results": {"bpp": [b for b, _ in curves[n]], "psnr-rgb": [p for _, p in curves[n]]}}
        for n in (anchor, test)
    )  # bytes stand in for bpp: the frames are the same for every codec
    return bd_rate(a, t)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", action="append", help="repeatable; default: both sample clips")
    ap.add_argument("--target-db", type=float, default=35.0)
    ap.add_argument("--max-enc-720p", type=float, default=2.0)
    ap.add_argument("--json", help="write all figures to this JSON file")
    ap.add_argument("--skip-chroma", action="store_true")
    ap.add_argument("--skip-learned", action="store_true", help="no learned codecs in 720p timing")
    ap.add_argument("--predictive", action="store_true", help="only part 5: predictive")
    args = ap.parse_args(argv)
    clips = args.clip or ["data/bbb_320x180_64f.mp4", "data/bbb_640x360_32f.mp4"]
    if args.predictive:
        predictive(args.clip or ["data/bbb_320x180_64f.mp4"])
        return 0

    results: dict = {"machine": _machine(), "load_before": _load(), "clips": {}}
    for clip in clips:
        frames = keyframes(Path(clip))
        n, h, w, _ = frames.shape
        print(f"{clip}: {n} keyframes of {w}x{h}; load {_load()}", flush=True)
        res: dict = {"keyframes": n, "size": [h, w], "rd": rd_sweep(frames)}
        res["png"] = measure(get_codec("png", 1), frames)
        if not args.skip_chroma:
            res["chroma"] = chroma_sweep(frames)
        results["clips"][clip] = res
    first = keyframes(Path(clips[0]))[0]
    results["timing_720p"] = timing_720p(first, DEFAULT_QUALITY, learned=not args.skip_learned)
    enc = {r["codec"]: r["enc_s"] for r in results["timing_720p"]}
    rd_by_clip = {c: r["rd"] for c, r in results["clips"].items()}
    results["default"] = choose_default(rd_by_clip, enc, args.target_db, args.max_enc_720p)
    results["load_after"] = _load()

    for clip, res in results["clips"].items():
        for name, rows in res["rd"].items():
            print(f"\n### {clip} {name}\n" + table(rows, ["q", "bpp", "psnr", "enc_s", "dec_s"]))
        print(f"\n{clip} png: " + json.dumps(res["png"]))
        for name, rows in res.get("chroma", {}).items():
            print(f"\n### {clip} {name}\n" + table(rows, ["q", "bpp", "psnr"]))
    print("\n### 1280x720\n" + table(results["timing_720p"], ["codec", "q", "enc_s", "dec_s"]))
    print("\ndefault: " + json.dumps(results["default"], indent=1))
    print(f"load before {results['load_before']}, after {results['load_after']}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


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
