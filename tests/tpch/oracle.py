"""Compare a Genesis result with the official TPC-H query's result.

Columns are matched by position (the official names like `sum(l_quantity)` need not be the
Genesis output names); numbers match within a tolerance (see ABS_TOL) so that a decimal on one
side equals a double on the other; dates equal midnight timestamps. Rows are compared in order when the
official query fully orders its result, else as multisets.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pyarrow as pa

# Both sides run on the same engine, so the only legitimate difference is a decimal on one side
# and a double on the other (or a different but exact summation order): ~1e-15 relative. The
# tolerance is tight enough that a ratio like Q8's market share off in its 6th digit fails.
# (TPC-H's own audit rule, answers equal to the cent, would be abs_tol=0.01.)
ABS_TOL = 1e-6
REL_TOL = 1e-9


class Mismatch(AssertionError):
    pass


def _norm(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float, Decimal)):
        return float(value)
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0) and value.tzinfo is None:
            return value.date()
        return value
    return value


def _equal(a: Any, b: Any, abs_tol: float, rel_tol: float) -> bool:
    a, b = _norm(a), _norm(b)
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return abs(a - b) <= max(abs_tol, rel_tol * max(abs(a), abs(b)))
    return a == b


def _rows(table: pa.Table) -> list[tuple]:
    columns = [column.to_pylist() for column in table.columns]
    return list(zip(*columns)) if columns else []


def _sort_key(row: Sequence[Any]) -> tuple:
    # Numbers are rounded to 6 significant digits so that a decimal and the double next to it
    # land at the same place; None sorts first; mixed types sort by type name.
    key = []
    for value in row:
        value = _norm(value)
        if value is None:
            key.append((0, "", 0))
        elif isinstance(value, float):
            key.append((1, "float", float(f"{value:.6g}")))
        else:
            key.append((1, type(value).__name__, value))
    return tuple(key)


def _show(row: Sequence[Any]) -> str:
    return "(" + ", ".join(repr(_norm(v)) for v in row) + ")"


def compare(genesis_table: pa.Table, official_table: pa.Table, *, ordered: bool = True,
            abs_tol: float = ABS_TOL, rel_tol: float = REL_TOL) -> None:
    """Raise `Mismatch` (an AssertionError) describing the first difference, else return None."""
    if genesis_table.num_columns != official_table.num_columns:
        raise Mismatch(
            f"column count: genesis has {genesis_table.num_columns} {genesis_table.column_names}, "
            f"official has {official_table.num_columns} {official_table.column_names}")
    if genesis_table.num_rows != official_table.num_rows:
        raise Mismatch(f"row count: genesis {genesis_table.num_rows}, official {official_table.num_rows}")
    got, want = _rows(genesis_table), _rows(official_table)
    if not ordered:
        got, want = sorted(got, key=_sort_key), sorted(want, key=_sort_key)
    names = official_table.column_names
    for index, (g, w) in enumerate(zip(got, want)):
        for position, (a, b) in enumerate(zip(g, w)):
            if not _equal(a, b, abs_tol, rel_tol):
                where = f"row {index}" if ordered else f"row {index} (after sorting both sides)"
                raise Mismatch(
                    f"{where}, column {position + 1} ({names[position]} / "
                    f"{genesis_table.column_names[position]}): genesis {a!r} != official {b!r}\n"
                    f"  genesis:  {_show(g)}\n  official: {_show(w)}")


def matches(genesis_table: pa.Table, official_table: pa.Table, **kwargs) -> bool:
    try:
        compare(genesis_table, official_table, **kwargs)
        return True
    except Mismatch:
        return False


def compare_at_official_scale(genesis_table: pa.Table, official_table: pa.Table, *, ordered: bool = True) -> None:
    """`compare` for an official text run on Trino, which keeps decimals at its arithmetic's
    scale: `avg(l_quantity)` is 25.58 at scale 2 and a decimal ratio keeps the larger scale
    (Q8's share: 4 digits), where Genesis computes the full-precision double on every engine.
    Such a column must equal Genesis' value rounded half-up to the official column's scale,
    exactly; every other column is compared as `compare` does."""
    from decimal import ROUND_HALF_UP

    columns = []
    for mine, theirs in zip(genesis_table.columns, official_table.columns):
        if pa.types.is_floating(mine.type) and pa.types.is_decimal(theirs.type):
            unit = Decimal(1).scaleb(-theirs.type.scale)
            mine = pa.array([None if v is None else Decimal(repr(v)).quantize(unit, ROUND_HALF_UP)
                             for v in mine.to_pylist()], type=pa.decimal128(38, theirs.type.scale))
        columns.append(mine)
    compare(pa.Table.from_arrays(columns, names=genesis_table.column_names), official_table, ordered=ordered)
