"""The dialects queries are printed in: Trino as sqlglot writes it, and DuckDB as sqlglot
writes it except where a DuckDB function of the same name means something else.

Queries are built with Trino's meaning (the reference engine); sqlglot transpiles the
syntax, and the DuckDB generator here also keeps the meaning where the names agree but the
functions do not.
"""

from __future__ import annotations

from functools import cache

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.dialects.duckdb import DuckDB
from sqlglot.generators.duckdb import DuckDBGenerator

DIALECTS = ("trino", "duckdb")


def _trino_date_diff(generator: DuckDBGenerator, node: exp.DateDiff) -> str:
    """Trino's date_diff counts whole units (like DuckDB's date_sub); DuckDB's date_diff
    counts crossed boundaries: date_diff('year', DATE '2000-12-31', DATE '2001-01-01') is 1."""
    unit = node.args.get("unit")
    unit_text = (unit.name if unit is not None else "day").lower()
    return generator.func("DATE_SUB", exp.Literal.string(unit_text), node.expression, node.this)


class GenesisDuckDB(DuckDB):
    """sqlglot's DuckDB, printing Trino's date_diff as DuckDB's date_sub.

    A generator rule rather than a rewrite of the tree before printing: finding the calls to
    rewrite meant walking every query once more.
    """

    class Generator(DuckDBGenerator):
        TRANSFORMS = {**DuckDBGenerator.TRANSFORMS, exp.DateDiff: _trino_date_diff}


@cache
def dialect_named(name: str) -> Dialect:
    """The dialect a query is printed in, by the name users give (`trino`, `duckdb`)."""
    return GenesisDuckDB() if name == "duckdb" else Dialect.get_or_raise(name)
