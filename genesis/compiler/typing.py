"""A small static type inference over Trino expressions.

It only has to answer what the output type of a computed column is when the user
did not declare one, and whether a filter is boolean. Unknown means the engine's
own result type is used.
"""

from __future__ import annotations

from sqlglot import exp

from ..project import types

_BOOLEAN = (exp.Predicate, exp.Connector, exp.Not, exp.Boolean, exp.In, exp.Between, exp.Is,
            exp.Like, exp.ILike, exp.RegexpLike, exp.ArrayContains)
_BIGINT_FUNCS = (exp.Year, exp.Month, exp.Day, exp.Quarter, exp.Week, exp.DayOfWeek, exp.DayOfYear,
                 exp.DateDiff, exp.Length, exp.Count, exp.ApproxDistinct)
_TEXT_FUNCS = (exp.Concat, exp.DPipe, exp.Upper, exp.Lower, exp.Trim, exp.Substring, exp.ArrayToString,
               exp.RegexpReplace, exp.Initcap)


def infer_type(node: exp.Expr, known: dict[int, str] | None = None) -> str | None:
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
        return "integer" if node.this.lstrip("-").isdigit() else _number_literal_type(node.this)
    if isinstance(node, _BIGINT_FUNCS):
        return "bigint"
    if isinstance(node, _TEXT_FUNCS):
        return "varchar"
    if isinstance(node, (exp.DateTrunc, exp.TimestampTrunc)):
        return infer_type(node.this, known) if not isinstance(node.this, exp.Literal) else None
    if isinstance(node, (exp.CurrentDate,)):
        return "date"
    if isinstance(node, (exp.Min, exp.Max, exp.Coalesce, exp.Nullif)):  # nullif(x, 0) has x's type
        return infer_type(node.this, known)
    if isinstance(node, exp.Sum):
        return _sum_type(infer_type(node.this, known))
    if isinstance(node, exp.Avg):
        return "double" if infer_type(node.this, known) is not None else None
    if isinstance(node, exp.Case):
        branches = [infer_type(i.args.get("true"), known) for i in node.args.get("ifs") or []]
        if node.args.get("default") is not None:
            branches.append(infer_type(node.args["default"], known))
        found = {b for b in branches if b}
        if len(found) == 1:
            return found.pop()
        if found and all(_exact(b) for b in found) and any(types.is_decimal(b or "") for b in found):
            return _common_decimal(found)  # CASE ... THEN price ELSE 0: Trino's common decimal
        return None
    if isinstance(node, (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod)):
        return _arithmetic(infer_type(node.left, known), infer_type(node.right, known), type(node))
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


_INTEGER_AS_DECIMAL = {"tinyint": (3, 0), "smallint": (5, 0), "integer": (10, 0), "bigint": (19, 0)}


def _precision_scale(t: str) -> tuple[int, int]:
    if t in _INTEGER_AS_DECIMAL:
        return _INTEGER_AS_DECIMAL[t]
    inner = t[len("decimal("):-1].split(",")
    return int(inner[0]), int(inner[1])


def _common_decimal(found: set[str]) -> str:
    pairs = [_precision_scale(t) for t in found]
    scale = max(s for _, s in pairs)
    return f"decimal({min(38, max(p - s for p, s in pairs) + scale)},{scale})"


def _arithmetic(left: str | None, right: str | None, op: type) -> str | None:
    if left is None or right is None:
        return None
    if "double" in (left, right) or "real" in (left, right):
        return "double"
    if left in types.INTEGER_TYPES and right in types.INTEGER_TYPES:
        return "bigint"
    if not (_exact(left) and _exact(right)):
        return None
    if op is exp.Div:
        return "double"  # portable_arithmetic divides decimals as doubles
    (p1, s1), (p2, s2) = _precision_scale(left), _precision_scale(right)
    if op in (exp.Add, exp.Sub):  # Trino's decimal rules
        scale = max(s1, s2)
        return f"decimal({min(38, 1 + scale + max(p1 - s1, p2 - s2))},{scale})"
    if op is exp.Mul and s1 + s2 <= 38:
        return f"decimal({min(38, p1 + p2)},{s1 + s2})"
    return None


def _number_literal_type(text: str) -> str:
    """`2.5` is decimal(2,1) on Trino (and DuckDB); `1e3` is a double."""
    digits = text.lstrip("-+")
    if "e" in digits.lower() or "." not in digits:
        return "double"
    whole, _, fraction = digits.partition(".")
    precision = max(1, len(whole.lstrip("0")) + len(fraction))
    return f"decimal({min(38, max(precision, len(fraction)))},{len(fraction)})"


def _exact(value: str | None) -> bool:
    return bool(value) and (value in types.INTEGER_TYPES or types.is_decimal(value or ""))


def portable_average(argument: exp.Expr, argument_type: str | None) -> exp.Expr:
    """`avg(x)` that gives the same double on Trino and DuckDB.

    Trino's avg of a decimal keeps the decimal's scale (avg of 1.25 and 2.50 is 1.88), DuckDB's
    is a double (1.875). `CAST(sum(x) AS double) / count(x)` is the full-precision double on
    both, and the sum stays exact (decimal, or decimal(38,12) for doubles: see _exact_float_sum).
    """
    if argument_type is None or not (types.is_decimal(argument_type) or argument_type in ("double", "real")):
        return exp.Avg(this=argument)
    total = exp.Cast(this=exp.Sum(this=argument), to=exp.DataType.build("double"))
    return exp.Div(this=total, expression=exp.Count(this=argument.copy(), big_int=True))


def portable_arithmetic(tree: exp.Expr, known: dict[int, str]) -> exp.Expr:
    """Rewrite what Trino and DuckDB compute differently, so both give the ratio users mean.

    - a division with a decimal operand (and no double): Trino divides at the larger scale
      of the two (682.00 / 3535000.00 = 0.00), DuckDB returns the double 0.000193; both
      operands become doubles, the same on both engines.
    - avg of a decimal or double: see portable_average.
    Nodes whose types cannot be told are left as written.
    """
    def rewrite(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Avg) and not isinstance(node.this, exp.Distinct):
            typed = portable_average(node.this, infer_type(node.this, known))
            if not isinstance(typed, exp.Avg):
                return typed
        if isinstance(node, exp.Div):
            left, right = infer_type(node.left, known), infer_type(node.right, known)
            if _exact(left) and _exact(right) and (types.is_decimal(left or "") or types.is_decimal(right or "")):
                as_double = exp.DataType.build("double")
                return exp.Div(this=exp.Cast(this=exp.paren(node.left, copy=False), to=as_double),
                               expression=exp.Cast(this=exp.paren(node.right, copy=False), to=as_double.copy()))
        return node

    return tree.transform(rewrite, copy=False)
