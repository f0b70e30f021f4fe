"""The ``dnerv`` command line: a thin layer over the library.

``main(argv)`` is the console-script entry point and what tests call. Errors the user caused
(missing file, bad option, damaged .dnerv) come out as one line on stderr and a non-zero exit
status, never a traceback:

- 1: the input or the work failed (a :class:`~bitstream.errors.DnervError` or an OS error),
  or, as a last resort, anything else went wrong (a bug: the line names it);
- 2: the command line itself was wrong (click's usage errors);
- 130: interrupted with Ctrl-C.

Every message is escaped (:func:`bitstream.meta.printable`), so text from a file (a video name,
say) cannot send control sequences to the terminal. ``dnerv --debug ...`` or ``DNERV_DEBUG=1``
prints the traceback before the line, for bug reports.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback

import click

from bitstream.errors import DnervError
from bitstream.meta import printable
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
@click.option("--debug", is_flag=True, help="Show the traceback of an error (or DNERV_DEBUG=1).")
def dnerv(debug: bool) -> None:
    """dnerv-codec: compress video sets with D-NeRV into specified, checksummed .dnerv files."""


def _one_line(message: object) -> str:
    return printable(" ".join(str(message).split()))


def main(argv: list[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default: ``sys.argv[1:]``) and return the exit status."""
    args = sys.argv[1:] if argv is None else list(argv)
    debug = os.environ.get("DNERV_DEBUG", "") not in ("", "0") or "--debug" in args
    try:
        return _run(args, debug)
    except Exception as exc:  # last resort: a bug, still one line (the traceback with --debug)
        if debug:
            traceback.print_exc()
        what = "out of memory" if isinstance(exc, MemoryError) else type(exc).__name__
        click.echo(
            f"dnerv: error: internal error ({what}: {_one_line(exc)[:300]}); "
            "run with --debug for the traceback",
            err=True,
        )
        return 1


def _run(args: list[str], debug: bool) -> int:
    """The CLI, with every error it expects turned into one line and an exit status."""
    try:
        result = dnerv.main(args=args, prog_name="dnerv", standalone_mode=False)
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
        if debug:
            traceback.print_exc()
        click.echo(f"dnerv: error: {_one_line(exc)}", err=True)
        return 1
    except OSError as exc:
        if debug:
            traceback.print_exc()
        where = f" ({_one_line(exc.filename)})" if getattr(exc, "filename", None) else ""
        reason = exc.strerror or str(exc)
        click.echo(f"dnerv: error: {_one_line(reason)}{where}", err=True)
        return 1
    return result if isinstance(result, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
