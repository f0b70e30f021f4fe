"""The hevc-ra keyframe codec's rate mode: a constant rate factor against a constant QP.

Usage::

    .venv/bin/python benchmarks/bitstream/keyframe_rate.py [--clips sample pan-4 ...] \\
        [--qualities 1 3 ... 33] [--set DIR] [--json PATH]

Every frame of each stress-set clip (``dnerv_codec.rd.stress``, built into ``--set`` when
missing, as ``rd/stress_rd.py`` does) is coded by ``hevc-ra`` (x265 random access, closed groups
of 32 pictures, 4:4:4, tune psnr: a keyframe-only file's codec) at each quality twice: with
x265's constant rate factor ``crf = 52 - q`` (the codec as it is) and with a constant
``qp = 52 - q`` (the same codec otherwise). Printed and recorded per clip: the BD-rate and
BD-PSNR in PSNR-RGB of the rate factor against the constant QP over 0.03-0.25 bpp (each sweep
cut to the points bracketing that window), and the average over the clips. Bytes are the
access units the codec stores; PSNR-RGB the mean of the per-frame PSNR of the decoded frames.
``--video FILE`` measures one video instead (its first ``--max-frames`` frames; the record
``keyframe-rate-mode-video``), e.g. a real-size clip.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[n]) for n in (2, 1)]  # repo, benchmarks/

import _results
import numpy as np
import render

from dnerv_codec.keyframe.classical import HevcRandomAccess
from dnerv_codec.metrics import psnr_frames
from dnerv_codec.rd import bd, stress

TOPIC = "keyframe-rate-mode"
WINDOW = (0.03, 0.25)


class ConstantQp(HevcRandomAccess):
    """hevc-ra with one constant QP instead of its rate factor."""

    rate = "qp"


def sweep(codec_class, frames: np.ndarray, qualities: list[int]) -> dict:
    """One curve in the results schema: bpp and PSNR-RGB at each quality."""
    n, h, w, _ = frames.shape
    bpp, psnr = [], []
    for q in qualities:
        codec = codec_class(q)
        data = codec.compress_in_chunks(frames, np.arange(n))
        decoded = codec.decompress_in_chunks(data, (h, w))
        bpp.append(sum(map(len, data)) * 8 / (n * h * w))
        psnr.append(float(psnr_frames(frames, decoded).mean()))
    return {"results": {"bpp": bpp, "psnr-rgb": psnr, "quality": list(qualities)}}


def compare(anchor: dict, test: dict) -> tuple[float, float]:
    a, t = bd.bracket(anchor, *WINDOW), bd.bracket(test, *WINDOW)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bd.BDOverlapWarning)
        return bd.bd_rate(a, t, "psnr-rgb"), bd.bd_psnr(a, t, "psnr-rgb")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--clips", nargs="+", default=list(stress.CLIPS), choices=stress.CLIPS)
    ap.add_argument("--qualities", type=int, nargs="+", default=list(range(1, 35, 2)))
    ap.add_argument("--set", type=Path, default=None, help="stress set cache folder")
    ap.add_argument("--video", type=Path, default=None, help="one video instead of the set")
    ap.add_argument("--max-frames", type=int, default=None, help="with --video")
    _results.add_arguments(ap, "bitstream", None)
    args = ap.parse_args(argv)
    from rd.stress_rd import cache_dir, load_set

    from dnerv_codec.video import read_video

    topic = f"{TOPIC}-video" if args.video else TOPIC
    rec = _results.Recorder(__file__, topic, argv)
    if args.video:
        videos = [read_video(args.video, max_frames=args.max_frames)]
    else:
        videos = load_set(args.set or cache_dir(1, None), 1, None, args.clips)
    rows, curves = [], {}
    for video in videos:
        frames = np.asarray(video.frames)
        qp = sweep(ConstantQp, frames, args.qualities)
        crf = sweep(HevcRandomAccess, frames, args.qualities)
        curves[video.name] = {"qp": qp["results"], "crf": crf["results"]}
        rate, psnr = compare(qp, crf)
        rows.append([video.name, video.num_frames, rate, psnr])
        print(f"{video.name}: {rate:+.1f} % / {psnr:+.2f} dB", flush=True)
    finite = [r for r in rows if np.isfinite(r[2])]
    average = [float(np.mean([r[2] for r in finite])), float(np.mean([r[3] for r in finite]))]
    rows.append(["**average**", None, *average])
    rec.data["curves"] = curves
    rec.table(
        "bd",
        "hevc-ra with its constant rate factor against a constant QP, every frame of each clip",
        [
            "clip",
            {"name": "frames", "align": "r", "missing": ""},
            {"name": "BD-rate PSNR-RGB", "format": "{:+.1f} %", "align": "r", "missing": "n/a"},
            {"name": "BD-PSNR RGB", "format": "{:+.2f} dB", "align": "r", "missing": "n/a"},
        ],
        [[r[0], r[1], *(None if not np.isfinite(v) else float(v) for v in r[2:])] for r in rows],
    )
    rec.summary(
        "keyframe codec rate mode" + (f", {videos[0].name}" if args.video else ""),
        f"hevc-ra at a constant rate factor needs {-average[0]:.1f} % fewer bytes than at a "
        f"constant QP on average over {len(finite)} "
        f"{'clip' if args.video else 'stress clips'} (PSNR-RGB, 0.03-0.25 bpp)",
        "Keyframe codecs",
    )
    print(render.render_table(rec.record["tables"][0]))
    rec.write(args.json or _results.default_path("bitstream", topic))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
