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
from .typecheck import quoted_parameters, type_problems

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
        input_errors, failed = _input_problems(project)
        errors.extend(type_problems(project, failed))
        errors.extend(_tracker_problems_once(project, input_errors))
    from .alerts import config_problems

    errors.extend(config_problems(project))
    errors.raise_if_any()


def _input_problems(project: Project) -> tuple[dict[tuple, GenesisError], frozenset[str]]:
    """Each input's compile errors (by identity) and the inputs that did not compile."""
    problems: dict[tuple, GenesisError] = {}
    failed = set()
    for name in project.inputs:
        found = ErrorCollector()
        compiled = _collect(found, lambda: compile_input(project, name))
        if compiled is not None:
            _check_formats(compiled, found)
        quoted = quoted_parameters(project.inputs[name])
        if quoted:  # said plainly, in place of what the parser makes of the quotes
            places = {str(error.location) for error in quoted}
            found.errors = quoted + [e for e in found.errors if str(e.location) not in places]
        for error in found.errors:
            problems.setdefault(_identity(error), error)
        if found.errors:
            failed.add(name)
    return problems, frozenset(failed)


def _tracker_problems_once(project: Project, input_errors: dict[tuple, GenesisError]) -> list[GenesisError]:
    """Every tracker's problems, where an input's own problem (which each of its trackers
    meets again) is one error naming the trackers it breaks, not one per tracker."""
    errors: list[GenesisError] = []
    users: dict[tuple, set[str]] = {}
    for tracker in sorted(project.trackers.values(), key=lambda t: t.name):
        if tracker.input in project.broken.get("input", ()):
            continue
        for error in tracker_problems(project, tracker):
            if _identity(error) in input_errors:
                users.setdefault(_identity(error), set()).add(tracker.name)
            else:
                errors.append(error)
    return errors + [_with_trackers(error, users.get(key, set())) for key, error in input_errors.items()]


class InputError(GenesisError):
    """A problem of an input, reported once with the trackers it breaks."""

    def __init__(self, error: GenesisError, trackers: list[str]):
        # Worded as `validate --catalog-check` words the trackers a problem breaks.
        affects = f"breaks tracker{'s' if len(trackers) > 1 else ''}: {', '.join(trackers)}" if trackers else None
        super().__init__(error.message, error.location, "; ".join(h for h in (error.hint, affects) if h) or None)
        self.trackers = trackers

    def to_json(self) -> dict:
        return {**super().to_json(), "trackers": self.trackers}


def _identity(error: GenesisError) -> tuple:
    return (str(error.location), error.message, error.hint)


def _with_trackers(error: GenesisError, trackers: set[str]) -> GenesisError:
    return InputError(error, sorted(trackers)) if trackers else error


def check_tracker(project: Project, tracker: Tracker, params=None):
    """Compile one tracker (with --param `params`, which win) and check it; raises
    ValidationError, returns the CompiledQuery."""
    errors = ErrorCollector()
    compiled = _check_tracker(project, tracker, errors, params)
    errors.raise_if_any()
    return compiled


def tracker_problems(project: Project, tracker: Tracker) -> list[GenesisError]:
    errors = ErrorCollector()
    _check_tracker(project, tracker, errors)
    return errors.errors


def _check_formats(compiled, errors: ErrorCollector) -> None:
    """Each column's `format:` against the type the compiler gave the column.

    (The compiler no longer imports formatting; the validation rule registry of issue 12
    carries this check as a rule of its own.)"""
    from .formatting import validate_format

    for column, item in zip(compiled.columns, compiled.input.fields):
        if item.format:
            problems = validate_format(item.format, column.type or "varchar")
            if problems:
                errors.add(f"format of '{item.name}': {problems[0]}", item.loc)


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


def _check_tracker(project: Project, tracker: Tracker, errors: ErrorCollector, params=None):
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
    compiled = _collect(errors, lambda: compile_tracker(project, tracker.name, params))
    if compiled is None:
        return None
    names = [c.reference or c.name for c in compiled.columns]
    for what, items in (("key", tracker.key), ("checks.unique", tracker.checks.unique),
                        ("checks.not_null", tracker.checks.not_null)):
        for index, item in enumerate(items):
            if compiled.column_for(item) is None:
                where = (tracker.key_loc(index) if what == "key"
                         else tracker.checks.loc_of(what.split(".")[1], index))
                errors.add(f"{what} '{item}' is not an output column of input '{tracker.input}'", where,
                           did_you_mean(item, names + [c.name for c in compiled.columns]))
    if tracker.checks.fresh is not None:
        from .freshness import freshness_problems

        errors.extend(freshness_problems(project, tracker))
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
