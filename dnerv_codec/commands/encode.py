"""``dnerv encode INPUT... OUTPUT.dnerv``."""

from __future__ import annotations

import json
import os

import click

from dnerv_codec.encoder import EncodeOptions
from dnerv_codec.encoder.options import SPEEDS

_D = EncodeOptions()


@click.command("encode")
@click.argument("paths", nargs=-1, required=True, metavar="INPUT... OUTPUT.dnerv")
@click.option(
    "--preset",
    help="A fixed network size (see `dnerv codecs`); without it, rate control sizes the network "
    "(--quality 6 unless --target-bpp, --target-size or --quality says otherwise).",
)
@click.option(
    "--epochs",
    type=int,
    help="Training length; without --time-budget and --speed, exactly this many [default: 60, "
    "within the --speed medium budget].",
)
@click.option(
    "--time-budget",
    type=float,
    help="Seconds of training (with fine-tuning), checked before every step [default: --speed].",
)
@click.option(
    "--speed",
    type=click.Choice(list(SPEEDS)),
    help="Without --time-budget, the training budget from the video's size: fast 1 s, medium "
    "4 s, slow 16 s per megapixel of video (at least 30 / 120 / 600 s); none: --epochs alone "
    "[default: medium, none when --epochs is given].",
)
@click.option(
    "--batch-size", type=int, help="Clips per training step (default: the preset's, else 2)."
)
@click.option("--lr", type=float, help="Peak learning rate (default: the preset's, else 5e-4).")
@click.option(
    "--loss",
    type=click.Choice(["uvg", "ucf"]),
    default=_D.loss,
    show_default=True,
    help="uvg: 0.7 L1 + 0.3 (1-SSIM); ucf: MSE + 0.03 (1-SSIM).",
)
@click.option(
    "--keyframe-codec", help="Keyframe codec (see `dnerv codecs`); default by measurement."
)
@click.option("--keyframe-quality", type=int, help="Keyframe codec quality, higher is better.")
@click.option(
    "--keyframe-weights",
    type=click.Path(dir_okay=False),
    help="Weights file of a learned keyframe codec.",
)
@click.option(
    "--prune",
    type=float,
    help="With --preset: fraction of weights removed by global magnitude pruning [default: 0].",
)
@click.option(
    "--finetune-epochs", type=int, default=0, help="Epochs after pruning (default: epochs/10)."
)
@click.option(
    "--target-bpp",
    type=float,
    help="Rate control: bits per pixel of the whole file (lands within 5 % below).",
)
@click.option(
    "--target-size", type=int, help="Rate control: file size in bytes (lands within 5 % below)."
)
@click.option(
    "--quality",
    type=float,
    help="Rate control on a 1..10 scale (higher is better): 0.02 bpp at 1 to 0.8 bpp at 10 "
    "[default without --preset: 6, 0.155 bpp].",
)
@click.option(
    "--qat-epochs",
    type=int,
    default=_D.qat_epochs,
    help="Rate control: quantisation-aware fine-tuning epochs after landing, inside "
    "--time-budget [default: a tenth of the epochs trained].",
)
@click.option(
    "--weight-rate",
    type=float,
    default=_D.weight_rate,
    show_default=True,
    help="Entropy-aware training: add this x the estimated weight bpp to the loss.",
)
@click.option(
    "--clip-length",
    type=int,
    help="Frames per clip: a keyframe every N frames [default: by the rate under rate control "
    "(4 below 0.09 bpp, else 2), 8 (the paper's) with --preset].",
)
@click.option(
    "--mode",
    type=click.Choice(["auto", "network", "keyframes"]),
    default=_D.mode,
    show_default=True,
    help="auto: under rate control also code every frame as a keyframe at the same budget and "
    "keep the file that decodes closer to the source (needs verification); network: always the "
    "network's file; keyframes: every frame a keyframe, no network, no training.",
)
@click.option(
    "--cuts/--no-cuts",
    default=_D.cuts,
    show_default=True,
    help="Find scene cuts (ffmpeg scdet's score and default threshold) and make the two frames "
    "at each cut keyframes, so that no clip is predicted across a cut.",
)
@click.option("--quant-bits", type=int, help="With --preset: weight bits [default: 8].")
@click.option(
    "--quant-scheme",
    type=click.Choice(["symmetric", "affine"]),
    default=_D.quant_scheme,
    show_default=True,
)
@click.option(
    "--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True
)
@click.option(
    "--amp/--no-amp",
    default=False,
    show_default=True,
    help="Train under bf16 autocast (mixed precision); pays only for large networks and batches.",
)
@click.option("--seed", type=int, default=_D.seed, show_default=True)
@click.option("--checkpoint-dir", type=click.Path(file_okay=False), help="Save checkpoints here.")
@click.option(
    "--checkpoint-every",
    type=int,
    default=_D.checkpoint_every,
    show_default=True,
    help="Epochs between checkpoints.",
)
@click.option("--resume", is_flag=True, help="Continue the run saved in --checkpoint-dir.")
@click.option("--max-frames", type=int, help="Use at most this many frames of each video.")
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False),
    help="Decode the inputs once into a frame cache here and memory-map it (large sets).",
)
@click.option(
    "--dist-timeout",
    type=float,
    default=_D.dist_timeout,
    show_default=True,
    help="Under torchrun: seconds to wait for the other processes before giving up.",
)
@click.option("--force", is_flag=True, help="Overwrite OUTPUT.dnerv if it exists.")
@click.option("--no-verify", is_flag=True, help="Skip decoding the written file to measure it.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
def encode(paths, as_json, no_verify, **options) -> None:
    """Overfit D-NeRV on one or more videos and write OUTPUT.dnerv.

    INPUT is a video file ffmpeg reads, a folder of PNG/JPEG frames, or a folder of videos;
    several inputs make one video set with one shared network. Started by torchrun
    (`torchrun --nproc_per_node N -m dnerv_codec encode ...`), the processes train one network
    together; --batch-size is then the global batch (README: "Encoding a large set").
    """
    from dnerv_codec.encoder import encode as run

    if len(paths) < 2:
        raise click.UsageError("need at least one INPUT and the OUTPUT.dnerv file")
    *inputs, output = paths
    report = run(inputs, output, verify=not no_verify, **options)
    if os.environ.get("RANK", "0") != "0":
        return  # under torchrun, rank 0 reports
    click.echo(json.dumps(report.to_dict()) if as_json else report.summary())
