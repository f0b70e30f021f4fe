"""The results record every benchmark script writes, and RESULTS.md's tables are generated from.

A record is one JSON object::

    schema     SCHEMA
    benchmark  the script's name ("stress_rd")
    group      "rd", "speed" or "bitstream" (the script's folder)
    topic      the RESULTS.md topic it feeds (its marker comments name it)
    command    the exact argv, the script's path relative to the repository first
    date       {"start", "end"}: UTC, ISO 8601 (null where a converted run did not record it)
    machine    {"cpu", "cores", "memory_gib", "python", "torch", "gpu", "load"}: gathered when the
               run starts; "load" is a note on what else ran (load averages)
    tables     [{"id", "title", "columns", "rows", "notes"}]: the measured values, numbers as
               numbers; a column is a name or {"name", "format", "align"} ("format" a str.format
               pattern: ``format(cell)``, ``format(*cell)`` for a list cell,
               each item joined by ", " for a list of lists; "align": "r" right-aligns;
               "missing": the text of a null cell, empty unless given)
    data       free raw detail
    summary    optional {"topic", "figure", "section"}: the record's line of the Summary table

Records live under ``benchmarks/results/<group>/<topic>.json`` unless ``--json`` says otherwise.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shlex
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

SCHEMA = "dnerv-bench/1"
GROUPS = ("rd", "speed", "bitstream")
BENCHMARKS = Path(__file__).resolve().parent
REPO = BENCHMARKS.parent
RESULTS = BENCHMARKS / "results"

FIELDS = {
    "schema": str,
    "benchmark": str,
    "group": str,
    "topic": str,
    "command": list,
    "date": dict,
    "machine": dict,
    "tables": list,
    "data": dict,
}
DATE_FIELDS = ("start", "end")
MACHINE_FIELDS = ("cpu", "cores", "memory_gib", "python", "torch", "gpu", "load")
TABLE_FIELDS = {"id": str, "title": str, "columns": list, "rows": list, "notes": list}
SUMMARY_FIELDS = ("topic", "figure", "section")


class RecordError(ValueError):
    """A record that does not follow the schema."""


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def load_note() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} / {five:.2f} / {fifteen:.2f} (1 / 5 / 15 min)"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def machine() -> dict:
    """The machine this process runs on; torch is only asked about if the script imported it."""
    try:
        torch_version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch_version = None
    gpu = None
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        gpu = torch.cuda.get_device_name(0)
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "python": platform.python_version(),
        "torch": torch_version,
        "gpu": gpu,
        "load": load_note(),
    }


def table(
    id: str, title: str, columns: list, rows: list, notes: list[str] | tuple[str, ...] = ()
) -> dict:
    return {"id": id, "title": title, "columns": list(columns), "rows": rows, "notes": list(notes)}


def default_path(group: str, topic: str) -> Path:
    return RESULTS / group / f"{topic}.json"


def validate(record: dict) -> dict:
    """``record`` itself, or :class:`RecordError` naming the first thing wrong with it."""
    if not isinstance(record, dict):
        raise RecordError("a record is a JSON object")
    for name, kind in FIELDS.items():
        if name not in record:
            raise RecordError(f"missing field {name!r}")
        if not isinstance(record[name], kind):
            raise RecordError(f"field {name!r} is not a {kind.__name__}")
    if record["schema"] != SCHEMA:
        raise RecordError(f"schema {record['schema']!r}, expected {SCHEMA!r}")
    if record["group"] not in GROUPS:
        raise RecordError(f"group {record['group']!r} is not one of {GROUPS}")
    for sub, names in (("date", DATE_FIELDS), ("machine", MACHINE_FIELDS)):
        missing = [n for n in names if n not in record[sub]]
        if missing:
            raise RecordError(f"{sub} lacks {missing}")
    ids = set()
    for t in record["tables"]:
        for name, kind in TABLE_FIELDS.items():
            if not isinstance(t.get(name), kind):
                raise RecordError(
                    f"table {t.get('id')!r}: field {name!r} missing or not a list/str"
                )
        if t["id"] in ids:
            raise RecordError(f"two tables with id {t['id']!r}")
        ids.add(t["id"])
        width = len(t["columns"])
        for row in t["rows"]:
            if not isinstance(row, list) or len(row) != width:
                raise RecordError(
                    f"table {t['id']!r}: a row of {len(row)} cells for {width} columns"
                )
    summary = record.get("summary")
    if summary is not None and any(n not in summary for n in SUMMARY_FIELDS):
        raise RecordError(f"summary needs {SUMMARY_FIELDS}")
    return record


def write(record: dict, path: Path | str | None = None) -> Path:
    path = Path(path) if path else default_path(record["group"], record["topic"])
    validate(record)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    return path


def read(path: Path | str) -> dict:
    try:
        return validate(json.loads(Path(path).read_text()))
    except RecordError as exc:
        raise RecordError(f"{path}: {exc}") from None


def read_all(root: Path = RESULTS) -> list[dict]:
    """Every record under ``root/<group>/``, in path order."""
    return [read(p) for group in GROUPS for p in sorted((root / group).glob("*.json"))]


class Recorder:
    """A record being measured: the command, start time and machine are taken when it is made.

    ``script`` is the benchmark's ``__file__``: its name is the benchmark, its folder the group.
    """

    def __init__(self, script: str, topic: str, argv: list[str] | None = None) -> None:
        path = Path(script).resolve()
        try:
            shown = str(path.relative_to(REPO))
        except ValueError:
            shown = str(path)
        self.record: dict = {
            "schema": SCHEMA,
            "benchmark": path.stem,
            "group": path.parent.name,
            "topic": topic,
            "command": [shown, *(sys.argv[1:] if argv is None else argv)],
            "date": {"start": now(), "end": None},
            "machine": machine(),
            "tables": [],
            "data": {},
        }
        self.restored = False

    def restore(self, command: list[str], start: str | None, end: str | None, **machine) -> None:
        """Date, machine and command of a run that wrote a raw output before records existed."""
        self.record["command"] = command
        self.record["date"] = {"start": start, "end": end}
        self.record["machine"] = {name: machine.get(name) for name in MACHINE_FIELDS}
        self.restored = True

    @property
    def data(self) -> dict:
        return self.record["data"]

    def table(self, *args, **kwargs) -> dict:
        t = table(*args, **kwargs)
        self.record["tables"].append(t)
        return t

    def summary(self, topic: str, figure: str, section: str) -> None:
        self.record["summary"] = {"topic": topic, "figure": figure, "section": section}

    def write(self, path: Path | str | None = None) -> Path:
        if not self.restored:
            self.record["date"]["end"] = now()
            self.record["machine"]["load"] += f" at the start; {load_note()} at the end"
        path = write(self.record, path)
        print(f"record: {path}", file=sys.stderr)
        return path


def iso(text: str) -> str:
    """ "2026-12-02 06:45 UTC" (the raw outputs' dates) as ISO 8601."""
    when = datetime.strptime(text, "%Y-%m-%d %H:%M UTC").replace(tzinfo=timezone.utc)
    return when.isoformat(timespec="seconds")


def report_header(
    script: str,
    argv: list[str] | None,
    seconds: float,
    load_before: tuple[float, float, float],
    machine_note: str,
    command_note: str = "",
    load_note: str = "",
) -> list[str]:
    """The Date, Command and Load average lines that head a markdown report (what
    :func:`restore_from_report` reads back): ``script`` as run from the repository
    (``rd/rd_dnerv.py``), ``argv`` its arguments (``sys.argv[1:]`` when None), ``seconds`` the
    run's time, ``machine_note`` what follows the Python version on the Date line (``", torch on
    CPU"``), ``command_note`` what follows the seconds, ``load_note`` the Load line's end."""
    import os
    import platform
    import sys

    command = shlex.join(argv if argv is not None else sys.argv[1:])
    after = os.getloadavg()
    loads = "/".join(f"{x:.2f}" for x in load_before), "/".join(f"{x:.2f}" for x in after)
    return [
        f"Date {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; {platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}{machine_note}.",
        f"Command: `.venv/bin/python benchmarks/{script} {command}` ({seconds:.0f} s"
        f"{command_note}).",
        f"Load average (1/5/15 min) before {loads[0]}, after {loads[1]}{load_note}.",
    ]


REPORT_DATE = re.compile(r"^Date (.+ UTC); (\S+), (\d+) CPUs, Python ([\d.]+)", re.M)
REPORT_COMMAND = re.compile(r"^Command: `\S+ \S+ ?(.*?)` \(", re.M)
REPORT_LOAD = re.compile(r"^Load average \(1/5/15 min\) (before [\d./]+, after [\d./]+)", re.M)


def restore_from_report(rec: Recorder, text: str) -> None:
    """Date, command and machine of a run from the header of the markdown report it wrote
    (``rd_dnerv.py``'s and ``rd_baselines.py``'s: "Date ...", "Command: `...`", "Load
    average ..."); the command keeps the run's arguments after the script's present path."""
    date, command = REPORT_DATE.search(text), REPORT_COMMAND.search(text)
    if not (date and command):
        raise RecordError("the report has no Date and Command lines")
    load = REPORT_LOAD.search(text)
    rec.restore(
        [rec.record["command"][0], *shlex.split(command.group(1))], None, iso(date.group(1)),
        cpu=date.group(2), cores=int(date.group(3)), python=date.group(4),
        load=f"load average (1 / 5 / 15 min) {load.group(1).rstrip('.')}" if load else None,
    )  # fmt: skip


def add_arguments(parser, group: str, topic: str | None, raw: str | None = None) -> None:
    """``--json PATH``: where the record goes (default benchmarks/results/<group>/<topic>.json;
    with ``topic`` None the default is left to :meth:`Recorder.write`, for a topic the run
    chooses); with ``raw``, ``--from-raw FILE``: rebuild the record from a raw output instead of
    measuring."""
    default = default_path(group, topic or "TOPIC")
    parser.add_argument(
        "--json",
        type=Path,
        default=default if topic else None,
        help=f"the results record (default {default.relative_to(REPO)})",
    )
    if raw:
        parser.add_argument(
            "--from-raw",
            type=Path,
            metavar="FILE",
            help=f"rebuild the record from a raw output of this script ({raw}), measure nothing",
        )
