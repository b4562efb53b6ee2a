"""A pass: aggregate a one_to_many branch before joining it.

When the only use of a one_to_many branch (`lineitem` under `orders`) is aggregates that
can be re-aggregated (sum, count, min, max), the branch is grouped by its join key in a
sub-query first and that is joined instead: one row per parent, so nothing fans out, and
the engine groups the big table by one narrow key. When the output is at the parent's
grain, a simple HAVING on those aggregates moves into the sub-query too (TPC-H Q18's
`IN (SELECT l_orderkey ... HAVING sum(l_quantity) > 300)` shape).
"""

from __future__ import annotations

import dataclasses

from sqlglot import exp

from .. import expressions as ex
from ..members import field_expr
from ..query_plan import AggregateCall, PreAggregation, QueryPlan, SemiJoin, branch_of, frozen

_DECOMPOSABLE = (exp.Sum, exp.Min, exp.Max, exp.Count)
_COMPARISONS = (exp.GT, exp.GTE, exp.LT, exp.LTE, exp.EQ, exp.NEQ)


def preaggregate(plan: QueryPlan) -> QueryPlan:
    """The plan with a PreAggregation for every branch read only by re-aggregatable calls."""
    if any(call.keyed for call in plan.calls):
        return plan
    branches = {branch_of(i) for i in plan.instances.values() if i.repeats_root_rows}
    for branch in sorted(branches):
        plan = _try_branch(plan, branch)
    return plan


def _try_branch(plan: QueryPlan, branch: tuple[str, ...]) -> QueryPlan:
    members = [path for path in plan.instances if path[:len(branch)] == branch]
    if any(plan.instances[path].joins[-1].type == "inner" for path in members):
        return plan  # an inner join in the branch drops root rows without a match: keep it joined
    aliases = {plan.aliases[path] for path in members}
    calls = [c for c in plan.calls if _inside(c.node, aliases)]
    if not calls or not all(_decomposable(c.node) for c in calls):
        return plan
    if _referenced_outside(plan, aliases, {id(c.node) for c in calls}):
        return plan
    parent_path = branch[:-1]
    pushed = _pushable_having(plan, parent_path, calls)
    ordered = sorted(members, key=lambda p: (len(p), p))
    decision = PreAggregation(plan.instances[parent_path], plan.instances[branch],
                              tuple(plan.instances[p] for p in ordered), tuple(calls), tuple(pushed))
    instances = {path: i for path, i in plan.instances.items() if path not in members}
    return dataclasses.replace(
        plan, instances=frozen(instances), pre_aggregations=plan.pre_aggregations + (decision,),
        having=tuple(h for h in plan.having if not any(h is p for p in pushed)))


def _inside(node: exp.Expr, aliases: set[str]) -> bool:
    tables = {c.table for c in node.find_all(exp.Column)}
    return bool(tables) and tables <= aliases


def _decomposable(node: exp.Expr) -> bool:
    if not isinstance(node, _DECOMPOSABLE):
        return False
    return not (isinstance(node, exp.Count) and isinstance(node.this, (exp.Distinct, exp.Star)))


def _referenced_outside(plan: QueryPlan, aliases: set[str], call_ids: set[int]) -> bool:
    trees = [c.expr for c in plan.columns] + list(plan.having) + list(plan.where) + list(plan.dims)
    trees += list(plan.hidden_keys) + [s.expr for s in plan.sort if s.expr is not None]
    for tree in trees:
        if isinstance(tree, SemiJoin):
            continue  # a semi-join reads its own branch
        for column in tree.find_all(exp.Column):
            if column.table in aliases and not _under(column, call_ids):
                return True
    return False


def _under(node: exp.Expr | None, ids: set[int]) -> bool:
    while node is not None:
        if id(node) in ids:
            return True
        node = node.parent
    return False


def _pushable_having(plan: QueryPlan, parent_path, calls: list[AggregateCall]) -> list[exp.Expr]:
    """The `aggregate <op> constant` filters that can move into the sub-query: when groups are parent rows."""
    parent = plan.instances[parent_path]
    pk = parent.datasource.primary_key
    if not pk:
        return []
    group_keys = {e.sql(ex.DIALECT) for e in plan.dims + plan.hidden_keys}
    parent_keys = {field_expr(parent.datasource, parent.datasource.fields[k], plan.aliases[parent_path]).sql(ex.DIALECT)
                   for k in pk}
    if not parent_keys <= group_keys:
        return []
    by_id = {id(c.node) for c in calls}
    pushed = []
    for tree in plan.having:
        node = tree.unnest() if isinstance(tree, exp.Paren) else tree
        if not isinstance(node, _COMPARISONS):
            continue
        sides = [node.left, node.right]
        call_sides = [s for s in sides if id(s) in by_id]
        other = [s for s in sides if id(s) not in by_id]
        if len(call_sides) != 1 or any(other[0].find_all(exp.Column)) or isinstance(call_sides[0], exp.Count):
            continue
        pushed.append(tree)
    return pushed
