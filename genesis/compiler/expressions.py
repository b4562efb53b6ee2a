"""User SQL expressions: parameters, parsing, the allowed subset, references.

Filters and computed columns are Trino expressions over references. Parameters are
rendered by a sandboxed Jinja2 environment in which every value is already a SQL
literal; the text is then parsed again, so a value can never become SQL code.
"""

from __future__ import annotations

import datetime
import decimal
import json
from collections.abc import Callable, Iterator, Mapping
from functools import lru_cache
from typing import Any

import jinja2
import sqlglot
from sqlglot import exp

from ..errors import GenesisError, Location, did_you_mean
from ..project import templating, types
from ..project.model import Parameter
from .dialects import dialect_named

# The reference dialect definitions are written in. One instance: sqlglot looked the dialect
# up by name (and built a new one) on every parse and print, 4% of a compile.
DIALECT = dialect_named("trino")

_FORBIDDEN = (exp.Select, exp.Subquery, exp.SetOperation, exp.Exists, exp.Query)
_STATEMENTS = (exp.Insert, exp.Update, exp.Delete, exp.Drop, exp.Create, exp.Command, exp.Alter,
               exp.Merge, exp.Use, exp.Set, exp.Transaction)



# ---------------------------------------------------------------- parameters

def parameter_values(declared: Mapping[str, Parameter],
                     *sources: tuple[str, Mapping[str, Any], Location | None]) -> dict[str, Any]:
    """Typed parameter values; `sources` (origin, values, location) in priority order."""
    values: dict[str, Any] = {}
    for origin, given, where in sources:
        for name, value in given.items():
            if name not in declared:
                raise GenesisError(f"unknown parameter '{name}' (given by {origin})", where,
                                   did_you_mean(name, declared) or _declared(declared))
            if name not in values:
                values[name] = coerce(value, declared[name], origin)
    for name, param in declared.items():
        if name not in values:
            if not param.has_default:
                raise GenesisError(f"parameter '{name}' has no value and no default", param.loc,
                                   f"pass --param {name}=VALUE or set it in the tracker")
            values[name] = coerce(param.default, param, "its default")
    return values


def _declared(declared) -> str:
    return f"declared: {', '.join(declared)}" if declared else "this input declares no parameters"


def coerce(value: Any, param: Parameter, origin: str) -> Any:
    """The value as the parameter's type; command-line strings are converted."""
    try:
        return _coerce(value, param.type)
    except (ValueError, TypeError, decimal.InvalidOperation):
        raise GenesisError(
            f"parameter '{param.name}' from {origin} is not a valid {param.type}: {value!r}", param.loc
        ) from None


def _coerce(value: Any, ptype: str) -> Any:
    if types.is_array(ptype):
        element = types.array_element(ptype)
        if isinstance(value, str):
            text = value.strip()
            value = json.loads(text) if text.startswith("[") else [v.strip() for v in text.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            value = [value]
        return [_coerce(v, element) for v in value]
    if value is None:
        return None
    if ptype == "varchar":
        if isinstance(value, (dict, list)):
            raise ValueError("not text")
        return str(value)
    if ptype == "boolean":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1", "yes"):
            return True
        if text in ("false", "0", "no"):
            return False
        raise ValueError(value)
    if ptype in types.INTEGER_TYPES:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError(value)
        return int(str(value).strip()) if isinstance(value, str) else int(value)
    if ptype in ("double", "real"):
        if isinstance(value, bool):
            raise ValueError(value)
        return float(value)
    if types.is_decimal(ptype):
        if isinstance(value, bool):
            raise ValueError(value)
        return decimal.Decimal(str(value).strip())
    if ptype == "date":
        if isinstance(value, datetime.datetime):
            return value.date()
        return value if isinstance(value, datetime.date) else datetime.date.fromisoformat(str(value).strip())
    if ptype.startswith("timestamp"):
        if isinstance(value, datetime.datetime):
            return value
        return datetime.datetime.fromisoformat(str(value).strip())
    raise ValueError(ptype)


def sql_literal(value: Any, ptype: str) -> str:
    """A Trino SQL literal for a typed value; lists become comma-separated literals."""
    if types.is_array(ptype):
        items = [sql_literal(v, types.array_element(ptype)) for v in value]
        return ", ".join(items) if items else "NULL"  # `IN (NULL)` matches nothing
    if value is None:
        return "NULL"
    if ptype == "varchar":
        return exp.Literal.string(str(value)).sql(DIALECT)
    if ptype == "boolean":
        return "TRUE" if value else "FALSE"
    if ptype in types.INTEGER_TYPES:
        return _signed(str(int(value)))
    if ptype in ("double", "real"):
        if value != value or value in (float("inf"), float("-inf")):
            raise GenesisError(f"{value} cannot be used as a SQL literal")
        return _signed(repr(float(value)))
    if types.is_decimal(ptype):
        # A plain numeric literal is an exact decimal in Trino and DuckDB; `DECIMAL 'x'`
        # would come out of sqlglot as CAST(x AS DECIMAL), i.e. decimal(38,0) on Trino.
        return _signed(format(decimal.Decimal(value), "f"))
    if ptype == "date":
        return f"DATE '{value.isoformat()}'"
    if ptype.startswith("timestamp"):
        return f"TIMESTAMP '{value.isoformat(sep=' ')}'"
    raise GenesisError(f"unsupported parameter type {ptype}")


def _signed(number: str) -> str:
    """Negative numbers in parentheses: `-{{ n }}` with n = -5 must not become `--5`, a comment."""
    return f"({number})" if number.startswith("-") else number


def render_parameters(text: str, literals: Mapping[str, str], loc: Location | None, what: str) -> str:
    """Replace `{{ name }}` by literals in the sandbox; no braces means nothing to do."""
    if "{{" not in text and "{%" not in text:
        return text
    try:
        return templating.render(text, **literals)
    except jinja2.UndefinedError as exc:
        name = str(exc).split("'")[1] if "'" in str(exc) else str(exc)
        raise GenesisError(f"{what} uses unknown parameter '{name}'", loc,
                           did_you_mean(name, literals) or _declared(literals)) from None
    except templating.TemplateRefused as exc:
        raise GenesisError(f"{what}: {exc}", loc) from None
    except jinja2.exceptions.SecurityError as exc:
        raise GenesisError(f"{what} is not allowed: {exc}", loc) from None
    except jinja2.TemplateError as exc:
        raise GenesisError(f"{what} has a template error: {exc}", loc) from None
    except (OverflowError, MemoryError, RecursionError, ValueError, TypeError, ArithmeticError) as exc:
        raise GenesisError(f"{what} cannot be rendered: {type(exc).__name__}: {exc}", loc) from None


# ---------------------------------------------------------------- parsing

def parse_expression(text: str, loc: Location | None, what: str) -> exp.Expr:
    """Parse one Trino expression, rejecting statements and subqueries: a tree of the
    caller's own (a copy of the one parse of this text), which it may change."""
    return read_expression(text, loc, what).copy()


def read_expression(text: str, loc: Location | None, what: str) -> exp.Expr:
    """parse_expression without the copy, for a caller that only reads the tree.

    Every caller of the same text gets the same tree: it must never be changed.
    """
    node, problem, hint = _checked_parse(text)
    if problem is not None:
        raise GenesisError(f"{what} {problem}", loc, hint)
    assert node is not None
    return node


@lru_cache(maxsize=8192)
def _checked_parse(text: str) -> tuple[exp.Expr | None, str | None, str | None]:
    """(tree, None, None), or (None, what is wrong, hint): parsed and checked once per text
    (a project's filters repeat the same texts; validate reads them again)."""
    try:
        node = _parse_text(text)
    except ValueError as exc:
        return None, f"is not valid SQL: {exc}", None
    if node is None:
        return None, "is empty", None
    if isinstance(node, _STATEMENTS) or isinstance(node, exp.Query):
        return None, "must be an expression, not a statement", None
    for sub in node.walk():
        if isinstance(sub, _FORBIDDEN):
            return None, "may not contain a subquery", "use a join declared on the data source instead"
        if isinstance(sub, _STATEMENTS):
            return None, "must be an expression, not a statement", None
        if isinstance(sub, exp.Window):
            return None, "may not use window functions", None
    return node, None, None


def _parse_text(text: str) -> exp.Expr | None:
    try:
        statements = sqlglot.parse(text, read=DIALECT)
    except sqlglot.errors.ParseError as exc:
        raise ValueError(_syntax_message(exc)) from None
    except sqlglot.errors.SqlglotError as exc:
        raise ValueError(_first_line(str(exc))) from None
    statements = [s for s in statements if s is not None]
    if len(statements) > 1:
        raise ValueError("only one expression is allowed (found ';')")
    return statements[0] if statements else None


def _syntax_message(exc: sqlglot.errors.ParseError) -> str:
    """sqlglot's first parse error in words a user can act on."""
    first = exc.errors[0] if exc.errors else {}
    col, near = first.get("col"), (first.get("highlight") or "").strip()
    where = f" at column {col}" if col else ""
    near_text = f" near '{near}'" if near else ""
    description = first.get("description", "")
    if description.startswith("Required keyword"):
        return f"syntax error{where}{near_text}: something is missing around this operator"
    return f"syntax error{where}{near_text}"


def _first_line(message: str) -> str:
    line = message.strip().splitlines()[0] if message.strip() else "cannot parse"
    return line.replace("\x1b[4m", "").replace("\x1b[0m", "")


# ---------------------------------------------------------------- cached builders

def data_type(type_text: str) -> exp.DataType:
    """A DataType node for a canonical Trino type (parsed once, copied per use)."""
    return _data_type(type_text).copy()


@lru_cache(maxsize=256)
def _data_type(type_text: str) -> exp.DataType:
    return exp.DataType.build(type_text, dialect=DIALECT)


def table(name: str, alias: str) -> exp.Table:
    """`catalog.schema.table AS alias`.

    Parsed once per name; each use builds its few identifier nodes anew, which is several
    times cheaper than a deep copy of the parsed node (every query has a dozen tables)."""
    parts = _table_parts(name)
    if parts is None:
        node = _table(name).copy()
    else:
        node = exp.Table(**{key: exp.Identifier(this=text, quoted=quoted) for key, text, quoted in parts})
    node.as_(alias, copy=False)  # sets the alias on the node itself
    return node


@lru_cache(maxsize=1024)
def _table(name: str) -> exp.Table:
    return exp.to_table(name, dialect=DIALECT)


@lru_cache(maxsize=1024)
def _table_parts(name: str) -> tuple[tuple[str, str, bool], ...] | None:
    """(argument, name, quoted) of each part of a plain `catalog.schema.table`, else None."""
    parsed = _table(name)
    parts = []
    for key, value in parsed.args.items():
        if value is None:
            continue
        if key not in ("this", "db", "catalog") or not isinstance(value, exp.Identifier) \
                or set(value.args) - {"this", "quoted"}:
            return None
        parts.append((key, value.name, bool(value.args.get("quoted"))))
    return tuple(parts)


def cast(node: exp.Expr, type_text: str) -> exp.Cast:
    """CAST(node AS type): the type node is parsed once per type text, then copied."""
    return exp.Cast(this=node, to=data_type(type_text))


# ---------------------------------------------------------------- references

def reference_text(node: exp.Expr) -> str | None:
    """`a.b.c` for a qualified column or dot chain; None for a bare name."""
    if isinstance(node, exp.Column):
        parts = [p.name for p in node.parts]
        return ".".join(parts) if len(parts) >= 2 else None
    if isinstance(node, exp.Dot):
        left = reference_text(node.this)
        if left is None:
            return None
        return f"{left}.{node.expression.name}"
    return None


def bare_name(node: exp.Expr) -> str | None:
    """The name of an unqualified column (`revenue`), which may name an output column; else None."""
    if isinstance(node, exp.Column) and len(node.parts) == 1:
        return node.name
    return None


def reference_nodes(tree: exp.Expr) -> Iterator[exp.Expr]:
    """Outermost column-like nodes: qualified references and bare names."""
    for node in tree.walk(bfs=False):
        if isinstance(node, exp.Dot) and reference_text(node) is not None:
            if not isinstance(node.parent, exp.Dot):
                yield node
        elif isinstance(node, exp.Column) and not isinstance(node.parent, exp.Dot):
            yield node


def replace_references(tree: exp.Expr, replace: Callable[[exp.Expr], exp.Expr]) -> exp.Expr:
    """Replace every reference node by `replace(node)`; returns the (maybe new) root."""
    for node in list(reference_nodes(tree)):
        new = replace(node)
        if node is tree:
            return new
        node.replace(new)
    return tree


def qualify_columns(tree: exp.Expr, alias: str, what: str, loc: Location | None) -> exp.Expr:
    """Prefix the bare column names of a data source's own SQL with its alias."""
    for node in list(tree.find_all(exp.Column)):
        if len(node.parts) > 1:
            raise GenesisError(f"{what} may only use the table's own columns, not '{node.sql(DIALECT)}'", loc)
        node.set("table", exp.to_identifier(alias))
    return tree


# ---------------------------------------------------------------- aggregates

def aggregate_units(tree: exp.Expr) -> list[exp.Expr]:
    """The outermost aggregate calls (a FILTER clause belongs to its aggregate)."""
    units: list[exp.Expr] = []
    for node in tree.walk(bfs=False):
        if isinstance(node, exp.AggFunc) and not isinstance(node.parent, exp.Filter):
            if not _inside_unit(node, units):
                units.append(node)
        elif isinstance(node, exp.Filter) and isinstance(node.this, exp.AggFunc):
            if not _inside_unit(node, units):
                units.append(node)
    return units


def _inside_unit(node: exp.Expr, units: list[exp.Expr]) -> bool:
    parent = node.parent
    while parent is not None:
        if any(parent is u for u in units):
            return True
        parent = parent.parent
    return False


def has_aggregate(tree: exp.Expr) -> bool:
    """Does `tree` call an aggregate (which makes a filter a HAVING, a column an aggregate)?"""
    return bool(aggregate_units(tree))


def nested_aggregate(unit: exp.Expr) -> bool:
    """Does an aggregate call hold another inside it (`sum(count(x))`), which SQL refuses?"""
    inner = unit.this if isinstance(unit, exp.Filter) else unit
    return any(isinstance(n, exp.AggFunc) for n in inner.walk() if n is not inner)


def is_idempotent(unit: exp.Expr) -> bool:
    """True when joining the same row twice cannot change the aggregate's value."""
    agg = unit.this if isinstance(unit, exp.Filter) else unit
    if isinstance(agg, (exp.Min, exp.Max, exp.ApproxDistinct, exp.LogicalAnd, exp.LogicalOr, exp.AnyValue)):
        return True
    if isinstance(agg, (exp.Count, exp.ArrayAgg)) and isinstance(agg.this, exp.Distinct):
        return True
    return False
