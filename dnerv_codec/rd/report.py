"""RD plots (PNG, matplotlib's Agg canvas) and markdown tables of curves."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dnerv_codec.rd.anchors import fair_metric
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
    """A markdown table of every rate point of every curve, with the per-frame PSNR spread.

    "worst" is the lowest per-frame PSNR-RGB, "mean - worst" how far it falls below the mean
    (n/a for curves stored without per-frame values).
    """
    head = "| codec | quality | bpp | PSNR-RGB (dB) | worst frame (dB) | mean - worst (dB) "
    head += "| PSNR-YUV (dB) | MS-SSIM | bytes | enc (s) | dec (s) |"
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for curve in results:
        r = curve["results"]
        n = len(r["bpp"])
        worst, spread = (r.get(k) or [None] * n for k in ("psnr-rgb-worst", "psnr-rgb-spread"))
        for i in range(n):
            lines.append(
                f"| {curve.get('name', '?')} | {r['quality'][i]} | {_fmt(r['bpp'][i], 4)} "
                f"| {_fmt(r['psnr-rgb'][i], 2)} | {_fmt(worst[i], 2)} | {_fmt(spread[i], 2)} "
                f"| {_fmt(r['psnr-yuv'][i], 2)} "
                f"| {_fmt(r['ms-ssim-rgb'][i], 4)} | {r['bytes'][i]} "
                f"| {_fmt(r['encoding_time'][i], 2)} | {_fmt(r['decoding_time'][i], 2)} |"
            )
    return "\n".join(lines)


def bd_table(
    anchor: dict[str, Any], results: Sequence[dict[str, Any]], metric: str | None = None
) -> str:
    """Markdown table of BD-rate / BD-PSNR of each curve against ``anchor`` (pchip).

    The metric defaults to the one the anchor is fair for (:func:`~.anchors.fair_metric`):
    PSNR-RGB (and MS-SSIM-RGB) for a 4:4:4 or RGB anchor, PSNR-YUV for a 4:2:0 one. The table's
    first line names the anchor, its settings and the metric. "n/a" marks a delta that was not
    computed because the curves overlap too little; the overlap column says how much they
    share (quality range, see :mod:`dnerv_codec.rd.bd`).
    """
    metric = metric or fair_metric(anchor)
    short = metric.upper()  # PSNR-RGB, PSNR-YUV
    metrics = [metric] + (["ms-ssim-rgb"] if metric == "psnr-rgb" else [])
    missing = False
    lines = [
        f"BD against **{anchor.get('name', 'anchor')}** ({_describe(anchor)}) in {short} "
        "(pchip; negative BD-rate = fewer bits):",
        "",
        f"| codec | BD-rate {short} | BD-PSNR (dB) "
        + ("| BD-rate MS-SSIM-RGB " if len(metrics) > 1 else "")
        + f"| overlap ({short}) |",
        "|---|---:|---:|" + "---:|" * len(metrics),
    ]
    for curve in results:
        if curve is anchor:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            values = [bd_rate(anchor, curve, metric), bd_psnr(anchor, curve, metric)]
            values += [bd_rate(anchor, curve, m) for m in metrics[1:]]
            share = bd_overlap(anchor, curve, metric)
        missing |= any(math.isnan(v) for v in values)
        cells = [
            _fmt(v, 2) + (" %" if i != 1 and math.isfinite(v) else "") for i, v in enumerate(values)
        ]
        lines.append(f"| {curve.get('name', '?')} | {' | '.join(cells)} | {share:.0%} |")
    if missing:
        lines += ["", "n/a: the curves share less than half of their range; no BD value computed."]
    return "\n".join(lines)


def _describe(curve: dict[str, Any]) -> str:
    """The settings that define an anchor, in a few words."""
    s = curve.get("settings") or {}
    if not s:
        return curve.get("description", "") or "settings not recorded"
    parts = [str(s[k]) for k in ("preset", "config") if k in s]
    chroma = s.get("chroma") or ("420" if fair_metric(curve) == "psnr-yuv" else None)
    if chroma:
        parts.append(f"{chroma[0]}:{chroma[1]}:{chroma[2]}")
    if s.get("tune", "none") != "none":
        parts.append(f"tune {s['tune']}")
    if "gop" in s:
        parts.append(f"GOP {s['gop']}")
    if "rate_control" in s:
        parts.append(str(s["rate_control"]).upper())
    return ", ".join(parts)


def markdown_report(
    results: Sequence[dict[str, Any]],
    anchor: dict[str, Any] | Sequence[dict[str, Any]] | None = None,
    header: str = "",
) -> str:
    """The rate-point table, then BD values against each anchor given (one table each).

    ``anchor`` is one curve or a list of them; each is compared in the metric it is fair for
    (:func:`bd_table`).
    """
    parts = [header] if header else []
    parts.append(points_table(results))
    anchors = [anchor] if isinstance(anchor, dict) else list(anchor or [])
    if len(results) > 1:
        for one in anchors:
            parts += ["", bd_table(one, results)]
    return "\n".join(parts) + "\n"
