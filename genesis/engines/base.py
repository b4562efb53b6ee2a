"""What every engine offers, and the one conversion all their results go through."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import pyarrow as pa

from ..errors import GenesisError
from ..project.types import arrow_type
from ..result import OutputColumn


class EngineError(GenesisError):
    """A query failed on the engine. `sql_line`/`sql_col` locate it in the SQL when known.

    `error_name` and `query_id` are Trino's (e.g. 'TABLE_NOT_FOUND'), None for other engines.
    """

    error_name: str | None = None
    query_id: str | None = None

    def __init__(self, message: str, *, sql_line: int | None = None, sql_col: int | None = None,
                 transient: bool = False):
        super().__init__(message)
        self.sql_line = sql_line
        self.sql_col = sql_col
        self.transient = transient


class Engine(Protocol):
    """A place where compiled SQL runs.

    name       -- 'duckdb' or 'trino'; also the sqlglot dialect the engine is given SQL in
    execute    -- run one SELECT and return every row as an Arrow table; `label` names who
                  runs it (a tracker or input name), `timeout` is in seconds and cancels the
                  query where the engine can
    table_columns -- the live columns of a catalog table `a.b.c` as {name: canonical Trino
                  type}, or None when the table does not exist (for the schema-drift check)
    """

    name: str

    def execute(self, sql: str, *, label: str = "", timeout: float | None = None) -> pa.Table:
        """Every row of one SELECT as an Arrow table; any failure is raised as an EngineError."""

    def table_columns(self, table: str) -> dict[str, str] | None:
        """The live columns of table `a.b.c` as {name: canonical Trino type}, None when it does not exist."""

    def close(self) -> None:
        """Release the engine's connections; it runs no query afterwards."""


def conform(table: pa.Table, columns: Sequence[OutputColumn]) -> pa.Table:
    """Rename the engine's columns to the output names and cast them to the declared types.

    Engines differ in what they return for the same SQL (DuckDB's HUGEINT sums, Trino's
    timestamp precision); casting here means destinations see one type per column.
    """
    if table.num_columns != len(columns):
        raise EngineError(f"the engine returned {table.num_columns} columns, expected {len(columns)}")
    arrays = []
    for array, column in zip(table.columns, columns):
        if column.type is None:  # undeclared and not inferable: the engine's type stands
            arrays.append(array)
            continue
        target = arrow_type(column.type)
        if array.type != target:
            try:
                array = array.cast(target)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise EngineError(
                    f"column '{column.name}' cannot be read as {column.type}: {exc}"
                ) from None
        if pa.types.is_floating(array.type):
            array = _fifteen_digits(array)
        arrays.append(array)
    return pa.Table.from_arrays(arrays, names=[c.name for c in columns])


def _fifteen_digits(array):
    """Doubles rounded to 15 significant digits, the precision spreadsheets keep.

    A parallel engine adds doubles in a different order on each run, so `avg(x)` can
    differ in its last bits; rounding here keeps an unchanged tracker byte-identical.
    """
    import numpy as np

    chunks = []
    for chunk in (array.chunks if isinstance(array, pa.ChunkedArray) else [array]):
        values = chunk.to_numpy(zero_copy_only=False).astype(np.float64)
        finite = np.isfinite(values) & (values != 0)
        magnitude = np.zeros_like(values)
        magnitude[finite] = np.floor(np.log10(np.abs(values[finite])))
        scale = np.power(10.0, 14 - magnitude)
        rounded = np.where(finite, np.round(values * scale) / scale, values)
        chunks.append(pa.array(rounded, type=chunk.type, mask=chunk.is_null().to_numpy(zero_copy_only=False)))
    return pa.chunked_array(chunks, type=array.type)
