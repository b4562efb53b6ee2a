"""A local server that speaks Trino's client REST protocol, backed by DuckDB.

No Trino cluster runs in tests, so this server answers the real `trino` Python client
(`trino.dbapi.connect`) over real HTTP: `POST /v1/statement` starts a query, `GET nextUri`
pages through its result, `DELETE nextUri` cancels it. Each statement is parsed as Trino
SQL with sqlglot, written out as DuckDB SQL and run on a DuckDB database in which every
Trino catalog is an attached database, so `iceberg.studio.movie` resolves as it would on a
cluster. Results are typed and encoded the way Trino encodes them in JSON (decimals and
dates as strings, `timestamp(6)`, ...), and failures come back as Trino error payloads.

Faults can be injected (HTTP 503s, slow pages, dropped connections, rejected credentials)
and every request is recorded in `server.log`, so tests can check what the client did.

    with TrinoProtocolServer(page_size=2) as server:
        server.load_table("iceberg.tpch.lineitem", arrow_table)
        engine = TrinoEngine({"host": "127.0.0.1", "port": server.port, "http_scheme": "http",
                              "user": "test", "catalog": "iceberg", "schema": "tpch"})
"""

from __future__ import annotations

import base64
import itertools
import json
import math
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import sqlglot
from sqlglot import exp

LOGGED_HEADERS = (
    "X-Trino-User", "X-Trino-Catalog", "X-Trino-Schema", "X-Trino-Source",
    "X-Trino-Client-Tags", "X-Trino-Session", "X-Trino-Time-Zone",
)
STATEMENT_PATH = "/v1/statement"
_EXECUTING = re.compile(r"^/v1/statement/executing/([^/]+)/([^/]+)/(\d+)$")
_DECIMAL = re.compile(r"^decimal\((\d+),\s*(\d+)\)$")
_TIMESTAMP = re.compile(r"^timestamp\((\d+)\)( with time zone)?$")
_TIME = re.compile(r"^time\((\d+)\)$")
VARCHAR_LENGTH = 2147483647  # what Trino reports for an unbounded varchar

# DuckDB type name -> the Trino type a cluster would report for the same column.
_DUCK_TO_TRINO = {
    "VARCHAR": "varchar", "BOOLEAN": "boolean",
    "TINYINT": "tinyint", "SMALLINT": "smallint", "INTEGER": "integer", "BIGINT": "bigint",
    "HUGEINT": "bigint",  # DuckDB widens sum(integer); Trino answers bigint
    "UTINYINT": "smallint", "USMALLINT": "integer", "UINTEGER": "bigint", "UBIGINT": "decimal(20,0)",
    "FLOAT": "real", "DOUBLE": "double", "DATE": "date",
    "TIMESTAMP": "timestamp(6)", "TIMESTAMP_MS": "timestamp(3)", "TIMESTAMP_S": "timestamp(0)",
    "TIMESTAMP_NS": "timestamp(6)",  # served at microsecond precision
    "TIMESTAMP WITH TIME ZONE": "timestamp(6) with time zone",
    "TIME": "time(6)", "BLOB": "varbinary", "UUID": "uuid", "JSON": "json",
}

# (DuckDB exception, pattern in its message or None, Trino errorName, errorCode, errorType)
_ERROR_MAP = [
    (duckdb.ParserException, None, "SYNTAX_ERROR", 1, "USER_ERROR"),
    (duckdb.CatalogException, "Table with name", "TABLE_NOT_FOUND", 46, "USER_ERROR"),
    (duckdb.CatalogException, "Schema with name", "SCHEMA_NOT_FOUND", 45, "USER_ERROR"),
    (duckdb.CatalogException, "Function", "FUNCTION_NOT_FOUND", 6, "USER_ERROR"),  # before "Catalog":
    (duckdb.CatalogException, "Catalog", "CATALOG_NOT_FOUND", 44, "USER_ERROR"),  # every message has it
    (duckdb.BinderException, "Referenced column", "COLUMN_NOT_FOUND", 47, "USER_ERROR"),
    (duckdb.BinderException, "No function matches", "FUNCTION_NOT_FOUND", 6, "USER_ERROR"),
    (duckdb.ConversionException, None, "INVALID_CAST_ARGUMENT", 9, "USER_ERROR"),
    (duckdb.OutOfRangeException, None, "NUMERIC_VALUE_OUT_OF_RANGE", 19, "USER_ERROR"),
    (duckdb.InterruptException, None, "USER_CANCELED", 3, "USER_ERROR"),
    (duckdb.InternalException, None, "GENERIC_INTERNAL_ERROR", 65536, "INTERNAL_ERROR"),
    (duckdb.ProgrammingError, None, "GENERIC_USER_ERROR", 0, "USER_ERROR"),
    (duckdb.DataError, None, "GENERIC_USER_ERROR", 0, "USER_ERROR"),
]


# ----------------------------------------------------------------------------- types


def trino_type(duck_type: str) -> str:
    """The Trino type name for a DuckDB type name (unknown types are served as varchar)."""
    t = " ".join(str(duck_type).upper().split())
    if t.endswith("[]"):
        return f"array({trino_type(t[:-2])})"
    if m := re.match(r"^DECIMAL\((\d+),\s*(\d+)\)$", t):
        return f"decimal({m.group(1)},{m.group(2)})"
    return _DUCK_TO_TRINO.get(t, "varchar")


def type_signature(t: str) -> dict:
    """Trino's structured `typeSignature`, which the client's row mappers read."""
    def long(value: int) -> dict:
        return {"kind": "LONG", "value": value}

    if t.startswith("array("):
        return {"rawType": "array", "arguments": [{"kind": "TYPE", "value": type_signature(t[6:-1])}]}
    if m := _DECIMAL.match(t):
        return {"rawType": "decimal", "arguments": [long(int(m.group(1))), long(int(m.group(2)))]}
    if m := _TIMESTAMP.match(t):
        raw = "timestamp with time zone" if m.group(2) else "timestamp"
        return {"rawType": raw, "arguments": [long(int(m.group(1)))]}
    if m := _TIME.match(t):
        return {"rawType": "time", "arguments": [long(int(m.group(1)))]}
    if t == "varchar":
        return {"rawType": "varchar", "arguments": [long(VARCHAR_LENGTH)]}
    return {"rawType": t, "arguments": []}


def encode_value(t: str, value: Any) -> Any:
    """A Python value as Trino writes it in a JSON result row."""
    if value is None:
        return None
    if t.startswith("array("):
        return [encode_value(t[6:-1], v) for v in value]
    if m := _DECIMAL.match(t):
        return f"{Decimal(value):.{m.group(2)}f}"
    if t in ("tinyint", "smallint", "integer", "bigint"):
        return int(value)
    if t in ("double", "real"):
        return _encode_float(float(value))
    if t == "boolean":
        return bool(value)
    if t == "date":
        return value.isoformat()
    if m := _TIMESTAMP.match(t):
        return _encode_timestamp(value, int(m.group(1)), bool(m.group(2)))
    if _TIME.match(t):
        return value.isoformat()
    if t == "varbinary":
        return base64.b64encode(bytes(value)).decode("ascii")
    return str(value)


def _encode_float(value: float) -> Any:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _encode_timestamp(value, precision: int, with_zone: bool) -> str:
    # Trino prints exactly `precision` fractional digits, and zoned values with a zone id.
    if with_zone:
        value = value.astimezone(UTC)
    text = value.strftime("%Y-%m-%d %H:%M:%S")
    if precision:
        text += "." + f"{value.microsecond:06d}".ljust(precision, "0")[:precision]
    return text + " UTC" if with_zone else text


def encode_rows(table: pa.Table, types: list[str]) -> list[list[Any]]:
    columns = []
    for column, t in zip(table.columns, types):
        if pa.types.is_timestamp(column.type) and column.type.unit == "ns":
            column = column.cast(pa.timestamp("us", tz=column.type.tz), safe=False)
        columns.append([encode_value(t, v) for v in column.to_pylist()])
    return [list(row) for row in zip(*columns)] if columns else []


# ----------------------------------------------------------------------------- SQL


class TrinoSqlError(Exception):
    """A statement the server refuses before DuckDB sees it (a Trino syntax error)."""

    def __init__(self, message: str, line: int | None = None, col: int | None = None):
        super().__init__(message)
        self.line, self.col = line, col


def translate(sql: str, catalog: str | None) -> tuple[str, bool]:
    """Trino SQL -> (DuckDB SQL, whether it reads information_schema.columns)."""
    try:
        statements = [s for s in sqlglot.parse(sql, read="trino") if s is not None]
    except sqlglot.errors.ParseError as err:
        raise _syntax_error(err) from None
    if len(statements) != 1:
        raise TrinoSqlError("exactly one statement is expected")
    tree = statements[0]
    reads_columns = _replace_information_schema(tree, catalog)
    _name_anonymous_columns(tree)
    return tree.sql(dialect="duckdb"), reads_columns


def _syntax_error(err: sqlglot.errors.ParseError) -> TrinoSqlError:
    first = err.errors[0] if err.errors else {}
    line, col = first.get("line"), first.get("col")
    if line and col:
        col = max(1, col - len(first.get("highlight") or "x") + 1)  # sqlglot points at the token's end
    return TrinoSqlError(first.get("description") or str(err).splitlines()[0], line, col)


def _replace_information_schema(tree: exp.Expression, catalog: str | None) -> bool:
    # Trino has one information_schema per catalog; DuckDB's is global and speaks DuckDB
    # type names, so the server serves a table of its own (registered per query).
    found = False
    for table in list(tree.find_all(exp.Table)):
        if table.db.lower() == "information_schema" and table.name.lower() == "columns":
            wanted = table.catalog or catalog
            where = f" WHERE table_catalog = '{wanted.lower()}'" if wanted else ""
            query = sqlglot.parse_one(f"SELECT * FROM __trino_columns{where}", read="duckdb")
            table.replace(exp.Subquery(this=query, alias=exp.TableAlias(this=exp.to_identifier(
                table.alias_or_name))))
            found = True
    return found


def _name_anonymous_columns(tree: exp.Expression) -> None:
    # Trino names an unaliased expression `_colN`; DuckDB would name it by its text.
    if not isinstance(tree, exp.Select):
        return
    for index, expression in enumerate(tree.expressions):
        if not isinstance(expression, (exp.Alias, exp.Column, exp.Star)):
            expression.replace(exp.alias_(expression.copy(), f"_col{index}"))


def locate(message: str, trino_sql: str) -> tuple[int, int] | None:
    """Map DuckDB's `LINE n:` caret back to a line and column of the Trino SQL.

    DuckDB points into the translated SQL, which sqlglot printed on one line; the token
    under the caret is looked up in the original text instead.
    """
    m = re.search(r"LINE (\d+): (.*)\n( *)\^", message)
    if not m:
        return None
    offset = len(m.group(3)) - len(f"LINE {m.group(1)}: ")
    token = re.match(r'[\w."]+', m.group(2)[offset:])
    if token:
        for candidate in (token.group(0), token.group(0).split(".")[-1]):
            found = _find_word(trino_sql, candidate.strip('"'))
            if found:
                return found
    return int(m.group(1)), offset + 1


def _find_word(sql: str, word: str) -> tuple[int, int] | None:
    m = re.search(r"(?<![\w.])" + re.escape(word) + r"(?!\w)", sql, re.IGNORECASE)
    if not m:
        return None
    start = m.start()
    line = sql.count("\n", 0, start) + 1
    return line, start - (sql.rfind("\n", 0, start) + 1) + 1


def error_payload(message: str, name: str, code: int, kind: str, where: tuple[int, int] | None) -> dict:
    if where:
        message = f"line {where[0]}:{where[1]}: {message}"
    error = {"message": message, "errorCode": code, "errorName": name, "errorType": kind,
             "failureInfo": {"type": "io.trino.spi.TrinoException", "message": message}}
    if where:
        error["errorLocation"] = {"lineNumber": where[0], "columnNumber": where[1]}
    return error


def duckdb_error(err: Exception, trino_sql: str) -> dict:
    text = str(err)
    first_line = text.splitlines()[0] if text else type(err).__name__
    first_line = re.sub(r"^[A-Za-z ]+Error: ", "", first_line)
    name, code, kind = "GENERIC_INTERNAL_ERROR", 65536, "INTERNAL_ERROR"
    for cls, pattern, e_name, e_code, e_kind in _ERROR_MAP:
        if isinstance(err, cls) and (pattern is None or pattern in text):
            name, code, kind = e_name, e_code, e_kind
            break
    return error_payload(first_line, name, code, kind, locate(text, trino_sql))


# ----------------------------------------------------------------------------- state


@dataclass
class Faults:
    """What goes wrong, and how often. Counters live here so a new Faults resets them.

    fail_first   -- answer the first N requests (any method) with `fail_status`
    slow_seconds -- wait this long before answering each GET of a query's result
    drop_page    -- close the socket when result page k (0-based) is requested ...
    drop_times   -- ... this many times (None: every time)
    drop_mode    -- "close": no response at all; "truncate": headers and half the body
    """

    fail_first: int = 0
    fail_status: int = 503
    slow_seconds: float = 0.0
    drop_page: int | None = None
    drop_times: int | None = 1
    drop_mode: str = "close"
    failed: int = 0
    dropped: int = 0


@dataclass
class LoggedRequest:
    """One request as the server saw it. Authorization is kept as its scheme only."""

    method: str
    path: str
    headers: dict[str, str]
    auth_scheme: str | None = None
    sql: str | None = None
    status: int | None = None  # None: the connection was dropped
    query_id: str | None = None
    page: int | None = None


@dataclass
class _Query:
    id: str
    sql: str
    slug: str = field(default_factory=lambda: uuid.uuid4().hex)
    done: threading.Event = field(default_factory=threading.Event)
    columns: list[dict] | None = None
    pages: list[list] = field(default_factory=list)
    error: dict | None = None
    cancelled: bool = False
    cursor: Any = None
    cancel_event: threading.Event = field(default_factory=threading.Event)
    started: float = 0.0  # time.monotonic() at submission
    finished: float | None = None  # when its result (or error) was ready


class TrinoProtocolServer:
    """A Trino coordinator look-alike on 127.0.0.1 backed by DuckDB.

    database     -- DuckDB file path, ":memory:", an open connection, or a callable
                    returning one
    page_size    -- rows per result page (small values exercise paging)
    basic_auth   -- (user, password): require HTTP basic auth with these credentials
    bearer_token -- require `Authorization: Bearer <token>`
    faults       -- a Faults, or pass its fields as keyword arguments
    poll_wait    -- how long a GET waits for a running query before answering "RUNNING"
    latency      -- seconds each query takes before DuckDB runs it, like a busy cluster's:
                    a number, or a function of the query's SQL (a DELETE cuts it short)
    """

    def __init__(self, database: str | Path | duckdb.DuckDBPyConnection | Callable[[], Any] = ":memory:",
                 *, page_size: int = 1000, basic_auth: tuple[str, str] | None = None,
                 bearer_token: str | None = None, faults: Faults | None = None,
                 poll_wait: float = 1.0, latency: float | Callable[[str], float] = 0.0,
                 **fault_fields: Any):
        self.page_size = max(1, page_size)
        self.basic_auth = basic_auth
        self.bearer_token = bearer_token
        self.faults = faults or Faults(**fault_fields)
        self.poll_wait = poll_wait
        self.latency = latency
        self.log: list[LoggedRequest] = []
        self._db, self._owns_db = _open_database(database)
        self._lock = threading.RLock()
        self._queries: dict[str, _Query] = {}
        self._ids = itertools.count(1)
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle

    def start(self) -> TrinoProtocolServer:
        if self._httpd is not None:
            return self
        self._stopping.clear()
        self._httpd = _HttpServer(("127.0.0.1", 0), _Handler)
        self._httpd.trino = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="trino-protocol-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._stopping.set()  # wakes handlers sleeping on a slow page
        with self._lock:
            for query in self._queries.values():
                self._interrupt(query)
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
        self._httpd = self._thread = None

    def close(self) -> None:
        self.stop()
        if self._owns_db:
            self._db.close()

    def __enter__(self) -> TrinoProtocolServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the server is not started")
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- data

    def load_table(self, name: str, table: pa.Table) -> None:
        """Create (or replace) `catalog.schema.table` from an Arrow table."""
        catalog, schema, table_name = _split_name(name)
        with self._lock:
            self.create_schema(catalog, schema)
            view = f"__load_{uuid.uuid4().hex}"
            self._db.register(view, table)
            try:
                self._db.execute(f"CREATE OR REPLACE TABLE {_quote(catalog)}.{_quote(schema)}."
                                 f"{_quote(table_name)} AS SELECT * FROM {view}")
            finally:
                self._db.unregister(view)

    def create_schema(self, catalog: str, schema: str) -> None:
        with self._lock:
            self.attach_catalog(catalog)
            self._db.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote(catalog)}.{_quote(schema)}")

    def attach_catalog(self, catalog: str, path: str = ":memory:") -> None:
        """Make `catalog` exist: an in-memory DuckDB database, or a DuckDB file."""
        with self._lock:
            attached = {row[0] for row in self._db.execute("SELECT database_name FROM duckdb_databases()").fetchall()}
            if catalog not in attached:
                self._db.execute(f"ATTACH '{path}' AS {_quote(catalog)}")

    def duckdb(self, sql: str) -> pa.Table:
        """Run DuckDB SQL directly on the backing database (set-up, comparisons)."""
        with self._lock:
            cursor = self._db.cursor()
        try:
            cursor.execute("SET TimeZone = 'UTC'")
            return cursor.sql(sql).to_arrow_table()
        finally:
            cursor.close()

    # -- the request log

    def requests(self, method: str | None = None, path_prefix: str = "") -> list[LoggedRequest]:
        with self._lock:
            return [r for r in self.log
                    if (method is None or r.method == method) and r.path.startswith(path_prefix)]

    @property
    def posts(self) -> list[LoggedRequest]:
        return self.requests("POST", STATEMENT_PATH)

    @property
    def deletes(self) -> list[LoggedRequest]:
        return self.requests("DELETE")

    def clear_log(self) -> None:
        with self._lock:
            self.log.clear()

    # -- protocol (called by the handler)

    def record(self, entry: LoggedRequest) -> None:
        with self._lock:
            self.log.append(entry)

    def take_failure(self) -> bool:
        with self._lock:
            if self.faults.failed < self.faults.fail_first:
                self.faults.failed += 1
                return True
            return False

    def take_drop(self, page: int) -> bool:
        with self._lock:
            f = self.faults
            if f.drop_page != page or (f.drop_times is not None and f.dropped >= f.drop_times):
                return False
            f.dropped += 1
            return True

    def authorized(self, header: str | None) -> bool:
        if not self.basic_auth and not self.bearer_token:
            return True
        accepted = set()
        if self.basic_auth:
            pair = f"{self.basic_auth[0]}:{self.basic_auth[1]}".encode()
            accepted.add("Basic " + base64.b64encode(pair).decode())
        if self.bearer_token:
            accepted.add("Bearer " + self.bearer_token)
        return header in accepted

    def submit(self, sql: str, catalog: str | None, schema: str | None) -> _Query:
        query_id = f"20240101_000000_{next(self._ids):05d}_genes"
        query = _Query(id=query_id, sql=sql)
        with self._lock:
            self._queries[query_id] = query
        # Run in the background, as a coordinator does: the POST answers at once and
        # a DELETE can interrupt DuckDB while it works.
        threading.Thread(target=self._run, args=(query, catalog, schema), daemon=True,
                         name=f"trino-query-{query_id}").start()
        return query

    def query(self, query_id: str, slug: str) -> _Query | None:
        with self._lock:
            query = self._queries.get(query_id)
        return query if query is not None and query.slug == slug else None

    def cancel(self, query: _Query) -> None:
        query.cancelled = True
        query.cancel_event.set()
        self._interrupt(query)

    def queries(self) -> list[_Query]:
        """Every query submitted, in order (with its submission and finish times)."""
        with self._lock:
            return list(self._queries.values())

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`; True when the server is stopping."""
        return self._stopping.wait(seconds)

    # -- execution

    def _run(self, query: _Query, catalog: str | None, schema: str | None) -> None:
        cursor = None
        query.started = time.monotonic()
        try:
            delay = self.latency(query.sql) if callable(self.latency) else self.latency
            if delay and (query.cancel_event.wait(delay) or self._stopping.is_set()):
                query.error = error_payload("Query was canceled", "USER_CANCELED", 3, "USER_ERROR", None)
                return
            duck_sql, reads_columns = translate(query.sql, catalog)
            with self._lock:
                cursor = query.cursor = self._db.cursor()
            cursor.execute("SET TimeZone = 'UTC'")
            cursor.execute("SET integer_division = true")  # Trino: integer / integer truncates
            _use(cursor, catalog, schema)
            if reads_columns:
                cursor.register("__trino_columns", _columns_table(cursor))
            relation = _relation(cursor, duck_sql)
            if relation is None:  # a statement without a result
                query.columns, query.pages = [], [[]]
                return
            types = [trino_type(str(t)) for t in relation.types]
            rows = encode_rows(relation.to_arrow_table(), types)
            query.columns = [{"name": n, "type": t, "typeSignature": type_signature(t)}
                             for n, t in zip(relation.columns, types)]
            query.pages = [rows[i:i + self.page_size] for i in range(0, len(rows), self.page_size)] or [[]]
        except TrinoSqlError as err:
            where = (err.line, err.col) if err.line and err.col else None
            query.error = error_payload(str(err), "SYNTAX_ERROR", 1, "USER_ERROR", where)
        except duckdb.Error as err:
            query.error = duckdb_error(err, query.sql)
        except Exception as err:  # a bug in the server itself: report it like Trino would
            query.error = error_payload(f"{type(err).__name__}: {err}", "GENERIC_INTERNAL_ERROR",
                                        65536, "INTERNAL_ERROR", None)
        finally:
            query.cursor = None
            if cursor is not None:
                cursor.close()
            query.finished = time.monotonic()
            query.done.set()

    @staticmethod
    def _interrupt(query: _Query) -> None:
        cursor = query.cursor
        if cursor is not None:
            try:
                cursor.interrupt()
            except duckdb.Error:
                pass


def _open_database(database: Any) -> tuple[Any, bool]:
    if isinstance(database, duckdb.DuckDBPyConnection):
        return database, False
    if callable(database):
        return database(), True
    return duckdb.connect(str(database)), True


def _relation(cursor: Any, duck_sql: str) -> Any:
    try:
        return cursor.sql(duck_sql)
    except duckdb.Error:
        # The relation API drops DuckDB's "LINE n:" pointer; execute() keeps it.
        cursor.execute(duck_sql)
        raise


def _use(cursor: Any, catalog: str | None, schema: str | None) -> None:
    # X-Trino-Catalog/Schema make unqualified names resolve; a missing one only matters
    # when a name needs it, and DuckDB then reports the missing table.
    target = ".".join(_quote(p) for p in (catalog, schema) if p)
    if target:
        try:
            cursor.execute(f"USE {target}")
        except duckdb.Error:
            pass


def _columns_table(cursor: Any) -> pa.Table:
    rows = cursor.execute(
        "SELECT table_catalog, table_schema, table_name, column_name, ordinal_position, "
        "data_type, is_nullable FROM information_schema.columns "
        "WHERE table_schema <> 'information_schema' ORDER BY 1, 2, 3, 5").fetchall()
    names = ["table_catalog", "table_schema", "table_name", "column_name", "ordinal_position",
             "data_type", "is_nullable"]
    columns = [list(c) for c in zip(*rows)] if rows else [[] for _ in names]
    columns[4] = pa.array(columns[4], pa.int64())
    columns[5] = [trino_type(t) for t in columns[5]]
    return pa.table(dict(zip(names, columns)))


def _split_name(name: str) -> tuple[str, str, str]:
    parts = name.split(".")
    if len(parts) != 3:
        raise ValueError(f"expected catalog.schema.table, got {name!r}")
    return parts[0], parts[1], parts[2]


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


# ----------------------------------------------------------------------------- HTTP


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    trino: TrinoProtocolServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HttpServer

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def do_POST(self) -> None:
        self._handle()

    def do_GET(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    # -- dispatch

    def _handle(self) -> None:
        trino = self.server.trino
        body = self._read_body()
        auth = self.headers.get("Authorization")
        entry = LoggedRequest(
            method=self.command, path=self.path.split("?")[0],
            headers={h: self.headers[h] for h in LOGGED_HEADERS if self.headers.get(h) is not None},
            auth_scheme=auth.split(" ", 1)[0] if auth else None,
            sql=body.decode("utf-8", "replace") if self.command == "POST" else None)
        trino.record(entry)
        if trino.take_failure():
            return self._send_text(entry, trino.faults.fail_status, "Service Unavailable")
        if not trino.authorized(auth):
            return self._send_text(entry, 401, "Unauthorized", {"WWW-Authenticate": 'Basic realm="Trino"'})
        if self.command == "POST" and entry.path == STATEMENT_PATH:
            return self._submit(entry, body)
        if self.command == "GET" and entry.path == "/v1/info":
            return self._send_json(entry, 200, {"nodeVersion": {"version": "genesis-test"},
                                                "coordinator": True, "starting": False})
        m = _EXECUTING.match(entry.path)
        query = trino.query(m.group(1), m.group(2)) if m else None
        if query is None:
            return self._send_text(entry, 404, "Query not found")
        entry.query_id, entry.page = query.id, int(m.group(3))
        if self.command == "DELETE":
            trino.cancel(query)
            return self._send_empty(entry, 204)
        if self.command == "GET":
            return self._page(entry, query, int(m.group(3)))
        return self._send_text(entry, 405, "Method Not Allowed")

    def _submit(self, entry: LoggedRequest, body: bytes) -> None:
        trino = self.server.trino
        sql = body.decode("utf-8")
        query = trino.submit(sql, self.headers.get("X-Trino-Catalog"), self.headers.get("X-Trino-Schema"))
        entry.query_id = query.id
        self._send_json(entry, 200, self._status(query, "QUEUED", next_page=0))

    def _page(self, entry: LoggedRequest, query: _Query, page: int) -> None:
        trino = self.server.trino
        if trino.faults.slow_seconds and trino.wait(trino.faults.slow_seconds):
            return self._drop(entry)  # the server is stopping
        if query.cancelled:
            error = error_payload("Query was canceled", "USER_CANCELED", 3, "USER_ERROR", None)
            return self._send_json(entry, 200, self._status(query, "FAILED", error=error))
        if not query.done.wait(trino.poll_wait):
            return self._send_json(entry, 200, self._status(query, "RUNNING", next_page=page))
        if query.error is not None:
            return self._send_json(entry, 200, self._status(query, "FAILED", error=query.error))
        if page >= len(query.pages):
            return self._send_text(entry, 410, "Page gone")
        last = page == len(query.pages) - 1
        payload = self._status(query, "FINISHED" if last else "RUNNING",
                               next_page=None if last else page + 1, data_page=page)
        if trino.take_drop(page):
            return self._drop(entry, json.dumps(payload).encode() if trino.faults.drop_mode == "truncate" else None)
        self._send_json(entry, 200, payload)

    def _status(self, query: _Query, state: str, *, next_page: int | None = None,
                data_page: int | None = None, error: dict | None = None) -> dict:
        host = self.headers.get("Host") or f"127.0.0.1:{self.server.server_address[1]}"
        base = f"http://{host}"
        payload: dict[str, Any] = {
            "id": query.id,
            "infoUri": f"{base}/ui/query.html?{query.id}",
            "stats": {"state": state, "queued": state == "QUEUED", "scheduled": state != "QUEUED",
                      "nodes": 1, "totalSplits": 1, "queuedSplits": 0, "runningSplits": 0,
                      "completedSplits": 1 if state == "FINISHED" else 0, "cpuTimeMillis": 0,
                      "wallTimeMillis": 0, "queuedTimeMillis": 0, "elapsedTimeMillis": 0,
                      "processedRows": 0, "processedBytes": 0, "peakMemoryBytes": 0},
            "warnings": [],
        }
        if next_page is not None:
            payload["nextUri"] = f"{base}/v1/statement/executing/{query.id}/{query.slug}/{next_page}"
        if data_page is not None:
            payload["columns"] = query.columns
            if query.pages[data_page]:
                payload["data"] = query.pages[data_page]
        if error is not None:
            payload["error"] = error
        return payload

    # -- responses

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send_json(self, entry: LoggedRequest, status: int, payload: dict) -> None:
        self._send(entry, status, json.dumps(payload).encode(), "application/json")

    def _send_text(self, entry: LoggedRequest, status: int, text: str,
                   headers: dict[str, str] | None = None) -> None:
        self._send(entry, status, text.encode(), "text/plain", headers)

    def _send_empty(self, entry: LoggedRequest, status: int) -> None:
        entry.status = status
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _send(self, entry: LoggedRequest, status: int, body: bytes, content_type: str,
              headers: dict[str, str] | None = None) -> None:
        entry.status = status
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _drop(self, entry: LoggedRequest, body: bytes | None = None) -> None:
        """Close the socket: silently, or after the headers and half of `body`."""
        entry.status = None
        if body is not None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
