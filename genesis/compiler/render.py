"""QueryPlan to sqlglot AST: every SQL node of the query is built here.

The passes (passes/) only record decisions; this module builds the SQL for each: a
SemiJoin is an EXISTS sub-query, a PreAggregation a grouped sub-query joined in place of
its branch, a CteSource the FROM and WHERE of one CTE, a TieBreaker an ORDER BY item.

Two shapes come out:
- the direct query: SELECT ... FROM root LEFT JOIN ... WHERE ... GROUP BY ... HAVING,
  used whenever no aggregate is multiplied by the joins (every TPC-H query, most
  trackers);
- the keyed query: a `base` CTE with the group keys and the safe aggregates, one CTE
  per multiplied grain that first takes DISTINCT (group keys, grain key, inputs) and
  then aggregates, and a final SELECT joining them on the group keys (null-safe).
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlglot import exp

from ..project.model import DataSource
from . import expressions as ex
from .join_graph import Instance
from .members import equals, field_expr, join_condition, labelled
from .query_plan import AggregateCall, Filter, PlannedColumn, PreAggregation, QueryPlan, SemiJoin
from .time import tag_latest


def build_query(plan: QueryPlan) -> exp.Select:
    """The SELECT of a plan the passes have run over."""
    if any(call.keyed for call in plan.calls):
        return _keyed_query(plan)
    return _direct_query(plan)


# ------------------------------------------------------------------ FROM

def relation(ds: DataSource, alias: str) -> exp.Expr:
    """The data source's table (or its newest-row-per-key view, for `latest:`) AS alias."""
    if ds.latest is None:
        return ex.table(ds.table, alias)
    return exp.Subquery(this=_latest_select(ds), alias=exp.TableAlias(this=exp.to_identifier(alias)))


def _latest_select(ds: DataSource) -> exp.Select:
    """Newest row per primary key; keys whose newest row is a delete are dropped.

    Built once per data source and copied for each use: a copy costs a fraction of a build
    (a query may read the view several times, and every query of the project may)."""
    return ds.derived("latest_select", lambda: _build_latest_select(ds)).copy()


def _build_latest_select(ds: DataSource) -> exp.Select:
    raw = "_genesis_raw"
    latest = ds.latest
    assert latest is not None
    keys = [_unqualified(field_expr(ds, ds.fields[k], raw)) for k in ds.primary_key]
    order = ex.parse_expression(latest.order_by, latest.loc, f"latest.order_by of '{ds.name}'")
    ranked = exp.Window(
        this=exp.RowNumber(),
        partition_by=keys,
        order=exp.Order(expressions=[exp.Ordered(this=order, desc=True)]),
    )
    inner = tag_latest(exp.select(exp.Star(), exp.alias_(ranked, "_genesis_rn", copy=False))
                       .from_(ex.table(ds.table, raw), copy=False), ds.name)  # --as-of filters it
    inner.selects[0].replace(exp.Column(this=exp.Star(), table=exp.to_identifier(raw)))
    condition: exp.Expr = exp.column("_genesis_rn").eq(1)
    if latest.deleted:
        deleted = ex.parse_expression(latest.deleted, latest.loc, f"latest.deleted of '{ds.name}'")
        condition = exp.and_(condition, exp.Not(this=exp.Coalesce(this=exp.paren(deleted, copy=False), expressions=[exp.false()])))
    ranked_rows = exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier("_genesis_ranked")))
    return exp.select(exp.Star()).from_(ranked_rows, copy=False).where(condition, copy=False)


def _unqualified(node: exp.Expr) -> exp.Expr:
    for column in node.find_all(exp.Column):
        column.set("table", None)
    return node


def _from(plan: QueryPlan, select: exp.Select, paths=None) -> exp.Select:
    """FROM the root, joined to every instance of the plan (or only to `paths`)."""
    select = select.from_(relation(plan.root.datasource, plan.aliases[()]), copy=False)
    join_below(select, plan.instances, plan.aliases, list(plan.instances) if paths is None else paths, ())
    for decision in plan.pre_aggregations:
        subquery, condition = _pre_aggregated(plan, decision)
        add_join(select, subquery, condition, inner=bool(decision.having))
    return select


def join_below(select: exp.Select, instances: Mapping[tuple[str, ...], Instance], aliases, paths,
               head: tuple[str, ...]) -> None:
    """Join every instance of `paths` below `head`, parents first, with its declared join type."""
    for path in sorted(paths, key=lambda p: (len(p), p)):
        if path == head:
            continue
        child = instances[path]
        condition = join_condition(instances[path[:-1]], aliases[path[:-1]], child, aliases[path])
        add_join(select, relation(child.datasource, aliases[path]), condition,
                 inner=child.joins[-1].type == "inner")


def _filter(plan: QueryPlan, item: Filter) -> exp.Expr:
    """A WHERE condition: a copy of a resolved filter, or the EXISTS of a semi-join."""
    if isinstance(item, SemiJoin):
        return _exists(plan, item)
    return item.copy()


def _exists(plan: QueryPlan, decision: SemiJoin) -> exp.Exists:
    """EXISTS (SELECT 1 FROM branch ... WHERE correlation AND filters)."""
    head, alias = decision.head, plan.aliases[decision.head.path]
    sub = exp.select(exp.Literal.number(1)).from_(relation(head.datasource, alias), copy=False)
    # The joins the outer query would have made below the branch, so the filters mean the same.
    instances = {i.path: i for i in decision.members}
    join_below(sub, instances, plan.aliases, list(instances), head.path)
    correlation = join_condition(decision.parent, plan.aliases[decision.parent.path], head, alias)
    trees = [exp.paren(_filter(plan, t), copy=False) for t in decision.filters]
    sub = sub.where(exp.and_(correlation, *trees, copy=False), copy=False)
    return exp.Exists(this=sub)


def _partials(decision: PreAggregation) -> dict[str, str]:
    """The partial aggregates of a pre-aggregated branch (their SQL -> column name); the same
    aggregate twice (a column and a HAVING) is computed once."""
    partials: dict[str, str] = {}
    for call in decision.calls:
        partials.setdefault(call.node.sql(ex.DIALECT), f"_p{len(partials)}")
    return partials


def _pre_aggregated(plan: QueryPlan, decision: PreAggregation) -> tuple[exp.Subquery, exp.Expr]:
    """(SELECT join keys, partial aggregates FROM branch GROUP BY join keys) AS alias, and the join condition."""
    head, alias = decision.head, plan.aliases[decision.head.path]
    join = head.joins[-1]
    keys = [field_expr(head.datasource, head.datasource.fields[right], alias) for _, right in join.on]
    key_names = [f"_j{i}" for i in range(len(keys))]
    sub = exp.select(*[exp.alias_(k.copy(), n, copy=False) for k, n in zip(keys, key_names)])
    sub = sub.select(*[exp.alias_(ex.parse_expression(text, None, "partial"), name, copy=False)
                       for text, name in _partials(decision).items()], copy=False)
    sub = sub.from_(relation(head.datasource, alias), copy=False)
    instances = {i.path: i for i in decision.members}
    join_below(sub, instances, plan.aliases, list(instances), head.path)
    sub = sub.group_by(*keys, copy=False)  # expressions: Trino cannot GROUP BY an output alias
    for tree in decision.having:
        sub.having(tree.copy(), copy=False)  # the copy keeps the call's own aggregate over the branch
    parent = decision.parent
    condition = exp.and_(*[
        equals(field_expr(parent.datasource, parent.datasource.fields[left], plan.aliases[parent.path]),
               exp.column(name, table=alias))
        for (left, _), name in zip(join.on, key_names)
    ], copy=False)
    return exp.Subquery(this=sub, alias=exp.TableAlias(this=exp.to_identifier(alias))), condition


def _replacements(plan: QueryPlan) -> dict[int, exp.Expr]:
    """Each pre-aggregated call (by identity) -> its re-aggregation of the partial column."""
    found = {}
    for decision in plan.pre_aggregations:
        partials = _partials(decision)
        alias = plan.aliases[decision.head.path]
        for call in decision.calls:
            partial = exp.column(partials[call.node.sql(ex.DIALECT)], table=alias)
            found[id(call.node)] = _outer(call.node, partial)
    return found


def _outer(call: exp.Expr, partial: exp.Column) -> exp.Expr:
    """Re-aggregate a per-parent partial: sums and counts add up, min and max nest."""
    if isinstance(call, exp.Min):
        return exp.Min(this=partial)
    if isinstance(call, exp.Max):
        return exp.Max(this=partial)
    total = exp.Sum(this=partial)
    if isinstance(call, exp.Count):  # a parent without children counts 0, not NULL
        return exp.Coalesce(this=total, expressions=[exp.Literal.number(0)])
    return total


def add_join(select: exp.Select, relation: exp.Expr, condition: exp.Expr, inner: bool) -> None:
    """Append `[LEFT] JOIN relation ON condition` to `select`."""
    # Built directly: Select.join() would parse its join_type string on every call.
    join = exp.Join(this=relation, on=condition) if inner else exp.Join(this=relation, on=condition, side="LEFT")
    select.append("joins", join)


# ------------------------------------------------------------------ columns

def _labelled(column: PlannedColumn, expr: exp.Expr) -> exp.Expr:
    return labelled(expr, column.labels, column.label_type) if column.labels else expr


def _sort_and_limit(plan: QueryPlan, select: exp.Select, over_output=lambda e: e.copy()) -> exp.Select:
    ordered = []
    for key in plan.sort:
        this = exp.column(key.name, quoted=True) if key.name is not None else over_output(key.expr)
        ordered.append(exp.Ordered(this=this, desc=key.descending, nulls_first=False))
    # Tie-breakers make the row order, and so every written file, deterministic (passes/order.py).
    root = plan.root.datasource
    for tie in plan.tie_breakers:
        this = exp.column(tie.column, quoted=True) if tie.column is not None else over_output(
            field_expr(root, root.fields[str(tie.root_key)], plan.aliases[()]))
        ordered.append(exp.Ordered(this=this, desc=False, nulls_first=False))
    if ordered:
        select = select.order_by(*ordered, copy=False)
    if plan.limit:
        select = select.limit(plan.limit, copy=False)
    return select


# ------------------------------------------------------------------ direct

def _direct_query(plan: QueryPlan) -> exp.Select:
    replacements = _replacements(plan)
    select = exp.select(*[
        exp.alias_(_labelled(c, _replaced(c.expr, replacements)), c.output.name, quoted=True, copy=False)
        for c in plan.columns
    ])
    select = _from(plan, select)
    if plan.where:
        select = select.where(exp.and_(*[exp.paren(_filter(plan, w), copy=False) for w in plan.where], copy=False),
                              copy=False)
    if plan.grouped:
        keys = [d.copy() for d in plan.dims] + [k.copy() for k in plan.hidden_keys]
        if keys:
            select = select.group_by(*_distinct(keys), copy=False)
    if plan.having:
        having = [exp.paren(_replaced(h, replacements), copy=False) for h in plan.having]
        select = select.having(exp.and_(*having, copy=False), copy=False)
    return _sort_and_limit(plan, select)


def _replaced(tree: exp.Expr, replacements: dict[int, exp.Expr]) -> exp.Expr:
    """A copy of `tree` in which the nodes whose id() is in `replacements` are swapped."""
    copied = tree.copy()
    if not replacements:
        return copied
    # Copies lose identity, so walk the original and its copy in step.
    pairs = [(replacements[id(o)], c) for o, c in zip(tree.walk(bfs=False), copied.walk(bfs=False))
             if id(o) in replacements]
    for new, node in pairs:
        if node is copied:
            return new.copy()
        node.replace(new.copy())
    return copied


def _distinct(nodes: list[exp.Expr]) -> list[exp.Expr]:
    seen, result = set(), []
    for node in nodes:
        text = node.sql(ex.DIALECT)
        if text not in seen:
            seen.add(text)
            result.append(node)
    return result


# ------------------------------------------------------------------ keyed

def _keyed_query(plan: QueryPlan) -> exp.Select:
    keys = _distinct([d.copy() for d in plan.dims] + [k.copy() for k in plan.hidden_keys])
    key_names = [f"_k{i}" for i in range(len(keys))]
    key_text = {k.sql(ex.DIALECT): name for k, name in zip(keys, key_names)}
    base = exp.select(*[exp.alias_(k.copy(), n, copy=False) for k, n in zip(keys, key_names)])
    base = base.select(*[exp.alias_(c.node.copy(), c.alias, copy=False) for c in plan.calls if not c.keyed],
                       copy=False)
    if not base.selects:  # a global aggregate whose every aggregate is keyed: still one row
        base = base.select(exp.alias_(exp.Count(this=exp.Star(), big_int=True), "_rows"), copy=False)
    paths, where, _ = _source(plan, "base")
    base = _from(plan, base, paths)
    if where is not None:
        base = base.where(where, copy=False)
    if keys:
        # The key expressions, not their aliases: Trino resolves GROUP BY names against the
        # FROM clause only (`_k0` "cannot be resolved"); DuckDB accepts either.
        base = base.group_by(*[k.copy() for k in keys], copy=False)

    ctes = [("base", base)]
    grains: dict[str, list[AggregateCall]] = {}
    for call in plan.calls:
        if call.keyed:
            grains.setdefault(call.grain_alias, []).append(call)
    for grain_alias, units in grains.items():
        ctes.append((f"grain_{grain_alias}", _grain_cte(plan, units, keys, key_names)))

    final = exp.select(*[
        exp.alias_(_labelled(c, _final_expr(c.expr, key_text, plan.calls)), c.output.name, quoted=True, copy=False)
        for c in plan.columns
    ]).from_(exp.to_table("base"), copy=False)
    for name, _ in ctes[1:]:
        condition = exp.and_(*[
            exp.NullSafeEQ(this=exp.column(k, table="base"), expression=exp.column(k, table=name)) for k in key_names
        ]) if key_names else exp.true()
        add_join(final, exp.to_table(name), condition, inner=False)
    if plan.having:
        final = final.where(exp.and_(*[exp.paren(_final_expr(h, key_text, plan.calls), copy=False) for h in plan.having],
                                     copy=False), copy=False)
    for name, cte in ctes:
        final = final.with_(name, as_=cte, copy=False)
    return _sort_and_limit(plan, final, lambda e: _final_expr(e, key_text, plan.calls))


def _source(plan: QueryPlan, name: str):
    """(paths to join or None for all, WHERE condition or None, needs DISTINCT) of one CTE."""
    source = plan.cte_sources.get(name)
    where = list(plan.where) if source is None else list(source.where)
    condition = exp.and_(*[exp.paren(_filter(plan, w), copy=False) for w in where], copy=False) if where else None
    if source is None:
        return None, condition, True
    return list(source.paths), condition, source.distinct


def _grain_cte(plan: QueryPlan, units: list[AggregateCall], keys, key_names) -> exp.Select:
    """DISTINCT (group keys, grain key, aggregate inputs), then aggregate: no row counted twice.

    With fewer joins (fewest_joins.py) the rows may not repeat at all: then no DISTINCT."""
    grain_keys = [field_expr(i.datasource, i.datasource.fields[k], plan.aliases[i.path])
                  for i in units[0].identity for k in i.datasource.primary_key]
    inputs: dict[str, str] = {}
    for unit in units:
        for column in unit.node.find_all(exp.Column):
            inputs.setdefault(column.sql(ex.DIALECT), f"_v{len(inputs)}")
    keyed = exp.select(*[exp.alias_(k.copy(), n, copy=False) for k, n in zip(keys, key_names)])
    keyed = keyed.select(*[exp.alias_(k, f"_g{i}", copy=False) for i, k in enumerate(grain_keys)], copy=False)
    keyed = keyed.select(*[exp.alias_(ex.parse_expression(text, None, "input"), name, copy=False) for text, name in inputs.items()],
                         copy=False)
    paths, where, distinct = _source(plan, units[0].grain_alias)
    keyed = _from(plan, keyed.distinct(copy=False) if distinct else keyed, paths)
    if where is not None:
        keyed = keyed.where(where, copy=False)
    aggregates = []
    for unit in units:
        node = unit.node.copy()
        for column in list(node.find_all(exp.Column)):
            column.replace(exp.column(inputs[column.sql(ex.DIALECT)]))
        aggregates.append(exp.alias_(node, unit.alias, copy=False))
    grouped = exp.select(*[exp.column(n) for n in key_names], *aggregates).from_(
        exp.Subquery(this=keyed, alias=exp.TableAlias(this=exp.to_identifier("_keyed"))), copy=False)
    if key_names:
        grouped = grouped.group_by(*[exp.column(n) for n in key_names], copy=False)
    return grouped


def _final_expr(tree: exp.Expr, key_text: dict[str, str], units) -> exp.Expr:
    """An output expression over the CTEs: aggregates and group keys become their columns."""
    columns: dict[int, exp.Expr] = {id(u.node): exp.column(u.alias, table=f"grain_{u.grain_alias}" if u.keyed else "base")
               for u in units}
    tree_copy = _replaced(tree, columns)
    text = tree_copy.sql(ex.DIALECT)
    if text in key_text:
        return exp.column(key_text[text], table="base")
    for node in list(tree_copy.walk(bfs=False)):
        if isinstance(node, exp.Expression) and node.sql(ex.DIALECT) in key_text and node is not tree_copy:
            node.replace(exp.column(key_text[node.sql(ex.DIALECT)], table="base"))
    return tree_copy
