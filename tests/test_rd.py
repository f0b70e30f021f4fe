"""Rate points through the bundled ffmpeg, the codec registry, curves, BD-rate, JSON and plots."""

from __future__ import annotations

import math
import subprocess
import uuid
import warnings
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from dnerv_codec import rd
from dnerv_codec.errors import InputError
from dnerv_codec.video import Video, ffmpeg_exe, read_video

FRAMES = 16


@pytest.fixture(scope="module")
def clip16(sample_clip: Path) -> Video:
    return read_video(sample_clip, max_frames=FRAMES)


def _decode_by_hand(path: Path, width: int, height: int) -> np.ndarray:
    cmd = [ffmpeg_exe(), "-v", "error", "-i", str(path), "-vf"]
    cmd += ["scale=in_color_matrix=bt709:in_range=tv", "-fps_mode", "passthrough"]
    cmd += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    raw = subprocess.run(cmd, capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3)


def test_x264_point_counts_the_real_file_and_its_psnr(clip16: Video, tmp_path: Path) -> None:
    point = rd.evaluate(clip16, "x264", 28, bitstream_dir=tmp_path)
    stream = Path(point["bitstream"])
    assert stream.suffix == ".264" and point["bytes"] == stream.stat().st_size
    pixels = FRAMES * 320 * 180
    assert point["bpp"] == pytest.approx(stream.stat().st_size * 8 / pixels, rel=1e-12)
    decoded = _decode_by_hand(stream, 320, 180)
    assert decoded.shape == clip16.frames.shape
    mse = ((decoded.astype(np.float64) - clip16.frames) ** 2).reshape(FRAMES, -1).mean(axis=1)
    assert point["psnr-rgb"] == pytest.approx(np.mean(10 * np.log10(255**2 / mse)), abs=1e-9)
    assert 25 < point["psnr-rgb"] < 45 and 0.9 < point["ms-ssim-rgb"] <= 1
    for key in ("codec", "quality", "psnr-yuv", "encoding_time", "decoding_time", "frames"):
        assert key in point
    assert (point["frames"], point["width"], point["height"]) == (FRAMES, 320, 180)
    assert "-tune zerolatency -bf 0" in point["encoder_args"]
    assert b"x264 - core" not in stream.read_bytes()  # the options SEI is stripped


def test_lossless_round_trip_keeps_the_colour_matrix(clip16: Video) -> None:
    # x264 QP 0 only loses the RGB -> 4:2:0 conversion; a matrix mismatch would cost ~10 dB.
    video = Video("c", clip16.frames[:4], clip16.fps)
    point = rd.evaluate(video, "x264", 0, rate_control="qp")
    assert point["psnr-rgb"] > 43


def test_odd_sizes_are_padded_then_cropped(clip16: Video) -> None:
    video = Video("odd", np.ascontiguousarray(clip16.frames[:3, :35, :63]), Fraction(25))
    point = rd.evaluate(video, "x264", 20)
    assert (point["width"], point["height"], point["frames"]) == (63, 35, 3)
    assert point["bpp"] == pytest.approx(point["bytes"] * 8 / (63 * 35 * 3))
    assert point["psnr-rgb"] > 30


@pytest.mark.slow
@pytest.mark.parametrize(
    ("codec", "qualities", "options"),
    [
        ("x265", (27, 37), {}),
        ("x265", (27, 37), {"config": "ra"}),
        ("x264", (27, 37), {"config": "randomaccess", "preset": "fast"}),
        ("vvc", (30, 40), {"preset": "faster"}),
        ("av1", (35, 50), {}),
        ("av1", (35, 50), {"config": "lowdelay"}),
    ],
)
def test_each_codec_gives_a_monotone_curve(clip16: Video, codec, qualities, options) -> None:
    video = Video("c", clip16.frames[:6], clip16.fps)
    curve = rd.rd_curve(video, codec, qualities, progress=False, **options)
    r = curve["results"]
    assert r["bpp"] == sorted(r["bpp"]) and r["bpp"][0] < r["bpp"][1]
    assert r["psnr-rgb"][0] < r["psnr-rgb"][1]
    assert r["quality"] == sorted(qualities, reverse=True)


@pytest.mark.parametrize(
    ("codec", "quality", "options"),
    [
        ("x264", 52, {}),
        ("x264", -1, {}),
        ("x265", 27, {"preset": "ludicrous"}),
        ("vvc", 64, {}),
        ("vvc", 30, {"config": "lowdelay"}),
        ("vvc", 30, {"rate_control": "crf"}),
        ("av1", 0, {}),
        ("x264", 27.5, {}),
        ("x264", 27, {"colour": "blue"}),
        ("x264", 27, {"threads": 0}),
    ],
)
def test_bad_quality_or_option_is_an_input_error(clip16: Video, codec, quality, options) -> None:
    with pytest.raises(InputError):
        rd.evaluate(clip16, codec, quality, **options)


def test_registry_unknown_duplicate_and_lazy(clip16: Video) -> None:
    with pytest.raises(InputError, match="known codecs: .*x264"):
        rd.get_codec("h266-nope")
    with pytest.raises(ValueError, match="twice"):
        rd.register_codec("x264", "dnerv_codec.rd.ffmpeg_codecs:X264")
    assert {"x264", "x265", "vvc", "av1"} <= set(rd.codec_names())
    name = f"lazy-{uuid.uuid4().hex[:8]}"
    rd.register_codec(name, "dnerv_codec.rd.ffmpeg_codecs:X264")
    assert isinstance(rd.get_codec(name), rd.Codec)


class _Posterize(rd.Codec):
    """A toy adapter written the way the dnerv adapter will be: code, then rate_point."""

    name = "posterize"
    description = "drops low bits"
    default_qualities = (2, 4)

    def check(self, quality, **options) -> None:
        if quality not in (1, 2, 3, 4, 5, 6):
            raise InputError(f"posterize: quality {quality} is outside 1..6")

    def evaluate(self, video: Video, quality, **options) -> dict:
        shift = 8 - quality
        recon = ((video.frames >> shift) << shift) + (1 << shift >> 1)
        nbytes = video.frames.size * quality // 8
        return rd.rate_point(self.name, quality, video, recon.astype(np.uint8), nbytes, 0.0, 0.0)


def test_an_adapter_plugs_in_with_one_registration(clip16: Video) -> None:
    name = f"posterize-{uuid.uuid4().hex[:8]}"
    rd.register_codec(name, _Posterize())
    curve = rd.rd_curve(clip16, name, progress=False)
    assert curve["results"]["bpp"] == [6.0, 12.0]  # 3 channels * bits per channel
    assert curve["results"]["psnr-rgb"][0] < curve["results"]["psnr-rgb"][1]
    with pytest.raises(InputError):
        rd.evaluate(clip16, name, 9)


def test_a_set_is_bits_over_pixels_and_frame_weighted(clip16: Video) -> None:
    a = Video("a", clip16.frames[:4], clip16.fps)
    b = Video("b", np.ascontiguousarray(clip16.frames[4:6, :90, :160]), clip16.fps)
    pa, pb = (rd.evaluate(v, _Posterize(), 3) for v in (a, b))
    both = rd.evaluate([a, b], _Posterize(), 3)
    assert both["bytes"] == pa["bytes"] + pb["bytes"] and both["frames"] == 6
    assert both["bpp"] == pytest.approx(both["bytes"] * 8 / (4 * 320 * 180 + 2 * 160 * 90))
    expected = (4 * pa["psnr-rgb"] + 2 * pb["psnr-rgb"]) / 6
    assert both["psnr-rgb"] == pytest.approx(expected) and both["width"] is None


def _curve(bpp, psnr, name="c") -> dict:
    return {"name": name, "results": {"bpp": list(bpp), "psnr-rgb": list(psnr)}}


ANCHOR = _curve([0.02, 0.05, 0.11, 0.25], [30.1, 32.6, 35.0, 37.2], "anchor")


def test_bd_rate_of_a_curve_against_itself_is_zero() -> None:
    assert rd.bd_rate(ANCHOR, ANCHOR) == pytest.approx(0.0, abs=1e-9)
    assert rd.bd_psnr(ANCHOR, ANCHOR) == pytest.approx(0.0, abs=1e-9)


def test_bd_rate_of_ten_percent_fewer_bits_is_minus_ten() -> None:
    cheaper = _curve([0.9 * b for b in ANCHOR["results"]["bpp"]], ANCHOR["results"]["psnr-rgb"])
    assert rd.bd_rate(ANCHOR, cheaper) == pytest.approx(-10.0, abs=1e-6)
    assert rd.bd_psnr(ANCHOR, cheaper) > 0
    better = _curve(ANCHOR["results"]["bpp"], [q + 1 for q in ANCHOR["results"]["psnr-rgb"]])
    assert rd.bd_psnr(ANCHOR, better) == pytest.approx(1.0, abs=1e-6)


def test_non_overlapping_curves_give_nan_and_a_warning() -> None:
    far = _curve([1.0, 2.0, 4.0, 8.0], [45.0, 47.0, 49.0, 51.0])
    with pytest.warns(rd.BDOverlapWarning, match="share 0%"):
        assert math.isnan(rd.bd_rate(ANCHOR, far))
    with pytest.warns(rd.BDOverlapWarning):
        assert math.isnan(rd.bd_psnr(ANCHOR, far))
    assert rd.bd_overlap(ANCHOR, far) == 0.0
    one_point = _curve([0.1], [33.0])
    with pytest.warns(rd.BDOverlapWarning, match="fewer than 2"):
        assert math.isnan(rd.bd_rate(ANCHOR, one_point))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # enough overlap: no warning at all
        rd.bd_rate(ANCHOR, _curve([0.03, 0.06, 0.12, 0.3], [31.0, 33.0, 35.5, 38.0]))


def test_json_round_trip_and_png(tmp_path: Path) -> None:
    from PIL import Image

    curve = rd.curve(_Posterize(), [], [])
    curve["results"] = {**ANCHOR["results"], "psnr-yuv": [31, 33, 36, math.nan]}
    path = rd.save_json(curve, tmp_path / "sub" / "c.json")
    back = rd.load_json(path)
    assert back["results"]["bpp"] == ANCHOR["results"]["bpp"]
    assert back["results"]["psnr-yuv"][-1] is None and back["name"] == curve["name"]
    assert rd.load_json(rd.save_json(back, tmp_path / "again.json")) == back
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InputError):
        rd.load_json(tmp_path / "bad.json")

    png = rd.plot([ANCHOR, _curve([0.03, 0.07, 0.2], [31, 34, 37], "test")], tmp_path / "rd.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(png) as image:
        assert image.format == "PNG" and image.size[0] > 400


def test_every_point_carries_its_per_frame_psnr_spread(clip16: Video) -> None:
    a = Video("a", clip16.frames[:4], clip16.fps)
    b = Video("b", clip16.frames[4:6], clip16.fps)
    pa, pb = (rd.evaluate(v, _Posterize(), 3) for v in (a, b))
    assert len(pa["psnr-rgb-frames"]) == 4
    assert pa["psnr-rgb-worst"] == min(pa["psnr-rgb-frames"])
    assert pa["psnr-rgb-spread"] == pytest.approx(pa["psnr-rgb"] - pa["psnr-rgb-worst"])
    both = rd.evaluate([a, b], _Posterize(), 3)
    assert both["psnr-rgb-frames"] == pa["psnr-rgb-frames"] + pb["psnr-rgb-frames"]
    assert both["psnr-rgb-worst"] == min(pa["psnr-rgb-worst"], pb["psnr-rgb-worst"])
    assert both["psnr-rgb-spread"] == pytest.approx(both["psnr-rgb"] - both["psnr-rgb-worst"])
    curve = rd.curve(_Posterize(), [pa], [a])
    assert curve["results"]["psnr-rgb-worst"] == [pa["psnr-rgb-worst"]]
    table = rd.markdown_report([curve])
    assert "| worst frame (dB) | mean - worst (dB) |" in table


def _small(clip16: Video, n: int = 3) -> Video:
    return Video("s", np.ascontiguousarray(clip16.frames[:n, 40:104, 100:196]), clip16.fps)


def test_keyframe_anchor_is_the_keyframe_codec_on_every_frame(clip16: Video) -> None:
    from dnerv_codec.keyframe import get_codec

    video = _small(clip16)
    point = rd.evaluate(video, "x265-kf", 30)
    data, recon = get_codec("hevc-ra", 52 - 30).compress_with_reconstruction(video.frames)
    assert point["bytes"] == sum(len(unit) for unit in data)
    assert point["psnr-rgb"] == pytest.approx(rd.evaluate(video, _Replay(recon), 0)["psnr-rgb"])
    s = rd.get_codec("x265-kf").settings()
    assert (s["chroma"], s["tune"], s["gop"], s["config"]) == ("444", "psnr", 32, "randomaccess")
    assert "keyint=32" in point["encoder_args"] and "-tune psnr" in point["encoder_args"]
    for bad in (17, 52, 30.0):
        with pytest.raises(InputError):
            rd.evaluate(video, "x265-kf", bad)
    with pytest.raises(InputError, match="no options"):
        rd.evaluate(video, "x265-kf", 30, preset="slow")


class _Replay(rd.Codec):
    name = "replay"

    def __init__(self, frames: np.ndarray) -> None:
        self.frames = frames

    def evaluate(self, video: Video, quality, **options) -> dict:
        return rd.rate_point(self.name, quality, video, self.frames, 1, 0.0, 0.0)


@pytest.mark.parametrize(
    ("name", "pix_fmt", "args", "metric"),
    [
        ("x265-ra444", "yuv444p", "-tune psnr", "psnr-rgb"),
        ("x264-ld444", "yuv444p", "-tune psnr,zerolatency", "psnr-rgb"),
        ("x265-ld420", "yuv420p", "bframes=0", "psnr-yuv"),
    ],
)
def test_named_anchors_fix_chroma_and_tune(clip16: Video, name, pix_fmt, args, metric) -> None:
    video = _small(clip16, 2)
    curve = rd.rd_curve(video, name, [30], progress=False)
    point = curve["points"][0]
    assert curve["name"] == name and point["codec"] == name and point["pix_fmt"] == pix_fmt
    assert args in point["encoder_args"] and curve["settings"]["anchor"] == name
    assert rd.fair_metric(curve) == metric
    assert rd.get_codec(name).label(threads=2) == f"{name} (threads=2)"


def test_fair_metric_reads_settings_or_pixel_format() -> None:
    assert rd.fair_metric({"settings": {"chroma": "444"}}) == "psnr-rgb"
    assert rd.fair_metric({"settings": {"chroma": "420"}}) == "psnr-yuv"
    assert rd.fair_metric({"points": [{"pix_fmt": "yuv420p10le"}]}) == "psnr-yuv"
    assert rd.fair_metric({"name": "dnerv", "results": {}}) == "psnr-rgb"


def test_bd_table_names_its_anchor_and_metric() -> None:
    rgb = {**ANCHOR, "name": "x265-kf", "settings": {"chroma": "444", "preset": "medium"}}
    yuv = {"name": "x265-ra420", "settings": {"chroma": "420"}}
    yuv["results"] = {**ANCHOR["results"], "psnr-yuv": ANCHOR["results"]["psnr-rgb"]}
    test = _curve([0.9 * b for b in ANCHOR["results"]["bpp"]], ANCHOR["results"]["psnr-rgb"])
    test["results"]["psnr-yuv"] = test["results"]["psnr-rgb"]
    test["results"]["ms-ssim-rgb"] = [0.9, 0.92, 0.94, 0.96]
    rgb["results"] = {**rgb["results"], "ms-ssim-rgb": [0.9, 0.92, 0.94, 0.96]}
    table = rd.report.bd_table(rgb, [rgb, test])
    assert "BD against **x265-kf** (medium, 4:4:4) in PSNR-RGB" in table
    assert "| c | -10.00 % |" in table
    table = rd.report.bd_table(yuv, [yuv, test])
    assert "in PSNR-YUV" in table and "MS-SSIM" not in table and "| c | -10.00 % |" in table


def test_bracket_keeps_the_points_around_a_rate_range() -> None:
    sweep = _curve([0.01, 0.02, 0.05, 0.1, 0.2, 0.4], [28, 30, 32, 34, 36, 38])
    assert rd.bracket(sweep, 0.06, 0.12)["results"]["bpp"] == [0.05, 0.1, 0.2]
    assert rd.bracket(sweep, 0.001, 0.005)["results"]["bpp"] == [0.01]
    assert rd.bracket(sweep, 0.03, 0.4)["results"]["psnr-rgb"] == [30, 32, 34, 36, 38]
    assert rd.bracket(sweep, 33, 35, key="psnr-rgb")["results"]["bpp"] == [0.05, 0.1, 0.2]


def test_ms_ssim_can_be_skipped(clip16: Video) -> None:
    video = Video("a", clip16.frames[:2], clip16.fps)
    fast = rd.evaluate(video, _Posterize(), 3, ms_ssim=False)
    full = rd.evaluate(video, _Posterize(), 3)
    assert fast["ms-ssim-rgb"] is None and full["ms-ssim-rgb"] > 0.5
    for key in ("psnr-rgb", "psnr-yuv", "psnr-rgb-worst"):
        assert fast[key] == pytest.approx(full[key])
