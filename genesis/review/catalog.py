"""The static HTML catalog (`genesis docs --out DIR`): one self-contained folder.

Everything the page needs (CSS, the search script) is inlined in `index.html`, so the
folder can be published anywhere as is and works offline. Templates live in
genesis/templates/ and are rendered with autoescaping on: descriptions are user text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup, escape

from ..compiler import CompiledQuery, compile_input, compile_tracker
from ..errors import GenesisError
from ..project.model import DataSource, Input, Project, Tracker
from ..run.fan_out import describe_for_each, sample_params
from .impact import used_names
from .output import DIALECT_NAMES, sql_shown

TEMPLATES = Path(__file__).parent.parent / "templates"  # genesis/templates


@dataclass
class Usage:
    """Who uses what: reference key / data source name -> tracker and input names."""

    trackers: dict[str, set[str]] = field(default_factory=dict)
    inputs: dict[str, set[str]] = field(default_factory=dict)

    def add(self, keys, tracker: str | None = None, inp: str | None = None) -> None:
        """Record that `tracker` or `inp` uses each of `keys`."""
        for key in keys:
            if tracker:
                self.trackers.setdefault(key, set()).add(tracker)
            if inp:
                self.inputs.setdefault(key, set()).add(inp)

    def trackers_of(self, key: str) -> list[str]:
        """The trackers that use `key`, sorted."""
        return sorted(self.trackers.get(key, ()))

    def inputs_of(self, key: str) -> list[str]:
        """The inputs that use `key`, sorted."""
        return sorted(self.inputs.get(key, ()))


def build_docs(project: Project, out_dir: str | Path, *, dialect: str | None = None,
               generated_at: datetime | None = None, target: str | None = None) -> Path:
    """Write DIR/index.html (the whole catalog) and return its path.

    The SQL is shown as `target` (default: the default target) runs it, and the page says
    which target and dialect; `dialect` overrides only the printing.
    """
    from ..project.config import get_target

    reviewed = get_target(project, target)
    dialect = dialect or reviewed.engine
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    html = render_catalog(project, dialect, generated_at or datetime.now(UTC), reviewed.name)
    index = out / "index.html"
    index.write_text(html, encoding="utf-8")
    (out / ".nojekyll").write_text("")  # published as is: no static-site processing
    return index


def render_catalog(project: Project, dialect: str, generated_at: datetime, target: str | None = None) -> str:
    """The catalog page as one HTML string, SQL printed in `dialect`; `target` is only named on the page."""
    from ..monitoring.status import catalog_runs

    compiled_inputs, compiled_trackers, problems = _compile_all(project)
    usage = _usage(compiled_inputs, compiled_trackers)
    runs = catalog_runs(project)  # each tracker's last refresh, when the run history is reachable
    context = {
        "project": project.config.name,
        "dialect": dialect,
        "dialect_label": DIALECT_NAMES.get(dialect, dialect),
        "sql_shown": sql_shown(dialect, target),
        "generated_at": generated_at.strftime("%Y-%m-%d %H:%M UTC"),
        "business_time": (f"Dates in {project.config.time_zone}, weeks from {project.config.week_start.title()}; "
                          f"relative ranges as of the generation time"),
        "datasources": [_datasource_view(ds, usage) for ds in _sorted(project.datasources)],
        "inputs": [_input_view(project, inp, compiled_inputs.get(inp.name), usage, dialect)
                   for inp in _sorted(project.inputs)],
        "trackers": [{**_tracker_view(t, compiled_trackers.get(t.name), dialect), "run": runs.get(t.name),
                      "parts": {n: r for n, r in sorted(runs.items()) if n.startswith(f"{t.name}[")}}
                     for t in _sorted(project.trackers)],
        "problems": problems,
    }
    for view in context["datasources"] + context["inputs"] + context["trackers"]:
        view["path"] = project_path(project, view["path"])
    context["counts"] = {
        "datasources": len(context["datasources"]), "inputs": len(context["inputs"]),
        "trackers": len(context["trackers"]),
        "fields": sum(len(d["members"]) for d in context["datasources"]),
    }
    return _environment().get_template("catalog.html.j2").render(**context)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["sql"] = highlight_sql
    env.filters["prose"] = prose
    return env


def prose(text: str | None) -> Markup:
    """User text, escaped, with `backticks` shown as code (the only markup descriptions get)."""
    escaped = str(escape(text or ""))
    return Markup(re.sub(r"`([^`\n]+)`", r"<code>\1</code>", escaped))


def project_path(project: Project, path: str) -> str:
    """A definition's path relative to the project (the loader shows it relative to the cwd)."""
    try:
        return Path(path).resolve().relative_to(Path(project.root)).as_posix()
    except ValueError:
        return path


def _sorted(mapping) -> list:
    return [mapping[name] for name in sorted(mapping)]


def _compile_all(project: Project):
    inputs, trackers, problems = {}, {}, []
    for name in sorted(project.inputs):
        try:
            inputs[name] = compile_input(project, name)
        except GenesisError as exc:
            problems.append(f"input '{name}': {exc.render()}")
    for name in sorted(project.trackers):
        try:
            trackers[name] = compile_tracker(project, name, sample_params(project, name))
        except GenesisError as exc:
            problems.append(f"tracker '{name}': {exc.render()}")
    return inputs, trackers, problems


def _usage(inputs: dict[str, CompiledQuery], trackers: dict[str, CompiledQuery]) -> Usage:
    """Who uses what, from the compiler's record of each input and tracker."""
    usage = Usage()
    for name, compiled in inputs.items():
        usage.add(used_names(compiled), inp=name)
    for name, compiled in trackers.items():
        usage.add(used_names(compiled), tracker=name)
    return usage


# ---------------------------------------------------------------- view models


def _datasource_view(ds: DataSource, usage: Usage) -> dict[str, Any]:
    members = []
    for f in ds.fields.values():
        members.append({
            "kind": "field", "name": f.name, "type": f.type, "description": f.description, "sql": f.sql,
            "labels": dict(f.labels or {}), "key": f.name in ds.primary_key,
            "trackers": usage.trackers_of(f"{ds.name}.{f.name}"),
        })
    for m in ds.measures.values():
        what = m.sql if m.derived else f"{m.agg}({m.sql or '*'})"
        members.append({
            "kind": "measure", "name": m.name, "type": m.type or "", "description": m.description, "sql": what,
            "labels": {}, "key": False, "trackers": usage.trackers_of(f"{ds.name}.{m.name}"),
        })
    for s in ds.segments.values():
        members.append({
            "kind": "segment", "name": s.name, "type": "boolean", "description": s.description, "sql": s.sql,
            "labels": {}, "key": False, "trackers": usage.trackers_of(f"{ds.name}.{s.name}"),
        })
    joins = [{
        "name": j.name, "datasource": j.datasource, "relationship": j.relationship.replace("_", " "),
        "type": j.type, "on": ", ".join(f"{a} = {j.datasource}.{b}" for a, b in j.on),
        "description": j.description, "trackers": usage.trackers_of(f"{ds.name}.join:{j.name}"),
    } for j in ds.joins.values()]
    return {
        "name": ds.name, "description": ds.description, "table": ds.table, "path": ds.path,
        "primary_key": list(ds.primary_key), "latest": ds.latest, "members": members, "joins": joins,
        "trackers": usage.trackers_of(ds.name), "inputs": usage.inputs_of(ds.name),
    }


def _input_view(project: Project, inp: Input, compiled: CompiledQuery | None, usage: Usage,
                dialect: str) -> dict[str, Any]:
    types = {c.name: c.type for c in compiled.columns} if compiled else {}
    columns = [{
        "name": c.name, "source": c.field or c.sql, "computed": c.field is None, "agg": c.agg, "grain": c.grain,
        "type": types.get(c.name) or c.type or "", "format": _format_text(c.format), "description": c.description,
    } for c in inp.fields]
    return {
        "name": inp.name, "description": inp.description, "root": inp.root, "path": inp.path,
        "columns": columns, "filters": [f.shown() for f in inp.filters],
        "parameters": [{"name": p.name, "type": p.type, "default": _plain(p.default) if p.has_default else None,
                        "description": p.description} for p in inp.parameters.values()],
        "sort": [s.expression + (" DESC" if s.descending else "") for s in inp.sort], "limit": inp.limit,
        "trackers": sorted(t.name for t in project.trackers.values() if t.input == inp.name),
        "datasources": sorted(compiled.datasources) if compiled else [inp.root],
        "sql": compiled.sql(dialect) if compiled else None,
    }


def _tracker_view(tracker: Tracker, compiled: CompiledQuery | None, dialect: str) -> dict[str, Any]:
    checks = tracker.checks
    check_items = [text for text in (
        f"at least {_rows(checks.min_rows)}" if checks.min_rows is not None else None,
        f"at most {_rows(checks.max_rows)}" if checks.max_rows is not None else None,
        f"unique: {', '.join(checks.unique)}" if checks.unique else None,
        f"not null: {', '.join(checks.not_null)}" if checks.not_null else None,
        f"fresh: {checks.fresh.field} within {checks.fresh.within}" if checks.fresh else None,
    ) if text]
    return {
        "name": tracker.name, "description": tracker.description, "input": tracker.input, "owner": tracker.owner,
        "schedule": tracker.schedule, "schedule_text": describe_cron(tracker.schedule),
        "destination": tracker.destination.describe(),
        "destination_type": tracker.destination.kind,
        "key": list(tracker.key), "mode": tracker.mode, "checks": check_items, "path": tracker.path,
        "parameters": {k: _plain(v) for k, v in tracker.parameters.items()},
        "for_each": describe_for_each(tracker),
        "datasources": sorted(compiled.datasources) if compiled else [],
        "sql": compiled.sql(dialect) if compiled else None,
    }


def _rows(count: int) -> str:
    return f"{count:,} row" + ("" if count == 1 else "s")


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return value


def _format_text(fmt) -> str:
    if not fmt:
        return ""
    return ", ".join(f"{k}: {v}" for k, v in dict(fmt).items())


def describe_cron(expression: str | None) -> str:
    """A few common cron shapes in words; anything else is shown as written."""
    if not expression:
        return "not scheduled"
    parts = str(expression).split()
    if len(parts) != 5:
        return expression
    minute, hour, dom, month, dow = parts
    if (dom, month, dow) == ("*", "*", "*"):
        if hour == "*" and minute.startswith("*/"):
            return f"every {minute[2:]} minutes"
        if hour == "*" and minute.isdigit():
            return "every hour" if minute == "0" else f"every hour at :{int(minute):02d}"
        if hour.isdigit() and minute.isdigit():
            return f"daily at {int(hour):02d}:{int(minute):02d} UTC"
    if (dom, month) == ("*", "*") and dow in ("1-5", "MON-FRI") and hour.isdigit() and minute.isdigit():
        return f"weekdays at {int(hour):02d}:{int(minute):02d} UTC"
    return expression


# ---------------------------------------------------------------- SQL highlighting


def highlight_sql(sql: str | None, dialect: str = "trino") -> Markup:
    """SQL as escaped HTML with spans for keywords, functions, strings, numbers and names."""
    if not sql:
        return Markup("")
    try:
        from sqlglot.dialects.dialect import Dialect

        tokens = Dialect.get_or_raise(dialect).tokenize(sql)
    except Exception:  # noqa: BLE001 - highlighting is decoration: show the text plainly
        return Markup(escape(sql))
    parts, position = [], 0
    for index, token in enumerate(tokens):
        start, end = token.start, token.end + 1
        if start < position or end > len(sql):
            continue
        parts.append(escape(sql[position:start]))
        following = tokens[index + 1] if index + 1 < len(tokens) else None
        css = _token_class(token, following)
        text = escape(sql[start:end])
        parts.append(Markup(f'<span class="{css}">{text}</span>') if css else text)
        position = end
    parts.append(escape(sql[position:]))
    return Markup("").join(parts)


def _token_class(token, following) -> str | None:
    from sqlglot.tokens import TokenType

    kind = token.token_type
    if kind == TokenType.STRING:
        return "s"
    if kind == TokenType.NUMBER:
        return "n"
    if kind == TokenType.IDENTIFIER:
        return "i"
    if kind == TokenType.VAR:
        return "f" if following is not None and following.token_type == TokenType.L_PAREN else None
    if token.text.replace(" ", "").replace("_", "").isalpha():
        return "k"
    return None
