"""The Airtable destination: a query result kept in an Airtable table that people annotate.

One refresh = read every record once (pages of 100), diff by key with `sync.plan_sync`,
then write only what changed: new and changed records with `performUpsert` (batches of 10),
removed ones deleted in batches of 10 or marked in the status field. An unchanged result
makes no write call.

Ownership: Genesis owns the output columns (the key columns among them) and the status
field (`sync.STATUS_COLUMN`). Every other field belongs to people; a record is annotated
when one of those fields is non-empty or the record has comments. Computed fields
(formula, created time, autonumber...) are not annotations: the base schema, fetched only
when it decides something, tells them apart.

Calls: a process-wide limiter keeps every tracker of a run under 5 requests per second
per base (Airtable's limit; a 6th request inside a second earns a 30 s ban of the whole
base). A 429 makes every tracker on that base wait out the penalty, 5xx answers are
retried with jittered backoff, and all waiting is bounded by the refresh's deadline.
pyairtable's own retries are off so the two do not fight. The token is only ever put in
the Authorization header; messages and logs never show it.

Idempotence: new records are matched on the key fields (`fieldsToMergeOn`), so a refresh
killed between two writes and run again updates the records it already created instead of
duplicating them, and converges to the state an uninterrupted run leaves.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
import time
import urllib.parse
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Callable, Iterator, Mapping, Sequence

import requests
from pyairtable import Api
from requests.adapters import HTTPAdapter

from ..errors import GenesisError, redact, register_secret
from ..formatting import format_value, raw_text, spreadsheet_number_format
from ..result import OutputColumn, QueryResult
from ..types import INTEGER_TYPES, array_element, decimal_scale, is_array, is_decimal
from .retry import DEFAULT_DEADLINE_SECONDS, Backoff, Deadline, unreachable
from .sync import (
    STATUS_COLUMN,
    STATUS_REMOVED,
    ExistingRow,
    Plan,
    ResultRow,
    check_policy,
    key_of,
    plan_sync,
)

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://api.airtable.com"
PAGE_SIZE = 100  # Airtable's maximum page size
BATCH_SIZE = 10  # Airtable's maximum records per write
# Fields whose values Airtable computes: never a person's note.
COMPUTED_TYPES = frozenset({
    "formula", "rollup", "lookup", "multipleLookupValues", "count", "autoNumber",
    "createdTime", "lastModifiedTime", "createdBy", "lastModifiedBy", "button",
    "externalSyncSource", "aiText",
})


@dataclass(frozen=True)
class Settings:
    """Call pacing; tests and the bench swap in faster values (`airtable.SETTINGS = ...`)."""

    requests_per_second: int = 5  # per base, across every tracker of the process
    rate_window_seconds: float = 1.0
    penalty_seconds: float = 30.0  # what Airtable imposes after a 429
    backoff_seconds: float = 0.5  # first 5xx retry waits about this long, then doubles
    max_backoff_seconds: float = 8.0
    max_retries: int = 5  # per request, for 5xx and connection errors
    request_timeout_seconds: float = 60.0


SETTINGS = Settings()


@dataclass(frozen=True)
class AirtableSyncReport:
    base_id: str
    table: str
    mode: str
    on_removed: str
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    marked: int = 0
    unmarked: int = 0
    unchanged: int = 0
    kept: int = 0
    read_calls: int = 0
    write_calls: int = 0
    meta_calls: int = 0  # schema reads, table and field creation
    retries: int = 0  # requests sent again after a 429, 5xx or lost connection
    replans: int = 0  # re-reads after records vanished under a write (another refresh, a person)
    fields_created: tuple[str, ...] = ()
    seconds: float = 0.0
    dry_run: bool = False
    plan: Plan | None = field(default=None, repr=False, compare=False)  # for `genesis audit`
    existing: tuple = field(default=(), repr=False, compare=False)  # the records, as the diff saw them

    @property
    def calls(self) -> int:
        return self.read_calls + self.write_calls + self.meta_calls


# ---------------------------------------------------------------------------------------
# Rate limiting: one limiter per process, keyed by base id
# ---------------------------------------------------------------------------------------


class DeadlineExceeded(GenesisError):
    pass


class _Slot:
    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done: float | None = None  # monotonic time the answer came back


class BaseRateLimiter:
    """At most N requests per window per base, counted the way the server counts them.

    A token bucket with a burst of N would let N+1 requests land inside one second. Here a
    request may start only when fewer than N requests are in flight or finished within the
    last window; a request's time is when its answer came back, which is after the server
    saw it, so the server never counts more than N in any window, whatever the latency.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._slots: dict[str, list[_Slot]] = {}
        self._blocked_until: dict[str, float] = {}

    def acquire(self, base: str, deadline: float) -> _Slot:
        with self._cond:
            while True:
                now = time.monotonic()
                wait = self._wait_needed(base, now)
                if wait == 0:
                    slot = _Slot()
                    self._slots.setdefault(base, []).append(slot)
                    return slot
                if now + (wait or 0) > deadline:
                    raise DeadlineExceeded("it ran out of time waiting for Airtable's rate limit")
                # wait None: every slot is in flight; `release` wakes us.
                self._cond.wait(timeout=wait if wait is not None else deadline - now)

    def _wait_needed(self, base: str, now: float) -> float | None:
        """0: go now; seconds until a slot frees; None: until a request in flight ends."""
        settings = SETTINGS
        blocked = self._blocked_until.get(base, 0.0) - now
        if blocked > 0:
            return blocked
        window = settings.rate_window_seconds
        slots = [s for s in self._slots.get(base, []) if s.done is None or s.done > now - window]
        self._slots[base] = slots
        if len(slots) < settings.requests_per_second:
            return 0
        finished = [s.done for s in slots if s.done is not None]
        return (min(finished) + window - now) if finished else None

    def release(self, slot: _Slot) -> None:
        with self._cond:
            slot.done = time.monotonic()
            self._cond.notify_all()

    def penalize(self, base: str, seconds: float) -> None:
        """A 429: nobody in this process talks to the base until the penalty is over."""
        with self._cond:
            until = time.monotonic() + seconds
            self._blocked_until[base] = max(self._blocked_until.get(base, 0.0), until)
            self._cond.notify_all()


LIMITER = BaseRateLimiter()


# ---------------------------------------------------------------------------------------
# Transport: every HTTP request of a refresh goes through here
# ---------------------------------------------------------------------------------------


@dataclass
class _Counters:
    read: int = 0
    write: int = 0
    meta: int = 0
    retries: int = 0


class _GovernedAdapter(HTTPAdapter):
    """Paces, retries and counts requests; the requests library's documented extension point."""

    def __init__(self, deadline: Deadline, counters: _Counters):
        super().__init__(max_retries=0)
        self.deadline = deadline
        self.counters = counters

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        base, kind = _classify(request.method or "GET", request.url or "")
        attempt = 0
        while True:
            if self.deadline.remaining() <= 0:
                raise DeadlineExceeded("it ran out of time")
            response, error = self._send_once(request, base, kind, kwargs)
            retry_in = self._retry_delay(response, error, base, attempt)
            if retry_in is None:
                if error is not None:
                    raise error
                return response
            attempt += 1
            self.counters.retries += 1
            self._sleep(retry_in)

    def _send_once(self, request, base, kind, kwargs):
        slot = LIMITER.acquire(base, self.deadline.at) if base else None
        setattr(self.counters, kind, getattr(self.counters, kind) + 1)
        remaining = self.deadline.remaining()
        kwargs["timeout"] = max(0.1, min(SETTINGS.request_timeout_seconds, remaining))
        try:
            response = super().send(request, **kwargs)
            response.content  # read the body before the slot's time is taken
            return response, None
        except (requests.ConnectionError, requests.Timeout) as err:
            return None, err
        finally:
            if slot is not None:
                LIMITER.release(slot)
            log.debug("airtable %s %s", request.method, _path(request.url))

    def _retry_delay(self, response, error, base, attempt) -> float | None:
        """Seconds to wait before sending again, or None to give the answer back."""
        if response is not None and response.status_code == 429:
            if base:
                LIMITER.penalize(base, SETTINGS.penalty_seconds)
            if not self.deadline.allows(SETTINGS.penalty_seconds):
                raise DeadlineExceeded(f"Airtable's rate-limit penalty of {SETTINGS.penalty_seconds:g} s "
                                       "would end after the deadline")
            log.warning("Airtable rate limit hit on base %s; waiting %.1f s", base, SETTINGS.penalty_seconds)
            return 0.0  # the limiter itself holds the next request until the penalty ends
        if error is not None and unreachable(error):
            return None  # connection refused, unknown host: retrying cannot help
        transient = error is not None or (response is not None and response.status_code >= 500)
        if not transient or attempt >= SETTINGS.max_retries:
            return None
        return Backoff(SETTINGS.backoff_seconds, SETTINGS.max_backoff_seconds).delay(attempt)

    def _sleep(self, seconds: float) -> None:
        if not self.deadline.allows(seconds):
            raise DeadlineExceeded("the Airtable refresh ran out of time retrying a failed request")
        time.sleep(seconds)


def _classify(method: str, url: str) -> tuple[str | None, str]:
    """(base id, kind) of an Airtable API URL: kind is read, write or meta."""
    parts = [urllib.parse.unquote(p) for p in urllib.parse.urlsplit(url).path.split("/") if p]
    if "v0" in parts:
        parts = parts[parts.index("v0") + 1:]
    if parts[:2] == ["meta", "bases"] and len(parts) > 2:
        return parts[2], "meta"
    if not parts or parts[0] == "meta":
        return None, "meta"
    if parts[-1] == "listRecords" or method.upper() == "GET":
        return parts[0], "read"
    return parts[0], "write"


def _path(url: str | None) -> str:
    return urllib.parse.urlsplit(url or "").path


# ---------------------------------------------------------------------------------------
# Columns: field types and value encoding
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Column:
    name: str
    type: str  # Airtable field type
    options: Mapping[str, Any] | None
    encode: Callable[[Any], Any]  # Python value -> the JSON value Airtable stores


def _columns(result: QueryResult, key: Sequence[str]) -> list[_Column]:
    return [_column(c, c.name in key, result.table.column(c.name)) for c in result.columns]


def _column(col: OutputColumn, is_key: bool, values: Any) -> _Column:
    fmt = dict(col.format or {})
    if "link" in fmt and not is_key:
        # A link is presentation: the cell holds the URL text, in a URL field.
        return _Column(col.name, "url", None, lambda v: _text(format_value(v, col.type, fmt)))
    field_type, options = _field_type(col, fmt, values)
    return _Column(col.name, field_type, options, _encoder(col.type))


def _field_type(col: OutputColumn, fmt: dict, values: Any) -> tuple[str, dict | None]:
    """The Airtable field type and options for a column's Trino type and format."""
    t = col.type
    if t == "boolean":
        return "checkbox", {"color": "greenBright", "icon": "check"}
    if t == "date":
        return "date", {"dateFormat": {"name": _date_format_name(fmt)}}
    if t.startswith("timestamp"):
        return "dateTime", {
            "dateFormat": {"name": _date_format_name(fmt)},
            "timeFormat": {"name": "12hour" if "%p" in str(fmt.get("date", "")) else "24hour"},
            "timeZone": "utc",
        }
    if t in INTEGER_TYPES or t in ("real", "double") or is_decimal(t):
        return _number_field(t, fmt)
    if not is_array(t) and any("\n" in str(v) for v in values.to_pylist() if v is not None):
        return "multilineText", None
    return "singleLineText", None


def _number_field(t: str, fmt: dict) -> tuple[str, dict]:
    # formatting decides what a spreadsheet would call it: currency, percent or number.
    kind = (spreadsheet_number_format(t, fmt) or {}).get("type")
    if kind == "PERCENT":
        return "percent", {"precision": min(int(fmt.get("percent") or 0), 8)}
    precision = min(_precision(t, fmt), 8)  # Airtable shows 0 to 8 decimals
    if kind == "CURRENCY":
        symbol = str(fmt.get("prefix") or fmt.get("suffix")).strip()
        return "currency", {"precision": precision, "symbol": symbol}
    return "number", {"precision": precision}


def _precision(t: str, fmt: dict) -> int:
    pattern = fmt.get("number")
    if isinstance(pattern, str):
        return len(pattern.partition(".")[2])  # "#,##0.00" -> 2
    if t in INTEGER_TYPES:
        return 0
    if is_decimal(t):
        return decimal_scale(t)
    return 8  # a double: show what it holds


_DATE_FORMAT_NAMES = {
    "%Y-%m-%d": "iso", "%m/%d/%Y": "us", "%-m/%-d/%Y": "us", "%d/%m/%Y": "european",
    "%-d/%-m/%Y": "european", "%b %d, %Y": "friendly", "%B %d, %Y": "friendly",
    "%b %-d, %Y": "friendly", "%B %-d, %Y": "friendly",
}


def _date_format_name(fmt: Mapping[str, Any]) -> str:
    # Airtable offers five date formats; the strftime pattern picks the closest.
    pattern = str(fmt.get("date") or "").split(" %H")[0].split(" %I")[0]
    return _DATE_FORMAT_NAMES.get(pattern, "iso")


def _encoder(t: str) -> Callable[[Any], Any]:
    if t == "boolean":
        return lambda v: True if v else None  # Airtable stores an unchecked box as empty
    if t in INTEGER_TYPES:
        return lambda v: None if v is None else int(v)
    if t in ("real", "double") or is_decimal(t):
        return _number
    if t == "date":
        return lambda v: None if v is None else v.isoformat()
    if t.startswith("timestamp"):
        return _timestamp
    if is_array(t):
        element = array_element(t)
        return lambda v: _text(", ".join(raw_text(x, element) for x in v if x is not None)) if v else None
    return lambda v: _text(raw_text(v, t))


def _text(value: str) -> str | None:
    # Sent as a plain string in a text field: Airtable never evaluates it, so "=1+1"
    # stays text; typecast stays off so nothing converts it either.
    return value or None


def _number(value: Any) -> int | float | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        if not value.is_finite():
            return None
        if value == value.to_integral_value() and abs(value) < 2**53:
            return int(value)
        return float(value)
    number = float(value)
    return number if math.isfinite(number) else None


def _timestamp(value: dt.datetime | None) -> str | None:
    """ISO UTC with milliseconds, exactly as Airtable returns a dateTime (naive = UTC)."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


# ---------------------------------------------------------------------------------------
# The table: reads, writes and schema through pyairtable
# ---------------------------------------------------------------------------------------


class _Table:
    def __init__(self, base_id: str, name: str, token: str, endpoint: str, deadline: Deadline):
        self.base_id, self.name = base_id, name
        self.counters = _Counters()
        self.api = Api(token, endpoint_url=endpoint, retry_strategy=None)
        adapter = _GovernedAdapter(deadline, self.counters)
        self.api.session.mount("http://", adapter)
        self.api.session.mount("https://", adapter)
        self.table = self.api.table(base_id, name)
        self._schema = None

    def records(self) -> list[dict] | None:
        """Every record (pages of 100, comment counts included), or None if no such table."""
        try:
            return self.table.all(page_size=PAGE_SIZE, count_comments=True)
        except requests.HTTPError as err:
            if _status(err) == 404 and _error_type(err) == "TABLE_NOT_FOUND":
                return None
            raise

    def forget_schema(self) -> None:
        self._schema = None

    def field_types(self) -> dict[str, str]:
        """name -> Airtable type, from the base schema (one call, then cached)."""
        if self._schema is None:
            self._schema = self.table.schema(force=True)
        return {f.name: str(getattr(f.type, "value", f.type)) for f in self._schema.fields}

    def create_table(self, columns: Sequence[_Column]) -> None:
        specs = [_field_spec(c) for c in columns]
        self.table.base.create_table(self.name, specs)
        self.table = self.api.table(self.base_id, self.name)
        self._schema = None

    def create_field(self, column: _Column) -> None:
        self.field_types()  # field creation addresses the table by id
        self.table.create_field(column.name, column.type, options=dict(column.options or {}) or None)

    def upsert(self, batch: list[dict], key: Sequence[str]) -> None:
        self.table.batch_upsert(batch, key_fields=list(key))  # <= 10 records: one request

    def delete(self, ids: list[str]) -> None:
        self.table.batch_delete(ids)  # <= 10 ids: one request


def _field_spec(column: _Column) -> dict:
    spec: dict[str, Any] = {"name": column.name, "type": column.type}
    if column.options:
        spec["options"] = dict(column.options)
    return spec


def _status(err: requests.HTTPError) -> int:
    return err.response.status_code if err.response is not None else 0


def _error_body(err: requests.HTTPError) -> Any:
    try:
        return err.response.json().get("error")
    except Exception:
        return None


def _error_type(err: requests.HTTPError) -> str:
    body = _error_body(err)
    return str(body.get("type", "")) if isinstance(body, dict) else str(body or "")


def _api_error(err: Exception, token: str, where: str) -> GenesisError:
    """A GenesisError for a failed call, naming the call and Airtable's reason, never the token."""
    if isinstance(err, requests.HTTPError):
        body = _error_body(err)
        reason = body.get("message", "") if isinstance(body, dict) else ""
        text = f"Airtable answered {_status(err)} {_error_type(err)}".rstrip()
        if reason:
            text += f": {reason}"
        hint = {401: "check the airtable token of the target",
                403: "check that the token may read and write this base",
                404: "check the tracker's base_id and table",
                422: "the table's fields do not match the result (type or name)",
                429: "the base stayed rate limited; run again later"}.get(_status(err))
        if _status(err) >= 500:
            hint = "Airtable kept failing; the table is consistent, run again to finish"
    elif unreachable(err):
        text, hint = f"cannot reach Airtable: {unreachable(err)}", "check airtable.endpoint and the network"
    else:
        text, hint = f"could not reach Airtable: {type(err).__name__}", "check airtable.endpoint"
    return GenesisError(redact(f"{where}: {text}"), hint=hint)  # the token is a registered secret


# ---------------------------------------------------------------------------------------
# The refresh
# ---------------------------------------------------------------------------------------


def sync_airtable(
    result: QueryResult,
    *,
    base_id: str,
    table: str,
    key: Sequence[str],
    mode: str = "upsert",
    on_removed: str = "delete",
    token: str,
    endpoint: str = DEFAULT_ENDPOINT,
    deadline_seconds: float = DEFAULT_DEADLINE_SECONDS,
    dry_run: bool = False,
) -> AirtableSyncReport:
    """Make Airtable table `table` of base `base_id` hold `result`, keyed by the output
    columns `key`; see the module docstring for what is written and what is kept."""
    started = time.monotonic()
    mode, policy = check_policy(mode, on_removed)
    if not token:
        raise GenesisError("no Airtable token", hint="set `airtable.token` in the target")
    register_secret(token)  # masked in any output, whatever route it takes
    key = tuple(key)
    _check_key(result, key)
    where = f"Airtable base {base_id} table '{table}'"
    deadline = Deadline(deadline_seconds, "airtable.deadline_seconds")
    remote = _Table(base_id, table, token, endpoint.rstrip("/"), deadline)
    refresh = _Refresh(result, remote, key, mode, policy, dry_run)
    replans = 0
    try:
        while True:
            try:
                report = refresh.run()
                break
            except _Vanished as err:
                replans += 1
                log.info("%s: %s; reading the table again", where, err)
                if replans > MAX_REPLANS:
                    raise GenesisError(
                        f"{where}: records kept disappearing while Genesis wrote ({err}); "
                        f"re-read the table {MAX_REPLANS} times",
                        hint="another refresh of this table, or a person, is deleting records right now; "
                             "the table is consistent, run again when it is done") from None
    except DeadlineExceeded as err:
        raise GenesisError(
            f"{where}: stopped at its deadline of {deadline_seconds:g} s: {err.message} "
            f"({refresh.progress()})",
            hint=f"the table is consistent; run again to finish, or {deadline.hint()}",
        ) from None
    except requests.RequestException as err:
        raise _api_error(err, token, where) from None
    seconds = time.monotonic() - started
    c = remote.counters
    report = replace(report, read_calls=c.read, write_calls=c.write, meta_calls=c.meta,
                     retries=c.retries, replans=replans, seconds=seconds)
    log.info("%s: %s in %.1f s, %d calls", where, _summary(report), seconds, report.calls)
    return report


MAX_REPLANS = 5
_GONE = {"MODEL_ID_NOT_FOUND", "ROW_DOES_NOT_EXIST", "RECORD_NOT_FOUND"}


class _Vanished(Exception):
    """A write named a record that no longer exists: someone deleted it after our read.
    Airtable applies a batch whole or not at all, so the table is as another writer or a
    person left it; the refresh reads it again and re-plans (a record already deleted is
    then simply not there to delete)."""


def _check_key(result: QueryResult, key: tuple[str, ...]) -> None:
    if not key:
        raise GenesisError("an Airtable tracker needs a `key`", hint="name the column(s) that identify a row")
    missing = [k for k in key if k not in result.names]
    if missing:
        raise GenesisError(
            f"key column(s) {', '.join(missing)} are not in the output",
            hint=f"output columns: {', '.join(result.names)}",
        )
    if len(key) > 3:
        raise GenesisError("Airtable matches records on at most 3 key fields", hint="shorten `key`")


def _summary(report: AirtableSyncReport) -> str:
    return (f"{report.inserted} inserted, {report.updated} updated, {report.deleted} deleted, "
            f"{report.marked} marked, {report.unchanged} unchanged")


class _Refresh:
    """One refresh of one table: read, plan, ensure fields, write."""

    def __init__(self, result: QueryResult, remote: _Table, key: tuple[str, ...], mode: str,
                 policy: str, dry_run: bool):
        self.result, self.remote, self.key = result, remote, key
        self.mode, self.policy, self.dry_run = mode, policy, dry_run
        self.columns = _columns(result, key)
        self.owned = {c.name for c in self.columns} | {STATUS_COLUMN}
        self.fields_created: list[str] = []
        self.known_fields: set[str] = set()  # fields that exist without asking the schema
        self.writes_done = 0
        self.writes_planned = 0
        self.existing: tuple[ExistingRow, ...] = ()

    def progress(self) -> str:
        return f"{self.writes_done} of {self.writes_planned} write calls done"

    def run(self) -> AirtableSyncReport:
        records = self.remote.records()
        if records is None:
            records = self._create_table()
        rows = self._result_rows()
        plan = self._plan(records, rows)
        if not self.dry_run:
            self._write(plan, records, rows)
        counts = plan.counts()
        return AirtableSyncReport(
            base_id=self.remote.base_id, table=self.remote.name, mode=self.mode,
            on_removed=self.policy, fields_created=tuple(self.fields_created),
            dry_run=self.dry_run, plan=plan, existing=self.existing, **counts,
        )

    def _create_table(self) -> list[dict]:
        if not self.dry_run:
            ordered = sorted(self.columns, key=lambda c: c.name not in self.key)  # key first: primary
            try:
                self.remote.create_table(ordered)
            except requests.HTTPError as err:
                if _error_type(err) == "DUPLICATE_TABLE_NAME":  # another refresh created it first
                    raise _Vanished("the table was created by another refresh after the read") from None
                raise
            self.fields_created.extend(c.name for c in ordered)
            self.known_fields.update(c.name for c in ordered)
        return []

    # -- planning ---------------------------------------------------------------------------

    def _result_rows(self) -> list[ResultRow]:
        data = {c.name: self.result.table.column(c.name).to_pylist() for c in self.columns}
        rows = []
        for i in range(self.result.table.num_rows):
            values = {c.name: c.encode(data[c.name][i]) for c in self.columns}
            rows.append(ResultRow(tuple(values[k] for k in self.key), values))
        return rows

    def _plan(self, records: list[dict], rows: list[ResultRow]) -> Plan:
        computed: set[str] = set()
        if self._annotation_matters(records, rows):
            types = self.remote.field_types()
            computed = {name for name, t in types.items() if t in COMPUTED_TYPES}
        existing = [self._existing_row(r, computed) for r in records]
        self.existing = tuple(existing)
        return plan_sync(existing, rows, columns=[c.name for c in self.columns],
                         key_names=self.key, mode=self.mode, on_removed=self.policy)

    def _annotation_matters(self, records: list[dict], rows: list[ResultRow]) -> bool:
        """Whether a record whose fate depends on `annotated` (a removed key under `delete`,
        a keyless record under `replace`) has a field that may be computed; only then is the
        schema fetched, so a refresh with nothing to delete costs no schema call."""
        if self.mode == "append":
            return False
        keys = {key_of(r.key) for r in rows}
        for record in records:
            k = key_of(_stored(record.get("fields", {}).get(name)) for name in self.key)
            keyless = all(part is None for part in k)
            decides = self.mode == "replace" if keyless else (k not in keys and self.policy == "delete")
            if decides and self._foreign_values(record, set()):
                return True
        return False

    def _foreign_values(self, record: dict, computed: set[str]) -> bool:
        fields = record.get("fields", {})
        return any(
            name not in self.owned and name not in computed and not _empty(value)
            for name, value in fields.items()
        )

    def _existing_row(self, record: dict, computed: set[str]) -> ExistingRow:
        fields = record.get("fields", {})
        annotated = bool(record.get("commentCount")) or self._foreign_values(record, computed)
        return ExistingRow(
            row_id=record["id"],
            key=tuple(_stored(fields.get(k)) for k in self.key),
            values={c.name: _stored(fields.get(c.name)) for c in self.columns},
            annotated=annotated,
            marked=fields.get(STATUS_COLUMN) == STATUS_REMOVED,
        )

    # -- writing ----------------------------------------------------------------------------

    def _write(self, plan: Plan, records: list[dict], rows: list[ResultRow]) -> None:
        upserts = self._upsert_records(plan, records)
        deletes = list(plan.deletes)
        self.writes_planned = _batches(len(upserts)) + _batches(len(deletes))
        if not upserts and not deletes:
            return
        self._ensure_fields(upserts, records)
        for batch in _chunks(upserts):
            self._upsert(batch)
        for batch in _chunks(deletes):
            try:
                self.remote.delete(batch)
            except requests.HTTPError as err:
                if _error_type(err) in _GONE:
                    raise _Vanished("a record to delete was already deleted (by another refresh or a person)") from None
                raise
            self.writes_done += 1

    def _upsert(self, batch: list[dict]) -> None:
        try:
            self.remote.upsert(batch, self.key)
        except requests.HTTPError as err:
            if _error_type(err) in _GONE:
                raise _Vanished("a record to update was deleted after the read (by another refresh or a person)") from None
            # A field renamed or removed since the read: create it and send again, once.
            if _error_type(err) != "UNKNOWN_FIELD_NAME":
                raise
            self._create_missing({name for r in batch for name in r["fields"]}, force=True)
            self.remote.upsert(batch, self.key)
        self.writes_done += 1

    def _upsert_records(self, plan: Plan, records: list[dict]) -> list[dict]:
        """Write payloads: existing records by id (changed fields only), new ones by key."""
        fields_of: dict[str, dict] = {}
        for update in plan.updates:
            fields_of.setdefault(update.row_id, {}).update(
                {c: update.values.get(c) for c in update.columns})
        for row_id in plan.marks:
            fields_of.setdefault(row_id, {})[STATUS_COLUMN] = STATUS_REMOVED
        for row_id in plan.unmarks:
            fields_of.setdefault(row_id, {})[STATUS_COLUMN] = None
        order = {r["id"]: i for i, r in enumerate(records)}
        payload = [{"id": rid, "fields": fields_of[rid]} for rid in sorted(fields_of, key=order.__getitem__)]
        for row in plan.inserts:
            fields = {k: v for k, v in row.values.items() if v is not None}
            fields.update(zip(self.key, row.key))  # merge fields: a re-run finds what it created
            payload.append({"fields": fields})
        return payload

    def _ensure_fields(self, upserts: list[dict], records: list[dict]) -> None:
        """Create the fields a write needs that no record showed (Airtable omits empty cells,
        so a field seen in a record exists; only unseen ones need the schema)."""
        seen = {name for r in records for name in r.get("fields", {})} | self.known_fields
        needed = {name for r in upserts for name, v in r["fields"].items() if v is not None}
        if needed - seen:
            self._create_missing(needed - seen)

    def _create_missing(self, names: set[str], force: bool = False) -> None:
        if force:
            self.remote.forget_schema()
        existing = self.remote.field_types()
        candidates = self.columns + [_Column(STATUS_COLUMN, "singleLineText", None, _text)]
        for column in candidates:  # in output order, so the table reads like the result
            if column.name in names and column.name not in existing:
                self.remote.create_field(column)
                self.fields_created.append(column.name)


def _stored(value: Any) -> Any:
    """An Airtable cell as the diff compares it: empty cells (absent, "", false, []) are None."""
    return None if _empty(value) else value


def _empty(value: Any) -> bool:
    return value is None or value == "" or value is False or value == [] or value == {}


def _batches(n: int) -> int:
    return -(-n // BATCH_SIZE)


def _chunks(items: list) -> Iterator[list]:
    for i in range(0, len(items), BATCH_SIZE):
        yield items[i:i + BATCH_SIZE]
