"""Helpers shared by the benchmark scripts (run as scripts: this folder is on sys.path)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from dnerv_codec.video import ffmpeg_exe

REPO = Path(__file__).resolve().parent.parent
CLIP = REPO / "data" / "bbb_320x180_64f.mp4"  # the sample clip (`make data` writes it)


def scaled_copy(src: Path, dst: Path, size: str) -> Path:
    """``src`` scaled to ``size`` ("WxH", area filter), stored losslessly (FFV1) at ``dst``."""
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-y", "-i", str(src), "-vf", f"scale={size}:flags=area",
         "-c:v", "ffv1", str(dst)],
        check=True,
    )  # fmt: skip
    return dst
