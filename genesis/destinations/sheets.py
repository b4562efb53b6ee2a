"""Google Sheets destination: a keyed, typed, minimal-call refresh of one tab.

A refresh reads the tab once (one `spreadsheets.get` of the tab's grid: header, owned
block, keys, notes, number formats), diffs it with `sync.plan_sync`, and writes only what
changed in one atomic `spreadsheets.batchUpdate` (split into bodies of at most
`MAX_REQUEST_BYTES`, filled to the brim, when it does not fit). An unchanged result makes
no write call. The first refresh of a missing tab adds one metadata read (to pick a sheet
id and count the other tabs' cells) and creates the tab in the same batchUpdate.

Writes, in order: grid growth (addSheet / appendDimension), the header cells of new owned
columns (bold; the header row is frozen), updateCells for changed owned cells (adjacent
cells and rows merged into one request), new rows written below the last used row in
result order (their number formats as one repeatCell per column), deleteDimension of
removed rows bottom-up (so earlier indices stay valid), and the stamp.

Ownership. Row 1 is the header. Genesis owns the columns whose header is an output column
name (found wherever a person moved them; missing ones are appended right of everything
used) and the status column `Genesis status`, created the first time a row is marked.
Every other column, each cell's colours and fonts, and every note belong to people. A row
is *annotated* when a column Genesis does not own holds a value in it, or any of its
cells carries a note; annotated rows are never deleted (see sync.py for `on_removed`).
Rows whose key cells are empty are people's rows and are left alone (mode `replace`
deletes blank ones inside the block). Writes go through field masks, so only the owned
cells' values (and, for columns with a `format`, their number format) are touched.

Typed values. Numbers as numbers (integers of 1e15 or more as text: a sheet would round
them), dates and timestamps as serial numbers (timestamps with a time zone in UTC) with a
DATE / DATE_TIME number format from `formatting.spreadsheet_number_format`, booleans as
booleans, text always as `stringValue`: leading zeros kept, and `=1+1`, `+1`, `-x`, `@x`
stay text (never a formula). Arrays, links and booleans with a `bool` format are written
as their text. The number format of an owned column with a `format` is Genesis's: a
person's change to it is put back on the next refresh that writes the row.

Stamp. The last refresh that wrote anything leaves a note on the header cell of the first
key column: "Refreshed by Genesis at <UTC time> ...". It is in the frozen header, so a
sort never moves it. An unchanged refresh writes nothing, unless `touch_before` is
given and the stamp is older: then it rewrites the stamp alone (one small write), so the
stamp tells when the tracker was last refreshed successfully -- what `refresh --due`
reads to catch up on missed schedules (see genesis/scheduler.py).

Concurrent writers. Every write batchUpdate opens with a compare-and-swap on the tab's
lease in developer metadata (see sheets_lease): a write planned on a read that another
refresh has since changed is rejected whole, and the tab is read again and re-planned.

Faults. 429 and 5xx are retried with jittered exponential backoff (Retry-After honoured)
until `deadline_seconds` (which also bounds every request's timeout; the target setting
`google_sheets.deadline_seconds`); an unreachable endpoint fails at once; other 4xx fail at
once with a message that names the service account to share the spreadsheet with. A
write whose outcome is unknown (5xx, lost connection) is never re-sent blind: the tab is
read again and re-planned, so a re-run converges to the state of an uninterrupted run
(each batchUpdate is atomic and the diff is keyed). Writes are paced per service account
to `RetryPolicy.writes_per_minute` and reads to `reads_per_minute`, process-wide (every
thread of a concurrent refresh shares one budget per service account). Secrets (the private key, access tokens) are never
put in messages or logs. With an overridden endpoint, google-auth's background
"regional access boundary" lookup at Google's IAM host is turned off (it would bypass
the proxy).

Known limits. Writes address rows by index, as the Sheets API requires: the lease fences
other refreshes, not people, so a person who sorts the tab in the seconds between the read
and the write can see a refresh land on the wrong rows (the next refresh repairs owned
cells, not a moved note). A write that
times out on the client but is still applied by Google later can, when it deleted rows,
delete again after the re-plan; Google gives no conditional writes to rule this out.
"""

from __future__ import annotations

import json
import logging
import random
import re
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Mapping, Sequence

import pyarrow as pa
import requests
from gspread.exceptions import APIError
from gspread.http_client import HTTPClient
from gspread.urls import SPREADSHEET_BATCH_UPDATE_URL
from gspread.utils import absolute_range_name, rowcol_to_a1

from ..clock import now as clock_now
from ..clock import parse_stamp_time, stamp_text
from ..errors import GenesisError, did_you_mean, register_secret
from ..formatting import format_value, spreadsheet_number_format
from ..result import OutputColumn, QueryResult
from ..types import is_array
from . import sheets_lease as lease
from .retry import DEFAULT_DEADLINE_SECONDS, Backoff, Deadline, unreachable, unreachable_error
from .sync import (
    STATUS_COLUMN,
    STATUS_REMOVED,
    Bool,
    ExistingRow,
    Plan,
    ResultRow,
    check_policy,
    normalize,
    plan_sync,
)

log = logging.getLogger(__name__)

GOOGLE_ENDPOINT = "https://sheets.googleapis.com"
SCOPES = ("https://www.googleapis.com/auth/spreadsheets",)
MAX_REQUEST_BYTES = 2_000_000  # Google's recommended maximum payload of one request
MAX_CELLS = 10_000_000  # per spreadsheet
MAX_COLUMNS = 18_278  # per sheet
MAX_CELL_CHARS = 50_000
MAX_CONFLICTS = 20  # re-plans after another writer's change before giving up
NEW_TAB_COLUMNS = 26  # a new tab gets at least these, like one made in the Sheets UI
READ_FIELDS = (f"{lease.METADATA_FIELDS},sheets(properties(sheetId,title,gridProperties),"
               "data(rowData(values(userEnteredValue,userEnteredFormat/numberFormat,note))))")
MASK_VALUE = "userEnteredValue"
MASK_FORMATTED = "userEnteredValue,userEnteredFormat.numberFormat"  # only where the format changes
_ENVELOPE = b'{"requests":[', b"]}"


@dataclass
class RetryPolicy:
    """Backoff (the shared `retry.Backoff`) and pacing; tests shorten every interval."""

    base_seconds: float = 1.0
    max_seconds: float = 32.0
    writes_per_minute: int = 60  # Sheets' per-user write quota
    reads_per_minute: int = 60  # Sheets' per-user read quota
    window_seconds: float = 61.0  # a minute, plus a second for clock and network skew
    request_timeout: float = 120.0

    @property
    def backoff(self) -> Backoff:
        return Backoff(self.base_seconds, self.max_seconds)


@dataclass
class SheetSyncReport:
    spreadsheet_id: str
    worksheet: str
    mode: str
    on_removed: str
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    marked: int = 0
    unmarked: int = 0
    unchanged: int = 0
    kept: int = 0
    rows: int = 0
    read_calls: int = 0
    write_calls: int = 0
    retries: int = 0
    payload_bytes: int = 0
    seconds: float = 0.0
    dry_run: bool = False
    created_tab: bool = False
    stamp_only: bool = False  # the data was unchanged; only the stamp was rewritten
    cells_written: int = 0  # owned cells the plan writes (inserted rows' cells, changed cells, status)
    plan: Plan | None = field(default=None, repr=False)  # for `genesis audit`
    existing: list = field(default_factory=list, repr=False)  # the rows read, as the diff saw them
    conflicts: int = 0  # writes rejected because another writer changed the tab first; re-planned
    waited_seconds: float = 0.0  # waiting for another refresh that held the tab


POLICY = RetryPolicy()  # the pacing when a caller passes none; tests and the bench swap it
STAMP_RE = re.compile(r"Refreshed by Genesis at (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC")


def stamp_of_note(note: str | None) -> datetime | None:
    """The time in a Genesis stamp note, or None when the note is not one."""
    match = STAMP_RE.search(note or "")
    return parse_stamp_time(match.group(1)) if match else None


def sync_google_sheet(
    result: QueryResult,
    *,
    spreadsheet_id: str,
    worksheet: str,
    key: Sequence[str],
    mode: str = "upsert",
    on_removed: str | None = "delete",
    credentials_file: str,
    endpoint: str = GOOGLE_ENDPOINT,
    deadline_seconds: float = DEFAULT_DEADLINE_SECONDS,
    dry_run: bool = False,
    max_request_bytes: int = MAX_REQUEST_BYTES,
    retry: RetryPolicy | None = None,
    touch_before: datetime | None = None,
) -> SheetSyncReport:
    """Make tab `worksheet` of `spreadsheet_id` hold `result` (see the module docstring)."""
    started = time.monotonic()
    mode, policy = check_policy(mode, on_removed)
    columns = _columns(result, key)
    _check_shape(result, worksheet, key)  # before any value is converted or any call made
    rows = _result_rows(result, columns, key)
    creds, email = load_credentials(credentials_file, endpoint)
    report = SheetSyncReport(spreadsheet_id, worksheet, mode, policy, rows=len(rows), dry_run=dry_run)
    retry = retry or POLICY
    api = _Api(_client(creds, endpoint, retry), spreadsheet_id, worksheet, email,
               Deadline(deadline_seconds, "google_sheets.deadline_seconds"), retry, report)
    job = _Job(api, columns, list(key), rows, mode, policy, max_request_bytes, dry_run, touch_before)
    first_plan: Plan | None = None
    attempt = waits = 0
    while True:
        try:
            plan = job.run()
            first_plan = first_plan or plan
            break
        except _Ambiguous as err:  # a write may or may not have landed: read again, re-plan
            first_plan = first_plan or err.plan
            api.backoff(attempt, err.error)
            attempt += 1
        except _Conflict:  # another writer changed the tab first: nothing of ours landed
            first_plan = None  # what counts is the plan that is finally written
            report.conflicts += 1
            if report.conflicts > MAX_CONFLICTS:
                raise GenesisError(
                    f"tab '{worksheet}' kept changing while Genesis wrote it ({report.conflicts} writes "
                    "rejected because other refreshes wrote first)",
                    hint="several refreshes of this tab are running at once; nothing more was written") from None
            time.sleep(random.uniform(0, retry.base_seconds))  # writers that collided do not collide again
        except _Busy as err:
            api.wait_for_holder(err.holder, waits)
            waits += 1
    _count(report, first_plan)
    report.plan, report.existing = first_plan, job.existing
    report.seconds = round(time.monotonic() - started, 3)
    log.info("sheets %s/%s: %s", spreadsheet_id, worksheet,
             {k: v for k, v in vars(report).items() if isinstance(v, (int, float))})
    return report


def _count(report: SheetSyncReport, plan: Plan) -> None:
    for name, value in plan.counts().items():
        setattr(report, name, value)
    report.cells_written = (sum(len(r.values) for r in plan.inserts) + sum(len(u.columns) for u in plan.updates)
                            + len(plan.marks) + len(plan.unmarks))


# --------------------------------------------------------------------------- result side

@dataclass(frozen=True)
class _Column:
    name: str
    type: str
    number_format: Mapping[str, str] | None
    convert: Callable[[Any], Any]

    def value(self, raw: Any) -> Any:
        """What the diff compares: the cell value, with the number format when there is one."""
        cell = self.convert(raw)
        if self.number_format is None:
            return cell
        return (cell, self.number_format["type"], self.number_format["pattern"])


def _columns(result: QueryResult, key: Sequence[str]) -> list[_Column]:
    names = result.names
    if not key:
        raise GenesisError("a Google Sheets tracker needs a `key`: the column(s) that identify a row",
                           hint="rows are matched by key so that people's notes stay beside their row")
    for k in key:
        if k not in names:
            raise GenesisError(f"key column '{k}' is not an output column of the input",
                               hint=did_you_mean(k, names) or f"output columns: {', '.join(names)}")
    if STATUS_COLUMN in names:
        raise GenesisError(f"output column '{STATUS_COLUMN}' clashes with the status column Genesis keeps",
                           hint="rename the field with a label")
    return [_column(c) for c in result.columns]


def _column(column: OutputColumn) -> _Column:
    fmt = column.format or {}
    number_format = spreadsheet_number_format(column.type, fmt)
    if is_array(column.type) or "link" in fmt or (column.type == "boolean" and "bool" in fmt):
        convert = _texter(column.type, fmt)
    else:
        convert = _plain
    return _Column(column.name, column.type, number_format, convert)


def _plain(raw: Any) -> Any:
    """The written value of a typed value: float, str, bool or None (dates as serials)."""
    value = normalize(raw)
    return value.value if isinstance(value, Bool) else value


def _texter(column_type: str, fmt: Mapping) -> Callable[[Any], Any]:
    def convert(raw: Any) -> Any:
        return None if raw is None else (format_value(raw, column_type, fmt) or None)

    return convert


def _result_rows(result: QueryResult, columns: list[_Column], key: Sequence[str]) -> list[ResultRow]:
    data = {c.name: result.table.column(c.name).to_pylist() for c in columns}
    # keys are matched as typed values (messages show 7, not 7.0), or as the text written
    texted = {c.name for c in columns if c.convert is not _plain}
    out = []
    for i in range(result.table.num_rows):
        values = {c.name: c.value(data[c.name][i]) for c in columns}
        out.append(ResultRow(tuple(_cell_of(values[k]) if k in texted else data[k][i] for k in key), values))
    _check_cell_sizes(out, columns, key)
    return out


def _check_cell_sizes(rows: list[ResultRow], columns: list[_Column], key: Sequence[str]) -> None:
    for row in rows:
        for c in columns:
            text = _cell_of(row.values[c.name])
            if isinstance(text, str) and len(text) > MAX_CELL_CHARS:
                shown = ", ".join(f"{k}={v!r}" for k, v in zip(key, row.key))
                raise GenesisError(
                    f"column '{c.name}' of the row {shown} holds {len(text):,} characters; "
                    f"a Google Sheets cell holds at most {MAX_CELL_CHARS:,}",
                    hint="shorten the value in the input (e.g. substr(...)); nothing was written")


def _cell_of(value: Any) -> Any:
    return value[0] if isinstance(value, tuple) else value


# --------------------------------------------------------------------------- the client

def load_credentials(path: str, endpoint: str = GOOGLE_ENDPOINT):
    """(google-auth service-account credentials, client email) from a JSON key file.

    Errors name the file and what is wrong with it, never its content."""
    from google.oauth2.service_account import Credentials as Default

    credentials_class = Default if endpoint.rstrip("/") == GOOGLE_ENDPOINT else _proxied_credentials_class()
    try:
        with open(path, encoding="utf-8") as fh:
            info = json.load(fh)
    except FileNotFoundError:
        raise GenesisError(f"Google Sheets credentials file not found: {path}",
                           hint="google_sheets.credentials must name a service-account JSON file")
    except (OSError, ValueError):
        raise GenesisError(f"Google Sheets credentials file {path} is not readable JSON",
                           hint="download the service account's JSON key again")
    if isinstance(info, dict):  # its secrets are masked in any output from now on
        for name, value in info.items():
            if name not in _PUBLIC_CREDENTIAL_FIELDS:
                register_secret(value)
    missing = [k for k in ("client_email", "private_key", "token_uri") if not info.get(k)] if isinstance(info, dict) else ["all"]
    if missing or info.get("type") != "service_account":
        raise GenesisError(f"{path} is not a service-account key file (missing: {', '.join(missing) or 'type'})",
                           hint="use the JSON key of a service account")
    try:
        creds = credentials_class.from_service_account_info(info, scopes=list(SCOPES))
    except Exception:  # the message could quote the key; say only what is wrong
        raise GenesisError(f"the private key in {path} cannot be loaded", hint="download the key again")
    return creds, info["client_email"]


# Fields of a service-account file that say who and where, not how to prove it: shown in
# hints ("share the spreadsheet with <client_email>"); every other field is a secret.
_PUBLIC_CREDENTIAL_FIELDS = frozenset({"type", "client_email", "project_id", "token_uri", "auth_uri",
                                       "auth_provider_x509_cert_url", "client_x509_cert_url", "universe_domain"})


def _proxied_credentials_class():
    from google.oauth2.service_account import Credentials

    class ProxiedCredentials(Credentials):
        """Service-account credentials for an overridden endpoint (a company proxy, a test
        server): google-auth would otherwise look up a "regional access boundary" at
        Google's IAM host after each token refresh, a call that bypasses the endpoint."""

        def _is_regional_access_boundary_lookup_required(self):
            return False

    return ProxiedCredentials


class EndpointHTTPClient(HTTPClient):
    """gspread's HTTP client, sending Sheets API calls to `endpoint` (a proxy, a test server)."""

    endpoint = GOOGLE_ENDPOINT

    def request(self, method, endpoint, *args, **kwargs):
        if endpoint.startswith(GOOGLE_ENDPOINT) and self.endpoint != GOOGLE_ENDPOINT:
            endpoint = self.endpoint + endpoint[len(GOOGLE_ENDPOINT):]
        return super().request(method, endpoint, *args, **kwargs)


def _client(creds, endpoint: str, policy: RetryPolicy) -> EndpointHTTPClient:
    client = EndpointHTTPClient(creds)
    client.endpoint = endpoint.rstrip("/")
    client.set_timeout((10, policy.request_timeout))
    return client


class _Ambiguous(Exception):
    """A write failed in a way that leaves its outcome unknown."""

    def __init__(self, error: Exception, plan: Plan | None = None):
        super().__init__(str(error))
        self.error, self.plan = error, plan


class _MissingTab(Exception):
    pass


class _Rejected(Exception):
    """A fenced write refused with 400: a lost compare-and-swap, or a bad request."""

    def __init__(self, error: APIError):
        super().__init__(str(error))
        self.error = error


class _Conflict(Exception):
    """Another writer changed the tab after our read; read again and re-plan."""


class _Busy(Exception):
    """Another refresh is in the middle of a multi-request write of the tab."""

    def __init__(self, holder: lease.Holder):
        super().__init__(holder.run)
        self.holder = holder


# (endpoint, service account, read|write) -> recent call times: the per-user quotas
_CALLS: dict[tuple[str, str, str], deque] = {}
_CALLS_LOCK = threading.Lock()


class _Api:
    """Calls with retries, pacing, the deadline and the user-facing error messages."""

    def __init__(self, http: EndpointHTTPClient, spreadsheet_id: str, worksheet: str, email: str,
                 deadline: Deadline, policy: RetryPolicy, report: SheetSyncReport):
        self.http, self.spreadsheet_id, self.worksheet, self.email = http, spreadsheet_id, worksheet, email
        self.deadline, self.policy, self.report = deadline, policy, report

    def read(self, fn: Callable[[], Any]) -> Any:
        return self._call("read", fn)

    def read_tab(self, fn: Callable[[], Any]) -> Any:
        """A read of the tab's range; None when the tab does not exist."""
        try:
            return self._call("read", fn, missing_tab=True)
        except _MissingTab:
            return None

    def write(self, body: bytes) -> Any:
        """One fenced batchUpdate; raises _Rejected on a 400 (see sheets_lease)."""
        url = SPREADSHEET_BATCH_UPDATE_URL % self.spreadsheet_id
        result = self._call("write", lambda: self.http.request(
            "post", url, data=body, headers={"Content-Type": "application/json"}), fenced=True)
        self.report.payload_bytes += len(body)
        return result

    def lease_value(self) -> str | None:
        """The tab's lease value as it is now (one small read)."""
        doc = self.read(lambda: self.http.fetch_sheet_metadata(
            self.spreadsheet_id, params={"fields": lease.METADATA_FIELDS}))
        return lease.find(doc.get("developerMetadata"), self.worksheet)

    def wait_for_holder(self, holder: lease.Holder, attempt: int) -> None:
        """Sleep while another refresh holds the tab, or fail clearly at the deadline."""
        delay = self.policy.backoff.delay(attempt)
        until = datetime.fromtimestamp(holder.until, timezone.utc).strftime("%H:%M:%S")
        if not self.deadline.allows(delay):
            raise GenesisError(
                f"another refresh holds tab '{self.worksheet}' of spreadsheet '{self.spreadsheet_id}' "
                f"(it is writing in several steps; its hold ends by {until} UTC); nothing was written",
                hint=f"run again when it has finished, or {self.deadline.hint()}")
        log.warning("sheets %s: another refresh holds tab '%s' until %s UTC; waiting %.1fs",
                    self.spreadsheet_id, self.worksheet, until, delay)
        self.report.waited_seconds += delay
        time.sleep(delay)

    def remaining(self) -> float:
        return self.deadline.remaining()

    def _call(self, kind: str, fn: Callable[[], Any], missing_tab: bool = False, fenced: bool = False) -> Any:
        from google.auth import exceptions as auth_errors

        attempt = 0
        while True:
            self._pace(kind)
            self._bound_timeout()
            setattr(self.report, f"{kind}_calls", getattr(self.report, f"{kind}_calls") + 1)
            try:
                return fn()
            except APIError as err:
                if missing_tab and err.code == 400 and "Unable to parse range" in str((err.error or {}).get("message")):
                    raise _MissingTab() from None
                if fenced and err.code == 400:
                    raise _Rejected(err) from None
                if not _retryable(err):
                    raise self.user_error(err) from None
                if kind == "write" and err.code != 429 and not _rate_limited(err):
                    raise _Ambiguous(err) from None
                error: Exception = err
            except (requests.ConnectionError, requests.Timeout, auth_errors.TransportError) as err:
                reason = unreachable(err)
                if reason:  # nothing was sent: not worth a retry, and not an ambiguous write
                    raise unreachable_error("Google Sheets", self.http.endpoint, reason, "google_sheets.endpoint") from None
                if kind == "write":
                    raise _Ambiguous(err) from None
                error = err
            except auth_errors.RefreshError as err:
                raise self._auth_error(err) from None
            self.backoff(attempt, error)
            attempt += 1

    def _bound_timeout(self) -> None:
        """No single request may outlive the refresh's deadline."""
        remaining = self.deadline.remaining()
        if remaining <= 0:
            raise GenesisError(f"the refresh of spreadsheet '{self.spreadsheet_id}' reached its deadline",
                               hint=f"the tab is consistent; the next refresh continues where this one stopped; "
                                    f"{self.deadline.hint()}")
        self.http.set_timeout((min(10.0, remaining), min(self.policy.request_timeout, remaining)))

    def backoff(self, attempt: int, error: Exception) -> None:
        """Sleep before a retry, or give up when the deadline would pass."""
        delay = self.policy.backoff.delay(attempt, _retry_after(error))
        if not self.deadline.allows(delay):
            raise GenesisError(
                f"Google Sheets kept failing for spreadsheet '{self.spreadsheet_id}' ({_describe(error)}); "
                f"gave up before the deadline of {self.deadline.seconds:g} s after {self.report.retries} retries",
                hint=f"the tab is consistent; the next refresh continues where this one stopped; {self.deadline.hint()}")
        self.report.retries += 1
        log.warning("sheets %s: %s; retrying in %.2fs", self.spreadsheet_id, _describe(error), delay)
        time.sleep(delay)

    def _pace(self, kind: str) -> None:
        """Stay under the per-user read and write quotas instead of collecting 429s."""
        limit = self.policy.writes_per_minute if kind == "write" else self.policy.reads_per_minute
        while True:
            with _CALLS_LOCK:
                times = _CALLS.setdefault((self.http.endpoint, self.email, kind), deque())
                now = time.monotonic()
                while times and now - times[0] >= self.policy.window_seconds:
                    times.popleft()
                if len(times) < limit:
                    times.append(now)
                    return
                wait = times[0] + self.policy.window_seconds - now
            if not self.deadline.allows(wait):
                raise GenesisError(f"the {kind} quota of {self.email} is used up until after the deadline",
                                   hint=f"refresh fewer trackers at once, or {self.deadline.hint()}")
            time.sleep(wait)

    def user_error(self, err: APIError) -> GenesisError:
        message = str((err.error or {}).get("message") or "")
        if err.code == 404:
            return GenesisError(f"spreadsheet '{self.spreadsheet_id}' was not found",
                                hint=f"check spreadsheet_id and share the spreadsheet with {self.email} as an editor")
        if err.code == 403:
            return GenesisError(f"the service account {self.email} has no access to spreadsheet '{self.spreadsheet_id}'",
                                hint=f"share the spreadsheet with {self.email} as an editor")
        if err.code == 401:
            return GenesisError("Google Sheets rejected the service account's credentials",
                                hint="check that the key in the credentials file is active")
        hint = "nothing more was written"
        if "limit" in message:
            hint = "the spreadsheet is full: remove tabs or rows, or filter the input; " + hint
        return GenesisError(f"Google Sheets refused the update of tab '{self.worksheet}': {message} (HTTP {err.code})",
                            hint=hint)

    def _auth_error(self, err: Exception) -> GenesisError:
        reason = "unknown error"
        if len(getattr(err, "args", ())) > 1 and isinstance(err.args[1], dict):
            code = str(err.args[1].get("error") or "")
            reason = code if re.fullmatch(r"[a-z_]{1,40}", code) else reason  # an OAuth error code, never the answer
        return GenesisError(f"could not get an access token for the service account {self.email} ({reason})",
                            hint="check the credentials file: the key may be revoked or its token_uri wrong")


def _retryable(err: APIError) -> bool:
    return err.code in (408, 429) or err.code >= 500 or _rate_limited(err)


def _rate_limited(err: APIError) -> bool:
    return err.code == 403 and (err.error or {}).get("status") == "RESOURCE_EXHAUSTED"


def _retry_after(error: Exception) -> float:
    response = getattr(error, "response", None)
    value = response.headers.get("Retry-After") if response is not None else None
    try:
        return max(0.0, float(value)) if value else 0.0
    except ValueError:
        return 0.0


def _describe(error: Exception) -> str:
    if isinstance(error, APIError):
        return f"HTTP {error.code} {(error.error or {}).get('status', '')}".strip()
    return type(error).__name__


# --------------------------------------------------------------------------- the tab

@dataclass
class _Tab:
    sheet_id: int
    title: str
    row_count: int
    col_count: int
    frozen_rows: int
    rows: list[list[dict]]  # rowData values; rows[0] is the header
    exists: bool = True
    other_cells: int | None = None  # cells of the other tabs, when known
    lease: str | None = None  # the tab's writer lease as read (see sheets_lease)

    def cell(self, r: int, c: int) -> dict:
        row = self.rows[r] if r < len(self.rows) else []
        return (row[c] or {}) if c < len(row) else {}

    @property
    def width(self) -> int:
        return max((len(r) for r in self.rows), default=0)


def _entered(cell: dict) -> Any:
    value = cell.get("userEnteredValue")
    if not value:
        return None
    if "numberValue" in value:
        return float(value["numberValue"])  # JSON may carry 7 for 7.0; compare floats with floats
    for kind in ("stringValue", "boolValue"):
        if kind in value:
            return value[kind]
    return ("formula", value.get("formulaValue")) if "formulaValue" in value else ("error", str(value))


def _read_tab(api: _Api) -> _Tab | None:
    params = {"ranges": absolute_range_name(api.worksheet), "fields": READ_FIELDS}
    doc = api.read_tab(lambda: api.http.spreadsheets_get(api.spreadsheet_id, params=params))
    if doc is None:
        return None
    sheet = (doc.get("sheets") or [{}])[0]
    props = sheet.get("properties") or {}
    grid = props.get("gridProperties") or {}
    data = (sheet.get("data") or [{}])[0]
    rows = [r.get("values") or [] for r in data.get("rowData") or []]
    return _Tab(props.get("sheetId", 0), props.get("title", api.worksheet), grid.get("rowCount", 0),
                grid.get("columnCount", 0), grid.get("frozenRowCount", 0), rows,
                lease=lease.find(doc.get("developerMetadata"), api.worksheet))


def _new_tab(api: _Api) -> _Tab:
    """The tab to add: an unused sheet id, and what the other tabs use (for the cell limit)."""
    doc = api.read(lambda: api.http.fetch_sheet_metadata(
        api.spreadsheet_id, params={"fields": f"{lease.METADATA_FIELDS},sheets.properties"}))
    props = [s.get("properties") or {} for s in doc.get("sheets") or []]
    used = {p.get("sheetId") for p in props}
    sheet_id = next(i for i in iter(lambda: secrets.randbelow(2**31 - 1) + 1, None) if i not in used)
    other = sum((p.get("gridProperties") or {}).get("rowCount", 0) * (p.get("gridProperties") or {}).get("columnCount", 0)
                for p in props)
    return _Tab(sheet_id, api.worksheet, 0, 0, 0, [], exists=False, other_cells=other,
                lease=lease.find(doc.get("developerMetadata"), api.worksheet))


@dataclass
class _Layout:
    """Where the owned columns are, and the destination's rows as the diff sees them."""

    positions: dict[str, int]  # owned column -> 0-based column index (existing or to add)
    new_columns: list[str]  # owned columns to add to the header, in order
    status: int | None  # status column index, if it exists
    existing: list[ExistingRow] = field(default_factory=list)
    next_column: int = 0  # first column right of everything used


def _layout(tab: _Tab, columns: list[_Column], key: list[str]) -> _Layout:
    header: dict[str, list[int]] = {}
    for c, cell in enumerate(tab.rows[0] if tab.rows else []):
        value = _entered(cell or {})
        if isinstance(value, str) and value.strip():
            header.setdefault(value.strip(), []).append(c)
    owned = [c.name for c in columns] + [STATUS_COLUMN]
    for name in owned:
        if len(header.get(name, [])) > 1:
            where = ", ".join(rowcol_to_a1(1, c + 1) for c in header[name])
            raise GenesisError(f"column '{name}' appears more than once in the header of tab '{tab.title}' ({where})",
                               hint="rename or delete the extra column; nothing was written")
    positions = {name: header[name][0] for name in owned[:-1] if name in header}
    status = header[STATUS_COLUMN][0] if STATUS_COLUMN in header else None
    layout = _Layout(positions, [c.name for c in columns if c.name not in positions], status,
                     next_column=tab.width)
    missing_keys = [k for k in key if k not in positions]
    existing = _existing_rows(tab, columns, key, positions, status, bool(missing_keys))
    if missing_keys and any(_has_owned_value(r) for r in existing):
        raise GenesisError(
            f"key column(s) {', '.join(missing_keys)} missing from the header of tab '{tab.title}', "
            "so its rows cannot be matched",
            hint="restore the key column's header, or clear the tab to start over; nothing was written")
    layout.existing = _inside_block(existing)
    for i, name in enumerate(layout.new_columns):
        layout.positions[name] = layout.next_column + i
    return layout


def _has_owned_value(row: ExistingRow) -> bool:
    return any(_cell_of(v) is not None for v in row.values.values())


def _existing_rows(tab: _Tab, columns: list[_Column], key: list[str], positions: dict[str, int],
                   status: int | None, keyless: bool) -> list[ExistingRow]:
    owned = set(positions.values()) | ({status} if status is not None else set())
    formatted = {c.name for c in columns if c.number_format is not None}
    rows = []
    for r in range(1, len(tab.rows)):
        cells = tab.rows[r]
        values = {}
        for name, c in positions.items():
            cell = tab.cell(r, c)
            value = _entered(cell)
            if name in formatted:
                nf = (cell.get("userEnteredFormat") or {}).get("numberFormat") or {}
                value = (value, nf.get("type"), nf.get("pattern"))
            values[name] = value
        annotated = any(cell and ("note" in cell or (i not in owned and "userEnteredValue" in cell))
                        for i, cell in enumerate(cells))
        marked = status is not None and _entered(tab.cell(r, status)) == STATUS_REMOVED
        row_key = tuple(None if keyless else values[k] if k not in formatted else values[k][0] for k in key)
        rows.append(ExistingRow(r + 1, row_key, values, annotated, marked))  # row ids as people see them
    return rows


def _inside_block(rows: list[ExistingRow]) -> list[ExistingRow]:
    """Drop keyless rows below the last keyed row: they are not part of the block."""
    last = max((i for i, r in enumerate(rows) if any(v is not None for v in r.key)), default=-1)
    return rows[:last + 1]


# --------------------------------------------------------------------------- requests

class _Req:
    """One batchUpdate request, serialised once; row requests can be split between bodies."""

    def __init__(self, kind: str, body: dict, rows: list | None = None):
        self.kind, self.body = kind, body
        self.rows = [_dumps(r) for r in rows] if rows is not None else None
        self._head = _dumps({kind: {**body, "rows": []}})[:-3] if rows is not None else _dumps({kind: body})

    @property
    def size(self) -> int:
        if self.rows is None:
            return len(self._head)
        return len(self._head) + sum(len(r) for r in self.rows) + max(len(self.rows) - 1, 0) + 3

    def bytes(self) -> bytes:
        if self.rows is None:
            return self._head
        return self._head + b",".join(self.rows) + b"]}}"

    def split(self, room: int) -> tuple["_Req", "_Req"] | None:
        """A head that fits in `room` bytes and the rest, or None."""
        if self.rows is None or len(self.rows) < 2:
            return None
        used, k = len(self._head) + 3, 0
        while k < len(self.rows) - 1 and used + len(self.rows[k]) + (1 if k else 0) <= room:
            used += len(self.rows[k]) + (1 if k else 0)
            k += 1
        if k == 0:
            return None
        return self._part(0, k), self._part(k, len(self.rows))

    def _part(self, start: int, end: int) -> "_Req":
        body = json.loads(json.dumps(self.body))
        if "start" in body:
            body["start"]["rowIndex"] += start
        part = _Req(self.kind, body, [])
        part.rows = self.rows[start:end]
        return part


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def _cell_data(value: Any, with_format: bool = True) -> dict:
    """CellData of a written value: typed, never a formula."""
    number_format = None
    if isinstance(value, tuple):
        value, kind, pattern = value
        number_format = {"type": kind, "pattern": pattern}
    cell: dict = {}
    if isinstance(value, bool):
        cell["userEnteredValue"] = {"boolValue": value}
    elif isinstance(value, float):  # whole numbers as JSON integers: shorter bodies
        cell["userEnteredValue"] = {"numberValue": int(value) if value.is_integer() and abs(value) < 2**53 else value}
    elif value is not None:
        cell["userEnteredValue"] = {"stringValue": str(value)}
    if number_format and with_format:
        cell["userEnteredFormat"] = {"numberFormat": number_format}
    return cell


def _first_free_row(tab: _Tab) -> int:
    """The row after everything the read saw (values, notes, number formats); never the header."""
    last = max((r for r, row in enumerate(tab.rows) if any(row)), default=0)
    return max(last + 1, 1)


def _requests(plan: Plan, tab: _Tab, layout: _Layout, columns: list[_Column]) -> tuple[list[_Req], int, int]:
    """Every write the plan needs, in an order that keeps row indices valid; and the grid size."""
    reqs: list[_Req] = []
    status = layout.status
    if status is None and plan.marks:
        status = layout.next_column + len(layout.new_columns)
    new_headers = layout.new_columns + ([STATUS_COLUMN] if status is not None and layout.status is None else [])
    width = max([tab.col_count] + [p + 1 for p in layout.positions.values()] + ([status + 1] if status is not None else []))
    start = _first_free_row(tab)  # new rows go here, in result order
    height = max(tab.row_count, start + len(plan.inserts))
    if tab.exists and plan.is_noop and not new_headers:
        return [], width, height  # an unchanged result writes nothing
    if not tab.exists:
        # room for people's columns, as a tab made in the Sheets UI has
        width = max(width, NEW_TAB_COLUMNS)
        height = max(height, 2)
        grid = {"rowCount": height, "columnCount": width, "frozenRowCount": 1}
        reqs.append(_Req("addSheet", {"properties": {"sheetId": tab.sheet_id, "title": tab.title, "gridProperties": grid}}))
    else:
        for dimension, have, need in (("COLUMNS", tab.col_count, width), ("ROWS", tab.row_count, height)):
            if need > have:
                reqs.append(_Req("appendDimension", {"sheetId": tab.sheet_id, "dimension": dimension,
                                                     "length": need - have}))
        if tab.frozen_rows < 1:
            reqs.append(_Req("updateSheetProperties", {"properties": {"sheetId": tab.sheet_id, "gridProperties": {
                "frozenRowCount": 1}}, "fields": "gridProperties.frozenRowCount"}))
    if new_headers:
        first = layout.positions.get(new_headers[0], status)
        cells = [{"userEnteredValue": {"stringValue": n}, "userEnteredFormat": {"textFormat": {"bold": True}}}
                 for n in new_headers]
        reqs.append(_Req("updateCells", {"start": {"sheetId": tab.sheet_id, "rowIndex": 0, "columnIndex": first},
                                         "fields": "userEnteredValue,userEnteredFormat.textFormat.bold"},
                         [{"values": cells}]))
    cells = _changed_cells(plan, layout, columns, status, start)
    reqs.extend(_cell_requests(cells, tab.sheet_id))
    reqs.extend(_insert_formats(plan, tab.sheet_id, layout, columns, start))
    reqs.extend(_delete_requests(plan, tab.sheet_id))
    return reqs, width, height


def _changed_cells(plan: Plan, layout: _Layout, columns: list[_Column], status: int | None,
                   start: int) -> dict[int, dict[int, tuple[str, dict]]]:
    """row index -> {column index: (field mask, CellData)} of every cell to write.

    A number format goes with a value only when the sheet's differs (a changed `format`, a
    person's edit); new rows get theirs from `_insert_formats`, one request per column."""
    old = {row.row_id: row for row in layout.existing}
    formatted = {c.name for c in columns if c.number_format is not None}
    per_row: dict[int, dict[int, tuple[str, dict]]] = {}
    for u in plan.updates:
        cells = per_row.setdefault(u.row_id - 1, {})
        before = old[u.row_id].values
        for name in u.columns:
            new = u.values.get(name)
            refresh_format = name in formatted and isinstance(new, tuple) and tuple(before.get(name) or ())[1:] != new[1:]
            mask = MASK_FORMATTED if refresh_format else MASK_VALUE
            cells[layout.positions[name]] = (mask, _cell_data(new, with_format=refresh_format))
    for row_id, value in [(r, STATUS_REMOVED) for r in plan.marks] + [(r, None) for r in plan.unmarks]:
        per_row.setdefault(row_id - 1, {})[status] = (MASK_VALUE, _cell_data(value))
    order = [(layout.positions[c.name], c.name) for c in columns]
    for i, row in enumerate(plan.inserts):
        per_row[start + i] = {c: (MASK_VALUE, _cell_data(row.values.get(name), with_format=False)) for c, name in order}
    return per_row


def _cell_requests(per_row: dict[int, dict[int, tuple[str, dict]]], sheet_id: int) -> list[_Req]:
    """updateCells for runs of adjacent owned cells sharing a mask, merged down adjacent rows."""
    blocks: dict[tuple, list] = {}  # (first col, width, mask) -> open block [row0, rows]
    done: list[tuple] = []
    for r in sorted(per_row):
        for (c0, mask), cells in _segments(per_row[r]):
            shape = (c0, len(cells), mask)
            block = blocks.get(shape)
            if block and block[0] + len(block[1]) == r:
                block[1].append({"values": cells})
                continue
            if block:
                done.append((shape, block))
            blocks[shape] = [r, [{"values": cells}]]
    done.extend(blocks.items())
    done.sort(key=lambda item: (item[1][0], item[0][0]))
    return [_Req("updateCells", {"start": {"sheetId": sheet_id, "rowIndex": r0, "columnIndex": shape[0]},
                                 "fields": shape[2]}, rows)
            for shape, (r0, rows) in done]


def _segments(cells: dict[int, tuple[str, dict]]):
    """Runs of adjacent columns sharing a field mask: ((first column, mask), [CellData])."""
    run: list = []
    start = mask = None
    for c in sorted(cells):
        kind, data = cells[c]
        if run and (c != start + len(run) or kind != mask):
            yield (start, mask), run
            run = []
        if not run:
            start, mask = c, kind
        run.append(data)
    if run:
        yield (start, mask), run


def _insert_formats(plan: Plan, sheet_id: int, layout: _Layout, columns: list[_Column], start: int) -> list[_Req]:
    """The number format of the new rows: one repeatCell per run of adjacent same-format columns."""
    if not plan.inserts:
        return []
    spans: list[list] = []  # [first col, end col, number format]
    for c in sorted(columns, key=lambda c: layout.positions[c.name]):
        if c.number_format is None:
            continue
        col = layout.positions[c.name]
        if spans and spans[-1][1] == col and spans[-1][2] == c.number_format:
            spans[-1][1] = col + 1
        else:
            spans.append([col, col + 1, c.number_format])
    end = start + len(plan.inserts)
    return [_Req("repeatCell", {"range": {"sheetId": sheet_id, "startRowIndex": start, "endRowIndex": end,
                                          "startColumnIndex": c0, "endColumnIndex": c1},
                                "cell": {"userEnteredFormat": {"numberFormat": dict(nf)}},
                                "fields": "userEnteredFormat.numberFormat"})
            for c0, c1, nf in spans]


def _delete_requests(plan: Plan, sheet_id: int) -> list[_Req]:
    """deleteDimension per run of adjacent rows, bottom-up so indices stay valid."""
    runs: list[list[int]] = []
    for r in sorted((row_id - 1 for row_id in plan.deletes), reverse=True):
        if runs and runs[-1][0] == r + 1:
            runs[-1][0] = r
        else:
            runs.append([r, r + 1])
    return [_Req("deleteDimension", {"range": {"sheetId": sheet_id, "dimension": "ROWS", "startIndex": s,
                                               "endIndex": e}}) for s, e in runs]


def _old_stamp(tab: _Tab, layout: _Layout, key: list[str]) -> datetime | None:
    return stamp_of_note(tab.cell(0, layout.positions[key[0]]).get("note")) if tab.exists else None


def _stamp(tab: _Tab, layout: _Layout, key: list[str], plan: Plan, rows: int) -> _Req:
    now = stamp_text(clock_now())
    counts = plan.counts()
    text = (f"Refreshed by Genesis at {now} UTC: {rows} rows ({counts['inserted']} added, "
            f"{counts['updated']} updated, {counts['deleted']} deleted, {counts['marked']} marked removed). "
            "Genesis owns the columns named by the input and the status column; add your own columns freely.")
    cell = {"start": {"sheetId": tab.sheet_id, "rowIndex": 0, "columnIndex": layout.positions[key[0]]},
            "fields": "note"}
    return _Req("updateCells", cell, [{"values": [{"note": text}]}])


def _pack(reqs: list[_Req], limit: int) -> list[bytes]:
    """Request bodies of at most `limit` bytes, in order, splitting row requests to fill each."""
    bodies, current, used = [], [], len(_ENVELOPE[0]) + len(_ENVELOPE[1])
    pending = deque(reqs)
    while pending:
        req = pending.popleft()
        room = limit - used - (1 if current else 0)
        if req.size <= room:
            current.append(req)
            used += req.size + (1 if len(current) > 1 else 0)
            continue
        parts = req.split(room)
        if parts:
            current.append(parts[0])
            pending.appendleft(parts[1])
        elif current:
            pending.appendleft(req)
        else:
            current.append(req)  # alone and indivisible: send it as it is
        bodies.append(_body(current))
        current, used = [], len(_ENVELOPE[0]) + len(_ENVELOPE[1])
    if current:
        bodies.append(_body(current))
    return bodies


def _body(reqs: list[_Req]) -> bytes:
    return _ENVELOPE[0] + b",".join(r.bytes() for r in reqs) + _ENVELOPE[1]


# --------------------------------------------------------------------------- limits

def _check_shape(result: QueryResult, worksheet: str, key: Sequence[str]) -> None:
    """Google's limits checked from the result's shape alone: a result too large for a
    spreadsheet is refused in milliseconds, before building a payload for it."""
    rows, columns = result.table.num_rows + 1, len(result.columns)  # + the header row
    _check_limits(_Tab(0, worksheet, 0, 0, 0, [], other_cells=0), rows, columns)
    import pyarrow.compute as pc

    for column in result.columns:
        values = result.table.column(column.name)
        if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)) or not len(values):
            continue
        lengths = pc.utf8_length(values)
        longest = pc.max(lengths).as_py()
        if longest is not None and longest > MAX_CELL_CHARS:
            i = pc.index(lengths, longest).as_py()
            shown = ", ".join(f"{k}={result.table.column(k)[i].as_py()!r}" for k in key)
            raise GenesisError(
                f"column '{column.name}' of the row {shown} holds {longest:,} characters; "
                f"a Google Sheets cell holds at most {MAX_CELL_CHARS:,}",
                hint="shorten the value in the input (e.g. substr(...)); nothing was written")


def _check_limits(tab: _Tab, rows: int, columns: int) -> None:
    if columns > MAX_COLUMNS:
        raise GenesisError(f"tab '{tab.title}' would need {columns:,} columns; Google Sheets allows {MAX_COLUMNS:,}",
                           hint="remove columns from the input; nothing was written")
    cells = rows * columns + (tab.other_cells or 0)
    if cells > MAX_CELLS:
        raise GenesisError(
            f"tab '{tab.title}' would need {rows:,} rows x {columns:,} columns = {cells:,} cells; "
            f"a spreadsheet holds at most {MAX_CELLS:,}",
            hint="filter the input, drop columns, or use a spreadsheet of its own; nothing was written")


# --------------------------------------------------------------------------- one pass

class _Job:
    def __init__(self, api: _Api, columns: list[_Column], key: list[str], rows: list[ResultRow], mode: str,
                 policy: str, max_request_bytes: int, dry_run: bool, touch_before: datetime | None = None):
        self.api, self.columns, self.key, self.rows = api, columns, key, rows
        self.mode, self.policy, self.limit, self.dry_run = mode, policy, max_request_bytes, dry_run
        self.touch_before = touch_before
        self.existing: list[ExistingRow] = []
        self.run_id = secrets.token_hex(8)  # this refresh, in the tab's lease

    def run(self) -> Plan:
        """Read, diff, write. Raises _Ambiguous when a write's outcome is unknown, _Conflict
        when another writer changed the tab first, _Busy while another refresh holds it."""
        tab = _read_tab(self.api)
        if tab is None:
            tab = _new_tab(self.api)
            self.api.report.created_tab = True
        holder = lease.parse(tab.lease)
        if holder is not None and holder.busy_for(self.run_id) and not self.dry_run:
            raise _Busy(holder)
        layout = _layout(tab, self.columns, self.key)
        self.existing = layout.existing
        plan = plan_sync(layout.existing, self.rows, columns=[c.name for c in self.columns],
                         key_names=self.key, mode=self.mode, on_removed=self.policy)
        reqs, width, height = _requests(plan, tab, layout, self.columns)
        _check_limits(tab, height, width)
        if self.dry_run:
            return plan
        if not reqs:
            old = _old_stamp(tab, layout, self.key)
            if self.touch_before is None or (old is not None and old >= self.touch_before):
                return plan
            self.api.report.stamp_only = True  # unchanged data: only the stamp moves
        reqs.append(_stamp(tab, layout, self.key, plan, len(self.rows)))
        old = tab.lease
        longest = lease.new_value(self.run_id, 2e9)  # a busy value: the longest there is
        room = len(_fenced(_body([]), lease.fence(self.api.worksheet, max(old or "", longest, key=len), longest))) + 1
        bodies = _pack(reqs, max(self.limit - room + len(_body([])), 1))
        for i, body in enumerate(bodies):
            last = i == len(bodies) - 1
            # several bodies: the tab is busy until the last one has landed
            busy_until = None if last else time.time() + self.api.remaining() + lease.EXPIRY_MARGIN_SECONDS
            new = lease.new_value(self.run_id, busy_until)
            try:
                self.api.write(_fenced(body, lease.fence(self.api.worksheet, old, new)))
            except _Ambiguous as err:
                err.plan = plan
                raise
            except _Rejected as err:
                if self.api.lease_value() != old:
                    raise _Conflict() from None
                raise self.api.user_error(err.error) from None
            old = new
        return plan


# --------------------------------------------------------------------------- stamps

def read_stamps(spreadsheet_id: str, worksheets: Sequence[str], *, credentials_file: str,
                endpoint: str = GOOGLE_ENDPOINT, deadline_seconds: float = 120,
                retry: RetryPolicy | None = None) -> dict[str, datetime | None]:
    """worksheet -> the time of its last stamp (None: no tab or no stamp), in one read call
    for every tab of the spreadsheet (two when a tab is missing): the header row's notes."""
    creds, email = load_credentials(credentials_file, endpoint)
    retry = retry or POLICY
    report = SheetSyncReport(spreadsheet_id, ",".join(worksheets), "stamps", "")
    api = _Api(_client(creds, endpoint, retry), spreadsheet_id, "", email,
               Deadline(deadline_seconds, "google_sheets.deadline_seconds"), retry, report)
    titles = list(dict.fromkeys(worksheets))
    fields = "sheets(properties(title),data(rowData(values(note))))"

    def header_notes(tabs: list[str]):
        params = {"ranges": [absolute_range_name(t, "1:1") for t in tabs], "fields": fields}
        return api.read_tab(lambda: api.http.spreadsheets_get(spreadsheet_id, params=params))

    doc = header_notes(titles) if titles else {"sheets": []}
    if doc is None:  # a tab is missing: ask which exist, then read those
        meta = api.read(lambda: api.http.fetch_sheet_metadata(spreadsheet_id, params={"fields": "sheets.properties.title"}))
        existing = {(s.get("properties") or {}).get("title") for s in meta.get("sheets") or []}
        present = [t for t in titles if t in existing]
        doc = (header_notes(present) or {"sheets": []}) if present else {"sheets": []}
    stamps: dict[str, datetime | None] = {t: None for t in titles}
    for sheet in doc.get("sheets") or []:
        title = (sheet.get("properties") or {}).get("title")
        notes = [cell.get("note") for data in sheet.get("data") or [] for row in data.get("rowData") or []
                 for cell in row.get("values") or [] if cell]
        times = [t for t in map(stamp_of_note, notes) if t is not None]
        if title in stamps and times:
            stamps[title] = max(times)
    return stamps

def _fenced(body: bytes, fence: list[dict]) -> bytes:
    """`body` with the lease's compare-and-swap requests first."""
    head = _ENVELOPE[0]
    rest = body[len(head):]
    joined = b",".join(_dumps(r) for r in fence)
    return head + joined + (b"," + rest if rest != _ENVELOPE[1] else rest)
