"""The typed result of a query, as every check and destination receives it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # Arrow is only needed once a query has run
    import pyarrow as pa


@dataclass(frozen=True)
class OutputColumn:
    """One column of an input's output.

    name      -- the output column name (the field's label, else its name)
    type      -- canonical Trino type (see genesis.project.types), e.g. 'decimal(18,2)', 'date'
    format    -- the input's `format` mapping for this column, or None
    reference -- 'movie.movie_id' when the column is a plain field reference, else None
    """

    name: str
    type: str | None  # None: a type the compiler cannot tell (the engine reports it)
    format: Mapping[str, Any] | None = None
    reference: str | None = None


@dataclass(frozen=True)
class QueryResult:
    """Rows as an Arrow table whose column names are the OutputColumn names, in order."""

    columns: tuple[OutputColumn, ...]
    table: pa.Table
    sql: str = ""
    engine: str = ""
    stats: Mapping[str, Any] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        """The output column names, in order (also the Arrow table's column names)."""
        return [c.name for c in self.columns]

    def column(self, name: str) -> OutputColumn:
        """The output column called `name`; KeyError when there is none."""
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)
