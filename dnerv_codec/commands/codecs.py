"""``dnerv codecs``: the keyframe codecs, the network presets and the RD codecs this build has."""

from __future__ import annotations

import click


@click.command("codecs")
def codecs() -> None:
    """List keyframe codecs (with their quality scales), network presets and RD codecs."""
    from bitstream import ids
    from dnerv_codec import keyframe
    from dnerv_codec.model.presets import PRESETS, count_parameters
    from dnerv_codec.ratecontrol import DEFAULT
    from dnerv_codec.rd.registry import codec_names

    click.echo("Keyframe codecs (--keyframe-codec, --keyframe-quality; higher quality is better):")
    for name in keyframe.available():
        lo, hi = keyframe.quality_range(name)
        if name in keyframe.CLASSICAL_CODECS:
            weights = "no weights needed"
        else:
            found = [q for q in range(lo, hi + 1) if keyframe.weights_present(name, q)]
            weights = f"pretrained weights cached for {found}" if found else "needs weights"
        default = ""
        if name == DEFAULT.keyframe_codec:
            default = "  (default: rate control plans its quality)"
        elif name == keyframe.DEFAULT_CODEC:
            default = f"  (default with --preset, quality {keyframe.DEFAULT_QUALITY})"
        elif keyframe.keyframe_only(name):
            default = "  (keyframe-only files: --mode keyframes; hevc-ra's use it by itself)"
        codec_id = ids.id_of(ids.KEYFRAME_CODECS, name)
        click.echo(f"  {name:<21} id {codec_id:<3} quality {lo}..{hi:<3} {weights}{default}")
    click.echo("\nNetwork presets (--preset; parameters at the preset's native size):")
    for p in PRESETS.values():
        size = f"{p.frame_size[0]}x{p.frame_size[1]}"
        n = count_parameters(p.name)
        click.echo(f"  {p.name:<15} {n:>11,} params at {size:<8} {p.description}")
    click.echo("\nRate-distortion codecs (dnerv rd --codecs): " + ", ".join(codec_names()))
