"""The library entry points the CLI calls; every command is usable from Python."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from .compiler import CompiledQuery, compile_name
from .engines import Engine, EngineError, conform, open_engine
from .errors import Location
from .project.model import Project
from .project.types import trino_type_of_arrow
from .result import QueryResult


def execute(compiled: CompiledQuery, engine: Engine, *, label: str = "",
            timeout: float | None = None) -> QueryResult:
    """Run a compiled query and return rows typed as the input declares them."""
    sql = compiled.sql(engine.name)
    started = time.perf_counter()
    try:
        raw = engine.execute(sql, label=label or compiled.input.name, timeout=timeout)
    except EngineError as err:
        raise located(err, compiled, engine.name) from None
    table = conform(raw, compiled.columns)
    columns = tuple(
        c if c.type is not None else replace(c, type=trino_type_of_arrow(table.schema.field(i).type))
        for i, c in enumerate(compiled.columns)
    )
    stats = {"seconds": time.perf_counter() - started, "rows": table.num_rows}
    return QueryResult(columns, table, sql, engine.name, stats)


def located(err: EngineError, compiled: CompiledQuery, dialect: str) -> EngineError:
    """A query error pointed at the YAML that produced the failing SQL, naming tracker and input.

    Only errors in the query itself are the definitions' fault; connection, credential and
    timeout errors (and transient ones) stay as they are: one clear line.
    """
    if err.transient or not (err.sql_line or getattr(err, "error_name", None) or _ENGINE_PREFIX.match(err.message)):
        return err
    inp = compiled.input
    location = compiled.locate(dialect, err.sql_line, err.sql_col) or Location(inp.path)
    about = [f"input '{inp.name}'"] + ([] if location.path == inp.path else [inp.path])
    if compiled.tracker is None:
        who = f"{about[0]}" + (f" ({about[1]})" if len(about) > 1 else "")
    else:
        who = f"tracker '{compiled.tracker.name}' ({', '.join(about)})"
    message = _SQL_POSITION.sub("", _ENGINE_PREFIX.sub("", err.message, count=1), count=1)
    message = " ".join(message.split())  # one line, whatever the engine's layout
    engine = "Trino" if dialect == "trino" else "DuckDB"
    new = EngineError(f"{who} failed on {engine}: {message}", sql_line=err.sql_line, sql_col=err.sql_col)
    new.location = location
    if err.sql_line:
        name = compiled.tracker.name if compiled.tracker is not None else inp.name
        new.hint = f"SQL line {err.sql_line} of `genesis compile {name} --dialect {dialect}`"
    for attribute in ("error_name", "query_id"):
        if hasattr(err, attribute):
            setattr(new, attribute, getattr(err, attribute))
    return new


# How engines word a query error ("query 'x' failed on DuckDB: ", "Trino: ", Trino's
# "line 3:5: "): `located` says who failed where once, in its own words.
_ENGINE_PREFIX = re.compile(r"^(query '[^']*' )?(failed on DuckDB: |Trino: )")
_SQL_POSITION = re.compile(r"^line \d+:\d+: ")


def run_query(project: Project, name: str, *, target: str | None = None,
              params: Mapping[str, Any] | None = None, timeout: float | None = None) -> QueryResult:
    """Compile a tracker or input by name and run it on a target's engine."""
    compiled = compile_name(project, name, params)
    engine = open_engine(project, target)
    try:
        return execute(compiled, engine, label=name, timeout=timeout)
    finally:
        engine.close()
