"""``dnerv rd``: rate-distortion curves of several codecs on the same videos.

Writes into ``--out``: one ``<codec>.json`` per codec (CompressAI's results schema), ``rd.png``
(PSNR-RGB against bpp) and ``rd.md``: every rate point with its per-frame PSNR spread, then
BD-rates against the anchors. By default the codecs are the 4:4:4 anchors ``x265-kf``,
``x265-ra444`` and ``x264-ra444`` (:mod:`dnerv_codec.rd.anchors`); BD-rates in PSNR-RGB are
against the first 4:4:4 anchor among the codecs (``x265-kf`` first), and a 4:2:0 codec is an
anchor only in PSNR-YUV. ``--anchor`` names them instead. Everything is validated before the
first encode.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from dnerv_codec.errors import InputError

DEFAULT_CODECS = "x265-kf,x265-ra444,x264-ra444"


def parse_qualities(values: tuple[str, ...], codecs: list[str]) -> dict[str, list[str] | None]:
    """Map each codec to its quality strings from ``--qualities`` values.

    ``22,27,32`` applies to every codec without its own list; ``x265:22,27,32`` to x265 only.
    None means "the codec's defaults".

    Raises:
        InputError: a ``codec:`` prefix names a codec not in ``--codecs``, or a list is empty.
    """
    common: list[str] | None = None
    own: dict[str, list[str]] = {}
    for value in values:
        for part in value.split(";"):
            name, sep, rest = part.strip().rpartition(":")
            items = [q.strip() for q in rest.split(",") if q.strip()]
            if not items:
                raise InputError(f"--qualities {value!r}: no quality listed")
            if not sep:
                common = items
            elif name not in codecs:
                raise InputError(f"--qualities names {name!r}, which is not in --codecs")
            else:
                own[name] = items
    return {codec: own.get(codec, common) for codec in codecs}


def default_anchors(curves: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The first 4:4:4 anchor (for PSNR-RGB) and the first 4:2:0 codec (for PSNR-YUV).

    Named anchors come first, in the order of :mod:`dnerv_codec.rd.anchors` (``x265-kf``
    leads), then x265, x264 and the other classical codecs in ``--codecs`` order. dnerv is
    never an anchor.
    """
    from dnerv_codec.rd.anchors import RGB_ANCHORS, YUV_ANCHORS, fair_metric
    from dnerv_codec.rd.ffmpeg_codecs import FFmpegCodec
    from dnerv_codec.rd.registry import get_codec

    def classical(name: str) -> bool:
        adapter = get_codec(name)
        return isinstance(adapter, FFmpegCodec) or name in (*RGB_ANCHORS, *YUV_ANCHORS)

    order = [n for n in (*RGB_ANCHORS, *YUV_ANCHORS, "x265", "x264") if n in curves]
    order += [n for n in curves if n not in order and classical(n)]
    picked: dict[str, dict[str, Any]] = {}
    for name in order:
        picked.setdefault(fair_metric(curves[name]), curves[name])
    return [picked[m] for m in ("psnr-rgb", "psnr-yuv") if m in picked]


def parse_options(values: tuple[str, ...], codecs: list[str]) -> dict[str, dict[str, Any]]:
    """``x265.preset=veryslow`` -> ``{"x265": {"preset": "veryslow"}}``.

    Raises:
        InputError: malformed, or for a codec not in ``--codecs``.
    """
    options: dict[str, dict[str, Any]] = {codec: {} for codec in codecs}
    for value in values:
        key, sep, setting = value.partition("=")
        codec, dot, name = key.partition(".")
        if not sep or not dot or not name:
            raise InputError(f"--option {value!r} is not CODEC.NAME=VALUE")
        if codec not in options:
            raise InputError(f"--option {value!r}: {codec!r} is not in --codecs")
        options[codec][name] = setting
    return options


@click.command(
    "rd",
    help="Rate-distortion curves of several codecs on the same frames: JSON, PNG and a table.",
)
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option(
    "--codecs",
    default=DEFAULT_CODECS,
    show_default=True,
    help="Comma-separated codec names: named anchors (x265-kf, x265-ra444, x264-ld444, "
    "x265-ra420, ...), x264, x265, vvc, av1, dnerv.",
)
@click.option(
    "--anchor",
    "anchor_names",
    default=None,
    help="Comma-separated codecs to give BD-rates against, each in the metric it is fair for "
    "(default: the first 4:4:4 anchor in PSNR-RGB, the first 4:2:0 codec in PSNR-YUV).",
)
@click.option(
    "--qualities",
    "-q",
    multiple=True,
    help="Quality list for all codecs ('22,27,32,37') or one ('x265:22,27'); repeatable.",
)
@click.option(
    "--option",
    "-o",
    "options",
    multiple=True,
    help="Codec option CODEC.NAME=VALUE, e.g. x265.preset=veryslow, x264.config=randomaccess.",
)
@click.option("--max-frames", type=int, default=None, help="Use at most N frames of each input.")
@click.option("--out", "out", required=True, type=click.Path(), help="Output folder.")
@click.option("--vmaf", is_flag=True, help="Also compute VMAF (slower).")
@click.option(
    "--keep-streams", is_flag=True, help="Keep every coded file under OUT/streams (ffmpeg codecs)."
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def rd(
    inputs: tuple[str, ...],
    codecs: str,
    anchor_names: str | None,
    qualities: tuple[str, ...],
    options: tuple[str, ...],
    max_frames: int | None,
    out: str,
    vmaf: bool,
    keep_streams: bool,
    quiet: bool,
) -> None:
    from tqdm import tqdm

    from dnerv_codec import rd as rdlib
    from dnerv_codec.rd.anchors import Anchor
    from dnerv_codec.rd.ffmpeg_codecs import FFmpegCodec
    from dnerv_codec.video import read_inputs

    names = [c.strip() for c in codecs.split(",") if c.strip()]
    if not names:
        raise InputError("--codecs is empty")
    if len(set(names)) != len(names):
        raise InputError("--codecs lists a codec twice")
    adapters = {name: rdlib.get_codec(name) for name in names}
    chosen = [a.strip() for a in (anchor_names or "").split(",") if a.strip()]
    for name in chosen:
        if name not in names:
            raise InputError(f"--anchor {name!r} is not in --codecs")
    per_codec = parse_qualities(qualities, names)
    per_options = parse_options(options, names)
    plan: dict[str, list[Any]] = {}
    for name, adapter in adapters.items():
        texts = per_codec[name]
        values = [adapter.parse_quality(t) for t in texts] if texts else adapter.default_qualities
        for value in values:
            adapter.check(value, **per_options[name])
        plan[name] = list(values)

    out_dir = Path(out)
    if keep_streams:
        for name, adapter in adapters.items():
            if isinstance(adapter, FFmpegCodec | Anchor):  # x265-kf keeps no file
                per_options[name]["bitstream_dir"] = str(out_dir / "streams")
    videos = read_inputs(inputs, max_frames)
    out_dir.mkdir(parents=True, exist_ok=True)
    curves: dict[str, dict[str, Any]] = {}
    total = sum(len(v) for v in plan.values())
    with tqdm(total=total, unit="run", disable=quiet, desc="rd") as bar:
        for name, values in plan.items():
            points = []
            for value in values:
                bar.set_postfix_str(f"{name} q={value}")
                points.append(
                    rdlib.evaluate(videos, adapters[name], value, vmaf=vmaf, **per_options[name])
                )
                bar.update()
            curves[name] = rdlib.curve(adapters[name], points, videos, **per_options[name])
            rdlib.save_json(curves[name], out_dir / f"{name}.json")

    results = list(curves.values())
    rdlib.plot(results, out_dir / "rd.png")
    frames = sum(v.num_frames for v in videos)
    header = (
        f"# Rate-distortion: {', '.join(v.name for v in videos)} ({frames} frames)\n\n"
        "bpp counts the whole output file; PSNR-RGB is the mean of per-frame PSNR on 8-bit RGB; "
        "worst frame and mean - worst give the spread of per-frame PSNR-RGB. BD-rates in "
        "PSNR-RGB are against 4:4:4 anchors only; a 4:2:0 anchor is compared in PSNR-YUV.\n"
    )
    anchors = [curves[n] for n in chosen] if chosen else default_anchors(curves)
    report = rdlib.markdown_report(results, anchors, header)
    (out_dir / "rd.md").write_text(report)
    if not quiet:
        click.echo(f"wrote {len(results)} curves, rd.png and rd.md to {out_dir}")
