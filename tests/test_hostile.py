"""Hostile .dnerv files: every one is built with valid checksums (``ContainerWriter``), so only
the reader's own checks stand between it and the file system, the memory and the terminal.

Each must end in one ``dnerv: error: ...`` line and a non-zero exit, write nothing outside OUTDIR
(and nothing in it), overwrite nothing, and stay within bounded memory (the bombs run in a child
process under ``RLIMIT_AS``). A valid file built the same way decodes, so the refusals are the
checks' doing and not a broken fixture.
"""

from __future__ import annotations

import copy
import functools
import io
import json
import math
import os
import re
import signal
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch

from bitstream import ContainerWriter, deflate_meta, dict_meta, encode_meta, pack_keyframes
from bitstream import meta as meta_module
from bitstream._binary import put_svarint, put_varint
from bitstream.ids import KEYFRAME_CODECS, QUANT_SCHEMES, SECTION_TYPES, id_of
from dnerv_codec.cli import main
from dnerv_codec.decoder import stored_layout
from dnerv_codec.keyframe import get_codec
from dnerv_codec.model.presets import build_model
from dnerv_codec.quant import pack_records, quantize_state

H, W, FRAMES = 32, 48, 9  # one video, two clips of the model's 8 frames, keyframes 0 and 8
SECTION = {name: id_of(SECTION_TYPES, name) for name in SECTION_TYPES.values()}
BOMB_TIMEOUT = 60  # seconds a bomb may take, child process included


# -- a small valid file and ways to spoil it ------------------------------------------------------
@pytest.fixture(scope="module")
def valid() -> dict:
    """Metadata and sections of a valid file: a tiny network and two PNG keyframes."""
    torch.manual_seed(0)
    model = build_model(
        "tiny", (H, W), stem_hidden=16, embed_levels=4, encoder_dim=8, lower_width=4
    )
    weights = pack_records(quantize_state(model.state_dict(), 6))
    frames = np.random.default_rng(0).integers(0, 256, (2, H, W, 3), dtype=np.uint8)
    keyframes = get_codec("png", 1).compress(frames)
    meta = {
        "encoder": "dnerv-codec test",
        "videos": [
            {"name": "clip", "frames": FRAMES, "width": W, "height": H, "fps_num": 25, "fps_den": 1}
        ],
        "clip_length": 8,
        "geometry": {"mode": "patches", "patch_h": H, "patch_w": W},
        "model": {"arch": 1, "config": model.config},
        "norm": {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]},
        "keyframe": {"codec": 1, "name": "png", "quality": 1, "weights_digest": ""},
        "quant": {"bits": 6},
    }
    return {
        "meta": meta,
        "sections": {
            SECTION["keyframes"]: pack_keyframes({(0, 0): keyframes[0], (0, 1): keyframes[1]}),
            weights[0]: weights[1],
        },
    }


def build(path: Path, valid: dict, meta=None, sections=None, metadata: bytes | None = None):
    """Write a file (valid CRCs) from ``valid`` with ``meta`` edited by a function and
    ``sections`` replaced; ``metadata`` replaces the deflated metadata section's payload."""
    value = copy.deepcopy(valid["meta"])
    if meta is not None:
        meta(value)
    parts = dict(valid["sections"])
    parts[SECTION["metadata-deflate"]] = deflate_meta(value) if metadata is None else metadata
    parts.update(sections or {})
    writer = ContainerWriter()
    for type_id in sorted(parts):
        if parts[type_id] is not None:
            writer.add(type_id, parts[type_id])
    path.write_bytes(writer.finish())
    return path


def tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root``: relative path -> (size, mtime_ns)."""
    return {
        str(p.relative_to(root)): (p.lstat().st_size, p.lstat().st_mtime_ns)
        for p in root.rglob("*")
    }


def refused(capsys, args: list[str], match: str) -> str:
    """Run the CLI in process: a non-zero exit and exactly one escaped line matching ``match``."""
    code = main(args)
    err = capsys.readouterr().err
    assert code != 0, err
    assert err.startswith("dnerv: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and "\x1b" not in err and "\x00" not in err, err
    assert re.search(match, err), err
    return err


def _set(path: str, value):
    """A metadata edit that sets ``a.b.0.c`` to ``value`` (``del`` removes the key)."""

    def edit(meta):
        *parents, last = path.split(".")
        target = meta
        for key in parents:
            target = target[int(key)] if isinstance(target, list) else target[key]
        key = int(last) if isinstance(target, list) else last
        if value == "del":
            del target[key]
        else:
            target[key] = value

    return edit


def _two_videos(meta):
    meta["videos"].append(dict(meta["videos"][0]))


ESCAPES = "\x1b]0;owned\x07\x1b[2J"
# name -> (metadata edit, what the one line says); each is refused by ``info`` and ``decode``
METADATA_CASES = {
    "name ../x": (_set("videos.0.name", "../x"), "holds '/'"),
    "name /abs/x": (_set("videos.0.name", "/abs/x"), "holds '/'"),
    "name url": (_set("videos.0.name", "tcp:/host:port/x"), "holds ':'"),
    "name backslash": (_set("videos.0.name", "..\\x"), "holds"),
    "name nul": (_set("videos.0.name", "a\x00b"), r"holds '\\x00'"),
    "name empty": (_set("videos.0.name", ""), "is empty"),
    "name dotdot": (_set("videos.0.name", ".."), "is '..'"),
    "name dash": (_set("videos.0.name", "-rf"), "starts with '-'"),
    "name long": (_set("videos.0.name", "n" * 256), "255"),
    "name escapes": (_set("videos.0.name", ESCAPES), r"holds '\\x1b'"),
    "name repeated": (_two_videos, "two videos are named 'clip'"),
    "name not str": (_set("videos.0.name", 7), "is not a string"),
    "frames 1e9": (_set("videos.0.frames", 10**9), "frames"),
    "negative width": (_set("videos.0.width", -48), "width"),
    "width 10000": (_set("videos.0.width", 10_000), "width"),
    "fps zero": (_set("videos.0.fps_den", 0), "fps_den"),
    "clip_length 2^40": (_set("clip_length", 2**40), "clip_length"),
    "clip_length not the model's": (_set("clip_length", 4), "clip_length 4 differs"),
    "patch 60000x60000": (_set("geometry.patch_h", 60_000), "patch_h"),
    "patch zero": (_set("geometry.patch_w", 0), "patch_w"),
    "patch not the model's": (_set("geometry.patch_h", 64), "frame size"),
    "zero stride": (_set("model.config.strides", [2, 0, 2]), r"strides\[1\]"),
    "infinite expansion": (_set("model.config.expansion", math.inf), "expansion"),
    "negative lower width": (_set("model.config.lower_width", -1), "lower_width"),
    "config mean of two": (_set("model.config.mean", [0.5, 0.5]), "mean"),
    "norm mean of two": (_set("norm.mean", [0.5, 0.5]), "norm.mean"),
    "config not a dict": (_set("model.config", [1]), "model.config"),
    "unknown arch": (_set("model.arch", 7), "architecture id 7"),
    "keyframe name missing": (_set("keyframe.name", "del"), "keyframe.name"),
    "keyframe quality str": (_set("keyframe.quality", "8"), "keyframe.quality"),
    "keyframe codec missing": (_set("keyframe.codec", "del"), "keyframe.codec"),
    "keyframe codec unknown": (_set("keyframe.codec", 99), "codec id 99"),
    "codec id says png, name hevc": (_set("keyframe.name", "hevc-intra"), "id 1 is png"),
    "encoder not str": (_set("encoder", 5), "encoder"),
    "metadata not a dict": (lambda m: m.clear(), "missing required keys"),
    "metadata item bomb": (_set("pad", [None] * 200_000), "more than 65536 values"),
}
# refused when the decoder sizes the network (``info`` may show these files)
NETWORK_CASES = {
    "network too large": (
        lambda m: m["model"]["config"].update(fc_dim=4096, stem_hidden=65536),
        "more than the limit",
    ),
    "frame size the strides cannot divide": (
        lambda m: (
            m["model"]["config"].update(frame_size=[30, 48]),
            m["geometry"].update(patch_h=30),
        ),
        "bad model configuration",
    ),
    "keyframe quality out of range": (_set("keyframe.quality", 3), "quality 3 is outside"),
}


def test_the_valid_file_decodes(valid, tmp_path, capsys):
    path = build(tmp_path / "ok.dnerv", valid)
    assert main(["info", str(path)]) == 0
    assert main(["decode", str(path), str(tmp_path / "out"), "-q", "--device", "cpu"]) == 0
    assert sorted(tree(tmp_path / "out")) == ["clip"] + [f"clip/{i:06d}.png" for i in range(1, 10)]


@pytest.mark.parametrize("case", sorted(METADATA_CASES))
def test_bad_metadata_is_one_line(valid, tmp_path, capsys, case):
    edit, match = METADATA_CASES[case]
    path = build(tmp_path / "bad.dnerv", valid, meta=edit)
    before = tree(tmp_path)
    refused(capsys, ["info", str(path)], match)
    refused(capsys, ["decode", str(path), str(tmp_path / "out"), "--device", "cpu"], match)
    assert tree(tmp_path) == before  # not even OUTDIR was made


@pytest.mark.parametrize("case", sorted(NETWORK_CASES))
def test_bad_network_is_one_line(valid, tmp_path, capsys, case):
    edit, match = NETWORK_CASES[case]
    path = build(tmp_path / "bad.dnerv", valid, meta=edit)
    before = tree(tmp_path)
    refused(capsys, ["decode", str(path), str(tmp_path / "out"), "--device", "cpu"], match)
    assert tree(tmp_path) == before


def test_open_and_clip_dataset_refuse_with_one_error(valid, tmp_path):
    import dnerv_codec
    from bitstream.errors import DnervError

    path = build(tmp_path / "bad.dnerv", valid, meta=_set("videos.0.frames", 10**9))
    for opener in (dnerv_codec.open, dnerv_codec.ClipDataset):
        with pytest.raises(DnervError, match="frames"):
            opener(path, device="cpu")
    dataset = dnerv_codec.ClipDataset(build(tmp_path / "ok.dnerv", valid), device="cpu")
    assert len(dataset) == 2 and dataset[1][0].shape == (1, 3, H, W) and dataset[-1][1] == 0


# -- sections that lie about their sizes ----------------------------------------------------------
def _constant_payload(count: int) -> bytes:
    """An entropy payload of ``count`` zeros (the constant model: no data at all)."""
    out = bytearray([1])
    put_varint(out, count)
    put_svarint(out, 0)
    put_varint(out, 0)
    return bytes(out)


def weights_bomb(count: int) -> bytes:
    """A plain weights section of ``count`` records, a few hundred bytes in all, whose first
    four declare tensors of 2^26 weights each (the others are scalars)."""
    out = bytearray(struct.pack("<I", count))
    for i in range(count):
        name, size = (f"huge.{i}", 1 << 26) if i < 4 else (f"pad.{i}", 1)
        out += struct.pack("<H", len(name)) + name.encode()
        out += struct.pack("<BBbB", id_of(QUANT_SCHEMES, "symmetric"), 8, -1, 1)
        out += struct.pack("<I", size)
        out += struct.pack("<I", 1) + struct.pack("<f", 1.0) + struct.pack("<I", 0)
        payload = _constant_payload(size)
        out += struct.pack("<I", len(payload)) + payload
    return bytes(out)


def _values_bomb(meta: dict, count: int) -> bytes:
    """Deflated metadata: ``meta`` plus a key ``pad`` holding ``count`` dicts ``{"a": 0}`` (six
    bytes each), built as bytes since the writer refuses metadata that large."""
    head, plain = bytearray(b"\x08"), encode_meta(meta)
    put_varint(head, len(meta) + 1)
    skip = len(head)  # under 127 keys: the old count is one byte too
    pad = bytearray(b"\x03pad\x07")
    put_varint(pad, count)
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    parts = [packer.compress(bytes(head) + plain[skip:] + bytes(pad))]
    parts += [packer.compress(b"\x08\x01\x01a\x03\x00" * (count // 100)) for _ in range(100)]
    return b"".join(parts) + packer.flush()


@functools.cache
def png_bomb(side: int = 10_000) -> bytes:
    """A valid black PNG of side x side RGB pixels (300 MB decoded) in a few hundred KB."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    packer, row, idat = zlib.compressobj(9), bytes(1 + 3 * side), []
    for _ in range(side):
        idat.append(packer.compress(row))
    idat.append(packer.flush())
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", b"".join(idat))
        + (chunk(b"IEND", b""))
    )


@pytest.fixture(scope="module")
def hevc_picture() -> bytes:
    """One black 1920x1080 HEVC intra access unit (with its parameter sets)."""
    codec = get_codec("hevc-intra", 8)
    return codec.compress(np.zeros((1, 1080, 1920, 3), np.uint8))[0]


def _hevc_1080p(m):
    m["videos"][0].update(width=1920, height=1080)
    m["keyframe"].update(codec=id_of(KEYFRAME_CODECS, "hevc-intra"), name="hevc-intra", quality=8)


@pytest.fixture(scope="module")
def bombs(valid, hevc_picture, tmp_path_factory) -> dict[str, tuple[Path, str]]:
    """name -> (file, what the one line says) for the cases that would take gigabytes."""
    folder = tmp_path_factory.mktemp("bombs")
    weights = weights_bomb(len(stored_layout(valid["meta"]["model"]["config"])))
    png_keyframes = {(0, 0): png_bomb(), (0, 1): png_bomb()}
    hevc_keyframes = {(0, 0): hevc_picture * 200, (0, 1): hevc_picture}
    with mock.patch.object(meta_module, "MAX_BYTES", 1 << 30):  # the writer would refuse it
        deflate_bomb = deflate_meta({**valid["meta"], "pad": bytes(16 << 20)})
        dict_bomb = dict_meta({**valid["meta"], "pad": bytes(16 << 20)})
    assert len(deflate_bomb) < 40_000 and len(dict_bomb) < 40_000
    values_bomb = _values_bomb(valid["meta"], 2_500_000)  # 15 MiB: 2.5 million little dicts
    cases = {
        "frames 1e9": (dict(meta=_set("videos.0.frames", 10**9)), "frames"),
        "clip_length 2^40": (dict(meta=_set("clip_length", 2**40)), "clip_length"),
        "patch 60000x60000": (dict(meta=_set("geometry.patch_h", 60_000)), "patch_h"),
        "weights 4 x 2^26": (
            dict(sections={SECTION["weights-packed"]: None, SECTION["weights"]: weights}),
            "'huge.0'.*the network's tensor 0",
        ),
        "deflate bomb": (dict(metadata=deflate_bomb), "inflates past"),
        "deflate bomb of values": (dict(metadata=values_bomb), "inflates past"),
        "deflate bomb with the dictionary": (
            dict(sections={SECTION["metadata-deflate"]: None, SECTION["metadata-dict"]: dict_bomb}),
            "inflates past",
        ),
        "png 10000x10000": (
            dict(sections={SECTION["keyframes"]: pack_keyframes(png_keyframes)}),
            "png keyframe 0",
        ),
        "png 10000x10000, declared": (
            dict(
                meta=lambda m: m["videos"][0].update(width=10_000, height=10_000),
                sections={SECTION["keyframes"]: pack_keyframes(png_keyframes)},
            ),
            "width",
        ),
        "hevc 200 pictures": (
            dict(meta=_hevc_1080p, sections={SECTION["keyframes"]: pack_keyframes(hevc_keyframes)}),
            "decodes to more than",
        ),
    }
    built = {}
    for i, (name, (spoil, match)) in enumerate(cases.items()):
        built[name] = (build(folder / f"bomb{i}.dnerv", valid, **spoil), match)
    return built


_CHILD = """
import json, resource, sys
import dnerv_codec.decoder, dnerv_codec.cli  # torch and everything else imported first

def status(key):
    text = open("/proc/self/status").read()
    return int(text.split(key + ":")[1].split()[0]) * 1024

resource.setrlimit(resource.RLIMIT_AS, (status("VmSize") + int(sys.argv[1]),) * 2)
base = status("VmRSS")
with open("/proc/self/clear_refs", "w") as clear:
    clear.write("5")  # the peak (VmHWM) restarts from here: what the bombs take
codes = [dnerv_codec.cli.main(args) for args in json.loads(sys.argv[2])]
print(json.dumps({"codes": codes, "base": base, "peak": status("VmHWM")}))
"""
EXTRA_MEMORY = 3 << 29  # 1.5 GiB of address space above what the imports took


def test_bombs_are_refused_in_bounded_memory(bombs, tmp_path):
    """In one child process whose address space may grow by 1.5 GiB at most after its imports
    (torch alone maps several GB): ``info`` and ``decode`` of every bomb, each one line."""
    runs, matches = [], []
    for name, (path, match) in bombs.items():
        out = tmp_path / name.replace(" ", "_")
        runs += [["info", str(path)], ["decode", str(path), str(out), "-q", "--device", "cpu"]]
        matches += [None, match]
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(EXTRA_MEMORY), json.dumps(runs)],
        capture_output=True,
        text=True,
        timeout=BOMB_TIMEOUT * len(bombs),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr
    lines = iter(proc.stderr.splitlines())
    for args, match, code in zip(runs, matches, result["codes"], strict=True):
        line = next(lines) if code else ""  # each refusal is one line, a success none
        assert line.startswith("dnerv: error:") or not code, (args, line)
        if match is not None:  # decode (info shows some of these files: it decodes nothing)
            assert code == 1 and re.search(match, line), (args, line)
    assert next(lines, None) is None, proc.stderr
    assert not any(p.is_file() for p in tmp_path.rglob("*")), "a bomb wrote output"
    grew = (result["peak"] - result["base"]) / 2**20
    print(f"\nbombs: peak RSS {result['peak'] / 2**20:.0f} MiB, {grew:.0f} MiB over the imports")
    assert grew < 512


# -- outputs stay inside OUTDIR and nothing is overwritten ----------------------------------------
def test_outputs_never_leave_outdir_or_overwrite(valid, tmp_path, capsys):
    from dnerv_codec.errors import InputError, OutputExistsError
    from dnerv_codec.writers import open_writer, output_path

    for name in ("../x", "/abs/x", "tcp:/host:port/x", "a\x00b", "..", "-y"):
        for fmt in ("png", "y4m", "mp4"):
            with pytest.raises(InputError):
                output_path(tmp_path, name, fmt)
    path = build(tmp_path / "ok.dnerv", valid)
    out, outside = tmp_path / "out", tmp_path / "outside"
    out.mkdir()
    outside.mkdir()
    (out / "clip").symlink_to(outside)  # a link already in OUTDIR: --force must not follow it
    refused(capsys, ["decode", str(path), str(out), "--force", "--device", "cpu"], "outside")
    assert list(outside.iterdir()) == []
    (out / "clip").unlink()
    (out / "clip.y4m").write_bytes(b"mine")
    with pytest.raises(OutputExistsError):
        open_writer(out, "clip", "y4m", 25)
    refused(capsys, ["decode", str(path), str(out), "--format", "y4m", "--device", "cpu"], "exists")
    assert (out / "clip.y4m").read_bytes() == b"mine"
    fresh = tmp_path / "y4m"
    assert main(["decode", str(path), str(fresh), "--format", "y4m", "-q", "--device", "cpu"]) == 0
    assert sorted(tree(fresh)) == ["clip.y4m"]  # no temporary file left
    png = tmp_path / "png"
    (png / "clip").mkdir(parents=True)
    (png / "clip" / "000003.png").write_bytes(b"mine")
    refused(capsys, ["decode", str(path), str(png), "--device", "cpu"], "exists")
    writer = open_writer(png, "clip", "png", 25, first=2)
    writer.write(np.zeros((H, W, 3), np.uint8))
    with pytest.raises(OutputExistsError):
        writer.write(np.zeros((H, W, 3), np.uint8))
    writer.abort()  # removes the one frame it wrote, keeps the one it found
    assert sorted(tree(png)) == ["clip", "clip/000003.png"]


def test_failed_decode_leaves_no_partial_output(valid, tmp_path, capsys):
    # keyframe 1 is damaged (valid CRC, not a PNG): the first clip is written, then refused
    frames = np.zeros((1, H, W, 3), np.uint8)
    good = get_codec("png", 1).compress(frames)[0]
    keyframes = pack_keyframes({(0, 0): good, (0, 1): b"not a png"})
    path = build(tmp_path / "bad.dnerv", valid, sections={SECTION["keyframes"]: keyframes})
    args = ["decode", str(path), str(tmp_path / "out"), "-q", "--device", "cpu"]
    refused(capsys, args, "keyframe 1 of video 0: png keyframe")
    assert not (tmp_path / "out").exists()


# -- printable output -----------------------------------------------------------------------------
def test_strings_from_a_file_are_escaped(valid, tmp_path, capsys):
    def edit(meta):
        meta["encoder"] = ESCAPES
        meta["quant"][ESCAPES] = ESCAPES

    path = build(tmp_path / "esc.dnerv", valid, meta=edit)
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and r"\x1b]0;owned\x07" in out
    assert main(["info", str(path), "--json"]) == 0
    assert "\x1b" not in capsys.readouterr().out
    assert main(["info", str(tmp_path / f"missing{ESCAPES}.dnerv")]) == 1
    assert "\x1b" not in capsys.readouterr().err


def test_debug_shows_the_traceback(valid, tmp_path, capsys, monkeypatch):
    path = build(tmp_path / "bad.dnerv", valid, meta=_set("clip_length", 0))
    assert main(["--debug", "info", str(path)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and err.splitlines()[-1].startswith("dnerv: error:")
    monkeypatch.setenv("DNERV_DEBUG", "1")
    import dnerv_codec.commands.info as info_module

    def bug(path):
        raise RuntimeError("a bug")

    monkeypatch.setattr(info_module, "inspect", bug)
    assert main(["info", str(path)]) == 1
    assert "Traceback" in capsys.readouterr().err
    monkeypatch.delenv("DNERV_DEBUG")
    assert main(["info", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error (RuntimeError: a bug)" in err


# -- the encoder side -----------------------------------------------------------------------------
def test_write_container_cleans_up_on_sigterm_and_keeps_the_umask(tmp_path):
    child = (
        "import os, signal, sys\n"
        "from bitstream import container\n"
        "real = os.fsync\n"
        "def fsync(fd):\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    real(fd)\n"
        "os.fsync = fsync\n"
        "container.write_container(sys.argv[1], [(1, b'x' * 100000)])\n"
    )
    proc = subprocess.run([sys.executable, "-c", child, str(tmp_path / "a.dnerv")], timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM
    assert list(tmp_path.iterdir()) == []
    from bitstream import write_container

    old = os.umask(0o027)
    try:
        write_container(tmp_path / "b.dnerv", [(1, b"x")])
    finally:
        os.umask(old)
    assert (tmp_path / "b.dnerv").stat().st_mode & 0o777 == 0o640


def test_a_dnerv_file_is_not_an_encoder_input(valid, tmp_path, capsys):
    from dnerv_codec.errors import InputError
    from dnerv_codec.video import read_inputs

    path = build(tmp_path / "ok.dnerv", valid)
    disguised = tmp_path / "movie.mp4"
    disguised.write_bytes(path.read_bytes())
    for item in (path, disguised):
        with pytest.raises(InputError, match="is a .dnerv file"):
            read_inputs([item])
    refused(capsys, ["encode", str(disguised), str(tmp_path / "x.dnerv")], "is a .dnerv file")
    assert not (tmp_path / "x.dnerv").exists()


def test_names_made_from_file_names_are_labels(tmp_path):
    from bitstream.meta import name_problem
    from dnerv_codec.video import Video, read_inputs

    frames = np.zeros((1, 2, 2, 3), np.uint8)
    odd = ["../x", "a:b", "-v", "..", "\x1b[2J", "é" * 200, "a:b", "a_b"]
    names = [v.name for v in read_inputs([Video(n, frames, 25) for n in odd])]
    assert all(name_problem(n) is None for n in names), names
    assert len(set(names)) == len(names)
    assert names[:4] == [".._x", "a_b", "_v", "video"]


def test_png_bombs_are_clean_errors(monkeypatch):
    from PIL import Image

    from dnerv_codec.errors import FormatError

    codec = get_codec("png", 1)
    with pytest.raises(FormatError, match="png keyframe 0 is 64x64 RGB, expected 48x32"):
        codec.decompress([png_bomb(64)], (H, W))  # the header is checked before the pixels
    with pytest.raises(FormatError, match="png keyframe 0 cannot be decoded: Image size"):
        codec.decompress([png_bomb()], (H, W))  # 10000x10000: Pillow's own check, first
    buf = io.BytesIO()
    Image.new("RGB", (W, H)).save(buf, format="PNG")
    assert codec.decompress([buf.getvalue()], (H, W)).shape == (1, H, W, 3)
    for limit in (H * W - 1, H * W // 3):  # Pillow's warning, then its error (past twice)
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
        with pytest.raises(FormatError, match="png keyframe 0 cannot be decoded"):
            codec.decompress([buf.getvalue()], (H, W))
