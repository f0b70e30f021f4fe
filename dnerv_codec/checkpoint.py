"""Encoder checkpoints: a folder from which a killed encode resumes where it stopped.

Layout of ``--checkpoint-dir``:

- ``run.json``: what the run encodes (inputs, frame counts, preset, keyframe codec, seed...). A
  resume with different settings is refused instead of mixing two runs.
- ``keyframes.bin``: the keyframe bitstreams, as a .dnerv keyframes section payload, so a resume
  neither recompresses the keyframes nor trains on different ones.
- ``trainer.pt``: model, optimiser, schedule position and RNG state. Read back with
  ``torch.load(weights_only=True)``, which refuses anything but tensors and plain containers: no
  arbitrary unpickling even though the folder comes from the user.

Every file is written to a temporary name and renamed, so a kill mid-write leaves the previous
checkpoint intact.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch

from bitstream.keyframes import pack_keyframes, unpack_keyframes
from dnerv_codec.errors import InputError


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Checkpoint:
    """Saving and loading one encode's checkpoint folder."""

    def __init__(self, folder: str | Path, run: dict) -> None:
        self.folder = Path(folder)
        self.run = run
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot create checkpoint folder {self.folder}: {exc}") from None

    @property
    def exists(self) -> bool:
        return (self.folder / "trainer.pt").is_file() and (self.folder / "run.json").is_file()

    def check_run(self) -> None:
        """Refuse to resume a checkpoint written for another input or other settings."""
        saved = json.loads((self.folder / "run.json").read_text())
        if saved != self.run:
            keys = set(saved) | set(self.run)
            changed = ", ".join(sorted(k for k in keys if saved.get(k) != self.run.get(k)))
            raise InputError(f"checkpoint {self.folder} is for another run (differs in: {changed})")

    def save_keyframes(self, streams: dict[tuple[int, int], bytes]) -> None:
        _atomic_write(self.folder / "keyframes.bin", lambda fh: fh.write(pack_keyframes(streams)))
        data = json.dumps(self.run, indent=1, sort_keys=True).encode()
        _atomic_write(self.folder / "run.json", lambda fh: fh.write(data))

    def load_keyframes(self) -> dict[tuple[int, int], bytes] | None:
        path = self.folder / "keyframes.bin"
        if not path.is_file() or not (self.folder / "run.json").is_file():
            return None
        self.check_run()
        return unpack_keyframes(path.read_bytes())

    def save_trainer(self, state: dict) -> None:
        _atomic_write(self.folder / "trainer.pt", lambda fh: torch.save(state, fh))

    def load_trainer(self) -> dict:
        self.check_run()
        path = self.folder / "trainer.pt"
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # a damaged or foreign file: one clear line
            raise InputError(f"cannot read checkpoint {path}: {exc}") from None
