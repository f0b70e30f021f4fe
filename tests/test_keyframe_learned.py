"""Learned keyframe codecs (CompressAI) with randomly initialised models: no weights download."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from dnerv_codec.errors import CodecMismatchError, DnervError, WeightsError
from dnerv_codec.keyframe import get_codec, weights_present
from dnerv_codec.keyframe import weights as weights_mod

LEARNED = ["bmshj2018-factorized", "bmshj2018-hyperprior", "mbt2018-mean", "cheng2020-anchor"]


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    """Two smooth 40x70 frames (odd padding on both axes: pads to 64x128)."""
    y, x = np.mgrid[0:40, 0:70]
    base = np.stack([x * 3, y * 5, (x + y) * 2], axis=-1)
    return np.stack([base, base[::-1]]).clip(0, 255).astype(np.uint8)


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if "cheng" in n else n for n in LEARNED]
)
def test_bitstream_decodes_to_the_encoder_reconstruction(name, frames):
    codec = get_codec(name, 1, weights="random:0")
    data, recon = codec.compress_with_reconstruction(frames)
    assert len(data) == 2 and all(isinstance(d, bytes) and d for d in data)
    first = codec.decompress(data, (40, 70))
    second = get_codec(name, 1, weights="random:0").decompress(data, (40, 70))
    assert first.dtype == np.uint8 and first.shape == frames.shape
    assert np.array_equal(first, recon) and np.array_equal(second, recon)
    assert np.array_equal(codec.decompress(data[1:], (40, 70))[0], recon[1])


@pytest.mark.parametrize("name", ["bmshj2018-factorized", "mbt2018-mean"])
def test_digest_follows_the_weights_and_decoders_with_other_weights_refuse(name):
    a = get_codec(name, 2, weights="random:0")
    b = get_codec(name, 2, weights="random:0")
    c = get_codec(name, 2, weights="random:1")
    assert len(a.weights_digest) == 64 and a.weights_digest == b.weights_digest
    assert c.weights_digest != a.weights_digest
    b.check_weights(a.weights_digest)
    with pytest.raises(WeightsError, match="--keyframe-weights"):
        c.check_weights(a.weights_digest)
    with torch.no_grad():
        next(b.model.parameters()).add_(1e-3)
    assert weights_mod.digest(b.model) != a.weights_digest


def test_weights_file_loads_with_the_same_digest(tmp_path, frames):
    codec = get_codec("bmshj2018-hyperprior", 1, weights="random:3")
    path = tmp_path / "w.pth"
    torch.save(codec.model.state_dict(), path)
    loaded = get_codec("bmshj2018-hyperprior", 1, weights=path)
    assert loaded.weights_digest == codec.weights_digest
    data = codec.compress(frames[:1])
    assert np.array_equal(loaded.decompress(data, (40, 70)), codec.decompress(data, (40, 70)))


def test_bad_weights_give_one_line_errors(tmp_path):
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    other = tmp_path / "other.pth"
    torch.save(get_codec("bmshj2018-factorized", 1, weights="random:0").model.state_dict(), other)
    cases = [
        tmp_path / "missing.pth",
        garbage,
        other,  # a factorized state dict handed to cheng2020-anchor
        "random:x",
    ]
    for weights in cases:
        with pytest.raises(WeightsError) as info:
            get_codec("cheng2020-anchor", 1, weights=weights)
        assert "\n" not in str(info.value)


def test_missing_weights_say_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("DNERV_OFFLINE", "1")
    with pytest.raises(WeightsError) as info:
        get_codec("cheng2020-anchor", 3)
    msg = str(info.value)
    expected = tmp_path / "hub" / "checkpoints" / "cheng2020-anchor-3-e49be189.pth.tar"
    assert str(expected) in msg and "--keyframe-weights" in msg and "\n" not in msg
    assert isinstance(info.value, DnervError)


@pytest.mark.slow
def test_missing_weights_do_not_hang_without_network(tmp_path):
    """Without DNERV_OFFLINE the download is only tried if the server answers within seconds."""
    code = (
        "from dnerv_codec.keyframe import get_codec\n"
        "from dnerv_codec.errors import WeightsError\n"
        "try:\n    get_codec('bmshj2018-factorized', 1)\nexcept WeightsError as e:\n    print(e)\n"
    )
    env = {"TORCH_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )
    assert "bmshj2018-factorized-prior-1-446d5c7f.pth.tar" in out.stdout


def test_hub_cache_is_used(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("DNERV_OFFLINE", "1")
    assert not weights_present("bmshj2018-factorized", 1)
    source = get_codec("bmshj2018-factorized", 1, weights="random:5")
    cached = weights_mod.hub_cache_path("bmshj2018-factorized", 1)
    cached.parent.mkdir(parents=True)
    torch.save(source.model.state_dict(), cached)
    assert weights_present("bmshj2018-factorized", 1)
    assert not weights_present("hevc-intra", 1)
    assert get_codec("bmshj2018-factorized", 1).weights_digest == source.weights_digest


def test_a_decode_that_differs_from_the_encoder_is_refused(frames, monkeypatch):
    codec = get_codec("bmshj2018-factorized", 1, weights="random:0")
    real = codec.model.decompress

    def off_by_a_bit(strings, shape):
        out = real(strings, shape)
        return {"x_hat": out["x_hat"] * 0.9}

    monkeypatch.setattr(codec.model, "decompress", off_by_a_bit)
    with pytest.raises(CodecMismatchError, match="decodes differently"):
        codec.compress(frames)
