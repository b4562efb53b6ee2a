"""A rendering pass: a LEFT JOIN that cannot change the rows becomes an INNER JOIN.

Genesis joins a many_to_one / one_to_one parent with LEFT JOIN by default, so that a root row
whose parent is missing is kept (docs/semantics.md). Engines do not reorder outer joins the way
they reorder inner ones: Trino keeps `lineitem LEFT JOIN orders LEFT JOIN customer` in the
written order and builds a hash table of every order, where the inner joins of the same query
let its cost-based optimizer pick a far cheaper order (TPC-H q10 ran 1.7x slower as LEFT joins).
Where the result cannot differ, this pass prints the join as INNER:

- null-rejected: a condition of the same SELECT (its WHERE, or the ON of an inner join) is not
  true on a row where the join found nothing (`customer.c_mktsegment = 'BUILDING'`). That row
  is dropped either way, so INNER drops nothing more; the joins above it on its path (which
  a matched row implies) become INNER too;
- declared: the join says `required: true` (every row has its parent: referential integrity,
  as TPC-H's foreign keys guarantee) and the row it hangs from is always there (the FROM of the
  SELECT, or an instance joined INNER). A LEFT JOIN to a parent that always exists finds it, so
  INNER keeps the same rows. An undeclared join stays LEFT: a row whose parent is missing
  (an orphan key) still counts. Except in a listing with a LIMIT (no GROUP BY): there LEFT is
  the faster form, as Trino applies the ORDER BY ... LIMIT to the root rows before an outer
  join (TopN pushdown) but not before an inner one (the `sort_limit` shape ran 3.5x slower).

It runs on the finished AST, once per SELECT (the direct query, each CTE of the keyed query,
each EXISTS or pre-aggregated sub-query), and touches only joins to the plan's instances.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from sqlglot import exp

from .join_graph import Instance
from .members import false_when_missing
from .query_plan import QueryPlan

ALWAYS_FOUND = ("many_to_one", "one_to_one")  # relationships for which `required: true` means "one row"

Query = TypeVar("Query", bound=exp.Expr)  # the query is changed in place and returned: its type is kept


def tighten_joins(query: Query, plan: QueryPlan) -> Query:
    """Print as INNER every LEFT JOIN of `query` to a plan instance that cannot change its rows."""
    by_alias = {plan.aliases[path]: instance for path, instance in plan.resolved.items() if path}
    for select in [node for node in query.walk(prune=_holds_no_select) if isinstance(node, exp.Select)]:
        _tighten(select, by_alias, plan.aliases)
    return query


def _holds_no_select(node: exp.Expr) -> bool:
    """Parts of a query the search for SELECTs skips: a SELECT's output list, GROUP BY, HAVING,
    ORDER BY and LIMIT, a join's ON (Genesis writes sub-queries only in FROM, JOIN, WITH and
    WHERE's EXISTS), tables, column names and literals. Walking them was most of this pass's
    time; a SELECT it missed would only keep its LEFT joins."""
    if isinstance(node, (exp.Column, exp.Identifier, exp.Literal, exp.Table)):
        return True
    parent = node.parent
    if isinstance(parent, exp.Select):
        return node.arg_key in ("expressions", "group", "having", "order", "limit")
    return node.arg_key == "on" and isinstance(parent, exp.Join)


def _tighten(select: exp.Select, by_alias: dict[str, Instance], aliases: Mapping[tuple[str, ...], str]) -> None:
    joins = [j for j in select.args.get("joins") or [] if j.this.alias_or_name in by_alias]
    if not joins:
        return
    joined = {by_alias[j.this.alias_or_name].path: j for j in joins}
    conditions = [select.args["where"].this] if select.args.get("where") else []
    conditions += [j.args["on"] for j in select.args.get("joins") or [] if _is_inner(j) and j.args.get("on")]

    source = select.args.get("from") or select.args.get("from_")
    from_alias = source.this.alias_or_name if source is not None else None
    inner: set[tuple[str, ...]] = set()
    for path, join in joined.items():
        if _is_inner(join):
            inner.add(path)
            continue
        missing = {aliases[p] for p in joined if p[:len(path)] == path}
        if any(false_when_missing(condition, missing) for condition in conditions):
            inner.update(p for p in joined if path[:len(p)] == p)  # the path itself and its ancestors
    # A listing with a LIMIT keeps its declared joins LEFT: the engine may then take the first
    # rows of the root before joining (Trino pushes TopN through an outer join, not an inner one).
    listing_limit = select.args.get("limit") is not None and not select.args.get("group") \
        and not select.args.get("distinct")
    for path in [] if listing_limit else sorted(joined, key=lambda p: (len(p), p)):  # parents first
        last = by_alias[aliases[path]].joins[-1]
        parent_there = path[:-1] in inner or aliases.get(path[:-1]) == from_alias
        if last.required and last.relationship in ALWAYS_FOUND and parent_there:
            inner.add(path)
    for path in inner:
        joined[path].set("side", None)


def _is_inner(join: exp.Join) -> bool:
    return not join.side and join.kind in ("", "INNER")
