"""The ``dnerv`` command line: a thin layer over the library.

``main(argv)`` is the console-script entry point and what tests call. Errors the user caused
(missing file, bad option, damaged .dnerv) come out as one line on stderr and a non-zero exit
status, never a traceback:

- 1: the input or the work failed (a :class:`~bitstream.errors.DnervError` or an OS error);
- 2: the command line itself was wrong (click's usage errors);
- 130: interrupted with Ctrl-C.
"""

from __future__ import annotations

import importlib
import sys

import click

from bitstream.errors import DnervError
from dnerv_codec._version import __version__
from dnerv_codec.commands import COMMANDS


class LazyGroup(click.Group):
    """A click group whose subcommands are imported from ``COMMANDS`` on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attribute, _ = COMMANDS[cmd_name]
        return getattr(importlib.import_module(module), attribute)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # The short help comes from the registry so that --help imports no command module.
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="dnerv")
def dnerv() -> None:
    """dnerv-codec: compress video sets with D-NeRV into specified, checksummed .dnerv files."""


def _one_line(message: str) -> str:
    return " ".join(str(message).split())


def main(argv: list[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default: ``sys.argv[1:]``) and return the exit status."""
    try:
        result = dnerv.main(args=argv, prog_name="dnerv", standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt) as exc:
        # click turns KeyboardInterrupt into Abort (after printing a newline); keep its message
        cause = exc.__cause__ if isinstance(exc, click.exceptions.Abort) else exc
        detail = f": {_one_line(cause)}" if cause is not None and str(cause) else ""
        click.echo(f"dnerv: interrupted{detail}", err=True)
        return 130
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help() if exc.ctx else "Usage: dnerv [OPTIONS] COMMAND [ARGS]...")
        return 0
    except click.ClickException as exc:
        click.echo(f"dnerv: error: {_one_line(exc.format_message())}", err=True)
        return exc.exit_code
    except DnervError as exc:
        click.echo(f"dnerv: error: {_one_line(exc)}", err=True)
        return 1
    except OSError as exc:
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        reason = exc.strerror or str(exc)
        click.echo(f"dnerv: error: {_one_line(reason)}{where}", err=True)
        return 1
    return result if isinstance(result, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
