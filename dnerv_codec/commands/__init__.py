"""The registry of ``dnerv`` subcommands.

Each entry names the module and the click command object inside it. Modules are imported only
when their command runs, so ``dnerv --help`` and ``dnerv info`` start without importing torch.
Add a line here when a subcommand lands; list only commands that exist.
"""

from __future__ import annotations

# name -> (module, attribute, one-line help shown by ``dnerv --help``)
COMMANDS: dict[str, tuple[str, str, str]] = {}


def register(name: str, module: str, attribute: str, short_help: str) -> None:
    """Add a subcommand to the registry; a second registration of one name raises."""
    if name in COMMANDS:
        raise ValueError(f"subcommand {name!r} registered twice")
    COMMANDS[name] = (module, attribute, short_help)


register("info", "dnerv_codec.commands.info", "info", "Show what is inside a .dnerv file.")
register("encode", "dnerv_codec.commands.encode", "encode", "Compress videos into a .dnerv file.")
register("decode", "dnerv_codec.commands.decode", "decode", "Rebuild the frames of a .dnerv file.")
register("rd", "dnerv_codec.commands.rd", "rd", "Rate-distortion curves against x264/x265/VVC/AV1.")
register(
    "codecs", "dnerv_codec.commands.codecs", "codecs", "List keyframe codecs, presets, RD codecs."
)
