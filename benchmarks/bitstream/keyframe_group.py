"""Keyframe-only files in long groups: ``hevc-ra-long`` (closed groups of 256) against
``hevc-ra`` (closed groups of 32) on every frame.

Usage::

    .venv/bin/python benchmarks/bitstream/keyframe_group.py [--videos A.mp4 B.mp4 ...] \\
        [--clips sample ...] [--qualities 1 3 ... 33] [--set DIR] [--json PATH]

Every frame of each video is coded by both codecs (x265 random access, 4:4:4, tune psnr, its
constant rate factor ``crf = 52 - q``; the same but for the group) at each quality. The videos:
the stress-set clips of more than 32 frames (``--clips``, built into ``--set`` when missing, as
``rd/stress_rd.py`` does; on a shorter clip the two codecs code the same groups) and any
``--videos`` files (e.g. real-size clips made by ``speed/encode_memory.py``'s ``make_clip``).
Printed and recorded per video: the BD-rate and BD-PSNR in PSNR-RGB of the long groups against
groups of 32 over 0.03-0.25 bpp (each sweep cut to the points bracketing that window), and the
average. Bytes are the access units the codec stores; PSNR-RGB the mean of the per-frame PSNR
of the decoded frames.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[n]) for n in (2, 1)]  # repo, benchmarks/

import _results
import numpy as np
import render
from keyframe_rate import compare, sweep

from dnerv_codec.keyframe.classical import HevcRandomAccess, HevcRandomAccessLong
from dnerv_codec.rd import stress

TOPIC = "keyframe-group"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--clips", nargs="*", default=["sample"], choices=stress.CLIPS)
    ap.add_argument("--videos", type=Path, nargs="*", default=[], help="video files to add")
    ap.add_argument("--qualities", type=int, nargs="+", default=list(range(1, 35, 2)))
    ap.add_argument("--set", type=Path, default=None, help="stress set cache folder")
    _results.add_arguments(ap, "bitstream", None)
    args = ap.parse_args(argv)
    from rd.stress_rd import cache_dir, load_set

    from dnerv_codec.video import read_video

    rec = _results.Recorder(__file__, TOPIC, argv)
    videos = load_set(args.set or cache_dir(1, None), 1, None, args.clips) if args.clips else []
    videos += [read_video(path) for path in args.videos]
    rows, curves = [], {}
    for video in videos:
        frames = np.asarray(video.frames)
        short = sweep(HevcRandomAccess, frames, args.qualities)
        long = sweep(HevcRandomAccessLong, frames, args.qualities)
        curves[video.name] = {"hevc-ra": short["results"], "hevc-ra-long": long["results"]}
        rate, psnr = compare(short, long)
        size = f"{video.width}x{video.height}"
        rows.append([video.name, size, video.num_frames, rate, psnr])
        print(f"{video.name} ({size}, {video.num_frames} frames): {rate:+.1f} % / {psnr:+.2f} dB")
    finite = [r for r in rows if np.isfinite(r[3])]
    average = [float(np.mean([r[3] for r in finite])), float(np.mean([r[4] for r in finite]))]
    rows.append(["**average**", None, None, *average])
    rec.data["curves"] = curves
    rec.table(
        "bd",
        "hevc-ra-long (groups of 256) against hevc-ra (groups of 32), every frame of each video",
        [
            "video",
            {"name": "size", "missing": ""},
            {"name": "frames", "align": "r", "missing": ""},
            {"name": "BD-rate PSNR-RGB", "format": "{:+.1f} %", "align": "r", "missing": "n/a"},
            {"name": "BD-PSNR RGB", "format": "{:+.2f} dB", "align": "r", "missing": "n/a"},
        ],
        [[*r[:3], *(None if not np.isfinite(v) else float(v) for v in r[3:])] for r in rows],
    )
    rec.summary(
        "keyframe-only files in long groups",
        f"hevc-ra-long needs {-average[0]:.1f} % fewer bytes than hevc-ra on every frame, on "
        f"average over {len(finite)} videos (PSNR-RGB, 0.03-0.25 bpp)",
        "Keyframe codecs",
    )
    print(render.render_table(rec.record["tables"][0]))
    rec.write(args.json or _results.default_path("bitstream", TOPIC))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
