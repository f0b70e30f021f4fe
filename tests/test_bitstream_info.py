"""``dnerv info`` on a container with plausible metadata, through ``dnerv_codec.cli.main``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bitstream import write_container
from bitstream._sample import sample_sections
from dnerv_codec.cli import main


def _write(tmp_path, frames=16):
    path = tmp_path / "sample.dnerv"
    write_container(path, sample_sections(frames))
    return path


def test_info_text(tmp_path, capsys):
    path = _write(tmp_path)
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    size = path.stat().st_size
    assert "bbb_320x180: 16 frames, 320x180, 25 fps" in out
    assert "model: dnerv" in out and "png" in out
    assert f"{size} bytes" in out
    assert f"bpp: {size * 8 / (320 * 180 * 16):.5f}" in out
    for name in ("metadata", "keyframes", "weights"):
        assert name in out


def test_info_json(tmp_path, capsys):
    path = _write(tmp_path, frames=24)
    assert main(["info", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    size = path.stat().st_size
    assert info["bytes"] == size
    assert info["bpp"] == size * 8 / (320 * 180 * 24)
    assert info["videos"] == [
        {"name": "bbb_320x180", "frames": 24, "width": 320, "height": 180, "fps": 25.0}
    ]
    assert info["keyframe_codec"] == "png" and info["model"] == "dnerv"
    assert set(info["sections"]) == {"metadata", "keyframes", "weights"}
    assert sum(info["sections"].values()) + info["overhead_bytes"] == size
    assert info["overhead_bytes"] == 32 + 3 * 24
    assert info["keyframes"] == 4 and info["weights"]["parameters"] == 112
    assert info["weights"]["entropy_models"] == {"raw": 1, "float16": 1}
    assert [t["name"] for t in info["tensors"]] == ["decoder.0.conv.weight", "decoder.0.conv.bias"]


def test_info_lists_tensors(tmp_path, capsys):
    path = _write(tmp_path)
    assert main(["info", str(path), "--tensors"]) == 0
    out = capsys.readouterr().out
    assert "decoder.0.conv.weight: 4x3x3x3 affine 8-bit axis 0" in out and "model raw" in out


def test_info_errors_are_one_line(tmp_path, capsys):
    path = _write(tmp_path)
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    assert main(["info", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("dnerv: error:") and err.count("\n") == 1 and "CRC32" in err
    (tmp_path / "empty.dnerv").write_bytes(b"")
    assert main(["info", str(tmp_path / "empty.dnerv")]) == 1
    assert "empty" in capsys.readouterr().err
    assert main(["info", str(tmp_path / "missing.dnerv")]) == 1
    assert "Traceback" not in capsys.readouterr().err


def test_info_imports_no_torch(tmp_path):
    path = _write(tmp_path)
    code = (
        "import sys\n"
        "from dnerv_codec.cli import main\n"
        f"assert main(['info', {str(path)!r}, '--json']) == 0\n"
        "assert 'torch' not in sys.modules, 'dnerv info imported torch'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_info_on_odd_metadata_raises_only_dnerv_errors(tmp_path, capsys):
    import random

    from bitstream import DnervError, encode_meta
    from bitstream._sample import sample_metadata
    from dnerv_codec.commands.info import inspect

    rng = random.Random(5)
    odd_values = [None, True, -1, 0, 2.5, float("nan"), "x", b"\x00", [], {}, [1, 2], {"a": 1}]
    sections = sample_sections()
    for i in range(300):
        meta = sample_metadata()
        target = meta
        path_keys = []
        while isinstance(target, dict) and target and rng.random() < 0.7:
            key = rng.choice(list(target))
            path_keys.append(key)
            if not isinstance(target[key], (dict, list)) or not target[key]:
                break
            target = target[key] if isinstance(target[key], dict) else target[key][0]
        if isinstance(target, dict) and target:
            target[rng.choice(list(target))] = rng.choice(odd_values)
        path = tmp_path / f"odd{i}.dnerv"
        write_container(path, [(1, encode_meta(meta)), *sections[1:]])
        try:
            inspect(path)
        except DnervError:
            continue
        assert main(["info", str(path)]) == 0
        assert main(["info", str(path), "--json"]) == 0


def test_info_on_a_file_the_encoder_wrote_imports_no_torch(tmp_path):
    """The encoder writes compact or packed weight sections, whose tensors come from the model
    configuration: ``dnerv info`` lists them without torch (bitstream.layout)."""
    import dnerv_codec

    out = tmp_path / "e.dnerv"
    sample = Path(__file__).resolve().parent.parent / "data" / "bbb_320x180_64f.mp4"
    fast = {"preset": "tiny", "keyframe_codec": "png", "keyframe_quality": 1, "quiet": True}
    dnerv_codec.encode(sample, out, epochs=1, max_frames=3, verify=False, **fast)
    code = (
        "import json, sys\n"
        "from dnerv_codec.commands.info import inspect\n"
        f"info = inspect({str(out)!r})\n"
        "assert 'torch' not in sys.modules, 'dnerv info imported torch'\n"
        "print(json.dumps([list(info['sections']), len(info['tensors'])]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    sections, tensors = json.loads(done.stdout)
    assert {"weights-compact", "weights-packed"} & set(sections) and tensors > 10
