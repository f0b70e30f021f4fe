"""Regenerate RESULTS.md's tables from the results records (benchmarks/_results.py).

Usage::

    .venv/bin/python benchmarks/render.py            # rewrite the generated tables in place
    .venv/bin/python benchmarks/render.py --check    # exit 1 if RESULTS.md differs from them

A generated table sits between ``<!-- results:TOPIC:TABLE -->`` and ``<!-- /results -->``, TOPIC
and TABLE naming a record's topic and one of its tables' ids; everything outside the markers is
prose and stays as written. The Summary table sits between ``<!-- results:summary -->`` and
``<!-- /results -->``: a record that declares a summary line replaces the row of the same topic
(or adds one at the end); the other rows stay as written.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _results

RESULTS_MD = _results.BENCHMARKS / "RESULTS.md"
BLOCK = re.compile(
    r"^<!-- results:([\w.-]+)(?::([\w.-]+))? -->\n(.*?)^<!-- /results -->$", re.M | re.S
)
SUMMARY_HEADER = (
    "| topic | figure | command | date (UTC) | machine | section |\n|---|---|---|---|---|---|"
)


class RenderError(ValueError):
    """A marker with no record behind it."""


def cell(value, fmt: str | None = None, missing: str = "") -> str:
    if value is None:
        return missing
    if isinstance(value, list):
        if value and all(isinstance(v, list) for v in value):  # several points: "a, b, c"
            return ", ".join(cell(v, fmt) for v in value)
        return fmt.format(*value) if fmt else " / ".join(cell(v) for v in value)
    if fmt:
        return fmt.format(value)
    return str(value)


def render_table(t: dict) -> str:
    columns = [c if isinstance(c, dict) else {"name": c} for c in t["columns"]]
    lines = [
        "| " + " | ".join(c["name"] for c in columns) + " |",
        "|" + "|".join("---:" if c.get("align") == "r" else "---" for c in columns) + "|",
    ]
    for row in t["rows"]:
        lines.append(
            "| "
            + " | ".join(
                cell(v, c.get("format"), c.get("missing", ""))
                for v, c in zip(row, columns, strict=True)
            )
            + " |"
        )
    if t["notes"]:
        lines += ["", *t["notes"]]
    return "\n".join(lines)


def _anchor(section: str) -> str:
    slug = re.sub(r"[^\w\- ]", "", section.lower())
    return "#" + slug.replace(" ", "-")


def _when(date: dict) -> str:
    start, end = (datetime.fromisoformat(d) if d else None for d in (date["start"], date["end"]))
    if start and end and start.date() == end.date():
        return f"{start:%Y-%m-%d %H:%M}-{end:%H:%M}"
    return " to ".join(f"{d:%Y-%m-%d %H:%M}" for d in (start, end) if d)


def summary_row(record: dict) -> str:
    s, m = record["summary"], record["machine"]
    machine = f"{m['gpu'] or m['cpu']}, {m['cores']} cores"
    section = f"[{s['section']}]({_anchor(s['section'])})"
    command = f"`{shlex.join(record['command'])}`"
    cells = [s["topic"], s["figure"], command, _when(record["date"]), machine, section]
    return "| " + " | ".join(cells) + " |"


def render_summary(body: str, records: list[dict]) -> str:
    generated = {r["summary"]["topic"]: summary_row(r) for r in records if "summary" in r}
    rows = [line for line in body.splitlines()[2:] if line.startswith("|")]
    out = []
    for row in rows:
        topic = row[2:].split(" | ", 1)[0]
        out.append(generated.pop(topic, row))
    out += generated.values()
    return "\n".join([SUMMARY_HEADER, *out])


def render_text(text: str, records: list[dict]) -> str:
    tables = {(r["topic"], t["id"]): t for r in records for t in r["tables"]}

    def replace(match: re.Match) -> str:
        topic, table_id, body = match.group(1), match.group(2), match.group(3)
        if topic == "summary" and table_id is None:
            content = render_summary(body, records)
            head = "<!-- results:summary -->"
        else:
            if (topic, table_id) not in tables:
                raise RenderError(f"no record has table {topic}:{table_id}")
            content = render_table(tables[(topic, table_id)])
            head = f"<!-- results:{topic}:{table_id} -->"
        return f"{head}\n{content}\n<!-- /results -->"

    return BLOCK.sub(replace, text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if RESULTS.md is out of date")
    ap.add_argument("--results-md", type=Path, default=RESULTS_MD)
    ap.add_argument("--records", type=Path, default=_results.RESULTS, help="folder of records")
    args = ap.parse_args(argv)
    text = args.results_md.read_text()
    new = render_text(text, _results.read_all(args.records))
    if new == text:
        print(f"{args.results_md}: up to date")
        return 0
    if args.check:
        print(f"{args.results_md}: out of date with its records; run benchmarks/render.py")
        return 1
    args.results_md.write_text(new)
    print(f"{args.results_md}: tables regenerated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
