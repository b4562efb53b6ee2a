"""A pass: each CTE of the keyed query joins only what its aggregates and keys need.

The keyed query (render.py) computes a multiplied aggregate over DISTINCT (group keys, grain
key, inputs) of the whole query's joins. `orders.total_price` beside `sum(lineitem.price)`
would take DISTINCT over orders LEFT JOIN lineitem: the join multiplies the orders by their
lines and DISTINCT removes the copies again, at the price of a big join and a big DISTINCT.

For every CTE (the `base` one and each grain's) this pass keeps the instances its group keys,
aggregates and grain read, and for each other subtree of joins:
- a subtree that cannot repeat rows (many_to_one / one_to_one joins) is joined when a filter
  reads it or it is an inner join (it can drop rows), and left out otherwise;
- a subtree that can repeat rows (a one_to_many join) and only left-joins with no filter on it
  changes no row's presence: left out;
- otherwise it decides which rows stay (a filter on it, or an inner join): it becomes
  EXISTS (...) over that subtree with those filters (a semi-join), which keeps the same rows
  without repeating them.
When what is left cannot repeat the grain's rows, the CTE needs no DISTINCT at all. A filter
over two such subtrees at once, or one that holds on a NULL-extended row, keeps the CTE as it
was (every join and DISTINCT): correctness first.
"""

from __future__ import annotations

import dataclasses

from sqlglot import exp

from ..members import false_when_missing
from ..query_plan import (
    CteSource,
    Filter,
    Grain,
    QueryPlan,
    SemiJoin,
    frozen,
    instances_in,
    joins_repeat,
    missing_aliases,
)
from .semi_join import semi_join_of


def fewest_joins(plan: QueryPlan) -> QueryPlan:
    """The plan with a CteSource for each CTE of the keyed query that can join less."""
    if not any(call.keyed for call in plan.calls):
        return plan
    sources: dict[str, CteSource] = {}
    keys = list(plan.dims + plan.hidden_keys)
    base = _source(plan, keys + [c.node for c in plan.calls if not c.keyed], [], None)
    if base is not None:
        sources["base"] = base
    by_grain: dict[str, list] = {}
    for call in plan.calls:
        if call.keyed:
            by_grain.setdefault(call.grain_alias, []).append(call)
    for grain_alias, calls in by_grain.items():
        identity = [i.path for i in calls[0].identity]
        source = _source(plan, keys + [c.node for c in calls], identity, calls[0].grain)
        if source is not None:
            sources[grain_alias] = source
    return dataclasses.replace(plan, cte_sources=frozen(sources))


def _source(plan: QueryPlan, trees, extra_paths, grain: Grain | None) -> CteSource | None:
    present = set(plan.instances)
    needed: set[tuple[str, ...]] = set()
    for path in [i.path for tree in trees for i in instances_in(plan, tree)] + list(extra_paths) + [()]:
        if path in present:
            needed.update(path[:n] for n in range(len(path) + 1))

    def head_of(path):  # the first instance on the path that is not needed
        return next(path[:n] for n in range(1, len(path) + 1) if path[:n] not in needed)

    heads = sorted({head_of(p) for p in present - needed})
    kept: list[Filter] = []
    by_head: dict[tuple[str, ...], list[Filter]] = {h: [] for h in heads}
    for tree in plan.where:
        touched = {head_of(i.path) for i in instances_in(plan, tree) if i.path in present - needed}
        if len(touched) > 1:
            return None
        (by_head[touched.pop()] if touched else kept).append(tree)

    joined = set(needed)
    for head in heads:
        members = [p for p in present if p[:len(head)] == head]
        joins = [j for p in members for j in plan.instances[p].joins[len(head) - 1:]]
        repeats = any(j.relationship == "one_to_many" for j in joins)
        drops = any(j.type == "inner" for j in joins)
        filters = by_head[head]
        if not repeats:
            if filters or drops:
                joined.update(members)
                kept.extend(filters)
            continue
        if not filters and not drops:
            continue
        if not drops and not all(_needs_row(plan, tree, head) for tree in filters):
            return None
        kept.append(semi_join_of(plan, head, members, filters))

    order = sorted(joined, key=lambda p: (len(p), p))
    distinct = grain is not None and joins_repeat(plan, grain, order)
    return CteSource(tuple(order), tuple(kept), distinct)


def _needs_row(plan: QueryPlan, tree: Filter, head: tuple[str, ...]) -> bool:
    """Is the filter false (or NULL) on a row where the left join to `head` found nothing?"""
    if isinstance(tree, SemiJoin):
        return False  # EXISTS is true or false on any row: it does not tell
    missing = missing_aliases(plan, plan.instances[head])
    for conjunct in tree.flatten() if isinstance(tree, exp.And) else [tree]:
        conjunct = conjunct.unnest()
        if isinstance(conjunct, exp.And):
            if _needs_row(plan, conjunct, head):
                return True
            continue
        if false_when_missing(conjunct, missing):
            return True
        # The guard _only_existing_children adds: `head_key IS NOT NULL`.
        if isinstance(conjunct, exp.Not) and isinstance(conjunct.this, exp.Is) \
                and isinstance(conjunct.this.expression, exp.Null) \
                and isinstance(conjunct.this.this, exp.Column) and conjunct.this.this.table in missing:
            return True
    return False
