"""Trackers: the input they read, their schedule, and the columns their key and checks name."""

from __future__ import annotations

from collections.abc import Iterator

from ...compiler import CompiledQuery
from ...errors import GenesisError, did_you_mean
from ...project.model import Project, Tracker
from ..registry import Rule


def input_exists(project: Project, tracker: Tracker) -> Iterator[GenesisError]:
    """The tracker's input is defined."""
    if tracker.input not in project.inputs:
        yield GenesisError(f"tracker '{tracker.name}' uses unknown input '{tracker.input}'",
                           tracker.locs.get("input", tracker.loc), did_you_mean(tracker.input, project.inputs))


def schedule_is_cron(project: Project, tracker: Tracker) -> Iterator[GenesisError]:
    """`schedule` is a five-field cron expression croniter accepts."""
    if tracker.schedule is None:
        return
    problem = cron_problem(tracker.schedule)
    if problem:
        yield GenesisError(f"schedule '{tracker.schedule}' is not a valid cron expression: {problem}",
                           tracker.locs.get("schedule", tracker.loc),
                           "five fields: minute hour day-of-month month day-of-week")


def cron_problem(expression: str) -> str | None:
    """Why `expression` is not a five-field cron expression, or None when it is one."""
    from croniter import croniter

    if len(str(expression).split()) != 5:
        return "expected 5 fields"
    try:
        croniter(str(expression))
    except (ValueError, KeyError) as exc:
        return str(exc) or "invalid"
    return None


def key_and_checks_are_columns(project: Project, tracker: Tracker, compiled: CompiledQuery) -> Iterator[GenesisError]:
    """Each `key`, `checks.unique` and `checks.not_null` item names an output column of
    the input (by reference or output name)."""
    names = [c.reference or c.name for c in compiled.columns]
    for what, items in (("key", tracker.key), ("checks.unique", tracker.checks.unique),
                        ("checks.not_null", tracker.checks.not_null)):
        for index, item in enumerate(items):
            if compiled.column_for(item) is None:
                where = (tracker.key_loc(index) if what == "key"
                         else tracker.checks.loc_of(what.split(".")[1], index))
                yield GenesisError(f"{what} '{item}' is not an output column of input '{tracker.input}'", where,
                                   did_you_mean(item, names + [c.name for c in compiled.columns]))


def fresh_field_is_a_time(project: Project, tracker: Tracker, compiled: CompiledQuery) -> list[GenesisError]:
    """`checks.fresh.field` is a date or timestamp reference of the input's data sources."""
    if tracker.checks.fresh is None:
        return []
    from ...monitoring.freshness import freshness_problems

    return freshness_problems(project, tracker)


def for_each_is_sound(project: Project, tracker: Tracker) -> list[GenesisError]:
    """A `for_each` names a parameter of the input, one source of values, and a destination
    that uses the value (two parts never write the same place)."""
    from ...run.fan_out import for_each_problems

    return for_each_problems(project, tracker)


RULES = (
    Rule("tracker.input", tracker=input_exists),
    Rule("tracker.schedule", tracker=schedule_is_cron),
    Rule("tracker.key_columns", compiled_tracker=key_and_checks_are_columns),
    Rule("tracker.fresh", compiled_tracker=fresh_field_is_a_time),
    Rule("tracker.for_each", tracker=for_each_is_sound),
)
