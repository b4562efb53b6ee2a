"""Segments: named, reusable row conditions of a data source (`segments: {active: ...}`).

A reference to a segment (`movie.active`, `production.active` through joins) means its
condition with each field it names read at the referring instance, exactly as if the
input had written `production.status IN (...)`: the same NULL-extension and one_to_many
rules (docs/semantics.md, sections 1 and 2) apply. The reference is kept among the
compiled query's references (`movie.active`), so `impact` and the catalog see its users.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from ..errors import GenesisError
from ..project.model import Measure, Segment
from . import expressions as ex
from .definitions import at_instance, check_no_cycle, resolve_local, what_of
from .join_graph import Instance, JoinGraph
from .typing import portable_arithmetic

if TYPE_CHECKING:
    from .plan import Resolver


def check_segment(graph: JoinGraph, ds, segment: Segment) -> None:
    """Static checks of a segment (run by `validate` and before expanding): a row condition
    over fields (and other segments), no aggregate or measure, and no cycle."""
    what = what_of(ds, segment)
    loc = segment.sql_loc or segment.loc
    tree = ex.read_expression(segment.sql, loc, what)
    if ex.has_aggregate(tree):
        raise GenesisError(f"{what} aggregates; a segment is a condition on each row", loc,
                           "write the aggregate condition as a filter of the input")
    for node in list(ex.reference_nodes(tree)):
        local = resolve_local(graph, ds, node, loc, what)
        if isinstance(local.member, Measure):
            raise GenesisError(f"{what} reads the measure '{local.text}'; a segment is a condition on each row",
                               loc, "compare the measure in a filter of the input instead")
    check_no_cycle(graph, ds, segment)


def segment_expr(planner: Resolver, instance: Instance, segment: Segment) -> exp.Expr:
    """The condition of `segment` at `instance`, parenthesized so it combines like one term."""
    ds = instance.datasource
    what = what_of(ds, segment)
    loc = segment.sql_loc or segment.loc
    check_segment(planner.graph, ds, segment)
    tree = ex.parse_expression(segment.sql, loc, what)

    def replace(node: exp.Expr) -> exp.Expr:
        return planner.member_expr(at_instance(instance, resolve_local(planner.graph, ds, node, loc, what)), loc)

    tree = portable_arithmetic(ex.replace_references(tree, replace), planner.known_types)
    return exp.paren(tree, copy=False)
