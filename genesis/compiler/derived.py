"""Derived measures: a measure defined from other measures (`sql:` without `agg:`).

`avg_budget: {sql: "total_budget / nullif(movie_count, 0)"}` desugars, where it is used,
into that expression over the measures it names, each expanded by the planner like any
measure used in an input. So every referenced measure keeps its own grain (plan.py's
`grain_of`) and the fan-out machinery (key sub-queries, pre-aggregation) plans each one:
`production.total_cost / shoot_day.day_count` over a one_to_many join to shoot days adds
each production's cost once, however many shoot days the join brings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from ..errors import GenesisError
from ..project.model import Measure
from . import expressions as ex
from .definitions import at_instance, check_no_cycle, resolve_local, what_of
from .join_graph import Instance, JoinGraph
from .typing import portable_arithmetic

if TYPE_CHECKING:
    from .plan import Resolver


def check_derived_measure(graph: JoinGraph, ds, measure: Measure) -> None:
    """Static checks of a derived measure's definition (run by `validate` and before expanding):
    it only reads measures, aggregates nothing itself, and does not refer to itself."""
    what = what_of(ds, measure)
    tree = ex.read_expression(measure.sql or "", measure.sql_loc, what)
    units = ex.aggregate_units(tree)
    if units:
        raise GenesisError(
            f"{what} has no `agg`, so it combines other measures; it may not aggregate rows itself "
            f"('{units[0].sql(ex.DIALECT)}')", measure.sql_loc or measure.loc,
            "define that aggregate as a measure of its own (agg: sum, sql: ...) and use its name here")
    for node in list(ex.reference_nodes(tree)):
        local = resolve_local(graph, ds, node, measure.sql_loc, what)
        if not isinstance(local.member, Measure):
            kind = "field" if local.member.__class__.__name__ == "Field" else "segment"
            raise GenesisError(
                f"{what} is derived from measures, but '{local.text}' is a {kind}", measure.sql_loc or measure.loc,
                f"aggregate it in a measure of its own (agg: sum, sql: {local.member.name}) and use that")
    check_no_cycle(graph, ds, measure)


def derived_measure_expr(planner: Resolver, instance: Instance, measure: Measure) -> exp.Expr:
    """The SQL of a derived measure at `instance`: its expression over the referenced
    measures' own SQL (each registered with its own instance, so each keeps its grain)."""
    ds = instance.datasource
    what = what_of(ds, measure)
    check_derived_measure(planner.graph, ds, measure)
    tree = ex.parse_expression(measure.sql or "", measure.sql_loc, what)

    def replace(node: exp.Expr) -> exp.Expr:
        local = resolve_local(planner.graph, ds, node, measure.sql_loc, what)
        return planner.member_expr(at_instance(instance, local), measure.sql_loc)

    tree = portable_arithmetic(ex.replace_references(tree, replace), planner.known_types)
    if measure.type:
        return ex.cast(exp.paren(tree, copy=False) if not isinstance(tree, exp.Func) else tree, measure.type)
    return tree
