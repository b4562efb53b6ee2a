"""Write a schema, its rows and inputs as a real Genesis project (YAML + Iceberg tables)
and run the inputs through the real compiler and DuckDB engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import yaml

from genesis.api import execute
from genesis.compiler import compile_input
from genesis.engines import open_engine
from genesis.engines.warehouse import write_table
from genesis.project.load import load_project

from .spec import InputSpec, Rows, Schema

ARROW = {"bigint": pa.int64(), "varchar": pa.string(), "double": pa.float64(), "boolean": pa.bool_(),
         "decimal(10,2)": pa.decimal128(10, 2)}


def source_yaml(source) -> dict:
    fields = {}
    for f in source.fields.values():
        entry: dict[str, Any] = {"type": f.type}
        if f.sql is not None:
            entry["sql"] = f.sql.sql()
        if f.labels:
            entry["labels"] = dict(f.labels)
        fields[f.name] = entry
    doc: dict[str, Any] = {"name": source.name, "table": f"iceberg.t.{source.table}",
                           "primary_key": list(source.pk), "fields": fields}
    if source.latest is not None:
        order_by, deleted = source.latest
        doc["latest"] = {"order_by": order_by, **({"deleted": deleted.sql()} if deleted is not None else {})}
    if source.measures:
        doc["measures"] = {m.name: {**({"agg": m.agg} if m.agg else {}),
                                    **({"sql": m.arg.sql()} if m.arg is not None else {}),
                                    **({"type": m.type} if m.type else {})} for m in source.measures.values()}
    if source.segments:  # both spellings: a plain condition, and {sql, description}
        doc["segments"] = {name: condition.sql() if n % 2 == 0 else {"sql": condition.sql(), "description": name}
                           for n, (name, condition) in enumerate(source.segments.items())}
    if source.joins:
        doc["joins"] = {j.name: {"datasource": j.target, "on": dict(j.on), "relationship": j.relationship,
                                 **({"type": "inner"} if j.inner else {})} for j in source.joins.values()}
    return doc


def input_yaml(inp: InputSpec) -> dict:
    fields = []
    for item in inp.items:
        if item.ref is not None:
            fields.append({"field": item.ref.text, "label": item.name, **({"agg": item.agg} if item.agg else {})})
        else:
            fields.append({"name": item.name, "sql": item.sql.sql()})
    doc: dict[str, Any] = {"name": inp.name, "from": inp.root, "fields": fields}
    if inp.filters:
        doc["filters"] = [f.sql() for f in inp.filters]
    if inp.params:
        doc["parameters"] = {n: {"type": t, "default": _plain(v)} for n, (t, v) in inp.params.items()}
    if inp.sort:
        doc["sort"] = [(key if isinstance(key, str) else key.text) + (" DESC" if desc else "")
                       for key, desc in inp.sort]
    if inp.limit:
        doc["limit"] = inp.limit
    return doc


def _plain(value):
    return [_plain(v) for v in value] if isinstance(value, list) else value


def write_project(directory: Path, schema: Schema, rows: Rows, inputs: list[InputSpec]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "genesis.yaml").write_text(yaml.safe_dump({
        "name": "diff", "default_target": "local",
        "targets": {"local": {"engine": "duckdb", "warehouse": ".genesis/warehouse", "destinations": "local"}}}))
    for folder in ("datasources", "inputs", "trackers"):
        (directory / folder).mkdir(exist_ok=True)
    for source in schema.values():
        (directory / "datasources" / f"{source.name}.yaml").write_text(
            yaml.safe_dump(source_yaml(source), sort_keys=False))
        arrow_schema = pa.schema([(c, ARROW[t]) for c, t in source.columns.items()])
        table = pa.Table.from_pylist(rows.get(source.table, []), schema=arrow_schema)
        write_table(directory / ".genesis" / "warehouse", f"iceberg.t.{source.table}", table)
    for inp in inputs:
        write_input(directory, inp)
    return directory


def write_input(directory: Path, inp: InputSpec) -> None:
    (directory / "inputs" / f"{inp.name}.yaml").write_text(yaml.safe_dump(input_yaml(inp), sort_keys=False))


class GenesisRunner:
    """Runs inputs of a written project on DuckDB, one engine for all of them."""

    def __init__(self, directory: Path):
        self.project = load_project(directory)
        self.engine = open_engine(self.project)

    def run(self, name: str) -> list[tuple]:
        result = execute(compile_input(self.project, name), self.engine, label=name)
        return [tuple(row.values()) for row in result.table.to_pylist()]

    def close(self) -> None:
        self.engine.close()


def same_rows(got: list[tuple], expected: list[tuple]) -> bool:
    """Equal row by row; doubles (avg, and sums of doubles) within 1e-9 relative."""
    return len(got) == len(expected) and all(
        len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b)) for a, b in zip(got, expected))


def same_value(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) or hasattr(a, "quantize") or hasattr(b, "quantize"):
        if isinstance(a, float) or isinstance(b, float):
            x, y = float(a), float(b)
            return abs(x - y) <= 1e-9 * max(1.0, abs(x), abs(y))
        return a == b
    return a == b
