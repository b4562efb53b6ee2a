"""A local server that speaks the Airtable Web API over HTTP, with its real rules.

Tests point the real pyairtable client at it (`Api(token, endpoint_url=server.url)`), so
Genesis is exercised through the same requests, batching and pagination as in production:

- records: list (GET, and the POST `listRecords` variant; pageSize <= 100, opaque `offset`,
  `fields[]`, `returnFieldsByFieldId`, `cellFormat=json`), get one, create (<= 10),
  update / replace (PATCH / PUT, <= 10) with `performUpsert.fieldsToMergeOn`, delete (<= 10);
- metadata: base schema, table creation, field creation (typed fields with options);
- Bearer token auth (401), field type validation with Airtable's error JSON, `typecast`;
- 5 requests per second per base: the 6th request inside one second gets a 429 and the
  whole base then answers 429 for the penalty period (30 s at Airtable, configurable here);
- fault injection: the next N requests fail, the k-th write fails (before or after it is
  applied), the k-th write blocks until released, slow responses.

Every request is logged with its arrival time (time.monotonic) so tests can count calls and
check the request rate. Test helpers that play "a person in the UI" (`person_set`,
`person_add`) change state directly: people are not rate limited and not logged.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_RECORDS_PER_WRITE = 10
MAX_PAGE_SIZE = 100
TEXT_TYPES = {"singleLineText", "multilineText", "richText", "email", "url", "phoneNumber"}
NUMBER_TYPES = {"number", "currency", "percent", "rating", "duration"}
COMPUTED_TYPES = {
    "formula", "rollup", "lookup", "multipleLookupValues", "count", "autoNumber",
    "createdTime", "lastModifiedTime", "createdBy", "lastModifiedBy", "button",
}
CREATABLE_TYPES = TEXT_TYPES | NUMBER_TYPES | {
    "checkbox", "date", "dateTime", "singleSelect", "multipleSelects",
}
_ids = itertools.count(1)


def _new_id(prefix: str) -> str:
    return f"{prefix}{next(_ids):014d}"


class ApiError(Exception):
    """An Airtable error answer: HTTP status + `{"error": {"type", "message"}}`."""

    def __init__(self, status: int, type_: str, message: str):
        super().__init__(message)
        self.status, self.type, self.message = status, type_, message

    def body(self) -> dict:
        return {"error": {"type": self.type, "message": self.message}}


# ---------------------------------------------------------------------------------------
# State
# ---------------------------------------------------------------------------------------


@dataclass
class Field:
    id: str
    name: str
    type: str
    options: dict | None = None

    def to_json(self) -> dict:
        out = {"id": self.id, "name": self.name, "type": self.type}
        if self.options is not None:
            out["options"] = self.options
        return out


@dataclass
class Table:
    id: str
    name: str
    fields: list[Field]
    records: dict[str, dict] = field(default_factory=dict)  # id -> {id, createdTime, fields}
    autonumber: int = 0
    description: str | None = None

    def field(self, name_or_id: str) -> Field | None:
        for f in self.fields:
            if name_or_id in (f.name, f.id):
                return f
        return None

    def to_json(self) -> dict:
        out = {
            "id": self.id,
            "name": self.name,
            "primaryFieldId": self.fields[0].id,
            "fields": [f.to_json() for f in self.fields],
            "views": [{"id": "viw" + self.id[3:], "name": "Grid view", "type": "grid"}],
        }
        if self.description:
            out["description"] = self.description
        return out


@dataclass
class LoggedRequest:
    """One request as the server saw it."""

    time: float  # time.monotonic() at arrival
    method: str
    path: str
    base: str | None
    kind: str  # read | write | meta | other
    status: int = 0
    records: int = 0  # records in a write body
    query: dict = field(default_factory=dict)
    body: Any = None
    done: float | None = None  # time.monotonic() when the answer was ready


_DATE_FORMATS = {"iso": "YYYY-MM-DD", "us": "M/D/YYYY", "european": "D/M/YYYY",
                 "friendly": "LL", "local": "l"}
_TIME_FORMATS = {"24hour": "HH:mm", "12hour": "h:mma"}


def _default_options(type_: str, options: dict | None) -> dict | None:
    """Fill the options Airtable itself reports for a field type."""
    options = dict(options or {})
    if type_ in ("number", "percent"):
        options.setdefault("precision", 0)
    elif type_ == "currency":
        options.setdefault("precision", 2)
        options.setdefault("symbol", "$")
    elif type_ == "checkbox":
        options.setdefault("color", "greenBright")
        options.setdefault("icon", "check")
    elif type_ in ("date", "dateTime"):
        date_format = dict(options.get("dateFormat") or {"name": "iso"})
        date_format.setdefault("format", _DATE_FORMATS.get(date_format.get("name"), ""))
        options["dateFormat"] = date_format
        if type_ == "dateTime":
            time_format = dict(options.get("timeFormat") or {"name": "24hour"})
            time_format.setdefault("format", _TIME_FORMATS.get(time_format.get("name"), ""))
            options["timeFormat"] = time_format
            options.setdefault("timeZone", "utc")
    elif type_ in ("singleSelect", "multipleSelects"):
        options.setdefault("choices", [])
    else:
        return options or None
    return options


def _validate_options(type_: str, options: dict) -> None:
    if type_ in ("number", "percent", "currency"):
        precision = options.get("precision")
        if not isinstance(precision, int) or not 0 <= precision <= 8:
            raise ApiError(422, "INVALID_FIELD_TYPE_OPTIONS", f"precision must be 0..8 for {type_}")
    if type_ == "currency" and not isinstance(options.get("symbol"), str):
        raise ApiError(422, "INVALID_FIELD_TYPE_OPTIONS", "currency needs a symbol")
    if type_ in ("date", "dateTime"):
        name = (options.get("dateFormat") or {}).get("name")
        if name not in ("local", "friendly", "us", "european", "iso"):
            raise ApiError(422, "INVALID_FIELD_TYPE_OPTIONS", f"unknown dateFormat {name!r}")


# ---------------------------------------------------------------------------------------
# Cell values
# ---------------------------------------------------------------------------------------

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _parse_iso(text: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _bad_value(f: Field, value: Any) -> ApiError:
    return ApiError(
        422,
        "INVALID_VALUE_FOR_COLUMN",
        f'Field "{f.name}" cannot accept the provided value: {json.dumps(value)[:80]}',
    )


def _typecast(f: Field, value: Any) -> Any:
    """Airtable's best-effort conversion, applied only when the request says typecast."""
    if f.type in NUMBER_TYPES and isinstance(value, str):
        try:
            number = float(value.replace(",", "").strip())
        except ValueError:
            return None  # Airtable drops what it cannot convert
        return int(number) if number.is_integer() else number
    if f.type in TEXT_TYPES and isinstance(value, (int, float, bool)):
        return str(value)
    if f.type == "checkbox" and isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "1", "checked", "x")
    if f.type == "singleSelect" and isinstance(value, str):
        choices = f.options.setdefault("choices", [])
        if value and value not in [c["name"] for c in choices]:
            choices.append({"id": _new_id("sel"), "name": value})
    return value


def _coerce(f: Field, value: Any, typecast: bool) -> Any:
    """The stored form of `value` for field `f`, or an ApiError as Airtable answers."""
    if f.type in COMPUTED_TYPES:
        raise ApiError(
            422, "INVALID_VALUE_FOR_COLUMN",
            f'Field "{f.name}" cannot accept a value because the field is computed',
        )
    if value is None:
        return None
    if typecast:
        value = _typecast(f, value)
        if value is None:
            return None
    if f.type in TEXT_TYPES:
        if not isinstance(value, str):
            raise _bad_value(f, value)
        return value
    if f.type in NUMBER_TYPES:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _bad_value(f, value)
        return value
    if f.type == "checkbox":
        if not isinstance(value, bool):
            raise _bad_value(f, value)
        return value
    if f.type == "date":
        if not isinstance(value, str):
            raise _bad_value(f, value)
        if _DATE.match(value):
            try:
                return date.fromisoformat(value).isoformat()
            except ValueError:
                raise _bad_value(f, value) from None
        parsed = _parse_iso(value)
        if parsed is None:
            raise _bad_value(f, value)
        return parsed.date().isoformat()
    if f.type == "dateTime":
        parsed = _parse_iso(value) if isinstance(value, str) else None
        if parsed is None:
            raise _bad_value(f, value)
        utc = parsed.astimezone(UTC)
        return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
    if f.type == "singleSelect":
        names = [c["name"] for c in (f.options or {}).get("choices", [])]
        if not isinstance(value, str) or value not in names:
            raise ApiError(
                422, "INVALID_MULTIPLE_CHOICE_OPTIONS",
                f'Insufficient permissions to create new select option "{value}"',
            )
        return value
    if f.type == "multipleSelects":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise _bad_value(f, value)
        return value
    return value


def _is_empty(value: Any) -> bool:
    # Airtable does not return empty cells: no key for "", null, false or [].
    return value is None or value == "" or value is False or value == []


# ---------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------


class AirtableServer:
    """An in-memory Airtable on 127.0.0.1 (port 0), serving from a background thread."""

    def __init__(
        self,
        token: str = "pat-test-token",
        *,
        requests_per_second: float = 5,
        penalty_seconds: float = 0.5,
        rate_window: float = 1.0,
        enforce_rate_limit: bool = True,
    ):
        self.token = token
        self.requests_per_second = requests_per_second
        self.penalty_seconds = penalty_seconds
        self.rate_window = rate_window
        self.enforce_rate_limit = enforce_rate_limit
        self.log: list[LoggedRequest] = []
        self.bases: dict[str, dict[str, Table]] = {}
        self._lock = threading.RLock()
        self._accepted: dict[str, list[float]] = {}  # base -> arrival times in the window
        self._penalty_until: dict[str, float] = {}
        self._iterators: dict[str, list[str]] = {}
        self._fail_next: list[int] = []  # statuses for the next requests
        self._write_faults: dict[int, tuple[int, bool]] = {}  # k-th write -> (status, after)
        self._blocks: dict[int, _Block] = {}
        self._writes_seen = 0
        self.delay_seconds = 0.0
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> AirtableServer:
        handler = type("Handler", (_Handler,), {"app": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        for block in list(self._blocks.values()):
            block.release(apply=False)
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> AirtableServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- test set-up and inspection -------------------------------------------------------

    def add_table(self, base_id: str, name: str, fields: list[dict] | None = None) -> str:
        """Create a table (first field = primary); returns its id."""
        with self._lock:
            table = self._create_table(base_id, {"name": name, "fields": fields or [
                {"name": "Name", "type": "singleLineText"}]})
            return table.id

    def table(self, base_id: str, name_or_id: str) -> Table:
        with self._lock:
            return self._table(base_id, name_or_id)

    def records(self, base_id: str, table: str) -> list[dict]:
        """All records, as the API would return them (copies)."""
        with self._lock:
            t = self._table(base_id, table)
            return [
                {k: json.loads(json.dumps(v)) for k, v in r.items() if not k.startswith("_")}
                for r in t.records.values()
            ]

    def rows(self, base_id: str, table: str) -> list[dict]:
        """Just the field dicts of every record."""
        return [r["fields"] for r in self.records(base_id, table)]

    def field_types(self, base_id: str, table: str) -> dict[str, str]:
        with self._lock:
            return {f.name: f.type for f in self._table(base_id, table).fields}

    def field_options(self, base_id: str, table: str, name: str) -> dict | None:
        with self._lock:
            return self._table(base_id, table).field(name).options

    def person_set(self, base_id: str, table: str, record_id: str, name: str, value: Any) -> None:
        """A person edits one cell in the UI (creating the field as text if it is new)."""
        with self._lock:
            t = self._table(base_id, table)
            if t.field(name) is None:
                t.fields.append(Field(_new_id("fld"), name, "multilineText"))
            self._write_cell(t, t.records[record_id], name, value, typecast=True)

    def person_add(self, base_id: str, table: str, fields: dict) -> str:
        """A person adds a record in the UI."""
        with self._lock:
            t = self._table(base_id, table)
            return self._insert(t, fields, typecast=True)["id"]

    def person_comment(self, base_id: str, table: str, record_id: str, text: str) -> None:
        """A person leaves a comment on a record (a note that lives outside any field)."""
        with self._lock:
            self._table(base_id, table).records[record_id].setdefault("_comments", []).append(text)

    def person_delete(self, base_id: str, table: str, record_id: str) -> None:
        with self._lock:
            del self._table(base_id, table).records[record_id]

    def reset_log(self) -> None:
        with self._lock:
            self.log.clear()

    def calls(self, kind: str | None = None, status: int | None = 200) -> list[LoggedRequest]:
        """Logged requests of one kind (read/write/meta), by default only the successful."""
        with self._lock:
            return [
                r for r in self.log
                if (kind is None or r.kind == kind) and (status is None or r.status == status)
            ]

    # -- fault injection ------------------------------------------------------------------

    def fail_next(self, n: int, status: int = 503) -> None:
        """The next n requests (any kind) answer `status`."""
        with self._lock:
            self._fail_next.extend([status] * n)

    def fail_write(self, k: int, status: int = 503, after_apply: bool = False) -> None:
        """The k-th write from now answers `status`; after_apply: the change is kept anyway."""
        with self._lock:
            self._write_faults[self._writes_seen + k] = (status, after_apply)

    def block_write(self, k: int) -> _Block:
        """The k-th write from now waits until `release()` (e.g. while a test kills the client)."""
        with self._lock:
            block = _Block()
            self._blocks[self._writes_seen + k] = block
            return block

    # -- request handling ------------------------------------------------------------------

    def handle(self, method: str, raw_path: str, headers: Any, body: bytes) -> tuple[int, Any]:
        parsed = urllib.parse.urlsplit(raw_path)
        segments = [urllib.parse.unquote(s) for s in parsed.path.strip("/").split("/")]
        query = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
        base, kind = _classify(method, segments)
        entry = LoggedRequest(time.monotonic(), method, parsed.path, base, kind, query=query)
        try:
            payload = json.loads(body) if body else None
        except ValueError:
            payload = None
        entry.body = payload
        if kind == "write" and isinstance(payload, dict):
            entry.records = len(payload.get("records") or []) or (1 if "fields" in payload else 0)
        if kind == "write" and method == "DELETE":
            entry.records = len(query.get("records[]", [])) or 1
        status, answer, block = self._admit(entry, headers)
        if block is not None:
            apply = block.wait()
            if not apply:
                return self._finish(entry, 503, {"error": {"type": "SERVICE_UNAVAILABLE",
                                                           "message": "dropped"}})
        if status is not None:
            return self._finish(entry, status, answer)
        if self.delay_seconds:
            time.sleep(self.delay_seconds)
        with self._lock:
            try:
                answer = self._route(method, segments, query, payload)
                status = 200
            except ApiError as err:
                status, answer = err.status, err.body()
            fault = self._write_faults.pop(self._write_number(entry), None)
        if fault and status == 200:
            status = fault[0]
            answer = {"error": {"type": "SERVICE_UNAVAILABLE", "message": "injected"}}
        return self._finish(entry, status, answer)

    def _finish(self, entry: LoggedRequest, status: int, answer: Any) -> tuple[int, Any]:
        entry.status, entry.done = status, time.monotonic()
        return status, answer

    def _write_number(self, entry: LoggedRequest) -> int:
        return getattr(entry, "_write_no", -1)

    def _admit(self, entry: LoggedRequest, headers: Any):
        """Log the request; decide auth, rate limit and injected faults before any change."""
        with self._lock:
            self.log.append(entry)
            if headers.get("Authorization") != f"Bearer {self.token}":
                return 401, _err("AUTHENTICATION_REQUIRED", "Authentication required"), None
            if entry.base and self._rate_limited(entry.base, entry.time):
                return 429, _err("RATE_LIMIT_REACHED", "Rate limit exceeded. Please try again later"), None
            if self._fail_next:
                status = self._fail_next.pop(0)
                return status, _err("SERVICE_UNAVAILABLE", "injected failure"), None
            if entry.kind != "write":
                return None, None, None
            self._writes_seen += 1
            entry._write_no = self._writes_seen  # type: ignore[attr-defined]
            fault = self._write_faults.get(self._writes_seen)
            if fault and not fault[1]:
                del self._write_faults[self._writes_seen]
                return fault[0], _err("SERVICE_UNAVAILABLE", "injected write failure"), None
            return None, None, self._blocks.pop(self._writes_seen, None)

    def _rate_limited(self, base: str, now: float) -> bool:
        if not self.enforce_rate_limit:
            return False
        if now < self._penalty_until.get(base, 0.0):
            return True
        window = [t for t in self._accepted.get(base, []) if t > now - self.rate_window]
        if len(window) >= self.requests_per_second * self.rate_window:
            self._penalty_until[base] = now + self.penalty_seconds
            self._accepted[base] = window
            return True
        window.append(now)
        self._accepted[base] = window
        return False

    def _route(self, method: str, seg: list[str], query: dict, payload: Any) -> Any:
        if seg[:1] != ["v0"]:
            raise ApiError(404, "NOT_FOUND", "Could not find what you are looking for")
        if seg[1:3] == ["meta", "bases"] and len(seg) >= 5 and seg[4] == "tables":
            return self._route_meta(method, seg[3], seg[5:], payload)
        if len(seg) == 3:
            return self._route_records(method, seg[1], seg[2], query, payload)
        if len(seg) == 4 and seg[3] == "listRecords" and method == "POST":
            return self._list(self._table(seg[1], seg[2]), payload or {})
        if len(seg) == 4:
            return self._route_record(method, seg[1], seg[2], seg[3], payload)
        raise ApiError(404, "NOT_FOUND", "Could not find what you are looking for")

    def _route_meta(self, method: str, base: str, rest: list[str], payload: Any) -> Any:
        if not rest and method == "GET":
            if base not in self.bases:
                raise ApiError(404, "NOT_FOUND", "Could not find base")
            return {"tables": [t.to_json() for t in self.bases[base].values()]}
        if not rest and method == "POST":
            return self._create_table(base, payload or {}).to_json()
        if len(rest) == 1 and method == "PATCH":  # update table: its description
            return self._update_table(self._table(base, rest[0]), payload or {})
        if len(rest) == 2 and rest[1] == "fields" and method == "POST":
            return self._create_field(self._table(base, rest[0]), payload or {}).to_json()
        raise ApiError(404, "NOT_FOUND", "Could not find what you are looking for")

    def _route_records(self, method: str, base: str, table: str, query: dict, payload: Any) -> Any:
        t = self._table(base, table)
        if method == "GET":
            return self._list(t, _query_options(query))
        if method == "POST":
            return self._create(t, payload or {})
        if method in ("PATCH", "PUT"):
            return self._update_many(t, payload or {}, replace=method == "PUT")
        if method == "DELETE":
            return self._delete(t, query.get("records[]", []))
        raise ApiError(404, "NOT_FOUND", "Could not find what you are looking for")

    def _route_record(self, method: str, base: str, table: str, record_id: str, payload: Any) -> Any:
        t = self._table(base, table)
        record = t.records.get(record_id)
        if record is None:
            raise ApiError(404, "MODEL_ID_NOT_FOUND", f"Could not find record {record_id}")
        if method == "GET":
            return self._render(t, record, False)
        if method in ("PATCH", "PUT"):
            payload = payload or {}
            self._apply(t, record, payload.get("fields") or {}, bool(payload.get("typecast")),
                        replace=method == "PUT")
            return self._render(t, record, bool(payload.get("returnFieldsByFieldId")))
        if method == "DELETE":
            del t.records[record_id]
            return {"id": record_id, "deleted": True}
        raise ApiError(404, "NOT_FOUND", "Could not find what you are looking for")

    # -- schema ---------------------------------------------------------------------------

    def _table(self, base: str, name_or_id: str) -> Table:
        tables = self.bases.get(base)
        if tables is None:
            raise ApiError(404, "NOT_FOUND", "Could not find base")
        for t in tables.values():
            if name_or_id in (t.id, t.name):
                return t
        raise ApiError(404, "TABLE_NOT_FOUND", f"Could not find table {name_or_id} in base")

    def _create_table(self, base: str, spec: dict) -> Table:
        name = spec.get("name")
        fields = spec.get("fields") or []
        if not name or not fields:
            raise ApiError(422, "INVALID_REQUEST_UNKNOWN", "a table needs a name and fields")
        tables = self.bases.setdefault(base, {})
        if any(t.name == name for t in tables.values()):
            raise ApiError(422, "DUPLICATE_TABLE_NAME", f"table {name!r} exists")
        table = Table(_new_id("tbl"), name, [])
        for f in fields:
            self._create_field(table, f)
        tables[table.id] = table
        return table

    def _update_table(self, table: Table, spec: dict) -> dict:
        description = spec.get("description", table.description)
        if description is not None and (not isinstance(description, str) or len(description) > 20_000):
            raise ApiError(422, "INVALID_REQUEST_UNKNOWN", "description must be a string of at most 20000 characters")
        if "name" in spec and spec["name"] != table.name:
            raise ApiError(422, "INVALID_REQUEST_UNKNOWN", "this test server does not rename tables")
        table.description = description or None
        return table.to_json()

    def _create_field(self, table: Table, spec: dict) -> Field:
        name, type_ = spec.get("name"), spec.get("type")
        if not name or table.field(name) is not None:
            raise ApiError(422, "DUPLICATE_OR_EMPTY_FIELD_NAME", f"field name {name!r} is empty or taken")
        if type_ not in CREATABLE_TYPES | {"autoNumber", "createdTime"}:
            raise ApiError(422, "INVALID_FIELD_TYPE", f"cannot create a field of type {type_!r}")
        options = _default_options(type_, spec.get("options"))
        if options:
            _validate_options(type_, options)
        new = Field(_new_id("fld"), name, type_, options)
        table.fields.append(new)
        return new

    # -- records --------------------------------------------------------------------------

    def _list(self, t: Table, options: dict) -> dict:
        page_size = int(options.get("pageSize") or MAX_PAGE_SIZE)
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ApiError(422, "INVALID_PAGE_SIZE", "pageSize must be between 1 and 100")
        if options.get("cellFormat", "json") != "json":
            raise ApiError(422, "INVALID_REQUEST_UNKNOWN", "only cellFormat=json is served here")
        if options.get("filterByFormula") or options.get("sort") or options.get("view"):
            raise ApiError(422, "INVALID_REQUEST_UNKNOWN", "filters, sorts and views are not served here")
        offset = options.get("offset")
        if offset:
            remaining = self._iterators.pop(offset, None)
            if remaining is None:
                raise ApiError(422, "LIST_RECORDS_ITERATOR_NOT_AVAILABLE", "offset is not valid")
        else:
            remaining = list(t.records)
        max_records = int(options.get("maxRecords") or 0)
        if max_records and not offset:
            remaining = remaining[:max_records]
        page_ids, rest = remaining[:page_size], remaining[page_size:]
        by_id = _truthy(options.get("returnFieldsByFieldId"))
        wanted = options.get("fields")
        records = [
            self._render(t, t.records[rid], by_id, wanted) for rid in page_ids if rid in t.records
        ]
        if "commentCount" in (options.get("recordMetadata") or []):
            for out in records:
                out["commentCount"] = len(t.records[out["id"]].get("_comments", []))
        answer: dict[str, Any] = {"records": records}
        if rest:
            token = f"itr{_new_id('')}/{page_ids[-1]}"
            self._iterators[token] = rest
            answer["offset"] = token
        return answer

    def _render(self, t: Table, record: dict, by_id: bool, wanted: list | None = None) -> dict:
        fields = {}
        for name, value in record["fields"].items():
            f = t.field(name)
            if f is None or (wanted and name not in wanted and f.id not in wanted):
                continue
            fields[f.id if by_id else f.name] = value
        return {"id": record["id"], "createdTime": record["createdTime"], "fields": fields}

    def _create(self, t: Table, payload: dict) -> dict:
        typecast = bool(payload.get("typecast"))
        by_id = bool(payload.get("returnFieldsByFieldId"))
        if "records" not in payload:
            return self._render(t, self._insert(t, payload.get("fields") or {}, typecast), by_id)
        records = _check_batch(payload.get("records"))
        self._validate_all(t, [r.get("fields") or {} for r in records], typecast)
        created = [self._insert(t, r.get("fields") or {}, typecast) for r in records]
        return {"records": [self._render(t, r, by_id) for r in created]}

    def _update_many(self, t: Table, payload: dict, replace: bool) -> dict:
        records = _check_batch(payload.get("records"))
        typecast = bool(payload.get("typecast"))
        by_id = bool(payload.get("returnFieldsByFieldId"))
        upsert = payload.get("performUpsert")
        self._validate_all(t, [r.get("fields") or {} for r in records], typecast)
        targets = self._upsert_targets(t, records, upsert, typecast) if upsert else [
            self._by_id(t, r) for r in records
        ]
        created, updated, out = [], [], []
        for spec, target in zip(records, targets):
            fields = spec.get("fields") or {}
            if target is None:
                record = self._insert(t, fields, typecast)
                created.append(record["id"])
            else:
                record = target
                self._apply(t, record, fields, typecast, replace)
                updated.append(record["id"])
            out.append(self._render(t, record, by_id))
        answer: dict[str, Any] = {"records": out}
        if upsert:
            answer.update(createdRecords=created, updatedRecords=updated)
        return answer

    def _by_id(self, t: Table, spec: dict) -> dict:
        rid = spec.get("id")
        if not rid:
            raise ApiError(422, "INVALID_RECORDS", "every record needs an id unless performUpsert is set")
        if rid not in t.records:
            raise ApiError(404, "MODEL_ID_NOT_FOUND", f"Could not find record {rid}")
        return t.records[rid]

    def _upsert_targets(self, t: Table, records: list, upsert: Any, typecast: bool) -> list:
        """The existing record each upserted record updates (None: create), as Airtable matches."""
        merge_on = upsert.get("fieldsToMergeOn") if isinstance(upsert, dict) else None
        if not isinstance(merge_on, list) or not 1 <= len(merge_on) <= 3:
            raise ApiError(422, "INVALID_REQUEST_UNKNOWN", "fieldsToMergeOn needs 1 to 3 fields")
        merge_fields = []
        for name in merge_on:
            f = t.field(name)
            if f is None:
                raise ApiError(422, "UNKNOWN_FIELD_NAME", f'Unknown field name: "{name}"')
            if f.type in COMPUTED_TYPES:
                raise ApiError(422, "INVALID_MERGE_FIELD", f'"{name}" cannot be used to merge on')
            merge_fields.append(f)
        targets, seen = [], set()
        for spec in records:
            if spec.get("id"):
                targets.append(self._by_id(t, spec))
                continue
            fields = spec.get("fields") or {}
            missing = [f.name for f in merge_fields if f.name not in fields and f.id not in fields]
            if missing:
                raise ApiError(422, "INVALID_RECORDS", f"record is missing merge fields {missing}")
            key = tuple(
                _key(_coerce(f, fields.get(f.name, fields.get(f.id)), typecast)) for f in merge_fields
            )
            if key in seen:
                raise ApiError(422, "INVALID_RECORDS", f"two records in the request merge on {key}")
            seen.add(key)
            matches = [
                r for r in t.records.values()
                if tuple(_key(r["fields"].get(f.name)) for f in merge_fields) == key
            ]
            if len(matches) > 1:
                raise ApiError(
                    422, "INVALID_VALUE_FOR_COLUMN",
                    f"{len(matches)} records match {dict(zip(merge_on, key))}; upsert needs at most one",
                )
            targets.append(matches[0] if matches else None)
        return targets

    def _delete(self, t: Table, ids: list[str]) -> dict:
        if not ids or len(ids) > MAX_RECORDS_PER_WRITE:
            raise ApiError(422, "INVALID_RECORDS", "delete takes 1 to 10 records")
        unknown = [rid for rid in ids if rid not in t.records]
        if unknown:
            raise ApiError(404, "MODEL_ID_NOT_FOUND", f"Could not find records {unknown}")
        for rid in ids:
            del t.records[rid]
        return {"records": [{"id": rid, "deleted": True} for rid in ids]}

    def _validate_all(self, t: Table, field_dicts: list[dict], typecast: bool) -> None:
        # A batch is atomic: check every value before changing anything.
        for fields in field_dicts:
            if not isinstance(fields, dict):
                raise ApiError(422, "INVALID_RECORDS", "fields must be an object")
            for name, value in fields.items():
                f = t.field(name)
                if f is None:
                    raise ApiError(422, "UNKNOWN_FIELD_NAME", f'Unknown field name: "{name}"')
                if f.type == "singleSelect" and typecast:
                    continue
                _coerce(f, value, typecast)

    def _insert(self, t: Table, fields: dict, typecast: bool) -> dict:
        record = {
            "id": _new_id("rec"),
            "createdTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "fields": {},
        }
        t.autonumber += 1
        for f in t.fields:
            if f.type == "autoNumber":
                record["fields"][f.name] = t.autonumber
            elif f.type == "createdTime":
                record["fields"][f.name] = record["createdTime"]
        self._apply(t, record, fields, typecast)
        t.records[record["id"]] = record
        return record

    def _apply(self, t: Table, record: dict, fields: dict, typecast: bool, replace: bool = False) -> None:
        if replace:
            for f in t.fields:
                if f.type not in COMPUTED_TYPES and f.name not in fields and f.id not in fields:
                    record["fields"].pop(f.name, None)
        for name, value in fields.items():
            self._write_cell(t, record, name, value, typecast)

    def _write_cell(self, t: Table, record: dict, name: str, value: Any, typecast: bool) -> None:
        f = t.field(name)
        if f is None:
            raise ApiError(422, "UNKNOWN_FIELD_NAME", f'Unknown field name: "{name}"')
        stored = _coerce(f, value, typecast)
        if _is_empty(stored):
            record["fields"].pop(f.name, None)
        else:
            record["fields"][f.name] = stored


class _Block:
    """A write held by the server until the test releases it."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self._released = threading.Event()
        self._apply = False

    def wait(self) -> bool:
        self.arrived.set()
        self._released.wait(timeout=60)
        return self._apply

    def release(self, apply: bool = False) -> None:
        self._apply = apply
        self._released.set()


def _err(type_: str, message: str) -> dict:
    return {"error": {"type": type_, "message": message}}


def _truthy(value: Any) -> bool:
    return str(value).lower() in ("1", "true")


def _key(value: Any) -> Any:
    # Merge matching compares values, numbers by value (1 == 1.0).
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _check_batch(records: Any) -> list:
    if not isinstance(records, list) or not records:
        raise ApiError(422, "INVALID_RECORDS", "records must be a non-empty array")
    if len(records) > MAX_RECORDS_PER_WRITE:
        raise ApiError(
            422, "INVALID_RECORDS",
            f"You can write at most {MAX_RECORDS_PER_WRITE} records per request, got {len(records)}",
        )
    return records


def _query_options(query: dict) -> dict:
    """GET list parameters in the shape the POST listRecords body has."""
    options: dict[str, Any] = {k: v[-1] for k, v in query.items() if not k.endswith("[]")}
    if "fields[]" in query:
        options["fields"] = query["fields[]"]
    if "recordMetadata[]" in query:
        options["recordMetadata"] = query["recordMetadata[]"]
    if any(k.startswith("sort[") for k in query):
        options["sort"] = True
    return options


def _classify(method: str, seg: list[str]) -> tuple[str | None, str]:
    """(base id, kind) of a request path: kind is read, write or meta."""
    if seg[:1] != ["v0"] or len(seg) < 2:
        return None, "other"
    if seg[1] == "meta":
        base = seg[3] if len(seg) > 3 and seg[2] == "bases" else None
        return base, "meta"
    if len(seg) == 4 and seg[3] == "listRecords":
        return seg[1], "read"
    return seg[1], "read" if method == "GET" else "write"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = 1 << 16  # headers and body leave in one segment: no delayed-ACK stalls
    disable_nagle_algorithm = True
    app: AirtableServer

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, answer = self.app.handle(self.command, self.path, self.headers, body)
        data = json.dumps(answer).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away (a test killed it)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass
