"""Run compiled SQL on a Trino cluster through the official `trino` client.

One HTTP connection per query, tagged with who runs it (`source=genesis`, client tag =
the tracker or input name) so cluster operators can see it. Results come back as Arrow
tables typed from Trino's column types, the same types the DuckDB engine returns.

Failures become one-line EngineErrors. Transient ones (HTTP 502/503/504, a connection
lost while reading a result) are retried: the client retries each HTTP request itself,
and a query whose result stream broke is restarted from scratch, so rows of a failed
attempt are never returned. Passwords and tokens never appear in messages, logs or repr.
"""

from __future__ import annotations

import ipaddress
import logging
import random
import re
import threading
import time
from collections.abc import Mapping
from typing import Any

import pyarrow as pa
import trino.auth
import trino.dbapi
import trino.exceptions
from trino.exceptions import TrinoDataError, TrinoQueryError

from ..project.types import arrow_type, normalize_type
from .base import EngineError

log = logging.getLogger(__name__)

DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_REQUEST_TIMEOUT = 30.0
DEFAULT_RETRY_WINDOW = 300.0  # seconds; bounds all retries of one query when no timeout is set
DEFAULT_RETRY_BACKOFF = 1.0  # seconds before the first restart; doubles each time
MAX_RETRY_DELAY = 30.0

# Trino errors that say "the cluster had a hiccup", not "your query is wrong".
TRANSIENT_TRINO_ERRORS = {
    "REMOTE_TASK_ERROR", "PAGE_TRANSPORT_ERROR", "PAGE_TRANSPORT_TIMEOUT", "NO_NODES_AVAILABLE",
    "SERVER_SHUTTING_DOWN", "SERVER_STARTING_UP", "REMOTE_HOST_GONE", "TOO_MANY_REQUESTS_FAILED",
}
_TRANSIENT_STATUS = {429, 500, 502, 503, 504}  # a single 500 is usually a coordinator hiccup
_HTTP_STATUS = re.compile(r"\berror (\d{3})\b")
_UNREACHABLE = [
    (re.compile(r"Connection refused", re.I), "connection refused"),
    (re.compile(r"Name or service not known|nodename nor servname|getaddrinfo failed|"
                r"Temporary failure in name resolution|No address associated", re.I), "unknown host"),
    (re.compile(r"ConnectTimeout|connect timeout", re.I), "connection timed out"),
    (re.compile(r"NewConnectionError|Failed to establish a new connection", re.I), "no connection"),
    (re.compile(r"SSLError|CERTIFICATE_VERIFY_FAILED", re.I), "TLS handshake failed"),
]


class TrinoEngine:
    """The `Engine` for a `trino:` target section (values already rendered from the environment).

    Settings: host, port, http_scheme (https), user, catalog, schema,
    auth {type: none|basic|jwt, user/password | token}, session_properties,
    and optionally request_timeout (s, per HTTP request), max_attempts (per HTTP request
    and per query), retry_backoff (s), retry_window (s), verify (TLS: bool or CA path),
    timezone, allow_insecure_auth (send credentials over plain http to a non-local host).
    """

    name = "trino"

    def __init__(self, settings: Mapping[str, Any]):
        settings = dict(settings or {})
        self.host = _required(settings, "host")
        self.http_scheme = str(settings.get("http_scheme") or "https").lower()
        if self.http_scheme not in ("http", "https"):
            raise EngineError(f"trino: http_scheme must be http or https, not '{self.http_scheme}'")
        self.port = int(_number(settings, "port", 443 if self.http_scheme == "https" else 8080))
        self.user = _required(settings, "user")
        self.catalog = settings.get("catalog") or None
        self.schema = settings.get("schema") or None
        self.session_properties = {str(k): _session_value(v)
                                   for k, v in (settings.get("session_properties") or {}).items()}
        self.request_timeout = _number(settings, "request_timeout", DEFAULT_REQUEST_TIMEOUT)
        self.max_attempts = max(1, int(_number(settings, "max_attempts", DEFAULT_MAX_ATTEMPTS)))
        self.retry_backoff = _number(settings, "retry_backoff", DEFAULT_RETRY_BACKOFF)
        self.retry_window = _number(settings, "retry_window", DEFAULT_RETRY_WINDOW)
        self.verify = settings.get("verify", True)
        self.timezone = settings.get("timezone") or None
        self.auth_type, self._auth_user, self._secret = _parse_auth(settings.get("auth"), self.user)
        self._allow_insecure_auth = bool(settings.get("allow_insecure_auth"))
        self._check_transport()
        self._open: set[Any] = set()
        self._running: set[Any] = set()  # cursors with a query on the cluster, for cancel()
        self._cancelled = False
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """The coordinator's base URL, for messages (it never holds credentials)."""
        return f"{self.http_scheme}://{self.host}:{self.port}"

    def __repr__(self) -> str:  # deliberately without the password or token
        return (f"TrinoEngine(url={self.url!r}, user={self.user!r}, catalog={self.catalog!r}, "
                f"schema={self.schema!r}, auth={self.auth_type!r})")

    # -- Engine protocol

    def execute(self, sql: str, *, label: str = "", timeout: float | None = None) -> pa.Table:
        """Run one statement and return all its rows, or raise EngineError (never partial rows)."""
        started = time.monotonic()
        deadline = started + timeout if timeout else None
        give_up_at = deadline or started + self.retry_window
        attempt = 0
        while True:
            attempt += 1
            if self._cancelled:
                raise EngineError(f"the Trino query{' of ' + label if label else ''} was cancelled")
            try:
                description, rows = self._attempt(sql, label, deadline, timeout)
                return _to_arrow(description, rows)
            except EngineError:
                raise  # a timeout: already cancelled on the cluster, not retried
            except Exception as exc:  # the client raises many unrelated types
                error = self._translate(exc)
            delay = self._backoff(attempt)
            if not error.transient or attempt >= self.max_attempts or time.monotonic() + delay >= give_up_at:
                if error.transient and attempt > 1:
                    error.message += f" (gave up after {attempt} attempts)"
                    error.args = (error.message,)
                raise error
            log.warning("Trino query %s failed: %s; retrying in %.1f s (attempt %d of %d)",
                        label or "(unlabelled)", error.message, delay, attempt + 1, self.max_attempts)
            time.sleep(delay)

    def table_columns(self, table: str) -> dict[str, str] | None:
        """{column: canonical type} of a live table `catalog.schema.table`, None if it is absent."""
        catalog, schema, name = self._qualify(table)
        sql = (f"SELECT column_name, data_type FROM {_identifier(catalog)}.information_schema.columns "
               f"WHERE table_schema = {_literal(schema)} AND table_name = {_literal(name)} "
               f"ORDER BY ordinal_position")
        try:
            result = self.execute(sql, label="genesis-schema-check")
        except EngineError as err:
            if getattr(err, "error_name", None) in ("CATALOG_NOT_FOUND", "SCHEMA_NOT_FOUND"):
                return None
            raise
        if result.num_rows == 0:
            return None
        names, types = result.column(0).to_pylist(), result.column(1).to_pylist()
        return {n: normalize_type(t) or t for n, t in zip(names, types)}

    def cancel(self) -> None:
        """Cancel every running query on the cluster (DELETE nextUri) and start no new one."""
        with self._lock:
            self._cancelled = True
            running = list(self._running)
        for cursor in running:
            _quietly(cursor.cancel)

    def close(self) -> None:
        """Close every connection still open, including those of queries abandoned after a timeout."""
        with self._lock:
            connections, self._open = list(self._open), set()
        for connection in connections:
            _quietly(connection.close)

    # -- one attempt

    def _attempt(self, sql: str, label: str, deadline: float | None, timeout: float | None):
        """Run the query once in a worker thread, so that a timeout can cancel it on the cluster."""
        connection = self._connect(label)
        cursor = connection.cursor()
        outcome: dict[str, Any] = {}

        def work() -> None:
            try:
                cursor.execute(sql)
                rows = cursor.fetchall()
                outcome["result"] = (cursor.description, rows)
            except BaseException as exc:  # handed to the caller's thread
                outcome["error"] = exc
            finally:
                with self._lock:
                    self._running.discard(cursor)

        with self._lock:
            self._running.add(cursor)

        worker = threading.Thread(target=work, name="genesis-trino-query", daemon=True)
        worker.start()
        worker.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        if worker.is_alive():
            # DELETE nextUri: the cluster stops the query. The worker then ends on its own
            # when its pending request returns; its connection is closed by close().
            _quietly(cursor.cancel)
            raise EngineError(f"the Trino query timed out after {timeout:g} s and was cancelled")
        self._forget(connection)
        if "error" in outcome:
            _quietly(cursor.cancel)  # a broken stream may leave the query running
            _quietly(connection.close)
            raise outcome["error"]
        connection.close()
        return outcome["result"]

    def _connect(self, label: str):
        tag = label.replace(",", " ").strip()
        options: dict[str, Any] = dict(
            host=self.host, port=self.port, http_scheme=self.http_scheme, user=self.user,
            catalog=self.catalog, schema=self.schema, source="genesis",
            client_tags=[tag] if tag else None, session_properties=dict(self.session_properties),
            max_attempts=self.max_attempts, request_timeout=self.request_timeout, verify=self.verify,
        )
        if self.timezone:
            options["timezone"] = self.timezone
        auth = self._client_auth()
        if auth is not None:
            options["auth"] = auth
            if self.http_scheme == "http":
                options["allow_insecure_auth"] = True  # allowed by _check_transport
        connection = trino.dbapi.connect(**options)
        with self._lock:
            self._open.add(connection)
        return connection

    def _forget(self, connection: Any) -> None:
        with self._lock:
            self._open.discard(connection)

    def _client_auth(self):
        if self.auth_type == "basic":
            return trino.auth.BasicAuthentication(self._auth_user, self._secret.value)
        if self.auth_type == "jwt":
            return trino.auth.JWTAuthentication(self._secret.value)
        return None

    def _check_transport(self) -> None:
        # Credentials in clear text are fine to a local test server, not across a network.
        if self.auth_type == "none" or self.http_scheme == "https" or self._allow_insecure_auth:
            return
        if not _is_loopback(self.host):
            raise EngineError(f"trino: refusing to send credentials over plain http to {self.host}; "
                              f"use http_scheme: https (or set allow_insecure_auth: true)")

    # -- errors

    def _translate(self, exc: BaseException) -> EngineError:
        """One clear line for whatever the client raised; `transient` says whether to retry."""
        if isinstance(exc, TrinoQueryError):
            return _query_error(exc)
        if isinstance(exc, trino.exceptions.TrinoAuthError):
            return EngineError(f"Trino refused the connection settings for user {self._auth_user}: {_short(exc)}")
        text = _chain_text(exc)
        status = _HTTP_STATUS.search(str(exc))
        if status:
            return self._http_error(int(status.group(1)))
        if isinstance(exc, TrinoDataError):
            return EngineError(f"Trino returned a value Genesis cannot read: {exc}")
        for pattern, reason in _UNREACHABLE:
            if pattern.search(text):
                return EngineError(f"cannot reach Trino at {self.url}: {reason}")
        if isinstance(exc, (trino.exceptions.OperationalError, trino.exceptions.HttpError, OSError)) or \
                "requests.exceptions" in text or "ConnectionError" in text:
            return EngineError(f"lost the connection to Trino at {self.url}: {_short(exc)}", transient=True)
        return EngineError(f"the Trino query failed: {type(exc).__name__}: {_short(exc)}")

    def _http_error(self, status: int) -> EngineError:
        if status == 401:
            return EngineError(f"Trino rejected the credentials for user {self._auth_user}")
        if status == 403:
            return EngineError(f"Trino denied access to user {self._auth_user} (HTTP 403)")
        if status in _TRANSIENT_STATUS:
            return EngineError(f"Trino at {self.url} is unavailable (HTTP {status})", transient=True)
        return EngineError(f"Trino at {self.url} answered HTTP {status}")

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter, so that many trackers do not retry in step."""
        delay = min(MAX_RETRY_DELAY, self.retry_backoff * 2 ** (attempt - 1))
        return delay * random.uniform(0.5, 1.0)

    def _qualify(self, table: str) -> tuple[str, str, str]:
        parts = [p.strip().strip('"').lower() for p in table.split(".")]
        defaults = [self.catalog, self.schema]
        qualified = [d.lower() if d else None for d in defaults[: 3 - len(parts)]] + list(parts)
        catalog, schema, name = (qualified + [None, None, None])[:3]
        if len(qualified) != 3 or not (catalog and schema and name):
            raise EngineError(f"'{table}' is not a catalog.schema.table name")
        return catalog, schema, name


# ----------------------------------------------------------------------------- helpers


def _required(settings: Mapping[str, Any], key: str) -> str:
    value = settings.get(key)
    if value is None or str(value).strip() == "":
        raise EngineError(f"trino: '{key}' is required in the target's trino settings")
    return str(value)


def _number(settings: Mapping[str, Any], key: str, default: float) -> float:
    # Values rendered from the environment arrive as text ("443").
    value = settings.get(key)
    if value is None or value == "":
        return float(default)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise EngineError(f"trino: '{key}' must be a number, not '{value}'") from None


def _session_value(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


class _Secret:
    """A password or token that prints as *** (in reprs, vars() dumps, logs)."""

    __slots__ = ("value",)

    def __init__(self, value: str):
        self.value = value

    def __repr__(self) -> str:
        return "'***'"

    __str__ = __repr__


def _parse_auth(auth: Any, user: str) -> tuple[str, str, _Secret | None]:
    """(type, user, secret). Error messages name missing keys, never their values."""
    auth = dict(auth or {})
    kind = str(auth.get("type") or "none").lower()
    if kind == "none":
        return "none", user, None
    if kind == "basic":
        password = auth.get("password")
        if not password:
            raise EngineError("trino: auth type basic needs a password")
        return "basic", str(auth.get("user") or user), _Secret(str(password))
    if kind == "jwt":
        token = auth.get("token")
        if not token:
            raise EngineError("trino: auth type jwt needs a token")
        return "jwt", user, _Secret(str(token))
    raise EngineError(f"trino: unknown auth type '{kind}' (expected none, basic or jwt)")


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _query_error(exc: TrinoQueryError) -> EngineError:
    message = (exc.message or "the query failed").splitlines()[0]
    location = exc.error_location
    error = EngineError(
        f"Trino: {message}",
        sql_line=location[0] if location else None,
        sql_col=location[1] if location else None,
        transient=exc.error_name in TRANSIENT_TRINO_ERRORS,
    )
    error.error_name = exc.error_name  # lets table_columns tell "no such catalog" apart
    error.query_id = exc.query_id
    return error


def _chain_text(exc: BaseException) -> str:
    """The type names and messages of an exception and its causes, for classifying it."""
    parts, seen = [], set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts.append(f"{type(current).__module__}.{type(current).__name__}: {current}")
        current = current.__cause__ or current.__context__
    return " | ".join(parts)


def _short(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _quietly(action) -> None:
    try:
        action()
    except Exception:  # best effort: the query is being abandoned anyway
        pass


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _to_arrow(description: Any, rows: list) -> pa.Table:
    """Arrow columns typed from Trino's column types (decimal128, date32, timestamp[us], ...)."""
    if not description:
        return pa.table({})
    arrays = [_column([row[i] for row in rows], column[1]) for i, column in enumerate(description)]
    return pa.Table.from_arrays(arrays, names=[column[0] for column in description])


def _column(values: list, trino_type: str) -> pa.Array:
    canonical = normalize_type(trino_type)
    if canonical:
        return pa.array(values, type=arrow_type(canonical))
    # Types Genesis does not declare (time, uuid, map, row, ...): let Arrow infer, else text.
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())
