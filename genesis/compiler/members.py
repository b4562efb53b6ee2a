"""The SQL of the model's members: fields, measures, field aggregates, labels and joins.

Plan building (plan.py) resolves references into these expressions; the render step
(render.py) builds the joins and keys of the query from the same functions, so a field
reads the same wherever it appears. Also the NULL-propagation facts the passes need: which
expressions are NULL (or not true) on the NULL-extended row of a left join.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlglot import exp

from ..project import types
from ..project.model import DataSource, Field, Measure, Segment
from . import expressions as ex
from .join_graph import Instance
from .typing import infer_type, portable_arithmetic, portable_average


def null_when_missing(node: exp.Expr, missing: set[str]) -> bool:
    """Is `node` NULL whenever every column of the `missing` aliases is NULL?

    Conservative: only operators and functions known to give NULL on NULL input count."""
    if isinstance(node, exp.Column):
        return node.table in missing
    if isinstance(node, (exp.Paren, exp.Cast, exp.Neg, exp.Not, exp.Upper, exp.Lower, exp.Abs, exp.Length,
                         exp.Year, exp.Month, exp.Day, exp.Trim)):
        return null_when_missing(node.this, missing)
    if isinstance(node, (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod, exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT,
                         exp.LTE, exp.Like, exp.DPipe)):
        return null_when_missing(node.left, missing) or null_when_missing(node.right, missing)
    if isinstance(node, (exp.In, exp.Between)):
        return null_when_missing(node.this, missing)
    if isinstance(node, (exp.And, exp.Or)):
        return null_when_missing(node.left, missing) and null_when_missing(node.right, missing)
    if isinstance(node, exp.Coalesce):
        return all(null_when_missing(a, missing) for a in [node.this, *node.expressions])
    if isinstance(node, exp.Case):
        default = node.args.get("default")
        # A branch whose condition is not true on that row never gives its value.
        return (all(false_when_missing(i.this, missing) or null_when_missing(i.args["true"], missing)
                    for i in node.args.get("ifs") or [])
                and (default is None or null_when_missing(default, missing)))
    if isinstance(node, exp.Null):
        return True
    return False


def false_when_missing(node: exp.Expr, missing: set[str]) -> bool:
    """Is the condition `node` not true whenever every column of `missing` is NULL?"""
    if isinstance(node, exp.Paren):
        return false_when_missing(node.this, missing)
    if isinstance(node, exp.And):
        return false_when_missing(node.left, missing) or false_when_missing(node.right, missing)
    if isinstance(node, exp.Or):
        return false_when_missing(node.left, missing) and false_when_missing(node.right, missing)
    if isinstance(node, exp.Not):
        return null_when_missing(node.this, missing)
    return null_when_missing(node, missing)


def only_existing_rows(unit: exp.Expr, condition: exp.Expr, missing: set[str]) -> None:
    """Make an aggregate skip the NULL-extended row of a left join that found no row.

    `count(coalesce(line.code, '?'))` over an order without lines would count its one
    NULL-extended row as a line. Aggregates whose argument is NULL on that row skip it
    anyway and are left as they are (so most SQL does not change)."""
    agg = unit.this if isinstance(unit, exp.Filter) else unit
    holder = agg.this if isinstance(agg.this, exp.Distinct) else agg
    argument = holder.expressions[0] if holder is not agg else agg.this
    strict = argument is not None and not isinstance(argument, exp.Star) and null_when_missing(argument, missing)
    if isinstance(unit, exp.Filter):
        where = unit.expression
        if not (strict or false_when_missing(where.this, missing)):
            where.set("this", exp.and_(condition, exp.paren(where.this, copy=False), copy=False))
        return
    if strict:
        return
    value = exp.Literal.number(1) if argument is None or isinstance(argument, exp.Star) else argument.copy()
    guarded = exp.Case(ifs=[exp.If(this=condition, true=value)])
    if holder is agg:
        holder.set("this", guarded)
    else:
        holder.set("expressions", [guarded])


def field_expr(ds: DataSource, member: Field, alias: str) -> exp.Expr:
    """A field at an instance alias: its column, or its `sql:` qualified by the alias and cast to its type."""
    if member.sql is None:
        return exp.column(member.name, table=alias, quoted=_needs_quotes(member.name))
    tree = ex.parse_expression(member.sql, member.sql_loc, f"field '{ds.name}.{member.name}'")
    tree = ex.qualify_columns(tree, alias, f"field '{ds.name}.{member.name}'", member.sql_loc)
    tree = portable_arithmetic(tree, _column_types(ds, tree))
    return ex.cast(exp.paren(tree, copy=False) if not isinstance(tree, (exp.Column, exp.Func)) else tree,
                   member.type)


def _column_types(ds: DataSource, tree: exp.Expr) -> dict[int, str]:
    """The declared types of the table columns a data source's own SQL reads (plain fields)."""
    known = {}
    for column in tree.find_all(exp.Column):
        field = ds.fields.get(column.name)
        if field is not None and field.sql is None and field.type:
            known[id(column)] = field.type
    return known


def measure_expr(instance: Instance, measure: Measure, alias: str, is_root: bool) -> exp.Expr:
    """A measure's aggregate call at an instance alias; `count` off the root counts the key, so a
    left join's NULL-extended row is not counted."""
    ds = instance.datasource
    what = f"measure '{ds.name}.{measure.name}'"
    if measure.agg is None:  # a derived measure has no aggregate of its own: Resolver.member_expr compiles it
        raise ValueError(f"{what} is derived; compile it with derived_measure_expr, not measure_expr")
    if measure.sql is None:
        argument = None
    elif measure.sql in ds.fields:
        argument = field_expr(ds, ds.fields[measure.sql], alias)
    else:
        argument = ex.qualify_columns(ex.parse_expression(measure.sql, measure.sql_loc, what), alias, what,
                                      measure.sql_loc)
        argument = portable_arithmetic(argument, _column_types(ds, argument))
    if measure.agg == "count":
        if argument is None:
            # A left join with no match still yields one row: count the key, not the row.
            if is_root or not ds.primary_key:
                return exp.Count(this=exp.Star(), big_int=True)
            argument = field_expr(ds, ds.fields[ds.primary_key[0]], alias)
        return exp.Count(this=argument, big_int=True)
    if measure.agg == "count_distinct":
        return exp.Count(this=exp.Distinct(expressions=[argument]), big_int=True)
    if measure.agg == "avg":
        assert measure.sql is not None and argument is not None  # the loader requires `sql:` for avg
        argument_type = ds.fields[measure.sql].type if measure.sql in ds.fields else \
            infer_type(argument, _column_types(ds, argument))
        node = portable_average(argument, argument_type)
    else:
        node = {"sum": exp.Sum, "min": exp.Min, "max": exp.Max}[measure.agg](this=argument)
    if measure.type:
        return ex.cast(node, measure.type)
    return node


def field_agg_expr(argument: exp.Expr, agg: str) -> exp.Expr:
    """The SQL of a field-level `agg:`; `list` is the sorted, distinct, comma-joined values."""
    if agg == "list":
        text = ex.cast(argument, "varchar")
        collected = exp.Filter(
            this=exp.ArrayAgg(this=exp.Distinct(expressions=[text])),
            expression=exp.Where(this=exp.Not(this=exp.Is(this=argument.copy(), expression=exp.Null()))),
        )
        return exp.ArrayToString(this=exp.ArraySort(this=collected), expression=exp.Literal.string(", "))
    if agg == "count":
        return exp.Count(this=argument, big_int=True)
    if agg == "count_distinct":
        return exp.Count(this=exp.Distinct(expressions=[argument]), big_int=True)
    return {"sum": exp.Sum, "avg": exp.Avg, "min": exp.Min, "max": exp.Max}[agg](this=argument)


def labelled(expr: exp.Expr, labels: Mapping[str, str], stored_type: str | None) -> exp.Expr:
    """Stored codes shown as their display text; unknown codes pass through."""
    numeric = stored_type is not None and types.is_numeric(stored_type)
    case = exp.Case()
    for code, text in labels.items():
        value = exp.Literal.number(code) if numeric and _is_number(code) else exp.Literal.string(code)
        case = case.when(expr.copy().eq(value), exp.Literal.string(text), copy=False)
    fallback = expr.copy() if stored_type == "varchar" else ex.cast(expr.copy(), "varchar")
    return case.else_(fallback, copy=False)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _needs_quotes(name: str) -> bool:
    return not name.isidentifier() or name.lower() != name


def member_type(member: Field | Measure | Segment, inferred: str | None = None) -> str | None:
    """A field's declared type; a measure's (or segment's) declared type, else the type inferred from its SQL."""
    if isinstance(member, Field):
        return member.type
    if member.type:
        return member.type
    return inferred


def field_agg_type(agg: str, value_type: str | None) -> str | None:
    """The type of a field-level `agg:` over a value of `value_type` (Trino's result types)."""
    if agg == "list":
        return "varchar"
    if agg in ("count", "count_distinct"):
        return "bigint"
    if agg in ("min", "max"):
        return value_type
    if agg == "avg":
        return "double"
    if value_type in types.INTEGER_TYPES:
        return "bigint"
    if value_type is not None and types.is_decimal(value_type):
        return f"decimal(38,{types.decimal_scale(value_type)})"
    return "double" if value_type in ("double", "real") else None



def join_condition(parent: Instance, parent_alias: str, child: Instance, alias: str) -> exp.Expr:
    """`parent.left = child.right AND ...` for the join that reaches `child`."""
    join = child.joins[-1]
    return exp.and_(*[
        equals(field_expr(parent.datasource, parent.datasource.fields[left], parent_alias),
               field_expr(child.datasource, child.datasource.fields[right], alias))
        for left, right in join.on
    ], copy=False)


def equals(left: exp.Expr, right: exp.Expr) -> exp.EQ:
    """`left = right` of two trees the caller gives away: Expression.eq copies both first."""
    return exp.EQ(this=_operand(left), expression=_operand(right))


def _operand(node: exp.Expr) -> exp.Expr:
    """An operand that is itself an operation goes in parentheses, as Expression.eq puts it."""
    return exp.Paren(this=node) if isinstance(node, exp.Binary) else node


def exists_condition(instance: Instance, alias: str) -> exp.Expr:
    """True on a joined row, false on the NULL-extension of a left join that found none.

    A matched row's join key equals its parent's, so it is not NULL."""
    right = instance.joins[-1].on[0][1]
    column = field_expr(instance.datasource, instance.datasource.fields[right], alias)
    return exp.Not(this=exp.Is(this=column, expression=exp.Null()))
