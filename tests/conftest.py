"""Shared fixtures: paths to the bundled real sample clips."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data"


@pytest.fixture(scope="session")
def sample_clip() -> Path:
    """64 frames of Big Buck Bunny at 320x180, 25 fps (data/README.md)."""
    return DATA / "bbb_320x180_64f.mp4"


@pytest.fixture(scope="session")
def sample_clip_640() -> Path:
    """32 frames of Big Buck Bunny at 640x360, 25 fps (data/README.md)."""
    return DATA / "bbb_640x360_32f.mp4"
