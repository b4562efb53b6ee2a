"""The library entry points the CLI calls; every command is usable from Python."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, Mapping

from .compiler import CompiledQuery, compile_name
from .engines import Engine, conform, open_engine
from .model import Project
from .result import QueryResult
from .types import trino_type_of_arrow


def execute(compiled: CompiledQuery, engine: Engine, *, label: str = "",
            timeout: float | None = None) -> QueryResult:
    """Run a compiled query and return rows typed as the input declares them."""
    sql = compiled.sql(engine.name)
    started = time.perf_counter()
    raw = engine.execute(sql, label=label or compiled.input.name, timeout=timeout)
    table = conform(raw, compiled.columns)
    columns = tuple(
        c if c.type is not None else replace(c, type=trino_type_of_arrow(table.schema.field(i).type))
        for i, c in enumerate(compiled.columns)
    )
    stats = {"seconds": time.perf_counter() - started, "rows": table.num_rows}
    return QueryResult(columns, table, sql, engine.name, stats)


def run_query(project: Project, name: str, *, target: str | None = None,
              params: Mapping[str, Any] | None = None, timeout: float | None = None) -> QueryResult:
    """Compile a tracker or input by name and run it on a target's engine."""
    compiled = compile_name(project, name, params)
    engine = open_engine(project, target)
    try:
        return execute(compiled, engine, label=name, timeout=timeout)
    finally:
        engine.close()
