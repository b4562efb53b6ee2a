"""Plan to sqlglot AST, and AST to dialect text.

Two shapes come out:
- the direct query: SELECT ... FROM root LEFT JOIN ... WHERE ... GROUP BY ... HAVING,
  used whenever no aggregate is multiplied by the joins (every TPC-H query, most
  trackers);
- the keyed query: a `base` CTE with the group keys and the safe aggregates, one CTE
  per multiplied grain that first takes DISTINCT (group keys, grain key, inputs) and
  then aggregates, and a final SELECT joining them on the group keys (null-safe).
"""

from __future__ import annotations

from sqlglot import exp

from ..model import DataSource
from . import expressions as ex
from .order import tie_breakers
from .plan import Plan, PlanColumn, Unit, field_expr, join_condition, labelled


def build_query(plan: Plan) -> exp.Select:
    if any(unit.keyed for unit in plan.units):
        return _keyed_query(plan)
    return _direct_query(plan)


# ------------------------------------------------------------------ FROM

def relation(ds: DataSource, alias: str) -> exp.Expression:
    if ds.latest is None:
        return ex.table(ds.table, alias)
    return exp.Subquery(this=_latest_select(ds), alias=exp.TableAlias(this=exp.to_identifier(alias)))


def _latest_select(ds: DataSource) -> exp.Select:
    """Newest row per primary key; keys whose newest row is a delete are dropped."""
    raw = "_genesis_raw"
    keys = [_unqualified(field_expr(ds, ds.fields[k], raw)) for k in ds.primary_key]
    order = ex.parse_expression(ds.latest.order_by, ds.latest.loc, f"latest.order_by of '{ds.name}'")
    ranked = exp.Window(
        this=exp.RowNumber(),
        partition_by=keys,
        order=exp.Order(expressions=[exp.Ordered(this=order, desc=True)]),
    )
    inner = (exp.select(exp.Star(), exp.alias_(ranked, "_genesis_rn", copy=False))
             .from_(ex.table(ds.table, raw), copy=False))
    inner.selects[0].replace(exp.Column(this=exp.Star(), table=exp.to_identifier(raw)))
    condition: exp.Expression = exp.column("_genesis_rn").eq(1)
    if ds.latest.deleted:
        deleted = ex.parse_expression(ds.latest.deleted, ds.latest.loc, f"latest.deleted of '{ds.name}'")
        condition = exp.and_(condition, exp.Not(this=exp.Coalesce(this=exp.paren(deleted, copy=False), expressions=[exp.false()])))
    ranked_rows = exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier("_genesis_ranked")))
    return exp.select(exp.Star()).from_(ranked_rows, copy=False).where(condition, copy=False)


def _unqualified(node: exp.Expression) -> exp.Expression:
    for column in node.find_all(exp.Column):
        column.set("table", None)
    return node


def _from(plan: Plan, select: exp.Select, paths=None) -> exp.Select:
    """FROM the root, joined to every instance of the plan (or only to `paths`)."""
    select = select.from_(relation(plan.root.datasource, plan.aliases[()]), copy=False)
    join_below(select, plan.instances, plan.aliases, list(plan.instances) if paths is None else paths, ())
    for subquery, condition, inner in plan.extra_joins:
        add_join(select, subquery.copy(), condition.copy(), inner=inner)
    return select


def join_below(select: exp.Select, instances, aliases, paths, head: tuple[str, ...]) -> None:
    """Join every instance of `paths` below `head`, parents first, with its declared join type."""
    for path in sorted(paths, key=lambda p: (len(p), p)):
        if path == head:
            continue
        child = instances[path]
        condition = join_condition(instances[path[:-1]], aliases[path[:-1]], child, aliases[path])
        add_join(select, relation(child.datasource, aliases[path]), condition,
                 inner=child.joins[-1].type == "inner")


def add_join(select: exp.Select, relation: exp.Expression, condition: exp.Expression, inner: bool) -> None:
    # Built directly: Select.join() would parse its join_type string on every call.
    join = exp.Join(this=relation, on=condition) if inner else exp.Join(this=relation, on=condition, side="LEFT")
    select.append("joins", join)


# ------------------------------------------------------------------ columns

def _labelled(column: PlanColumn, expr: exp.Expression) -> exp.Expression:
    return labelled(expr, column.labels, column.label_type) if column.labels else expr


def _is_name(expr: exp.Expression) -> bool:
    return isinstance(expr, exp.Column) and len(expr.parts) == 1


def _sort_and_limit(plan: Plan, select: exp.Select, over_output=lambda e: e.copy()) -> exp.Select:
    ordered = []
    for expr, desc in plan.sort:
        ordered.append(exp.Ordered(this=expr.copy() if _is_name(expr) else over_output(expr), desc=desc,
                                   nulls_first=False))
    # Tie-breakers make the row order, and so every written file, deterministic (order.py).
    for expr in tie_breakers(plan):
        ordered.append(exp.Ordered(this=expr if _is_name(expr) else over_output(expr), desc=False,
                                   nulls_first=False))
    if ordered:
        select = select.order_by(*ordered, copy=False)
    if plan.limit:
        select = select.limit(plan.limit, copy=False)
    return select


# ------------------------------------------------------------------ direct

def _direct_query(plan: Plan) -> exp.Select:
    select = exp.select(*[
        exp.alias_(_labelled(c, _replaced(c.expr, plan.replacements)), c.output.name, quoted=True, copy=False)
        for c in plan.columns
    ])
    select = _from(plan, select)
    if plan.where:
        select = select.where(exp.and_(*[exp.paren(w.copy(), copy=False) for w in plan.where], copy=False), copy=False)
    if plan.grouped:
        keys = [d.copy() for d in plan.dims] + [k.copy() for k in plan.hidden_keys]
        if keys:
            select = select.group_by(*_distinct(keys), copy=False)
    if plan.having:
        having = [exp.paren(_replaced(h, plan.replacements), copy=False) for h in plan.having]
        select = select.having(exp.and_(*having, copy=False), copy=False)
    return _sort_and_limit(plan, select)


def _replaced(tree: exp.Expression, replacements: dict[int, exp.Expression]) -> exp.Expression:
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


def _distinct(nodes: list[exp.Expression]) -> list[exp.Expression]:
    seen, result = set(), []
    for node in nodes:
        text = node.sql(ex.DIALECT)
        if text not in seen:
            seen.add(text)
            result.append(node)
    return result


# ------------------------------------------------------------------ keyed

def _keyed_query(plan: Plan) -> exp.Select:
    keys = _distinct([d.copy() for d in plan.dims] + [k.copy() for k in plan.hidden_keys])
    key_names = [f"_k{i}" for i in range(len(keys))]
    key_text = {k.sql(ex.DIALECT): name for k, name in zip(keys, key_names)}
    base = exp.select(*[exp.alias_(k.copy(), n, copy=False) for k, n in zip(keys, key_names)])
    base = base.select(*[exp.alias_(u.node.copy(), u.alias, copy=False) for u in plan.units if not u.keyed], copy=False)
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
    grains: dict[str, list[Unit]] = {}
    for unit in plan.units:
        if unit.keyed:
            grains.setdefault(unit.grain_alias, []).append(unit)
    for grain_alias, units in grains.items():
        ctes.append((f"grain_{grain_alias}", _grain_cte(plan, units, keys, key_names)))

    final = exp.select(*[
        exp.alias_(_labelled(c, _final_expr(c.expr, key_text, plan.units)), c.output.name, quoted=True, copy=False)
        for c in plan.columns
    ]).from_(exp.to_table("base"), copy=False)
    for name, _ in ctes[1:]:
        condition = exp.and_(*[
            exp.NullSafeEQ(this=exp.column(k, table="base"), expression=exp.column(k, table=name)) for k in key_names
        ]) if key_names else exp.true()
        add_join(final, exp.to_table(name), condition, inner=False)
    if plan.having:
        final = final.where(exp.and_(*[exp.paren(_final_expr(h, key_text, plan.units), copy=False) for h in plan.having],
                                     copy=False), copy=False)
    for name, cte in ctes:
        final = final.with_(name, as_=cte, copy=False)
    return _sort_and_limit(plan, final, lambda e: _final_expr(e, key_text, plan.units))


def _source(plan: Plan, name: str):
    """(paths to join or None for all, WHERE condition or None, needs DISTINCT) of one CTE."""
    source = plan.sources.get(name)
    where = list(plan.where) if source is None else list(source.where)
    condition = exp.and_(*[exp.paren(w.copy(), copy=False) for w in where], copy=False) if where else None
    if source is None:
        return None, condition, True
    return list(source.paths), condition, source.distinct


def _grain_cte(plan: Plan, units: list[Unit], keys, key_names) -> exp.Select:
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


def _final_expr(tree: exp.Expression, key_text: dict[str, str], units: list[Unit]) -> exp.Expression:
    """An output expression over the CTEs: aggregates and group keys become their columns."""
    columns = {id(u.node): exp.column(u.alias, table=f"grain_{u.grain_alias}" if u.keyed else "base")
               for u in units}
    tree_copy = _replaced(tree, columns)
    text = tree_copy.sql(ex.DIALECT)
    if text in key_text:
        return exp.column(key_text[text], table="base")
    for node in list(tree_copy.walk(bfs=False)):
        if isinstance(node, exp.Expression) and node.sql(ex.DIALECT) in key_text and node is not tree_copy:
            node.replace(exp.column(key_text[node.sql(ex.DIALECT)], table="base"))
    return tree_copy
