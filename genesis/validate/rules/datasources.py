"""Data sources: keys, joins and SQL snippets that every input over them relies on.

These rules gate the rest: while a data source is broken, the inputs and trackers over it
are not checked, since each would only repeat the data source's problem.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

from ...compiler.expressions import read_expression
from ...compiler.plan import field_expr
from ...errors import GenesisError, did_you_mean
from ...project.model import DataSource, Project
from ..outcomes import attempt
from ..registry import Rule


def primary_key_fields(project: Project, ds: DataSource) -> Iterator[GenesisError]:
    """Each primary_key column is a field of the data source."""
    for key in ds.primary_key:
        if key not in ds.fields:
            yield GenesisError(f"primary_key '{key}' is not a field of '{ds.name}'",
                               ds.locs.get("primary_key", ds.loc), did_you_mean(key, ds.fields))


def sql_snippets_parse(project: Project, ds: DataSource) -> Iterator[GenesisError]:
    """Each field's and measure's `sql:` and the `latest` expressions parse, and a field's
    SQL reads only its own table's columns."""
    for f in ds.fields.values():
        if f.sql is not None:
            yield from attempt(lambda: field_expr(ds, f, ds.name))[1]
    for m in ds.measures.values():
        sql = m.sql
        if sql is not None and sql not in ds.fields and not m.derived:  # derived: datasource.definitions
            yield from attempt(lambda: read_expression(sql, m.sql_loc, f"measure '{ds.name}.{m.name}'"))[1]
    latest = ds.latest
    if latest is not None:
        yield from attempt(lambda: read_expression(latest.order_by, latest.loc, "latest.order_by"))[1]
        deleted = latest.deleted
        if deleted:
            yield from attempt(lambda: read_expression(deleted, latest.loc, "latest.deleted"))[1]


def joins_resolve(project: Project, ds: DataSource) -> Iterator[GenesisError]:
    """Each join points at a known data source, on fields both sides have."""
    for join in ds.joins.values():
        target = project.datasources.get(join.datasource)
        if target is None:
            yield GenesisError(f"join '{join.name}' points at unknown data source '{join.datasource}'", join.loc,
                               did_you_mean(join.datasource, project.datasources))
            continue
        for left, right in join.on:
            if left not in ds.fields:
                yield GenesisError(f"join '{join.name}': '{left}' is not a field of '{ds.name}'", join.loc,
                                   did_you_mean(left, ds.fields))
            if right not in target.fields:
                yield GenesisError(f"join '{join.name}': '{right}' is not a field of '{target.name}'", join.loc,
                                   did_you_mean(right, target.fields))


def definitions_resolve(project: Project, ds: DataSource) -> list[GenesisError]:
    """Derived measures and segments: what they name exists, and none refers to itself
    (directly or through others)."""
    from ...compiler import graph_of
    from ...compiler.derived import check_derived_measure
    from ...compiler.segments import check_segment

    if any(j.datasource not in project.datasources for d in project.datasources.values() for j in d.joins.values()):
        return []  # datasource.joins reports it; resolving over a broken graph would only repeat it
    graph = graph_of(project)
    problems: list[GenesisError] = []
    for m in ds.measures.values():
        if m.derived:
            problems += attempt(partial(check_derived_measure, graph, ds, m))[1]
    for segment in ds.segments.values():
        problems += attempt(partial(check_segment, graph, ds, segment))[1]
    return problems


RULES = (
    Rule("datasource.primary_key", datasource=primary_key_fields, gate=True),
    Rule("datasource.sql", datasource=sql_snippets_parse, gate=True),
    Rule("datasource.joins", datasource=joins_resolve, gate=True),
    Rule("datasource.definitions", datasource=definitions_resolve, gate=True),
)
