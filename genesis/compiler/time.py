"""Time grains, relative date ranges and `--as-of` as SQL that means the same on DuckDB and Trino.

Every bound is computed in Python (genesis/project/load/business_time.py) and written as a typed literal:
`DATE '2026-03-01'` for a date, a wall-clock `timestamp` in the project zone for a plain
timestamp, and the UTC instant `CAST('... UTC' AS timestamp(6) with time zone)` for a timestamp
with time zone. Neither engine's current_date, session time zone or DST rules is used.

Grains and ranges are desugared before planning (`desugar`): a grain field becomes a computed
`date` column and a range filter a SQL filter over the same reference, written as Trino text
(the planner reads references only from text). The planner then treats them like any other
computed column or filter, so no pass needs to know about time.

Grains are desugared to the few functions both engines share after sqlglot's transpiling:
`CAST(x AT TIME ZONE 'zone' AS DATE)` (Trino prints `at_timezone`; both give the local date),
`date_trunc(unit, date)` (Trino returns a date, DuckDB a timestamp: cast back to DATE) and
day arithmetic. `date_trunc('week')` starts weeks on Monday on both; another week start is
the Monday-based week of the day moved forward, moved back by the same number of days.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import TypeVar

from sqlglot import exp

from ..errors import GenesisError, Location
from ..project import business_time as bt
from ..project.model import Input
from . import expressions as ex

GRAINS = bt.UNITS  # the schema's enum of `grain:` (an unknown one is refused there, located)
TIME_TYPES = ("date", "timestamp", "timestamp with time zone")
LATEST_TAG = "genesis_latest"  # meta key on the ranked sub-query of a CDC `latest` view


def _check_time_type(value_type: str | None, what: str, reference: str, loc: Location | None) -> str:
    if value_type in TIME_TYPES:
        return value_type
    raise GenesisError(f"{what} needs a date or timestamp, but '{reference}' is {value_type or 'of unknown type'}",
                       loc, "use a date, timestamp or timestamp with time zone field")


def local_date_sql(reference: str, value_type: str, settings: bt.TimeSettings) -> str:
    """Trino SQL for the calendar day of a value in the project zone (a plain timestamp is a
    wall-clock time there already)."""
    if value_type == "date":
        return reference
    if value_type == "timestamp with time zone":
        return f"CAST({reference} AT TIME ZONE {_quote(settings.zone)} AS DATE)"
    return f"CAST({reference} AS DATE)"


def grain_sql(reference: str, value_type: str | None, grain: str, settings: bt.TimeSettings,
              loc: Location | None) -> str:
    """Trino SQL for the first day of the grain's period holding the value, in the project zone.

    The caller casts it to `date` (DuckDB's date_trunc and date arithmetic give timestamps)."""
    value_type = _check_time_type(value_type, f"grain '{grain}'", reference, loc)
    day = local_date_sql(reference, value_type, settings)
    if grain == "day":
        return day
    shift = (7 - settings.week_start_index) % 7 if grain == "week" else 0
    if not shift:
        return f"date_trunc('{grain}', {day})"
    moved = f"date_add('day', {shift}, {day})"
    return f"date_add('day', {-shift}, CAST(date_trunc('week', {moved}) AS DATE))"


def bound_sql(day: dt.date, value_type: str, settings: bt.TimeSettings) -> str:
    """The first instant of `day` in the project zone as a literal typed like the value it is compared with."""
    if value_type == "date":
        return f"DATE '{day.isoformat()}'"
    if value_type == "timestamp":
        return f"CAST('{day.isoformat()} 00:00:00' AS timestamp(6))"
    return instant_sql(bt.start_of_day(day, settings.zone))


def instant_sql(instant: dt.datetime) -> str:
    """A timestamp with time zone literal of an instant, written in UTC (both engines read it)."""
    text = instant.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return f"CAST('{text} UTC' AS timestamp(6) with time zone)"


def range_sql(reference: str, value_type: str | None, text: str, settings: bt.TimeSettings,
              loc: Location | None) -> str:
    """`value >= start AND value < end` for the range's days [start, end) in the project zone."""
    value_type = _check_time_type(value_type, f"range '{text}'", reference, loc)
    days = bt.parse_range(text, bt.today(settings), settings.week_start_index, loc)
    return (f"{reference} >= {bound_sql(days.start, value_type, settings)} "
            f"AND {reference} < {bound_sql(days.end, value_type, settings)}")


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def desugar(project, inp: Input) -> Input:
    """The input with every grain field a computed `date` column and every range filter SQL.

    Both become Trino text over the same reference, which the planner reads like any
    computed column or filter (its location is the YAML item's)."""
    if not any(f.grain for f in inp.fields) and not any(f.range for f in inp.filters):
        return inp
    from . import graph_of

    settings = bt.settings_of(project)
    graph = graph_of(project)

    def value_type(reference: str, loc: Location | None) -> str | None:
        member = graph.resolve(inp.root, reference, loc).member
        return getattr(member, "type", None)

    fields = []
    for item in inp.fields:
        if item.grain and item.field:
            if item.agg:
                raise GenesisError(f"'{item.field}' has both `grain` and `agg`", item.loc,
                                   "a grain groups rows by period; remove `agg:` (or the grain)")
            sql = grain_sql(item.field, value_type(item.field, item.sql_loc), item.grain, settings, item.loc)
            item = replace(item, field=None, sql=sql, type="date")
        fields.append(item)
    filters = []
    for flt in inp.filters:
        if flt.range:
            loc = flt.range_loc or flt.loc
            flt = replace(flt, sql=range_sql(flt.sql, value_type(flt.sql, flt.loc), flt.range, settings, loc),
                          range=None)
        filters.append(flt)
    return replace(inp, fields=tuple(fields), filters=tuple(filters))


# --------------------------------------------------------------------------- --as-of on CDC views

def moment_key(project) -> tuple:
    """What a compiled query's time-dependent literals depend on: the --as-of moment, and the
    project-zone day when "today" comes from the real clock (a compile cache key part)."""
    settings = bt.settings_of(project)
    moment = bt.as_of_moment(settings)
    return (moment, None) if moment is not None else (None, bt.today(settings))


def tag_latest(ranked: exp.Select, datasource_name: str) -> exp.Select:
    """Mark the ranked sub-query of a `latest` view, so apply_as_of can find it later."""
    ranked.meta[LATEST_TAG] = datasource_name
    return ranked


Query = TypeVar("Query", bound=exp.Expr)  # the query is changed in place and returned: its type is kept


def apply_as_of(ast: Query, project, moment: dt.datetime | None) -> Query:
    """Every CDC `latest` view of `ast` reads only the log rows with `order_by` at or before `moment`.

    The newest such row per key wins (a delete there drops the key), so the view is the
    table as it stood at that moment. No --as-of (`moment` None, see moment_key): the query
    is returned unchanged.
    """
    settings = bt.settings_of(project)
    if moment is None:
        return ast
    for select in list(ast.find_all(exp.Select)):
        name = select.meta.get(LATEST_TAG)
        if name is None:
            continue
        ds = project.datasources[name]
        order = ex.parse_expression(ds.latest.order_by, ds.latest.loc, f"latest.order_by of '{ds.name}'")
        value_type = _order_type(ds, order)
        if value_type == "timestamp with time zone":
            bound = instant_sql(moment)
        elif value_type == "timestamp":
            wall = moment.astimezone(settings.tzinfo).replace(tzinfo=None)
            bound = f"CAST('{wall.strftime('%Y-%m-%d %H:%M:%S.%f')}' AS timestamp(6))"
        elif value_type == "date":
            bound = f"DATE '{bt.today(settings, moment).isoformat()}'"
        else:
            raise GenesisError(
                f"--as-of reads '{ds.name}' as of a time, but its latest.order_by ({ds.latest.order_by}) is "
                f"{value_type or 'of unknown type'}", ds.latest.loc,
                "order the log by a date or timestamp column (e.g. the change's commit time)")
        select.where(exp.LTE(this=order, expression=ex.parse_expression(bound, None, "--as-of")), copy=False)
    return ast


def _order_type(ds, order: exp.Expr) -> str | None:
    from .members import _column_types
    from .typing import infer_type

    if isinstance(order, exp.Column) and order.name in ds.fields:
        return ds.fields[order.name].type
    return infer_type(order, _column_types(ds, order))
