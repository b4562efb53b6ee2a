"""Semantic checks across a loaded project, each a small function adding located errors.

`validate_project` runs them all and compiles every input and tracker, so one run
reports every problem in the project (`genesis validate`).
"""

from __future__ import annotations

from pathlib import PurePath

from .compiler import compile_input, compile_tracker
from .compiler.expressions import parse_expression
from .compiler.plan import field_expr
from .destinations.paths import tracker_file_path
from .errors import ErrorCollector, GenesisError, ValidationError, did_you_mean
from .model import DataSource, Project, Tracker

FILE_EXTENSIONS = (".csv", ".json", ".parquet", ".xlsx")


def validate_project(project: Project, errors: ErrorCollector | None = None) -> None:
    """Raise ValidationError listing every semantic problem; return quietly when valid.

    Definitions that depend on one that failed to load (project.broken) are skipped:
    their errors would only repeat the first one.
    """
    errors = errors if errors is not None else ErrorCollector()
    datasource_errors = ErrorCollector()
    for ds in project.datasources.values():
        _check_datasource(project, ds, datasource_errors)
    errors.extend(datasource_errors.errors)
    if not datasource_errors.errors and not project.broken.get("datasource"):
        for name in project.inputs:
            _collect(errors, lambda: compile_input(project, name))
        for tracker in project.trackers.values():
            if tracker.input not in project.broken.get("input", ()):
                errors.extend(tracker_problems(project, tracker))
    errors.raise_if_any()


def check_tracker(project: Project, tracker: Tracker):
    """Compile one tracker and check it; raises ValidationError, returns the CompiledQuery."""
    errors = ErrorCollector()
    compiled = _check_tracker(project, tracker, errors)
    errors.raise_if_any()
    return compiled


def tracker_problems(project: Project, tracker: Tracker) -> list[GenesisError]:
    errors = ErrorCollector()
    _check_tracker(project, tracker, errors)
    return errors.errors


def _collect(errors: ErrorCollector, action):
    try:
        return action()
    except ValidationError as exc:
        errors.extend(exc.errors)
    except GenesisError as exc:
        errors.extend([exc])
    return None


def _check_datasource(project: Project, ds: DataSource, errors: ErrorCollector) -> None:
    for key in ds.primary_key:
        if key not in ds.fields:
            errors.add(f"primary_key '{key}' is not a field of '{ds.name}'", ds.locs.get("primary_key", ds.loc),
                       did_you_mean(key, ds.fields))
    for f in ds.fields.values():
        if f.sql is not None:
            _collect(errors, lambda f=f: field_expr(ds, f, ds.name))
    for m in ds.measures.values():
        if m.sql is not None and m.sql not in ds.fields:
            _collect(errors, lambda m=m: parse_expression(m.sql, m.sql_loc, f"measure '{ds.name}.{m.name}'"))
    if ds.latest is not None:
        _collect(errors, lambda: parse_expression(ds.latest.order_by, ds.latest.loc, "latest.order_by"))
        if ds.latest.deleted:
            _collect(errors, lambda: parse_expression(ds.latest.deleted, ds.latest.loc, "latest.deleted"))
    for join in ds.joins.values():
        target = project.datasources.get(join.datasource)
        if target is None:
            errors.add(f"join '{join.name}' points at unknown data source '{join.datasource}'", join.loc,
                       did_you_mean(join.datasource, project.datasources))
            continue
        for left, right in join.on:
            if left not in ds.fields:
                errors.add(f"join '{join.name}': '{left}' is not a field of '{ds.name}'", join.loc,
                           did_you_mean(left, ds.fields))
            if right not in target.fields:
                errors.add(f"join '{join.name}': '{right}' is not a field of '{target.name}'", join.loc,
                           did_you_mean(right, target.fields))


def _check_tracker(project: Project, tracker: Tracker, errors: ErrorCollector):
    loc = tracker.locs
    if tracker.input not in project.inputs:
        errors.add(f"tracker '{tracker.name}' uses unknown input '{tracker.input}'", loc.get("input", tracker.loc),
                   did_you_mean(tracker.input, project.inputs))
        return None
    if tracker.schedule is not None:
        problem = cron_problem(tracker.schedule)
        if problem:
            errors.add(f"schedule '{tracker.schedule}' is not a valid cron expression: {problem}",
                       loc.get("schedule", tracker.loc), "five fields: minute hour day-of-month month day-of-week")
    destination = tracker.destination
    if destination.get("type") == "file":
        suffix = PurePath(str(destination.get("path", ""))).suffix.lower()
        if suffix not in FILE_EXTENSIONS:
            errors.add(f"file destination '{destination.get('path')}' must end in one of {', '.join(FILE_EXTENSIONS)}",
                       loc.get("destination", tracker.loc), did_you_mean(suffix, FILE_EXTENSIONS))
        _collect(errors, lambda: tracker_file_path(project, tracker))  # inside the project?
    compiled = _collect(errors, lambda: compile_tracker(project, tracker.name))
    if compiled is None:
        return None
    names = [c.reference or c.name for c in compiled.columns]
    for what, items in (("key", tracker.key), ("checks.unique", tracker.checks.unique),
                        ("checks.not_null", tracker.checks.not_null)):
        for item in items:
            if compiled.column_for(item) is None:
                where = loc.get("key", tracker.loc) if what == "key" else tracker.checks.loc
                errors.add(f"{what} '{item}' is not an output column of input '{tracker.input}'", where,
                           did_you_mean(item, names + [c.name for c in compiled.columns]))
    if destination.get("type") in ("google_sheets", "airtable") and not tracker.key and tracker.mode != "append":
        errors.add(f"tracker '{tracker.name}' writes to {destination['type']} in {tracker.mode} mode and needs a `key`",
                   tracker.loc, "key: [the reference that identifies a row, e.g. movie.movie_id]")
    return compiled


def cron_problem(expression: str) -> str | None:
    from croniter import croniter

    if len(str(expression).split()) != 5:
        return "expected 5 fields"
    try:
        croniter(str(expression))
    except (ValueError, KeyError) as exc:
        return str(exc) or "invalid"
    return None
