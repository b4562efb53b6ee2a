"""A pass: deterministic row order at no noticeable cost: the fewest tie-breakers that make it total.

Every written file must come out the same for the same data, so the ORDER BY must leave no
two rows tied. Appending every output column does that, but sorting on long texts costs (TPC-H
Q10 sorted by seven columns, comments and addresses included, took 1.27x the official text).
The rows are already told apart by fewer columns:
- a listing (grouped or not) has one row per root row: the root's primary key;
- a grouped input has one row per combination of its group keys, and when those keys hold the
  primary key of one instance and every other key is a field of that instance or of a row it
  reaches over many_to_one / one_to_one joins, that primary key alone (the shortest such
  path first); otherwise the group keys (every output column when one shows labels, as two
  codes may show as the same text);
- a global aggregate has one row: nothing.
What the sort already orders by is not repeated; when no key is known, every output column is.
"""

from __future__ import annotations

import dataclasses

from sqlglot import exp

from ..members import field_expr
from ..query_plan import PlannedColumn, QueryPlan, TieBreaker


def tie_breakers(plan: QueryPlan) -> QueryPlan:
    """The plan with the tie-breakers (output columns or root key fields) the sort needs appended."""
    sorted_names = {s.name for s in plan.sort if s.name is not None}
    sorted_texts = {s.expr.sql() for s in plan.sort if s.expr is not None}
    sorted_texts |= {exp.column(name, quoted=True).sql() for name in sorted_names}
    candidates = _unique_key(plan)
    if candidates is None:  # no key known: every output column
        candidates = [TieBreaker(column=c.output.name) for c in plan.columns]
    root = plan.root.datasource
    chosen = []
    for candidate in candidates:
        if candidate.column is not None:
            if candidate.column in sorted_names or exp.column(candidate.column, quoted=True).sql() in sorted_texts:
                continue
        elif field_expr(root, root.fields[str(candidate.root_key)], plan.aliases[()]).sql() in sorted_texts:
            continue
        chosen.append(candidate)
    return dataclasses.replace(plan, tie_breakers=tuple(chosen))


def _unique_key(plan: QueryPlan) -> list[TieBreaker] | None:
    if plan.metric_mode or (plan.grouped and not plan.hidden_keys):
        dims = [c for c in plan.columns if not c.aggregate]
        if not dims:
            return []  # one row
        key = _determining_key(plan, dims)
        if key is None and any(c.labels for c in dims):
            return None  # two codes may show as the same text: every output column
        return key or [TieBreaker(column=c.output.name) for c in dims]
    root = plan.root.datasource
    if not root.primary_key:
        return None
    keys = []
    for name in root.primary_key:
        column = _plain_column(plan.columns, (), name)
        keys.append(TieBreaker(column=column.output.name) if column is not None else TieBreaker(root_key=name))
    return keys


def _plain_column(columns, path: tuple[str, ...], name: str) -> PlannedColumn | None:
    return next((c for c in columns if c.member_key == (path, name) and not c.labels and not c.aggregate), None)


def _determining_key(plan: QueryPlan, dims: list[PlannedColumn]) -> list[TieBreaker] | None:
    """The output columns of one instance's primary key, when that key fixes every other group key."""
    member_keys = [c.member_key for c in dims]
    if any(k is None or k[0] not in plan.instances for k in member_keys):
        return None
    paths = [k[0] for k in member_keys if k is not None]
    for path in sorted(set(paths), key=lambda p: (len(p), p)):
        ds = plan.instances[path].datasource
        key_columns = [_plain_column(dims, path, k) for k in ds.primary_key]
        found = [k for k in key_columns if k is not None]
        if not key_columns or len(found) < len(key_columns):
            continue
        if all(_reached_by_one(plan, path, other) for other in paths):
            return [TieBreaker(column=k.output.name) for k in found]
    return None


def _reached_by_one(plan: QueryPlan, path: tuple[str, ...], other: tuple[str, ...]) -> bool:
    """Does one row at `path` lead to at most one row at `other` (many_to_one / one_to_one joins down)?"""
    if other[:len(path)] != path:
        return False
    joins = plan.instances[other].joins[len(path):]
    return all(j.relationship in ("many_to_one", "one_to_one") for j in joins)
