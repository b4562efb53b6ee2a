"""A plan pass: aggregate a one_to_many branch before joining it.

When the only use of a one_to_many branch (`lineitem` under `orders`) is aggregates that
can be re-aggregated (sum, count, min, max), the branch is grouped by its join key in a
sub-query first and that is joined instead: one row per parent, so nothing fans out, and
the engine groups the big table by one narrow key. When the output is at the parent's
grain, a simple HAVING on those aggregates moves into the sub-query too (TPC-H Q18's
`IN (SELECT l_orderkey ... HAVING sum(l_quantity) > 300)` shape).
"""

from __future__ import annotations

from sqlglot import exp

from . import expressions as ex
from .plan import Plan, Planner, branch_of, field_expr

_DECOMPOSABLE = (exp.Sum, exp.Min, exp.Max, exp.Count)
_COMPARISONS = (exp.GT, exp.GTE, exp.LT, exp.LTE, exp.EQ, exp.NEQ)


def preaggregate(plan: Plan, planner: Planner) -> Plan:
    if any(unit.keyed for unit in plan.units):
        return plan
    branches = {branch_of(i) for i in plan.instances.values() if i.fans_out}
    for branch in sorted(branches):
        _try_branch(plan, planner, branch)
    return plan


def _try_branch(plan: Plan, planner: Planner, branch: tuple[str, ...]) -> None:
    members = [path for path in plan.instances if path[:len(branch)] == branch]
    if any(plan.instances[path].joins[-1].type == "inner" for path in members):
        return  # an inner join in the branch drops root rows without a match: keep it joined
    aliases = {plan.aliases[path] for path in members}
    units = [u for u in plan.units if _inside(u.node, aliases)]
    if not units or not all(_decomposable(u.node) for u in units):
        return
    unit_ids = {id(u.node) for u in units}
    if _referenced_outside(plan, aliases, unit_ids):
        return
    head, parent_path = plan.instances[branch], branch[:-1]
    alias = plan.aliases[branch]
    join = head.joins[-1]
    keys = [field_expr(head.datasource, head.datasource.fields[right], alias) for _, right in join.on]
    key_names = [f"_j{i}" for i in range(len(keys))]
    partials: dict[str, str] = {}  # the same aggregate twice (a column and a HAVING) is computed once
    for unit in units:
        partials.setdefault(unit.node.sql(ex.DIALECT), f"_p{len(partials)}")
    sub = exp.select(*[exp.alias_(k, n, copy=False) for k, n in zip(keys, key_names)])
    sub = sub.select(*[exp.alias_(ex.parse_expression(text, None, "partial"), name, copy=False)
                       for text, name in partials.items()], copy=False)
    from .render import join_below, relation  # render builds FROM clauses

    sub = sub.from_(relation(head.datasource, alias), copy=False)
    join_below(sub, plan.instances, plan.aliases, members, branch)
    sub = sub.group_by(*[exp.column(n) for n in key_names], copy=False)

    for unit in units:
        partial = exp.column(partials[unit.node.sql(ex.DIALECT)], table=alias)
        plan.replacements[id(unit.node)] = _outer(unit.node, partial)
    inner = _push_having(plan, planner, parent_path, units, sub)
    parent = plan.instances[parent_path]
    condition = exp.and_(*[
        field_expr(parent.datasource, parent.datasource.fields[left], plan.aliases[parent_path]).eq(
            exp.column(name, table=alias))
        for (left, _), name in zip(join.on, key_names)
    ], copy=False)
    subquery = exp.Subquery(this=sub, alias=exp.TableAlias(this=exp.to_identifier(alias)))
    plan.extra_joins.append((subquery, condition, inner))
    for path in members:
        del plan.instances[path]


def _inside(node: exp.Expression, aliases: set[str]) -> bool:
    tables = {c.table for c in node.find_all(exp.Column)}
    return bool(tables) and tables <= aliases


def _decomposable(node: exp.Expression) -> bool:
    if not isinstance(node, _DECOMPOSABLE):
        return False
    return not (isinstance(node, exp.Count) and isinstance(node.this, (exp.Distinct, exp.Star)))


def _referenced_outside(plan: Plan, aliases: set[str], unit_ids: set[int]) -> bool:
    trees = [c.expr for c in plan.columns] + plan.having + plan.where + plan.dims + plan.hidden_keys
    trees += [expr for expr, _ in plan.sort]
    for tree in trees:
        for column in tree.find_all(exp.Column):
            if column.table in aliases and not _under(column, unit_ids):
                return True
    return False


def _under(node: exp.Expression, ids: set[int]) -> bool:
    while node is not None:
        if id(node) in ids:
            return True
        node = node.parent
    return False


def _outer(unit: exp.Expression, partial: exp.Column) -> exp.Expression:
    """Re-aggregate a per-parent partial: sums and counts add up, min and max nest."""
    if isinstance(unit, exp.Min):
        return exp.Min(this=partial)
    if isinstance(unit, exp.Max):
        return exp.Max(this=partial)
    total = exp.Sum(this=partial)
    if isinstance(unit, exp.Count):  # a parent without children counts 0, not NULL
        return exp.Coalesce(this=total, expressions=[exp.Literal.number(0)])
    return total


def _push_having(plan: Plan, planner: Planner, parent_path, units, sub: exp.Select) -> bool:
    """Move `aggregate <op> constant` filters into the sub-query when groups are parent rows."""
    parent = plan.instances[parent_path]
    pk = parent.datasource.primary_key
    if not pk:
        return False
    group_keys = {e.sql(ex.DIALECT) for e in plan.dims + plan.hidden_keys}
    parent_keys = {field_expr(parent.datasource, parent.datasource.fields[k], plan.aliases[parent_path]).sql(ex.DIALECT)
                   for k in pk}
    if not parent_keys <= group_keys:
        return False
    by_id = {id(u.node): i for i, u in enumerate(units)}
    pushed = []
    for tree in plan.having:
        node = tree.unnest() if isinstance(tree, exp.Paren) else tree
        if not isinstance(node, _COMPARISONS):
            continue
        sides = [node.left, node.right]
        unit_sides = [s for s in sides if id(s) in by_id]
        other = [s for s in sides if id(s) not in by_id]
        if len(unit_sides) != 1 or any(other[0].find_all(exp.Column)) or isinstance(unit_sides[0], exp.Count):
            continue
        pushed.append(tree)
        sub.having(tree.copy(), copy=False)  # the copy keeps the unit's own aggregate over the branch
    for tree in pushed:
        plan.having.remove(tree)
    return bool(pushed)
