"""The benchmarks' results records, RESULTS.md's generated tables and the scripts' command lines."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import _results  # noqa: E402
import render  # noqa: E402

SCRIPTS = sorted(p for g in _results.GROUPS for p in (BENCHMARKS / g).glob("*.py"))


def _record(topic: str = "topic", value: float = 1.5) -> dict:
    rec = _results.Recorder(str(BENCHMARKS / "speed" / "example.py"), topic, argv=["--x", "1"])
    rec.table(
        "main",
        "Example",
        [
            "case",
            {"name": "value", "format": "{:.2f}", "align": "r"},
            {"name": "pair", "format": "{} / {}"},
        ],
        [["a", value, [1, 2]], ["b", None, [3, 4]]],
    )
    rec.summary("example", f"{value:.2f} units", "Example section")
    rec.data["raw"] = [value]
    return rec.record


def test_record_round_trips(tmp_path):
    record = _record()
    path = _results.write(record, tmp_path / "speed" / "topic.json")
    assert _results.read(path) == json.loads(json.dumps(record))
    assert record["group"] == "speed" and record["benchmark"] == "example"
    assert record["command"] == ["benchmarks/speed/example.py", "--x", "1"]
    assert set(_results.MACHINE_FIELDS) <= set(record["machine"])


def test_a_report_header_restores_the_run_it_describes():
    """The Date, Command and Load lines the RD scripts write are what restore_from_report reads."""
    lines = _results.report_header(
        "rd/rd_dnerv.py", ["--bpps", "0.03", "--label", "x y"], 12.4, (1.5, 0.25, 0.0),
        ", torch on CPU", command_note=" this run", load_note=": shared",
    )  # fmt: skip
    command = "rd/rd_dnerv.py --bpps 0.03 --label 'x y'"
    assert lines[1] == f"Command: `.venv/bin/python benchmarks/{command}` (12 s this run)."
    assert lines[2].startswith("Load average (1/5/15 min) before 1.50/0.25/0.00, after ")
    assert lines[2].endswith(": shared.")
    rec = _results.Recorder(str(BENCHMARKS / "rd" / "rd_dnerv.py"), "topic", argv=[])
    _results.restore_from_report(rec, "Clip x.\n" + "\n".join(lines) + "\n")
    assert rec.record["command"] == [
        "benchmarks/rd/rd_dnerv.py",
        "--bpps",
        "0.03",
        "--label",
        "x y",
    ]
    assert rec.record["machine"]["load"].startswith(
        "load average (1 / 5 / 15 min) before 1.50/0.25/0.00"
    )


@pytest.mark.parametrize("field", sorted(_results.FIELDS))
def test_a_record_missing_a_field_is_refused(tmp_path, field):
    record = _record()
    del record[field]
    with pytest.raises(_results.RecordError, match=field):
        _results.write(record, tmp_path / "r.json")
    assert not (tmp_path / "r.json").exists()


def test_malformed_tables_are_refused():
    record = _record()
    record["tables"][0]["rows"].append(["too short"])
    with pytest.raises(_results.RecordError, match="row"):
        _results.validate(record)
    record = _record()
    del record["machine"]["load"]
    with pytest.raises(_results.RecordError, match="machine"):
        _results.validate(record)


PAGE = """# Results

<!-- results:summary -->
| topic | figure | command | date (UTC) | machine | section |
|---|---|---|---|---|---|
| by hand | 3 dB | `x` | 2026-01-01 | CI | [s](#s) |
| example | old | `y` | 2026-01-01 | CI | [s](#s) |
<!-- /results -->

Prose stays.

<!-- results:topic:main -->
| stale |
<!-- /results -->

| a hand-written table |
|---|
"""


def test_renderer_replaces_exactly_the_marked_blocks():
    out = render.render_text(PAGE, [_record()])
    assert "| a | 1.50 | 1 / 2 |" in out and "| b |  | 3 / 4 |" in out
    assert "|---|---:|---|" in out and "| stale |" not in out
    assert "| by hand | 3 dB |" in out  # rows without a record stay
    assert "| example | 1.50 units | `benchmarks/speed/example.py --x 1` |" in out
    assert "[Example section](#example-section)" in out
    outside = [line for line in out.split("<!-- /results -->")[-1].splitlines()]
    assert outside == PAGE.split("<!-- /results -->")[-1].splitlines()
    assert "Prose stays." in out


def test_renderer_is_idempotent_and_check_detects_drift(tmp_path):
    records = tmp_path / "records"
    _results.write(_record(), records / "speed" / "topic.json")
    page = tmp_path / "RESULTS.md"
    page.write_text(PAGE)
    argv = ["--results-md", str(page), "--records", str(records)]
    assert render.main([*argv, "--check"]) == 1
    assert render.main(argv) == 0
    once = page.read_text()
    assert render.main(argv) == 0 and page.read_text() == once
    assert render.main([*argv, "--check"]) == 0
    _results.write(_record(value=2.25), records / "speed" / "topic.json")
    assert render.main([*argv, "--check"]) == 1
    assert page.read_text() == once  # --check writes nothing


def test_a_marker_without_a_record_is_an_error():
    with pytest.raises(render.RenderError, match="topic:main"):
        render.render_text(PAGE, [])


def test_results_md_is_up_to_date_with_its_records():
    assert render.main(["--check"]) == 0


# Runs every script's --help in one process (torch is imported once): each as `python SCRIPT`
# would run it, its folder first on sys.path.
HELP_DRIVER = """
import contextlib, io, json, runpy, sys
results = {}
for script in sys.argv[1:]:
    sys.path.insert(0, script.rsplit("/", 1)[0])
    sys.argv = [script, "--help"]
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            runpy.run_path(script, run_name="__main__")
        code = None
    except SystemExit as exc:
        code = exc.code
    except Exception as exc:
        code = repr(exc)
    results[script] = [code, "usage:" in out.getvalue()]
    sys.path.pop(0)
print(json.dumps(results))
"""


def test_every_script_has_help():
    done = subprocess.run(
        [sys.executable, "-c", HELP_DRIVER, *map(str, SCRIPTS)],
        cwd=BENCHMARKS.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(done.stdout.splitlines()[-1])
    assert len(results) == len(SCRIPTS) >= 18
    assert {k: v for k, v in results.items() if v != [0, True]} == {}
