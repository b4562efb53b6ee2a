"""`genesis ls`: the project's data sources, inputs and trackers, as a table or JSON."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from ..project.model import Project
from ..run.selection import select
from ..text import plural


def list_project(project: Project, selectors: Sequence[str], exclude: Sequence[str],
                 kinds: Iterable[str]) -> list[dict]:
    """One dict a selected definition, with what `ls` shows about it."""
    rows = []
    for node in select(project, selectors, exclude, kinds):
        if node.kind == "datasource":
            ds = project.datasources[node.name]
            rows.append({"kind": "datasource", "name": ds.name, "table": ds.table, "fields": len(ds.fields),
                         "measures": len(ds.measures), "path": ds.path, "description": ds.description})
        elif node.kind == "input":
            inp = project.inputs[node.name]
            rows.append({"kind": "input", "name": inp.name, "from": inp.root, "columns": len(inp.fields),
                         "trackers": sorted(t.name for t in project.trackers.values() if t.input == inp.name),
                         "path": inp.path, "description": inp.description})
        else:
            t = project.trackers[node.name]
            rows.append({"kind": "tracker", "name": t.name, "input": t.input, "owner": t.owner,
                         "schedule": t.schedule, "destination": t.destination.describe(),
                         "path": t.path, "description": t.description})
    return rows


def render_listing(rows: list[dict], fmt: str) -> str:
    """`genesis list` output: the rows as JSON, or one aligned table per kind and a count line."""
    if fmt == "json":
        return json.dumps(rows, indent=2)
    sections = [
        ("datasource", "data sources", ["name", "table", "fields", "measures"]),
        ("input", "inputs", ["name", "from", "columns", "trackers"]),
        ("tracker", "trackers", ["name", "input", "owner", "schedule", "destination"]),
    ]
    out: list[str] = []
    for kind, title, columns in sections:
        chosen = [r for r in rows if r["kind"] == kind]
        if not chosen:
            continue
        if out:
            out.append("")
        out.append(f"{title} ({len(chosen)})")
        cells = [columns] + [[_cell(r[c]) for c in columns] for r in chosen]
        widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
        out += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    if not out:
        return "nothing selected"
    counts = [plural(sum(r["kind"] == kind for r in rows), title[:-1]) for kind, title, _ in sections]
    out += ["", ", ".join(c for c in counts if not c.startswith("0 "))]
    return "\n".join(out)


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ", ".join(value) or "-"
    return str(value)
