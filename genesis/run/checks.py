"""A tracker's checks: all must pass before anything is written."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from ..compiler import CompiledQuery
from ..errors import GenesisError, Location
from ..project.model import Checks
from ..result import OutputColumn, QueryResult
from ..text import plural


def output_column(compiled: CompiledQuery, reference: str, where: Location | None = None) -> OutputColumn:
    """The output column a check or a tracker's key names (by reference or output name).

    Validation makes sure every such name is a column of the input; should one still be
    missing, this is a located error naming it rather than a crash on None."""
    column = compiled.column_for(reference)
    if column is None:
        raise GenesisError(f"'{reference}' is not a column of input '{compiled.input.name}'", where)
    return column


def located_failures(result: QueryResult, checks: Checks,
                     compiled: CompiledQuery) -> list[tuple[str, Location]]:
    """Each failed check's sentence with where that check is written (its own line)."""
    problems = []
    rows = result.table.num_rows
    if checks.min_rows is not None and rows < checks.min_rows:
        problems.append((f"min_rows: {plural(rows, 'row')}, at least {checks.min_rows} expected",
                         checks.loc_of("min_rows")))
    if checks.max_rows is not None and rows > checks.max_rows:
        problems.append((f"max_rows: {plural(rows, 'row')}, at most {checks.max_rows} expected",
                         checks.loc_of("max_rows")))
    for index, reference in enumerate(checks.not_null):
        name = output_column(compiled, reference, checks.loc_of("not_null", index)).name
        nulls = result.table.column(name).null_count
        if nulls:
            problems.append((f"not_null: {plural(nulls, 'row')} {'has' if nulls == 1 else 'have'} no value in '{name}'",
                             checks.loc_of("not_null", index)))
    if checks.unique:
        names = [output_column(compiled, r, checks.loc_of("unique", i)).name for i, r in enumerate(checks.unique)]
        duplicates = duplicate_keys(result.table, names)
        if duplicates:
            shown = ", ".join(str(d) for d in duplicates[:3])
            problems.append((f"unique: {plural(len(duplicates), 'value')} of {', '.join(names)} "
                             f"{'repeats' if len(duplicates) == 1 else 'repeat'}, e.g. {shown}",
                             checks.loc_of("unique")))
    return problems


def duplicate_keys(table: pa.Table, names: list[str]) -> list:
    """The key values that occur more than once (together, for several columns)."""
    if table.num_rows == 0:
        return []
    counts = table.select(names).group_by(names).aggregate([([], "count_all")])
    repeated = counts.filter(pc.greater(counts.column("count_all"), 1))
    keys = repeated.select(names).to_pylist()
    return [k[names[0]] if len(names) == 1 else tuple(k.values()) for k in keys]
