"""A small static type inference over Trino expressions.

It only has to answer what the output type of a computed column is when the user
did not declare one, and whether a filter is boolean. Unknown means the engine's
own result type is used.
"""

from __future__ import annotations

from sqlglot import exp

from .. import types

_BOOLEAN = (exp.Predicate, exp.Connector, exp.Not, exp.Boolean, exp.In, exp.Between, exp.Is,
            exp.Like, exp.ILike, exp.RegexpLike, exp.ArrayContains)
_BIGINT_FUNCS = (exp.Year, exp.Month, exp.Day, exp.Quarter, exp.Week, exp.DayOfWeek, exp.DayOfYear,
                 exp.DateDiff, exp.Length, exp.Count, exp.ApproxDistinct)
_TEXT_FUNCS = (exp.Concat, exp.DPipe, exp.Upper, exp.Lower, exp.Trim, exp.Substring, exp.ArrayToString,
               exp.RegexpReplace, exp.Initcap)


def infer_type(node: exp.Expression, known: dict[int, str] | None = None) -> str | None:
    """The canonical Trino type of `node`, or None when it cannot be told statically.

    `known` maps id() of already-typed nodes (resolved references) to their type.
    """
    known = known or {}
    if id(node) in known:
        return known[id(node)]
    if isinstance(node, exp.Paren):
        return infer_type(node.this, known)
    if isinstance(node, exp.Cast):
        return types.normalize_type(node.to.sql("trino"))
    if isinstance(node, _BOOLEAN):
        return "boolean"
    if isinstance(node, exp.Literal):
        if node.is_string:
            return "varchar"
        return "integer" if node.this.lstrip("-").isdigit() else "double"
    if isinstance(node, _BIGINT_FUNCS):
        return "bigint"
    if isinstance(node, _TEXT_FUNCS):
        return "varchar"
    if isinstance(node, (exp.DateTrunc, exp.TimestampTrunc)):
        return infer_type(node.this, known) if not isinstance(node.this, exp.Literal) else None
    if isinstance(node, (exp.CurrentDate,)):
        return "date"
    if isinstance(node, (exp.Min, exp.Max, exp.Coalesce)):
        return infer_type(node.this, known)
    if isinstance(node, exp.Sum):
        return _sum_type(infer_type(node.this, known))
    if isinstance(node, exp.Avg):
        return "double" if infer_type(node.this, known) is not None else None
    if isinstance(node, exp.Case):
        branches = [infer_type(i.args.get("true"), known) for i in node.args.get("ifs") or []]
        known = {b for b in branches if b}
        return known.pop() if len(known) == 1 else None
    if isinstance(node, (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod)):
        return _arithmetic(infer_type(node.left, known), infer_type(node.right, known), isinstance(node, exp.Div))
    if isinstance(node, exp.Neg):
        return infer_type(node.this, known)
    return None


def _sum_type(value: str | None) -> str | None:
    if value in types.INTEGER_TYPES:
        return "bigint"
    if value in ("double", "real"):
        return "double"
    if value and types.is_decimal(value):
        return f"decimal(38,{types.decimal_scale(value)})"  # Trino's and DuckDB's sum type
    return None


def _arithmetic(left: str | None, right: str | None, division: bool) -> str | None:
    if left is None or right is None:
        return None
    if "double" in (left, right) or "real" in (left, right):
        return "double"
    if left in types.INTEGER_TYPES and right in types.INTEGER_TYPES:
        return "bigint"
    return None  # decimal arithmetic: precision rules differ, the engine's type is used
