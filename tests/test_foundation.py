"""The package installs, the CLI answers, and the layers keep to their imports."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

from dnerv_codec import __version__
from dnerv_codec.cli import main


def _script(name: str) -> str:
    path = Path(sysconfig.get_path("scripts")) / name
    assert path.exists(), f"console script {name} is not installed at {path}"
    return str(path)


def test_console_script_version_and_help():
    out = subprocess.run([_script("dnerv"), "--version"], capture_output=True, text=True)
    assert out.returncode == 0
    assert __version__ in out.stdout
    out = subprocess.run([_script("dnerv"), "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    assert "Usage: dnerv" in out.stdout


def test_unknown_subcommand_is_one_line_on_stderr(capsys):
    status = main(["no-such-command"])
    captured = capsys.readouterr()
    assert status == 2
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("dnerv: error:")
    assert "Traceback" not in captured.err


def test_bitstream_does_not_import_torch():
    code = (
        "import sys, bitstream, pkgutil, importlib\n"
        "for m in pkgutil.walk_packages(bitstream.__path__, 'bitstream.'):\n"
        "    importlib.import_module(m.name)\n"
        "assert 'torch' not in sys.modules, 'bitstream imported torch'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli_help_does_not_import_torch():
    code = (
        "import sys\n"
        "from dnerv_codec.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "finally:\n"
        "    assert 'torch' not in sys.modules, 'dnerv --help imported torch'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_codecs_lists_keyframe_codecs_presets_and_rd_codecs(capsys):
    from dnerv_codec.keyframe import available

    assert main(["codecs"]) == 0
    out = capsys.readouterr()
    assert out.err == ""  # no third-party warnings
    for name in [*available(), "uvg-xs", "demo", "x265"]:
        assert name in out.out
    # each default says whose it is: rate control's (the default encoder) and --preset's
    assert "hevc-intra            id 2   quality 1..12  no weights needed  (default" in out.out
    assert "hevc-intra" in out.out.split("(default with --preset, quality 8)")[0].splitlines()[-1]
    assert (
        "hevc-ra" in out.out.split("(default: rate control plans its quality)")[0].splitlines()[-1]
    )
    assert "hevc-ra-long" in out.out.split("(keyframe-only files")[0].splitlines()[-1]
