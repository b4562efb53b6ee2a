"""How reviews are shown: `genesis diff` as text, a pull-request comment (markdown) or JSON,
`genesis impact` as text or JSON, and the one-line description of a tracker's destination.

Markdown is sized for a PR comment (GitHub's limit is 65536 characters): a summary, a table
of what changed, then each SQL diff folded, leaving out what does not fit.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from ..text import plural
from .sql_diff import STATUSES

if TYPE_CHECKING:
    from .impact import ImpactReport
    from .sql_diff import DiffReport, TrackerChange

DIALECT_NAMES = {"trino": "Trino", "duckdb": "DuckDB"}
MARKDOWN_MARKER = "<!-- genesis-diff -->"
_STATUS_LABEL = {"changed": "SQL changed", "added": "added", "removed": "removed", "error": "does not compile",
                 "unchanged": "unchanged"}


def sql_shown(dialect: str, target: str | None) -> str:
    """Which SQL a review shows: the reviewed target's dialect, said so in every format."""
    engine = DIALECT_NAMES.get(dialect, dialect)
    if not target:
        return f"SQL shown in the {engine} dialect"
    return f"SQL shown as target '{target}' runs it ({engine})"


# ---------------------------------------------------------------- diff


def render_diff(report: DiffReport, fmt: str = "text", max_chars: int = 60000) -> str:
    """The diff report as `fmt`: "text" (a terminal), "markdown" (a PR comment) or "json"."""
    if fmt == "json":
        return json.dumps(report.to_json(), indent=2, default=str)
    if fmt == "markdown":
        return _markdown(report, max_chars)
    return _text(report)


def summary_line(report: DiffReport) -> str:
    """`15 trackers against main: 2 changed, 13 unchanged` (zero counts left out)."""
    counts = report.counts()
    parts = [f"{counts[s]} {s}" for s in STATUSES if counts[s] or s in ("changed", "unchanged")]
    return f"{len(report.trackers)} trackers against {report.base}: " + ", ".join(parts)


def dialect_line(report: DiffReport) -> str:
    """Which SQL the diff shows: the reviewed target's dialect, said so in every format."""
    return sql_shown(report.dialect, report.target)


def _text(report: DiffReport) -> str:
    out = [f"genesis diff: {summary_line(report)}", dialect_line(report)]
    out += _preamble(report)
    for change in report.trackers:
        if change.status == "unchanged" and not change.notes:
            continue
        out.append("")
        out.append(f"{change.status:<9} {change.name}" + (f"  (input {change.input})" if change.input else ""))
        out += [f"  because: {b}" for b in change.because]
        out += [f"  note: {n}" for n in change.notes]
        if change.error:
            out.append(f"  error: {change.error}")
        if change.data:
            out += ["  " + line for line in _data_lines(change.data)]
        if change.sql_diff and change.status in ("changed", "added"):
            out += ["    " + line for line in change.sql_diff.splitlines()]
    unchanged = [c.name for c in report.by_status("unchanged") if not c.notes]
    if unchanged:
        out += ["", "unchanged: " + ", ".join(unchanged)]
    return "\n".join(out)


def _preamble(report: DiffReport) -> list[str]:
    if report.base_error:
        return [f"warning: every tracker is shown as added because {report.base_error}"]
    if report.base_missing:
        return [f"note: {report.base} has no Genesis project here; every tracker is new"]
    return []


def _data_lines(data: dict[str, Any]) -> list[str]:
    """A row diff (review/row_diff.py) in a few lines: counts, changed columns, examples."""
    if "parts" in data:  # a for_each tracker: one row diff per part
        return [line for part, diff in data["parts"].items()
                for line in [f"{part}" + (f" ({diff['part']} part)" if diff.get("part") else "") + ":"]
                + ["  " + inner for inner in _data_lines(diff)]]
    if "error" in data:
        return [f"rows: could not run: {data['error']}"]
    changed = "" if data.get("changed") is None else f", {data['changed']} changed"
    lines = [f"rows: {data['base_rows']} -> {data['head_rows']}: {data['added']} added, "
             f"{data['removed']} removed{changed}" + (f" (by {', '.join(data['key'])})" if data["key"] else "")]
    if data.get("changed_columns"):
        lines.append("  changed columns: " + ", ".join(f"{c} ({n})" for c, n in data["changed_columns"].items()))
    for what in ("columns_added", "columns_removed"):
        if data.get(what):
            lines.append(f"  {what.replace('_', ' ')}: {', '.join(data[what])}")
    examples = data.get("examples", {})
    for what in ("added", "removed"):
        if examples.get(what):
            lines.append(f"  e.g. {what}: " + ", ".join(json.dumps(v, default=str) for v in examples[what]))
    for item in examples.get("changed", []):
        cells = "; ".join(f"{c}: {json.dumps(a, default=str)} -> {json.dumps(b, default=str)}"
                          for c, (a, b) in item["changes"].items())
        lines.append(f"  e.g. changed {json.dumps(item['key'], default=str)}: {cells}")
    return lines


def _markdown(report: DiffReport, max_chars: int, max_rows: int = 100) -> str:
    """A summary line, a table of what changed, then each SQL diff folded, within max_chars."""
    counts = report.counts()
    bold = [f"**{counts[s]} {s}**" if counts[s] and s != "unchanged" else f"{counts[s]} {s}"
            for s in STATUSES if counts[s] or s in ("changed", "unchanged")]
    out = [f"**Genesis diff** against `{_md(report.base)}`: " + ", ".join(bold), "",
           f"_{_md(dialect_line(report))}_", ""]
    out += [f"> {_md(line)}" for line in _preamble(report)]
    listed = [c for c in report.trackers if c.status != "unchanged" or c.notes]
    if listed:
        out += ["| tracker | change | because |", "|---|---|---|"]
        for c in listed[:max_rows]:
            why = "<br>".join(_md(b) for b in (c.because + c.notes + ([c.error] if c.error else [])))
            label = _STATUS_LABEL[c.status]
            if c.status == "changed":
                label += f" (+{c.lines_added} −{c.lines_removed})"
            out.append(f"| `{c.name}` | {label}{_md_rows(c.data)} | {why} |")
        if len(listed) > max_rows:
            out.append(f"| … | {len(listed) - max_rows} more | run `genesis diff` locally for all |")
        out.append("")
    tail = _unchanged_section(report, max_rows * 2)
    budget = max_chars - sum(len(line) + 1 for line in out) - len(tail) - 200
    for c in report.trackers:
        if c.status not in ("changed", "added") or not c.sql_diff:
            continue
        section = _markdown_section(c, budget)
        if section is None:
            out.append("_More SQL diffs were left out to fit a comment; run `genesis diff` locally._")
            break
        budget -= len(section) + 1
        out.append(section)
    if tail:
        out.append(tail)
    out.append("")
    out.append(MARKDOWN_MARKER)
    return "\n".join(out)


def _unchanged_section(report: DiffReport, limit: int) -> str:
    unchanged = [c.name for c in report.by_status("unchanged") if not c.notes]
    if not unchanged:
        return ""
    names = ", ".join(f"`{n}`" for n in unchanged[:limit])
    names += f" and {len(unchanged) - limit} more" if len(unchanged) > limit else ""
    return f"<details><summary>{len(unchanged)} unchanged</summary>\n\n{names}\n\n</details>"


def _markdown_section(change: TrackerChange, budget: int, max_lines: int = 200) -> str | None:
    """One tracker's SQL diff folded in <details>, or None when it does not fit `budget`."""
    lines = change.sql_diff.splitlines()
    if len(lines) > max_lines:
        lines = lines[:max_lines] + [f"... {len(lines) - max_lines} more lines"]
    body = "\n".join(lines)
    data = ""
    if change.data:
        data = "\n\n" + "\n".join(f"    {line}" for line in _data_lines(change.data))
    fence = "`" * max(3, _longest_backtick_run(body) + 1)
    section = (f"<details><summary><code>{_html(change.name)}</code>: {_STATUS_LABEL[change.status]} "
               f"(+{change.lines_added} −{change.lines_removed})</summary>{data}\n\n"
               f"{fence}diff\n{body}\n{fence}\n\n</details>")
    if len(section) > budget:
        return None
    return section


def _md_rows(data: dict[str, Any] | None) -> str:
    if not data:
        return ""
    if "error" in data:
        return "<br>rows: could not run"
    changed = "" if data.get("changed") is None else f" ~{data['changed']}"
    return f"<br>rows +{data['added']} −{data['removed']}{changed}"


def _longest_backtick_run(text: str) -> int:
    return max((len(m) for m in re.findall(r"`+", text)), default=0)


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _md(text: str) -> str:
    return _html(text).replace("|", "\\|").replace("\n", " ")


# ---------------------------------------------------------------- impact


def render_impact(report: ImpactReport, fmt: str = "text") -> str:
    """The impact report as "text" (inputs with where they use it, then trackers) or "json"."""
    if fmt == "json":
        return json.dumps(report.to_json(), indent=2)
    out = [f"{report.kind} {report.ref}: used by {plural(len(report.inputs), 'input')} and "
           f"{plural(len(report.trackers), 'tracker')}"]
    if report.inputs:
        out += ["", "inputs:"]
        for item in report.inputs:
            out.append(f"  {item['name']}")
            out.append(f"    uses: {', '.join(item['uses'])}")
            out.append(f"    via:  {', '.join(item['via'])}")
    if report.trackers:
        out += ["", "trackers:"]
        for t in report.trackers:
            extra = ", ".join(x for x in (f"input {t['input']}", t["owner"] and f"owner {t['owner']}",
                                          t["schedule"] and f"schedule {t['schedule']}", t["destination"]) if x)
            out.append(f"  {t['name']}  ({extra})")
    for error in report.errors:
        out.append(f"warning: {error}")
    return "\n".join(out)
