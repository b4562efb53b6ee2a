"""The run history: one row per tracker per refresh, stored where the project's data lives.

Local (duckdb) target: an Iceberg table in the target's warehouse, written with pyiceberg.
Appends are optimistic commits: when another process committed first, pyiceberg raises
CommitFailedException and the append is retried on the new table state, so several
refreshes finishing at once each land their rows exactly once.

Trino target: a table in the cluster (`history.table`, default `iceberg.genesis.runs`),
created with CREATE TABLE IF NOT EXISTS and appended to with one INSERT per refresh;
the cluster's Iceberg connector does the optimistic commit. Either way, the
`genesis_runs` data source reads it like any other table.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import random
import subprocess
import time
import warnings
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, overload

import pyarrow as pa

from ..errors import GenesisError
from ..project.model import Project, Target

DEFAULT_TABLE = "iceberg.genesis.runs"
OK_STATUSES = ("ok", "unchanged")
COMMIT_ATTEMPTS = 20
COMPACT_AT = 64  # data files: past this, the history is rewritten as one file

TS = pa.timestamp("us")  # UTC, without zone: what the data sources' timestamps are
SCHEMA = pa.schema([
    ("run_id", pa.string()),          # one id per `genesis refresh` invocation
    ("tracker", pa.string()),
    ("target", pa.string()),
    ("owner", pa.string()),
    ("status", pa.string()),          # ok | unchanged | failed | late
    ("stage", pa.string()),           # compile | query | checks | write (failed runs)
    ("error", pa.string()),           # redacted, one line
    ("error_location", pa.string()),  # path:line:col of the definition at fault
    ("started_at", TS),
    ("ended_at", TS),
    ("seconds", pa.float64()),
    ("rows", pa.int64()),             # rows the query returned
    ("written", pa.int64()),          # what the write changed, in `written_unit`
    ("written_unit", pa.string()),    # rows (files) | cells (Google Sheets) | records (Airtable)
    ("sql_hash", pa.string()),        # sha256 of the SQL run, first 16 hex digits
    ("git_commit", pa.string()),
    ("data_age_seconds", pa.float64()),  # age of the newest source row (checks.fresh)
    ("run_url", pa.string()),         # the CI run, when known
])
_TRINO_TYPES = {pa.string(): "varchar", TS: "timestamp(6)", pa.float64(): "double", pa.int64(): "bigint"}


def history_enabled(project: Project, target: Target) -> bool:
    """On by default for a local target. A Trino target records only when genesis.yaml names
    the table (`history.table`) or says `history.enabled: true`: Genesis does not create
    schemas and tables on a shared cluster unasked."""
    config = project.config.history
    if "enabled" in config:
        return bool(config["enabled"])
    return target.engine != "trino" or "table" in config


def history_table(project: Project) -> str:
    """The run history's table `catalog.schema.table`: `history.table`, else iceberg.genesis.runs."""
    return str(project.config.history.get("table") or DEFAULT_TABLE)


def open_history(project: Project, target: Target, settings: Mapping[str, Any]) -> IcebergHistory | TrinoHistory:
    """The run history of a target (its settings already rendered)."""
    table = history_table(project)
    if target.engine == "trino":
        return TrinoHistory(settings.get("trino") or {}, table)
    from ..project.config import warehouse_location

    return IcebergHistory(warehouse_location(project, settings), table)


def utc_naive(value: dt.datetime | None) -> dt.datetime | None:
    """A wall-clock time as the table stores it: UTC without zone."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


@overload
def as_utc(value: None) -> None: ...
@overload
def as_utc(value: dt.date | dt.datetime) -> dt.datetime: ...
def as_utc(value: dt.date | dt.datetime | None) -> dt.datetime | None:
    """An aware UTC datetime: a naive one is UTC, a date is its midnight UTC."""
    if value is None:
        return None
    if not isinstance(value, dt.datetime):
        return dt.datetime.combine(value, dt.time(0), dt.UTC)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def to_table(rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    """History rows (dicts; missing keys are null) as an Arrow table of SCHEMA."""
    columns = {}
    for f in SCHEMA:
        values = [row.get(f.name) for row in rows]
        if f.type == TS:
            values = [utc_naive(v) for v in values]
        columns[f.name] = pa.array(values, type=f.type)
    return pa.table(columns, schema=SCHEMA)


def sql_hash(sql: str) -> str:
    """The `sql_hash` column: the SQL's sha256, first 16 hex digits, so runs of changed SQL stand out."""
    return hashlib.sha256(sql.encode("utf-8")).hexdigest()[:16]


@lru_cache(maxsize=8)
def git_commit(root: str) -> str | None:
    """The commit the definitions come from: $GITHUB_SHA in CI, else `git rev-parse HEAD`."""
    if os.environ.get("GITHUB_SHA"):
        return os.environ["GITHUB_SHA"]
    try:
        done = subprocess.run(["git", "-C", root, "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    text = done.stdout.strip()
    return text if done.returncode == 0 and len(text) == 40 else None


def run_url(environ: Mapping[str, str] | None = None) -> str | None:
    """A link to this run: the GitHub Actions run, or $GENESIS_RUN_URL."""
    env = os.environ if environ is None else environ
    if env.get("GENESIS_RUN_URL"):
        return env["GENESIS_RUN_URL"]
    server, repository, run_id = (env.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"))
    if server and repository and run_id:
        return f"{server.rstrip('/')}/{repository}/actions/runs/{run_id}"
    return None


class IcebergHistory:
    """The history as an Iceberg table in a local pyiceberg warehouse."""

    def __init__(self, warehouse_dir: str | Path, table: str):
        from ..engines.warehouse import as_warehouse, split_name

        self.warehouse = as_warehouse(warehouse_dir)  # a folder, or a Warehouse with a catalog_uri
        self.warehouse_dir = self.warehouse.root
        self.table = table
        self.catalog_name, self.namespace, self.name = split_name(table)

    def where(self) -> str:
        """The table and its warehouse, for error messages."""
        return f"{self.table} in {self.warehouse_dir}"

    def _catalog(self, create: bool):
        from ..engines.warehouse import open_catalog

        return open_catalog(self.warehouse, self.catalog_name, create=create)

    def ensure(self):
        """The table, created (with its namespace) when missing; safe against a concurrent create."""
        from pyiceberg.exceptions import NamespaceAlreadyExistsError, TableAlreadyExistsError

        catalog = self._catalog(create=True)
        ident = (self.namespace, self.name)
        for attempt in range(COMMIT_ATTEMPTS):
            try:
                if catalog.table_exists(ident):
                    return catalog.load_table(ident)
                try:
                    catalog.create_namespace(self.namespace)
                except NamespaceAlreadyExistsError:
                    pass
                location = (self.warehouse_dir.resolve() / self.catalog_name / self.namespace / self.name).as_uri()
                return catalog.create_table(ident, schema=SCHEMA, location=location)
            except TableAlreadyExistsError:
                continue  # another process created it first: load theirs
            except Exception as exc:  # noqa: BLE001 - SQLite busy while another process commits
                if not _busy(exc) or attempt == COMMIT_ATTEMPTS - 1:
                    raise
                _pause(attempt)
        raise GenesisError(f"cannot create the run history table {self.where()}")

    def append(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Append rows in one commit, retried when another writer committed first."""
        if not rows:
            return
        data = to_table(rows)
        tbl = self.ensure()
        for attempt in range(COMMIT_ATTEMPTS):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    tbl.append(data)
                self._compact(tbl)
                return
            except _conflicts():
                pass  # someone else's commit won (or expired our base snapshot): reload, try again
            except Exception as exc:  # noqa: BLE001
                if not _busy(exc):
                    raise
            _pause(attempt)
            tbl = self._catalog(create=False).load_table((self.namespace, self.name))
        raise GenesisError(f"could not append to the run history {self.where()} after {COMMIT_ATTEMPTS} attempts "
                           "(too many concurrent writers)")

    def _compact(self, tbl) -> None:
        """Every append adds a file and a snapshot; once there are many, rewrite the rows as one
        file and expire the old snapshots, so that reading the history stays fast. Skipped when
        another process commits meanwhile (its rows are never lost: that commit simply wins)."""
        snapshot = tbl.current_snapshot()
        if snapshot is None or int(snapshot.summary.get("total-data-files") or 0) < COMPACT_AT:
            return
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tbl.overwrite(tbl.scan().to_arrow())
                expire = getattr(getattr(tbl, "maintenance", None), "expire_snapshots", None)
                if expire is not None:  # pyiceberg >= 0.10
                    expire().older_than(dt.datetime.now(dt.UTC)).commit()
        except _conflicts():
            pass
        except Exception as exc:  # noqa: BLE001 - compaction is an optimisation
            if not _busy(exc):
                raise

    def read(self, columns: Sequence[str] | None = None) -> pa.Table:
        """Every row (of `columns` only, the others null), or an empty table when there is
        no history yet."""
        from ..engines.warehouse import CATALOG_FILE

        if self.warehouse.catalog_uri is None and not (self.warehouse_dir / CATALOG_FILE).is_file():
            return to_table([])
        catalog = self._catalog(create=False)
        ident = (self.namespace, self.name)
        if not catalog.table_exists(ident):
            return to_table([])
        data = catalog.load_table(ident).scan(selected_fields=tuple(columns or ("*",))).to_arrow()
        return _conform(data)


class TrinoHistory:
    """The history as a table on the Trino cluster, written and read with SQL."""

    def __init__(self, trino_settings: Mapping[str, Any], table: str):
        from ..engines.warehouse import split_name

        split_name(table)
        self.settings = trino_settings
        self.table = table

    def where(self) -> str:
        """The table, for error messages."""
        return f"{self.table} on Trino"

    def _run(self, sql: str):
        from ..engines.trino import TrinoEngine

        if not self.settings:
            raise GenesisError("the target has no `trino:` settings for the run history")
        engine = TrinoEngine(self.settings)
        try:
            return engine.execute(sql, label="genesis run history")
        finally:
            engine.close()

    def ensure(self) -> None:
        """Create the schema and the table when missing (IF NOT EXISTS: safe for concurrent refreshes)."""
        catalog, schema, _ = self.table.split(".")
        columns = ", ".join(f"{f.name} {_TRINO_TYPES[f.type]}" for f in SCHEMA)
        self._run(f"CREATE SCHEMA IF NOT EXISTS {catalog}.{schema}")
        self._run(f"CREATE TABLE IF NOT EXISTS {self.table} ({columns})")

    def append(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Append rows with one INSERT, creating the table first if needed; the cluster commits it."""
        from ..compiler.expressions import sql_literal

        if not rows:
            return
        self.ensure()
        data = to_table(rows).to_pylist()
        values = ",\n".join(
            "(" + ", ".join(sql_literal(row[f.name], _TRINO_TYPES[f.type]) for f in SCHEMA) + ")" for row in data)
        self._run(f"INSERT INTO {self.table} ({', '.join(SCHEMA.names)}) VALUES\n{values}")

    def read(self, columns: Sequence[str] | None = None) -> pa.Table:
        """Every row (of `columns` only, the others null), or an empty table when the table or its
        schema does not exist yet."""
        from ..engines import EngineError

        try:
            data = self._run(f"SELECT {', '.join(columns or SCHEMA.names)} FROM {self.table}")
        except EngineError as err:
            if getattr(err, "error_name", None) in ("TABLE_NOT_FOUND", "SCHEMA_NOT_FOUND"):
                return to_table([])
            raise
        return _conform(data)


def _conform(data: pa.Table) -> pa.Table:
    """The stored rows as SCHEMA (Iceberg reads strings back as large_string, Trino as its own)."""
    columns = {}
    for f in SCHEMA:
        columns[f.name] = data.column(f.name).cast(f.type) if f.name in data.column_names else pa.nulls(
            data.num_rows, f.type)
    return pa.table(columns, schema=SCHEMA)


def _conflicts() -> tuple[type[Exception], ...]:
    """What pyiceberg raises when another writer committed first: CommitFailedException, or
    (after its own retries) a ValidationException when that writer expired our base snapshot."""
    from pyiceberg import exceptions

    return tuple(getattr(exceptions, n) for n in ("CommitFailedException", "ValidationException")
                 if hasattr(exceptions, n))


def _busy(exc: Exception) -> bool:
    return "database is locked" in str(exc) or "busy" in str(exc).lower()


def _pause(attempt: int) -> None:
    time.sleep(min(1.0, 0.02 * 2 ** attempt) * (0.5 + random.random()))
