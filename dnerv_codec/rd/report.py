"""RD plots (PNG, matplotlib's Agg canvas) and markdown tables of curves."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dnerv_codec.rd.bd import bd_overlap, bd_psnr, bd_rate

METRIC_LABELS = {
    "psnr-rgb": "PSNR RGB (dB)",
    "psnr-yuv": "PSNR YUV (6Y+U+V)/8 (dB)",
    "ms-ssim-rgb": "MS-SSIM RGB",
    "vmaf": "VMAF",
}


def plot(
    results: Sequence[dict[str, Any]],
    path: str | Path,
    metric: str = "psnr-rgb",
    title: str | None = None,
) -> Path:
    """Draw the curves' ``metric`` against bpp into a PNG.

    Uses a bare ``Figure`` on the Agg canvas, so it never touches pyplot's global state or
    needs a display.

    Args:
        results: curves in the results schema (``name`` and ``results.bpp``/``results[metric]``).
        path: the PNG to write (parent folders are created).
        metric: which quality to plot.
        title: figure title (default: names the metric).

    Returns:
        The path written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.8), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for curve in results:
        data = curve["results"]
        pairs = [
            (b, q)
            for b, q in zip(data["bpp"], data.get(metric, []), strict=False)
            if b is not None and q is not None
        ]
        if pairs:
            bpp, quality = zip(*sorted(pairs), strict=True)
            ax.plot(bpp, quality, marker="o", markersize=4, label=curve.get("name", "?"))
    ax.set_xlabel("rate (bits per pixel)")
    ax.set_ylabel(METRIC_LABELS.get(metric, metric))
    ax.set_title(title or f"Rate-distortion: {METRIC_LABELS.get(metric, metric)}")
    ax.grid(True, alpha=0.3)
    if results:
        ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def _fmt(value: Any, digits: int) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def points_table(results: Sequence[dict[str, Any]]) -> str:
    """A markdown table of every rate point of every curve."""
    head = "| codec | quality | bpp | PSNR-RGB (dB) | PSNR-YUV (dB) | MS-SSIM | bytes | enc (s) "
    head += "| dec (s) |"
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for curve in results:
        r = curve["results"]
        for i in range(len(r["bpp"])):
            lines.append(
                f"| {curve.get('name', '?')} | {r['quality'][i]} | {_fmt(r['bpp'][i], 4)} "
                f"| {_fmt(r['psnr-rgb'][i], 2)} | {_fmt(r['psnr-yuv'][i], 2)} "
                f"| {_fmt(r['ms-ssim-rgb'][i], 4)} | {r['bytes'][i]} "
                f"| {_fmt(r['encoding_time'][i], 2)} | {_fmt(r['decoding_time'][i], 2)} |"
            )
    return "\n".join(lines)


def bd_table(anchor: dict[str, Any], results: Sequence[dict[str, Any]]) -> str:
    """Markdown table of BD-rate / BD-PSNR of each curve against ``anchor`` (pchip).

    "n/a" marks a delta that was not computed because the curves overlap too little; the
    overlap column says how much they share (quality range, see :mod:`dnerv_codec.rd.bd`).
    """
    missing = False
    lines = [
        f"BD against **{anchor.get('name', 'anchor')}** (pchip; negative BD-rate = fewer bits):",
        "",
        "| codec | BD-rate PSNR-RGB | BD-PSNR RGB (dB) | BD-rate PSNR-YUV | BD-rate MS-SSIM "
        "| overlap (PSNR-RGB) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for curve in results:
        if curve is anchor:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            values = (
                bd_rate(anchor, curve, "psnr-rgb"),
                bd_psnr(anchor, curve, "psnr-rgb"),
                bd_rate(anchor, curve, "psnr-yuv"),
                bd_rate(anchor, curve, "ms-ssim-rgb"),
            )
        share = bd_overlap(anchor, curve, "psnr-rgb")
        missing |= any(math.isnan(v) for v in values)
        rate_rgb, psnr_rgb, rate_yuv, rate_ssim = (
            _fmt(v, 2) + (" %" if i != 1 and math.isfinite(v) else "") for i, v in enumerate(values)
        )
        lines.append(
            f"| {curve.get('name', '?')} | {rate_rgb} | {psnr_rgb} | {rate_yuv} "
            f"| {rate_ssim} | {share:.0%} |"
        )
    if missing:
        lines += ["", "n/a: the curves share less than half of their range; no BD value computed."]
    return "\n".join(lines)


def markdown_report(
    results: Sequence[dict[str, Any]], anchor: dict[str, Any] | None = None, header: str = ""
) -> str:
    """The rate-point table, then BD values against ``anchor`` when one is given."""
    parts = [header] if header else []
    parts.append(points_table(results))
    if anchor is not None and len(results) > 1:
        parts += ["", bd_table(anchor, results)]
    return "\n".join(parts) + "\n"
