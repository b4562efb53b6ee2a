"""A tiny expression language that prints as Trino SQL and evaluates in plain Python.

The differential test builds every `sql:` field, measure, filter and computed column
from these nodes, so the reference evaluator never parses SQL: it calls `value()`.
Values follow SQL's rules: NULL is None, comparisons and arithmetic with NULL give
NULL, AND/OR are three-valued.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

AGGS = ("count", "count_distinct", "sum", "avg", "min", "max")


class Expr:
    def sql(self) -> str:
        raise NotImplementedError

    def value(self, env: Env) -> Any:
        raise NotImplementedError

    def children(self) -> tuple[Expr, ...]:
        return ()

    def walk(self):
        yield self
        for child in self.children():
            yield from child.walk()


class Env:
    """How leaves get their values: a column of a row, a reference, a parameter, an aggregate."""

    def __init__(self, column: Callable[[str], Any] | None = None, ref: Callable[[Ref], Any] | None = None,
                 params: dict | None = None, agg: Callable[[Agg], Any] | None = None):
        self.column, self.ref, self.params, self.agg = column, ref, params or {}, agg


@dataclass(frozen=True)
class Col(Expr):
    """A column of the data source's own table (in `sql:` of fields and measures)."""
    name: str

    def sql(self):
        return self.name

    def value(self, env):
        return env.column(self.name)


@dataclass(frozen=True)
class Ref(Expr):
    """`PATH.field` or `PATH.measure` in an input; `path` is the join names from the root."""
    text: str
    path: tuple[str, ...]
    member: str

    def sql(self):
        return self.text

    def value(self, env):
        return env.ref(self)


@dataclass(frozen=True)
class Lit(Expr):
    v: Any

    def sql(self):
        if self.v is None:
            return "NULL"
        if isinstance(self.v, bool):
            return "TRUE" if self.v else "FALSE"
        if isinstance(self.v, str):
            return "'" + self.v.replace("'", "''") + "'"
        text = str(self.v)
        return f"({text})" if text.startswith("-") else text

    def value(self, env):
        return self.v


@dataclass(frozen=True)
class Param(Expr):
    name: str

    def sql(self):
        return "{{ " + self.name + " }}"

    def value(self, env):
        return env.params[self.name]


@dataclass(frozen=True)
class Arith(Expr):
    op: str  # + - *
    left: Expr
    right: Expr

    def sql(self):
        return f"({self.left.sql()} {self.op} {self.right.sql()})"

    def children(self):
        return (self.left, self.right)

    def value(self, env):
        a, b = self.left.value(env), self.right.value(env)
        if a is None or b is None:
            return None
        if isinstance(a, float) or isinstance(b, float):
            a, b = float(a), float(b)
        elif isinstance(a, Decimal) or isinstance(b, Decimal):
            a, b = Decimal(a), Decimal(b)
        return {"+": a + b, "-": a - b, "*": a * b}[self.op]


@dataclass(frozen=True)
class Ratio(Expr):
    """`CAST(a AS double) / NULLIF(CAST(b AS double), 0)`: a ratio (of measures), NULL over zero."""
    left: Expr
    right: Expr

    def sql(self):
        return f"(CAST({self.left.sql()} AS double) / NULLIF(CAST({self.right.sql()} AS double), 0))"

    def children(self):
        return (self.left, self.right)

    def value(self, env):
        a, b = self.left.value(env), self.right.value(env)
        if a is None or b is None or b == 0:
            return None
        return float(a) / float(b)


@dataclass(frozen=True)
class Cmp(Expr):
    op: str  # = <> < <= > >=
    left: Expr
    right: Expr

    def sql(self):
        return f"({self.left.sql()} {self.op} {self.right.sql()})"

    def children(self):
        return (self.left, self.right)

    def value(self, env):
        a, b = self.left.value(env), self.right.value(env)
        if a is None or b is None:
            return None
        return {"=": a == b, "<>": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[self.op]


@dataclass(frozen=True)
class Logic(Expr):
    op: str  # AND OR
    left: Expr
    right: Expr

    def sql(self):
        return f"({self.left.sql()} {self.op} {self.right.sql()})"

    def children(self):
        return (self.left, self.right)

    def value(self, env):
        a, b = self.left.value(env), self.right.value(env)
        if self.op == "AND":
            if a is False or b is False:
                return False
            return None if a is None or b is None else True
        if a is True or b is True:
            return True
        return None if a is None or b is None else False


@dataclass(frozen=True)
class Not(Expr):
    this: Expr

    def sql(self):
        return f"(NOT {self.this.sql()})"

    def children(self):
        return (self.this,)

    def value(self, env):
        v = self.this.value(env)
        return None if v is None else not v


@dataclass(frozen=True)
class IsNull(Expr):
    this: Expr
    negated: bool = False

    def sql(self):
        return f"({self.this.sql()} IS {'NOT ' if self.negated else ''}NULL)"

    def children(self):
        return (self.this,)

    def value(self, env):
        return (self.this.value(env) is None) != self.negated


@dataclass(frozen=True)
class InList(Expr):
    """`x IN (a, b)`; `items` is a Param of an array type or a tuple of literals."""
    this: Expr
    items: Any

    def sql(self):
        inner = self.items.sql() if isinstance(self.items, Param) else ", ".join(i.sql() for i in self.items)
        return f"({self.this.sql()} IN ({inner}))"

    def children(self):
        return (self.this,)

    def value(self, env):
        v = self.this.value(env)
        values = env.params[self.items.name] if isinstance(self.items, Param) else [i.value(env) for i in self.items]
        if not values:
            return None  # IN (NULL)
        if v is None:
            return None
        if v in values:
            return True
        return None if None in values else False


@dataclass(frozen=True)
class Case(Expr):
    when: Expr
    then: Expr
    otherwise: Expr | None

    def sql(self):
        tail = f" ELSE {self.otherwise.sql()}" if self.otherwise is not None else ""
        return f"CASE WHEN {self.when.sql()} THEN {self.then.sql()}{tail} END"

    def children(self):
        return (self.when, self.then) + ((self.otherwise,) if self.otherwise is not None else ())

    def value(self, env):
        if self.when.value(env) is True:
            return self.then.value(env)
        return self.otherwise.value(env) if self.otherwise is not None else None


@dataclass(frozen=True)
class Coalesce(Expr):
    args: tuple[Expr, ...]

    def sql(self):
        return f"coalesce({', '.join(a.sql() for a in self.args)})"

    def children(self):
        return self.args

    def value(self, env):
        for a in self.args:
            v = a.value(env)
            if v is not None:
                return v
        return None


@dataclass(frozen=True)
class Agg(Expr):
    """An aggregate call in a computed column or HAVING; `arg` None is count(*)."""
    kind: str  # count, count_distinct, sum, avg, min, max
    arg: Expr | None

    def sql(self):
        if self.arg is None:
            return "count(*)"
        if self.kind == "count_distinct":
            return f"count(DISTINCT {self.arg.sql()})"
        return f"{self.kind}({self.arg.sql()})"

    def children(self):
        return (self.arg,) if self.arg is not None else ()

    def value(self, env):
        return env.agg(self)


def aggregate(kind: str, values: list, count_rows: int | None = None) -> Any:
    """SQL's aggregate over a list of values (NULLs ignored); count(*) counts rows."""
    if kind == "count" and count_rows is not None:
        return count_rows
    present = [v for v in values if v is not None]
    if kind == "count":
        return len(present)
    if kind == "count_distinct":
        return len(set(present))
    if kind == "list":
        texts = sorted({as_text(v) for v in present})
        return ", ".join(texts) if texts else None
    if not present:
        return None
    if kind == "sum":
        if any(isinstance(v, float) for v in present):  # summed exactly, as the docs promise
            return float(sum(Decimal(v) for v in present))
        return sum(present)
    if kind == "avg":
        if any(isinstance(v, float) for v in present):
            return float(sum(Decimal(v) for v in present) / len(present))
        return float(Decimal(sum(present)) / len(present))
    if kind == "min":
        return min(present)
    if kind == "max":
        return max(present)
    raise ValueError(kind)


def as_text(v: Any) -> str:
    """CAST(v AS varchar) for the types a list is generated over."""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def refs_in(e: Expr | None) -> list[Ref]:
    return [n for n in e.walk() if isinstance(n, Ref)] if e is not None else []


def aggs_in(e: Expr | None) -> list[Agg]:
    """The outermost aggregate calls."""
    found = []

    def visit(node):
        if isinstance(node, Agg):
            found.append(node)
            return
        for child in node.children():
            visit(child)
    if e is not None:
        visit(e)
    return found
