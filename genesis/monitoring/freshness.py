"""The freshness check: `checks: {fresh: {field: movie.op_ts, within: 2h}}`.

The newest value of the field is read with its own small query, compiled through the
ordinary compiler API from a one-column input (`max(field)` over the tracker's `from:`
data source, without the input's filters: freshness is about the source, not the view
of it). A date counts from its midnight (UTC); a timestamp without zone is UTC.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from ..api import execute
from ..compiler import CompiledQuery, compile_input
from ..engines import Engine
from ..errors import ErrorCollector, GenesisError
from ..project.model import Input, InputField, Project, Tracker
from ..run.durations import format_duration
from .history import as_utc

FRESH_TYPES = ("date", "timestamp", "timestamp with time zone")


def freshness_query(project: Project, tracker: Tracker) -> CompiledQuery:
    """`SELECT max(field)` over the tracker's source, remembered per project."""
    fresh = tracker.checks.fresh
    if fresh is None:
        raise GenesisError(f"tracker '{tracker.name}' has no freshness check")

    def build() -> CompiledQuery:
        inp = project.inputs[tracker.input]
        name = f"{inp.name}__freshness"
        # An aggregate computed column: one row for the whole source (a field `agg:` would
        # aggregate per root row instead).
        probe = Input(name, inp.root, (InputField(name="newest", sql=f"max({fresh.field})", loc=fresh.loc,
                                                  sql_loc=fresh.loc),),
                      path=tracker.path, loc=fresh.loc, locs={"from": inp.locs.get("from", inp.loc)})
        scratch = replace(project, inputs={**project.inputs, name: probe})
        return compile_input(scratch, name)

    return project.derived(f"freshness:{tracker.name}", build)


def freshness_problems(project: Project, tracker: Tracker) -> list[GenesisError]:
    """Validation: the field exists and is a date or timestamp."""
    fresh = tracker.checks.fresh
    if fresh is None or tracker.input not in project.inputs:
        return []
    errors = ErrorCollector()
    try:
        compiled = freshness_query(project, tracker)
    except GenesisError as exc:
        errors.extend(getattr(exc, "errors", None) or [exc])
        return errors.errors
    column_type = compiled.columns[0].type or ""
    if column_type not in FRESH_TYPES:
        errors.add(f"checks.fresh.field '{fresh.field}' is {column_type or 'of unknown type'}, "
                   "not a date or timestamp", fresh.loc, "name a field such as op_ts or updated_at")
    return errors.errors


def data_age(project: Project, tracker: Tracker, engine: Engine, *, timeout: float | None = None,
             now: dt.datetime | None = None) -> float | None:
    """Seconds since the newest value of the fresh field; None when the source has no rows."""
    compiled = freshness_query(project, tracker)
    result = execute(compiled, engine, label=f"{tracker.name} (freshness)", timeout=timeout)
    newest = result.table.column(0)[0].as_py() if result.table.num_rows else None
    if newest is None:
        return None
    now = now or dt.datetime.now(dt.UTC)
    return (now - as_utc(newest)).total_seconds()


def freshness_problem(tracker: Tracker, age: float | None) -> str | None:
    """The failed-check sentence for a data age, or None when fresh enough."""
    fresh = tracker.checks.fresh
    if fresh is None:
        return None
    if age is None:
        return f"fresh: no value in '{fresh.field}' (the source has no rows)"
    if age > fresh.within_seconds:
        return (f"fresh: the newest '{fresh.field}' is {format_duration(age)} old, "
                f"at most {fresh.within} allowed")
    return None

