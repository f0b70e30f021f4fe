"""``dnerv decode FILE OUTDIR``."""

from __future__ import annotations

import click


@click.command("decode")
@click.argument("file", type=click.Path(dir_okay=False))
@click.argument("outdir", type=click.Path(dir_okay=True, file_okay=False))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["png", "y4m", "mp4"]),
    default="png",
    show_default=True,
    help="PNG frames per video, or one y4m / mp4 file per video.",
)
@click.option("--crf", type=int, help="mp4 only: x264 CRF (default: lossless 4:4:4).")
@click.option("--video", help="Decode only this video of the set (name).")
@click.option("--frames", "frame_range", help="Decode frames A:B only (0-based, B exclusive).")
@click.option(
    "--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True
)
@click.option("--half", is_flag=True, help="float16 network on CUDA.")
@click.option("--batch", type=int, help="Clips per network call [default: 1 on CPU, 4 on a GPU].")
@click.option(
    "--keyframe-weights",
    type=click.Path(dir_okay=False),
    help="Weights file of the learned keyframe codec the file was made with.",
)
@click.option(
    "--force", is_flag=True, help="Write into a non-empty OUTDIR, replacing files of the same name."
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
def decode(file, outdir, fmt, frame_range, **options) -> None:
    """Rebuild the frames of FILE into OUTDIR (OUTDIR/<video>/000001.png, ...).

    The whole file is checked before anything is decoded; output goes only inside OUTDIR.
    """
    from dnerv_codec.decoding import decode as run

    result = run(file, outdir, format=fmt, frames=frame_range, **options)
    if not options["quiet"]:
        click.echo(
            f"{result['frames']} frames written to {outdir} in {result['seconds']:.1f} s "
            f"({result['fps']:.1f} frames/s)"
        )
