"""A real Trino server for the whole test run, and projects whose tables it reads.

The server is started outside pytest (`.ci/run` does it, or by hand):

    export GENESIS_CATALOG_URI=$(scripts/postgres-server start | tail -1)
    export GENESIS_TRINO_URL=$(scripts/trino-server start | tail -1)

Without those variables the tests here are skipped, except under CI=true where a missing
server fails them. Each data set (mini, example, TPC-H) is written by pyiceberg into the
PostgreSQL catalog under its own catalog name, one per xdist worker (`mini_gw0`), and the
test creates a Trino catalog of the same name over it (CREATE CATALOG), so workers never
share a table. The project copies name their tables `<that catalog>.schema.table`.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow as pa
import pytest
import yaml

from genesis.engines.trino import TrinoEngine
from genesis.engines.trino_catalog import create_catalog_sql, iceberg_catalog_properties
from genesis.engines.warehouse import Warehouse, open_catalog, write_table

WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
HOW_TO_START = ("start a real Trino with `scripts/postgres-server start` and `scripts/trino-server start` "
                "and export GENESIS_CATALOG_URI and GENESIS_TRINO_URL (their last output lines); see README")


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@dataclass
class TrinoServer:
    url: str
    catalog_uri: str

    @property
    def settings(self) -> dict:
        parts = urlsplit(self.url)
        return {"host": parts.hostname, "port": parts.port or 8080, "http_scheme": parts.scheme or "http",
                "user": "genesis"}

    def engine(self, **extra) -> TrinoEngine:
        return TrinoEngine({**self.settings, **extra})

    def rows(self, sql: str) -> list[tuple]:
        engine = self.engine()
        try:
            return [tuple(r.values()) for r in engine.execute(sql, label="genesis-tests").to_pylist()]
        finally:
            engine.close()

    def table(self, sql: str) -> pa.Table:
        engine = self.engine()
        try:
            return engine.execute(sql, label="genesis-tests")
        finally:
            engine.close()


@pytest.fixture(scope="session")
def trino_server() -> TrinoServer:
    url, uri = os.environ.get("GENESIS_TRINO_URL"), os.environ.get("GENESIS_CATALOG_URI")
    if not url or not uri:
        message = f"no real Trino server (GENESIS_TRINO_URL / GENESIS_CATALOG_URI unset): {HOW_TO_START}"
        if _in_ci():
            pytest.fail(message + " -- under CI the real-Trino tests must run")
        pytest.skip(message)
    server = TrinoServer(url.rstrip("/"), uri)
    try:
        assert server.rows("SELECT 1") == [(1,)]
    except Exception as exc:  # set but not answering: the run asked for Trino, so fail
        pytest.fail(f"GENESIS_TRINO_URL={url} does not answer: {exc} ({HOW_TO_START})")
    return server


# -- projects over Trino catalogs ----------------------------------------------------------------


@dataclass
class TrinoProject:
    root: Path
    catalog: str  # the Trino catalog = the pyiceberg catalog name of its tables
    warehouse: Warehouse

    def load(self):
        from genesis.project.load import load_project

        return load_project(self.root)

    def table_name(self, name: str) -> str:
        """'studio.movie_cdc' -> '<catalog>.studio.movie_cdc'."""
        return f"{self.catalog}.{name}"


def make_project(server: TrinoServer, source: Path, dataset: str, target_dir: Path,
                 tables: Callable[[], dict[str, pa.Table]]) -> TrinoProject:
    """A copy of `source` whose tables live in catalog `<dataset>_<worker>` of both engines.

    `tables()` gives {'schema.table': Arrow table}; the copy's targets are `local` (DuckDB
    over the PostgreSQL catalog, the default) and `trino` (the real server).
    """
    catalog = f"{dataset}_{WORKER}".lower()
    root = target_dir / "project"
    shutil.copytree(source, root, ignore=shutil.ignore_patterns(".genesis", "out", "out-*"))
    for folder in ("datasources", "inputs", "trackers"):
        (root / folder).mkdir(exist_ok=True)
    for path in (root / "datasources").glob("*.yaml"):
        text = path.read_text()
        path.write_text(re.sub(r"^table:(\s*)iceberg\.", rf"table:\g<1>{catalog}.", text, flags=re.M))
    config = yaml.safe_load((root / "genesis.yaml").read_text())
    config["default_target"] = "local"
    # These projects compare engines: a refresh must not add run-history rows that the
    # example's tracker-health board would then read differently on the second engine.
    config["history"] = {"enabled": False}
    config["targets"] = {
        "local": {"engine": "duckdb", "warehouse": ".genesis/warehouse", "catalog_uri": server.catalog_uri,
                  "destinations": "local", "output_dir": "out-duckdb"},
        "trino": {"engine": "trino", "trino": {**server.settings, "catalog": catalog},
                  "destinations": "local", "output_dir": "out-trino"},
    }
    (root / "genesis.yaml").write_text(yaml.safe_dump(config, sort_keys=False))

    warehouse = Warehouse((root / ".genesis" / "warehouse").resolve(), server.catalog_uri)
    _forget_catalog(warehouse, catalog)
    for name, data in tables().items():
        write_table(warehouse, f"{catalog}.{name}", data)
    server.rows(f'DROP CATALOG IF EXISTS "{catalog}"')
    server.rows(create_catalog_sql(catalog, iceberg_catalog_properties(
        server.catalog_uri, catalog, warehouse.root.as_uri())))
    return TrinoProject(root, catalog, warehouse)


def _forget_catalog(warehouse: Warehouse, catalog: str) -> None:
    """Drop the PostgreSQL rows an earlier run left for this catalog name (their files are gone)."""
    import sqlalchemy

    open_catalog(warehouse, catalog, create=True)  # creates pyiceberg's tables on a fresh database
    engine = sqlalchemy.create_engine(warehouse.catalog_uri)
    try:
        with engine.begin() as con:
            for table in ("iceberg_tables", "iceberg_namespace_properties"):
                con.execute(sqlalchemy.text(f"DELETE FROM {table} WHERE catalog_name = :c"), {"c": catalog})
    finally:
        engine.dispose()


# -- comparing results ---------------------------------------------------------------------------


def assert_same_table(duckdb_table: pa.Table, trino_table: pa.Table, what: str = "") -> None:
    """Same column names and Arrow types (decimal precision and scale included), same values,
    nulls and row order. On a difference, say which column and row first differ."""
    prefix = f"{what}: " if what else ""
    assert duckdb_table.schema.names == trino_table.schema.names, f"{prefix}column names differ"
    for a, b in zip(duckdb_table.schema, trino_table.schema):
        assert a.type == b.type, f"{prefix}column '{a.name}' is {a.type} on DuckDB but {b.type} on Trino"
    assert duckdb_table.num_rows == trino_table.num_rows, (
        f"{prefix}{duckdb_table.num_rows} rows on DuckDB, {trino_table.num_rows} on Trino")
    left, right = duckdb_table.to_pylist(), trino_table.to_pylist()
    for i, (x, y) in enumerate(zip(left, right)):
        assert x == y, f"{prefix}row {i} differs:\n  DuckDB {x}\n  Trino  {y}"


def run_both(project, name: str, **params):
    """An input or tracker run through Genesis on DuckDB and on the real Trino."""
    from genesis.api import run_query

    return (run_query(project, name, target="local", params=params or None),
            run_query(project, name, target="trino", params=params or None))
