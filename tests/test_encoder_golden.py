"""The encoder's output for a fixed seed, pinned byte for byte.

Refactors of the encoder, rate control and training must not change a single byte of what they
write: each case below encodes the bundled sample clip with a fixed seed and compares the file's
SHA-256 with the digest recorded in ``tests/data/encoder_digests.json``. A deliberate change of
behaviour regenerates the digests (``python tests/test_encoder_golden.py --write``) in the same
commit, which says why the bytes changed.

Byte equality holds on one kind of CPU and one torch build (the encoder is deterministic there,
see ``test_same_seed_same_bytes``); on another kind the case is skipped, not failed.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
from pathlib import Path

import pytest
import torch

DATA = Path(__file__).resolve().parent / "data"
DIGESTS = DATA / "encoder_digests.json"
CLIP = Path(__file__).resolve().parent.parent / "data" / "bbb_320x180_64f.mp4"

# speed "none": the epochs alone, so that no time budget (which depends on the machine's load)
# can shorten the schedule; mode "network": the network's file (with a few epochs --mode auto
# would keep the keyframe-only one, which tests/test_keyframe_only.py covers)
COMMON = {
    "max_frames": 16,
    "seed": 3,
    "quiet": True,
    "verify": False,
    "speed": "none",
    "mode": "network",
}
CASES = {
    # rate control at a low rate: 4-frame clips, quantisation-aware fine-tuning
    "rate-0.05": {"target_bpp": 0.05, "epochs": 3, "qat_epochs": 1},
    # rate control at a high rate: 2-frame clips, cascaded flows
    "rate-0.2": {"target_bpp": 0.2, "epochs": 3, "qat_epochs": 1},
    # the default: `dnerv encode IN OUT` (quality 6), QAT by its share of the epochs trained
    "default": {"epochs": 10},
    # a fixed network with pruning and fine-tuning
    "preset-prune": {"preset": "tiny", "epochs": 2, "prune": 0.3, "finetune_epochs": 1},
}


def _environment() -> str:
    return f"{platform.machine()} torch {torch.__version__}"


def _digest(case: str, folder: Path) -> str:
    import dnerv_codec

    out = folder / f"{case}.dnerv"
    dnerv_codec.encode(CLIP, out, **COMMON, **CASES[case])
    return hashlib.sha256(out.read_bytes()).hexdigest()


@pytest.mark.parametrize("case", sorted(CASES))
def test_encoder_output_is_unchanged(case, tmp_path):
    recorded = json.loads(DIGESTS.read_text())
    if recorded["environment"] != _environment():
        pytest.skip(f"digests recorded on {recorded['environment']}, this is {_environment()}")
    assert _digest(case, tmp_path) == recorded["digests"][case]


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        digests = {case: _digest(case, Path(tmp)) for case in sorted(CASES)}
    DIGESTS.write_text(
        json.dumps({"environment": _environment(), "digests": digests}, indent=1) + "\n"
    )
    print(DIGESTS.read_text())
