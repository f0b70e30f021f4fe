"""``dnerv rd`` end to end, and its one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dnerv_codec.cli import main


def _one_line_error(capsys: pytest.CaptureFixture, argv: list[str]) -> str:
    status = main(argv)
    err = capsys.readouterr().err.strip()
    assert status != 0
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith("dnerv: error:")
    return err


@pytest.mark.slow
def test_rd_writes_jsons_png_and_table(sample_clip: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "rd"
    argv = ["rd", str(sample_clip), "--codecs", "x264,x265", "-q", "24,30,36"]
    argv += ["-q", "x264:26,34", "--max-frames", "4", "--out", str(out), "--quiet"]
    argv += ["-o", "x265.preset=fast", "--keep-streams"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""  # --quiet: no progress bar
    assert sorted(p.name for p in out.iterdir()) == [
        "rd.md",
        "rd.png",
        "streams",
        "x264.json",
        "x265.json",
    ]
    x264 = json.loads((out / "x264.json").read_text())
    x265 = json.loads((out / "x265.json").read_text())
    assert sorted(x264["results"]["quality"]) == [26, 34]
    assert sorted(x265["results"]["quality"]) == [24, 30, 36]
    assert x265["settings"]["preset"] == "fast" and x265["frames"] == 4
    assert len(list((out / "streams").iterdir())) == 5
    assert (out / "rd.png").read_bytes()[:4] == b"\x89PNG"
    table = (out / "rd.md").read_text()
    assert (
        "BD against **x265 fast lowdelay (crf)** (fast, lowdelay, 4:2:0, CRF) in PSNR-YUV" in table
    )
    assert table.count("| x264 medium lowdelay (crf) |") == 3  # two points + one BD row


def test_default_codecs_are_the_444_anchors(sample_clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "rd"
    argv = ["rd", str(sample_clip), "-q", "30,40", "--max-frames", "2", "--out", str(out)]
    assert main([*argv, "--quiet"]) == 0
    names = {"x265-kf.json", "x265-ra444.json", "x264-ra444.json", "rd.md", "rd.png"}
    assert {p.name for p in out.iterdir()} == names
    table = (out / "rd.md").read_text()
    assert "BD against **x265-kf** (medium, randomaccess, 4:4:4, tune psnr, GOP 32, QP)" in table
    assert "in PSNR-RGB (pchip" in table and "in PSNR-YUV (pchip" not in table
    assert "| x265-kf | 40 |" in table and "| worst frame (dB) |" in table
    anchored = main([*argv, "--codecs", "x265-kf,x264-ld420", "--anchor", "x264-ld420", "--quiet"])
    table = (out / "rd.md").read_text()
    assert anchored == 0 and "BD against **x264-ld420**" in table and "in PSNR-YUV (pchip" in table
    assert "BD against **x265-kf**" not in table


def test_unknown_codec_is_one_line(sample_clip: Path, tmp_path: Path, capsys) -> None:
    err = _one_line_error(capsys, ["rd", str(sample_clip), "--codecs", "x264,h266", "--out", "o"])
    assert "unknown codec 'h266'" in err and "x265" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--codecs", "x264", "-q", "22,60"], "crf 60 is outside 0..51"),
        (["--codecs", "vvc", "-q", "vvc:70"], "qp 70 is outside 0..63"),
        (["--codecs", "x264", "-q", "fast"], "not an integer"),
        (["--codecs", "x264", "-q", "x265:30"], "not in --codecs"),
        (["--codecs", "x264", "-o", "x264.preset=warp"], "preset 'warp'"),
        (["--codecs", "x264", "-o", "preset=slow"], "CODEC.NAME=VALUE"),
        (["--codecs", "x264,x264"], "twice"),
        (["--codecs", "x264", "--anchor", "x265-kf"], "--anchor 'x265-kf' is not in --codecs"),
        (["--codecs", "x265-kf", "-q", "17"], "QP must be an integer in 18..51"),
    ],
)
def test_bad_qualities_and_options_are_one_line(
    sample_clip: Path, tmp_path: Path, capsys, extra: list[str], message: str
) -> None:
    err = _one_line_error(capsys, ["rd", str(sample_clip), *extra, "--out", str(tmp_path / "o")])
    assert message in err
    assert not (tmp_path / "o").exists()  # validated before any work


def test_missing_input_is_one_line(tmp_path: Path, capsys) -> None:
    err = _one_line_error(capsys, ["rd", str(tmp_path / "nope.mp4"), "--out", str(tmp_path)])
    assert "nope.mp4" in err
