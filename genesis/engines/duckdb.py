"""The embedded engine: DuckDB over the local Iceberg warehouse.

Each Iceberg table `a.b.c` a query names becomes a DuckDB view `a.b.c` (an attached in-memory
database `a`, schema `b`) over `read_parquet` of the data files pyiceberg's scan planning lists,
so DuckDB reads the files itself and no rows pass through Python. Tables with delete files
(or files we cannot map to the current schema) fall back to pyiceberg's own scan.
"""

from __future__ import annotations

import re
import threading

import duckdb
import pyarrow as pa
import sqlglot
from sqlglot import exp

from ..errors import GenesisError
from . import warehouse
from .base import EngineError

_LINE = re.compile(r"^LINE (\d+): (.*)$", re.M)


class DuckDBEngine:
    """The `Engine` of a duckdb target: an in-memory DuckDB reading the local Iceberg warehouse.

    `sources` says how each table read so far is served: 'parquet', 'arrow' (the fallback) or 'empty'.
    """

    name = "duckdb"

    def __init__(self, warehouse_dir: warehouse.Location):
        self.warehouse_dir = warehouse.as_warehouse(warehouse_dir)  # path-like; may name a SQL catalog
        self._con = duckdb.connect(":memory:")
        self._con.execute("SET TimeZone = 'UTC'")  # timestamptz comes back as UTC, like Trino's
        # Genesis SQL has Trino semantics: integer / integer truncates (5430 / 60 = 90).
        self._con.execute("SET GLOBAL integer_division = true")  # GLOBAL: cursors are new sessions
        self._lock = threading.Lock()
        self._catalogs: dict = {}
        self._views: dict[str, str] = {}  # table -> metadata location its view was built from
        self.sources: dict[str, str] = {}  # table -> 'parquet' | 'arrow' | 'empty' (how it is read)
        self._running: set = set()  # cursors executing now (one per thread), for cancel()
        self._cancelled = False

    # -- Engine protocol -------------------------------------------------------------------

    def execute(self, sql: str, *, label: str = "", timeout: float | None = None) -> pa.Table:
        """Thread-safe: views are (re)built under a lock, then the query runs on a cursor of
        its own (DuckDB connections are not thread-safe; a cursor is a new connection to the
        same database, for exactly this use)."""
        with self._lock:
            if self._cancelled:
                raise EngineError(f"{_who(label)}was cancelled")
            for table in referenced_tables(sql):
                try:
                    self._ensure_view(table)
                except GenesisError:
                    raise
                except Exception as exc:  # a broken table must not surface as a traceback
                    raise EngineError(f"cannot read table '{table}' from the warehouse: {exc}") from None
            cursor = self._con.cursor()
            self._running.add(cursor)
        timed_out = threading.Event()
        timer = None
        if timeout:
            def interrupt():
                timed_out.set()
                cursor.interrupt()
            timer = threading.Timer(timeout, interrupt)
            timer.daemon = True
            timer.start()
        try:
            return cursor.sql(sql).to_arrow_table()
        except duckdb.InterruptException:
            if timed_out.is_set():
                raise EngineError(f"{_who(label)}timed out after {timeout:g} s", transient=True) from None
            raise EngineError(f"{_who(label)}was interrupted") from None
        except duckdb.Error as exc:
            if timed_out.is_set():
                raise EngineError(f"{_who(label)}timed out after {timeout:g} s", transient=True) from None
            raise _engine_error(exc, sql, label, cursor) from None
        finally:
            if timer:
                timer.cancel()
            with self._lock:
                self._running.discard(cursor)
            cursor.close()

    def cancel(self) -> None:
        """Interrupt every running query and refuse new ones (a refresh being stopped)."""
        with self._lock:
            self._cancelled = True
            running = list(self._running)
        for cursor in running:
            try:
                cursor.interrupt()
            except duckdb.Error:
                pass

    def table_columns(self, table: str) -> dict[str, str] | None:
        """The table's current Iceberg columns as {name: Trino type}; None when it cannot be loaded."""
        try:
            return warehouse.iceberg_columns(self.warehouse_dir, table)
        except GenesisError:
            return None

    def close(self) -> None:
        """Close the in-memory database, and with it every view and fallback copy."""
        self._con.close()

    # -- views over the warehouse ----------------------------------------------------------

    def _load(self, table: str):
        """The current pyiceberg Table, through one SqlCatalog per catalog name."""
        catalog_name, namespace, name = warehouse.split_name(table)
        if catalog_name not in self._catalogs:
            self._catalogs[catalog_name] = warehouse.open_catalog(self.warehouse_dir, catalog_name)
        try:
            return self._catalogs[catalog_name].load_table((namespace, name))
        except Exception:
            # Let the warehouse raise its error with the did-you-mean hint.
            return warehouse.load_table(self.warehouse_dir, table)

    def _ensure_view(self, table: str) -> None:
        try:
            tbl = self._load(table)
        except GenesisError as err:
            raise _hinted(err) from None
        if self._views.get(table) == tbl.metadata_location:
            return  # unchanged since the view was built: keep the cached file listing
        catalog_name, namespace, name = warehouse.split_name(table)
        self._attach(catalog_name, namespace)
        target = ".".join(_q(p) for p in (catalog_name, namespace, name))
        select, kind = parquet_select(tbl)
        hidden = ".".join(_q(p) for p in (catalog_name, namespace, "__genesis_scan_" + name))
        if select is None:
            select, kind = self._arrow_select(hidden, tbl), "arrow"
        self._con.execute(f"CREATE OR REPLACE VIEW {target} AS {select}")
        if kind != "arrow":
            self._con.execute(f"DROP TABLE IF EXISTS {hidden}")  # free an earlier fallback copy
        self._views[table] = tbl.metadata_location
        self.sources[table] = kind

    def _attach(self, catalog_name: str, namespace: str) -> None:
        attached = {r[0] for r in self._con.execute("SELECT database_name FROM duckdb_databases()").fetchall()}
        if catalog_name not in attached:
            self._con.execute(f"ATTACH ':memory:' AS {_q(catalog_name)}")
        self._con.execute(f"CREATE SCHEMA IF NOT EXISTS {_q(catalog_name)}.{_q(namespace)}")

    def _arrow_select(self, hidden: str, tbl) -> str:
        """pyiceberg applies the delete files; DuckDB copies the resulting rows into a hidden
        table next to the view (registered Arrow objects are not visible to other cursors)."""
        self._con.register("__genesis_arrow", tbl.scan().to_arrow())
        try:
            self._con.execute(f"CREATE OR REPLACE TABLE {hidden} AS SELECT * FROM __genesis_arrow")
        finally:
            self._con.unregister("__genesis_arrow")
        return _project(tbl.schema().fields, lambda f: _q(f.name), hidden)


# -- building the SELECT a view runs ---------------------------------------------------------


def parquet_select(tbl) -> tuple[str | None, str]:
    """A SELECT over read_parquet of the table's data files, or (None, '') when only
    pyiceberg's scan gives the right rows (delete files, non-local files, unmappable files)."""
    files, has_deletes = warehouse.scan_files(tbl)
    fields = tbl.schema().fields
    if not files:
        return _project(fields, lambda f: "NULL", None) + " WHERE false", "empty"
    if has_deletes or any("://" in f for f in files):
        return None, ""
    if _names_stable(tbl):
        union = ", union_by_name = true" if len(tbl.metadata.schemas) > 1 else ""
        return _project(fields, lambda f: _q(f.name), _read_parquet(files, union)), "parquet"
    return _select_by_field_id(fields, files)


def _select_by_field_id(fields, files: list[str]) -> tuple[str | None, str]:
    """After a rename the files' column names differ from the schema's: map them by field id,
    one SELECT per distinct file layout, UNION ALL."""
    import pyarrow.parquet as pq

    groups: dict[tuple, list[str]] = {}
    for path in files:
        ids = {}
        for col in pq.read_schema(path):
            fid = (col.metadata or {}).get(b"PARQUET:field_id")
            if fid is None:
                return None, ""  # no field ids: the names cannot be trusted
            ids[int(fid)] = col.name
        layout = tuple(ids.get(f.field_id) for f in fields)
        groups.setdefault(layout, []).append(path)
    parts = []
    for layout, paths in groups.items():
        physical = dict(zip((f.field_id for f in fields), layout))
        parts.append(_project(
            fields,
            lambda f: _q(physical[f.field_id]) if physical[f.field_id] else "NULL",
            _read_parquet(paths, ""),
        ))
    return " UNION ALL ".join(parts), "parquet"


def _names_stable(tbl) -> bool:
    """True when every schema in the table's history spells each field id the same way,
    so the files' column names are the current ones."""
    names: dict[int, str] = {}
    ids: dict[str, int] = {}
    for schema in tbl.metadata.schemas:
        for f in schema.fields:
            if names.setdefault(f.field_id, f.name) != f.name or ids.setdefault(f.name, f.field_id) != f.field_id:
                return False
    return True


def _project(fields, column_sql, source: str | None) -> str:
    cols = ", ".join(f"CAST({column_sql(f)} AS {duckdb_type(f.field_type)}) AS {_q(f.name)}" for f in fields)
    return f"SELECT {cols}" + (f" FROM {source}" if source else "")


def _read_parquet(files: list[str], options: str) -> str:
    listing = ", ".join(_lit(f) for f in files)
    return f"read_parquet([{listing}]{options})"


def duckdb_type(itype) -> str:
    """The DuckDB type that holds an Iceberg type."""
    from pyiceberg import types as it

    simple = {
        it.StringType: "VARCHAR", it.IntegerType: "INTEGER", it.LongType: "BIGINT",
        it.DoubleType: "DOUBLE", it.FloatType: "FLOAT", it.DateType: "DATE",
        it.TimestampType: "TIMESTAMP", it.TimestamptzType: "TIMESTAMPTZ", it.BooleanType: "BOOLEAN",
        it.BinaryType: "BLOB", it.FixedType: "BLOB", it.UUIDType: "UUID", it.TimeType: "TIME",
    }
    for cls, name in simple.items():
        if isinstance(itype, cls):
            return name
    if isinstance(itype, it.DecimalType):
        return f"DECIMAL({itype.precision},{itype.scale})"
    if isinstance(itype, it.ListType):
        return f"{duckdb_type(itype.element_type)}[]"
    if isinstance(itype, it.MapType):
        return f"MAP({duckdb_type(itype.key_type)}, {duckdb_type(itype.value_type)})"
    if isinstance(itype, it.StructType):
        return "STRUCT(" + ", ".join(f"{_q(f.name)} {duckdb_type(f.field_type)}" for f in itype.fields) + ")"
    raise EngineError(f"Iceberg type {itype} is not supported by the DuckDB engine")


# -- SQL helpers -------------------------------------------------------------------------------


def referenced_tables(sql: str) -> list[str]:
    """The three-part table names `a.b.c` a DuckDB-dialect query reads, lowercased as Trino does."""
    try:
        statements = sqlglot.parse(sql, read="duckdb")
    except sqlglot.errors.ParseError:
        return []  # DuckDB will report the syntax error with a better position
    found = []
    for statement in statements:
        if statement is None:
            continue
        for node in statement.find_all(exp.Table):
            if node.catalog and node.db and node.name:
                name = f"{node.catalog}.{node.db}.{node.name}".lower()
                if name not in found:
                    found.append(name)
    return found


def _engine_error(exc: duckdb.Error, sql: str, label: str, cursor) -> EngineError:
    text = str(exc)
    message = text.split("\n\nLINE ")[0].strip()
    line, col = _position(text, sql)
    if line is None and isinstance(exc, (duckdb.BinderException, duckdb.CatalogException)):
        line, col = _bind_position(cursor, sql)
    return EngineError(f"{_who(label)}failed on DuckDB: {message}", sql_line=line, sql_col=col)


def _bind_position(cursor, sql: str) -> tuple[int | None, int | None]:
    """Relations drop the error position; binding the SQL again as a prepared statement
    (no execution) reports it. The prefix has its own line, so only line numbers shift."""
    try:
        cursor.execute("PREPARE __genesis_locate AS\n" + sql)
        cursor.execute("DEALLOCATE __genesis_locate")
    except duckdb.Error as exc:
        line, col = _position(str(exc), "\n" + sql)
        return (line - 1 if line else None), col
    return None, None


def _position(text: str, sql: str) -> tuple[int | None, int | None]:
    """Line and column (1-based) from DuckDB's 'LINE n: ...' excerpt and its caret line."""
    m = _LINE.search(text)
    if not m:
        return None, None
    line, excerpt = int(m.group(1)), m.group(2)
    rest = text[m.end() + 1:].split("\n")[0]
    caret = rest.find("^")
    if caret < 0:
        return line, None
    offset = caret - (len(m.group(0)) - len(excerpt))
    if excerpt.startswith("..."):  # DuckDB shortened a long line: find the excerpt in the SQL
        lines = sql.split("\n")
        source = lines[line - 1] if 0 < line <= len(lines) else ""
        start = source.find(excerpt[3:].rstrip(".").rstrip()[:40])
        if start < 0:
            return line, None
        offset = start + offset - 3
    return line, offset + 1


def _hinted(err: GenesisError) -> EngineError:
    error = EngineError(err.message)
    error.hint = err.hint
    return error


def _who(label: str) -> str:
    return f"query '{label}' " if label else "query "


def _q(identifier: str) -> str:
    return '"' + str(identifier).replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"
