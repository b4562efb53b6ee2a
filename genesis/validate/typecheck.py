"""Mistakes static types can show before anything runs (`genesis validate`).

DuckDB forgives some of them by casting quietly and Trino refuses them at run time, so
without this pass a project could validate locally and fail in production:

- `sum` / `avg` over text, dates or booleans (a measure, a field's `agg:`, or a call in a
  computed column or filter);
- a comparison (`=`, `<`, `BETWEEN`, `IN`, ...) between values of kinds Trino does not
  compare without a cast (it has no implicit coercion between them: "Cannot apply operator:
  date < varchar(10)"): numbers, text, dates and booleans each only with their own kind;
- a parameter written inside quotes (`'{{ n }}'`): its value is already a SQL literal.

Types come from the declarations (fields, measures, parameters) and from the static
inference in genesis.compiler.typing; where a type cannot be told, nothing is reported
(the engine remains the judge).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from sqlglot import exp

from ..compiler import graph_of
from ..compiler.expressions import (
    parameter_values,
    read_expression,
    reference_nodes,
    reference_text,
    render_parameters,
    sql_literal,
)
from ..compiler.typing import infer_type
from ..errors import GenesisError, Location
from ..project import types
from ..project.model import DataSource, Input, Project

_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ, exp.NullSafeNEQ)
_NOT_COMPARABLE = {frozenset(pair) for pair in (("number", "date"), ("number", "text"), ("number", "boolean"),
                                                 ("date", "boolean"), ("text", "boolean"), ("date", "text"))}
_PARAMETER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)")
_SUMMING = ("sum", "avg")  # the aggregates that need numbers


# ----------------------------------------------------------------------------- data sources


def measure_problems(ds: DataSource) -> Iterator[GenesisError]:
    """A `sum` / `avg` measure over a value that is not a number."""
    for measure in ds.measures.values():
        if measure.agg not in _SUMMING or measure.sql is None:
            continue
        value_type: str | None  # a field's declared type, else the inferred one (None: unknown)
        if measure.sql in ds.fields:
            value_type = ds.fields[measure.sql].type
        else:
            try:
                tree = read_expression(measure.sql, measure.sql_loc, "measure")
            except GenesisError:
                continue  # validate reports the syntax
            known = {id(c): ds.fields[c.name].type for c in tree.find_all(exp.Column)
                     if c.name in ds.fields and ds.fields[c.name].sql is None}
            value_type = infer_type(tree, known)
        if _kind(value_type) not in (None, "number"):
            yield GenesisError(f"measure '{ds.name}.{measure.name}' takes the {measure.agg} of a {value_type} "
                               f"value; {measure.agg} needs numbers", measure.sql_loc or measure.loc,
                               _summing_hint(measure.agg))


# ----------------------------------------------------------------------------- inputs


def input_type_problems(project: Project, inp: Input) -> Iterator[GenesisError]:
    """An input's `agg: sum/avg` over non-numbers, and its computed columns' and filters'
    sums and comparisons of kinds Trino does not mix (see the module docstring)."""
    if inp.root not in project.datasources:
        return
    graph = graph_of(project)
    for item in inp.fields:
        if item.field is not None and item.agg in _SUMMING:
            try:
                member = graph.resolve(inp.root, item.field, item.sql_loc).member
            except GenesisError:
                continue
            value_type = getattr(member, "type", None)
            if _kind(value_type) not in (None, "number"):
                yield GenesisError(f"'{item.field}' is {value_type}: agg: {item.agg} needs numbers",
                                   item.loc, _summing_hint(item.agg))
    try:
        values = parameter_values(inp.parameters)
        literals = {n: sql_literal(v, inp.parameters[n].type) for n, v in values.items()}
    except GenesisError:
        literals = None  # a parameter without a default: the compiler reports it
    if literals is None:
        return
    for text, loc, what in _user_sql(inp):
        if _quoted_parameter(text) is None:  # else reported by quoted_parameters
            yield from _expression_problems(project, inp, text, loc, what, literals)


def quoted_parameters(inp: Input) -> list[GenesisError]:
    """`'{{ n }}'`: the value is already a literal, so the quotes make it text or a syntax error.

    Checked on the raw text, so it is reported even where the rendered SQL does not parse
    (validate shows this error in place of the parser's).
    """
    problems = []
    for text, loc, what in _user_sql(inp):
        name = _quoted_parameter(text)
        if name is not None:
            problems.append(GenesisError(
                f"{what} puts parameter '{name}' inside quotes", loc,
                f"{{{{ {name} }}}} is already a SQL literal ('US', DATE '2025-01-31', 42): remove the quotes"))
    return problems


def _quoted_parameter(text: str) -> str | None:
    """The first parameter whose `{{ }}` sits inside a '...' or "..." of the SQL text."""
    quote = None
    index = 0
    while index < len(text):
        char = text[index]
        if quote is None and char in "'\"":
            quote = char
        elif char == quote:
            if text[index + 1:index + 2] == quote:  # '' inside '...': an escaped quote
                index += 1
            else:
                quote = None
        elif quote is not None and text.startswith("{{", index):
            found = _PARAMETER.match(text, index)
            if found:
                return found.group(1)
        index += 1
    return None


def _user_sql(inp: Input) -> list[tuple[str, Location | None, str]]:
    """Each `sql:` an input writes itself (computed columns and filters): its text, location and a label."""
    texts: list[tuple[str, Location | None, str]] = [(item.sql, item.sql_loc or item.loc, f"column '{item.name}'") for item in inp.fields if item.sql]
    return texts + [(flt.sql, flt.loc, f"filter {index + 1}") for index, flt in enumerate(inp.filters)]


def _expression_problems(project: Project, inp: Input, text: str, loc: Location | None, what: str,
                         literals: dict[str, str]) -> Iterator[GenesisError]:
    graph = graph_of(project)
    try:
        tree = read_expression(render_parameters(text, literals, loc, what), loc, what)
        known = {}
        for node in reference_nodes(tree):
            reference = reference_text(node)
            if reference is not None:
                member = graph.resolve(inp.root, reference, loc).member
                if getattr(member, "type", None):
                    known[id(node)] = member.type
    except GenesisError:
        return  # the compiler reports it
    for node in tree.walk():
        if isinstance(node, (exp.Sum, exp.Avg)):
            value_type = _type_of(node.this, known)
            name = "sum" if isinstance(node, exp.Sum) else "avg"
            if _kind(value_type) not in (None, "number"):
                yield GenesisError(f"{what} takes the {name} of {_shown(node.this)}, which is {value_type}; "
                                   f"{name} needs numbers", loc, _summing_hint(name))
        elif isinstance(node, _COMPARISONS):
            yield from _compared(what, loc, node.left, [node.right], known)
        elif isinstance(node, exp.Between):
            yield from _compared(what, loc, node.this, [node.args.get("low"), node.args.get("high")], known)
        elif isinstance(node, exp.In) and node.expressions:
            yield from _compared(what, loc, node.this, node.expressions, known)


def _compared(what: str, loc, left: exp.Expr, rights: list, known: dict) -> Iterator[GenesisError]:
    left_type = _type_of(left, known)
    for right in rights:
        if right is None:
            continue
        right_type = _type_of(right, known)
        if frozenset((_kind(left_type), _kind(right_type))) in _NOT_COMPARABLE:
            yield GenesisError(
                f"{what} compares {_shown(left)} ({left_type}) with {_shown(right)} ({right_type}); "
                f"Trino cannot compare {_kind(left_type)} with {_kind(right_type)}", loc,
                "compare a date with a date (DATE '2025-01-31', current_date), a number with a number, "
                "text with text, or cast(x AS type)")
            return


def _type_of(node: exp.Expr, known: dict) -> str | None:
    """infer_type, plus the date arithmetic a filter uses most."""
    if isinstance(node, exp.Paren):
        return _type_of(node.this, known)
    if isinstance(node, (exp.DateAdd, exp.DateSub)):
        return _type_of(node.this, known)
    if isinstance(node, exp.CurrentTimestamp):
        return "timestamp with time zone"
    return infer_type(node, known)


def _kind(value_type: str | None) -> str | None:
    if value_type is None:
        return None
    if types.is_numeric(value_type):
        return "number"
    if value_type == "date" or value_type.startswith("timestamp"):
        return "date"
    if value_type == "varchar":
        return "text"
    if value_type == "boolean":
        return "boolean"
    return None


def _shown(node: exp.Expr) -> str:
    """A reference in quotes, as other messages show them; other SQL as written."""
    reference = reference_text(node)
    if reference is not None:
        return f"'{reference}'"
    text = node.sql("trino")
    return text if len(text) <= 60 else text[:57] + "..."


def _summing_hint(name: str) -> str:
    return "use count, count_distinct, min or max, or cast the value to a number"
