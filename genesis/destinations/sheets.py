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
reads to catch up on missed schedules (see genesis/run/scheduler.py).

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

Modules. This one runs a refresh (`sync_google_sheet`: read, plan, write, retry on a
conflict) and reads stamps; sheets_client.py holds the API access (credentials, quotas,
retries), sheets_layout.py what the tab holds and where (columns, header, rows, limits),
sheets_requests.py the batchUpdate requests, and sheets_lease.py the writer lease.

Known limits. Writes address rows by index, as the Sheets API requires: the lease fences
other refreshes, not people, so a person who sorts the tab in the seconds between the read
and the write can see a refresh land on the wrong rows (the next refresh repairs owned
cells, not a moved note). A write that
times out on the client but is still applied by Google later can, when it deleted rows,
delete again after the re-plan; Google gives no conditional writes to rule this out.
"""

from __future__ import annotations

import logging
import random
import secrets
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from gspread.utils import absolute_range_name

from ..errors import GenesisError
from ..result import QueryResult
from . import sheets_lease as lease
from .report import SyncReport
from .retry import DEFAULT_DEADLINE_SECONDS, Deadline
from .sheets_client import (  # noqa: F401 - GOOGLE_ENDPOINT, EndpointHTTPClient: public here too
    GOOGLE_ENDPOINT,
    Ambiguous,
    Busy,
    Conflict,
    EndpointHTTPClient,
    OutOfTime,
    Rejected,
    RetryPolicy,
    SheetsApi,
    http_client,
    load_credentials,
)
from .sheets_layout import (
    Column,
    check_limits,
    check_result_fits,
    columns_of,
    layout_of,
    new_tab,
    read_tab,
    sheet_rows,
    stamp_of_note,  # noqa: F401 - public here too
)
from .sheets_requests import body_of, fenced, old_stamp, pack, requests_for, stamp_request
from .sync import ExistingRow, Plan, ResultRow, check_policy, plan_sync

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 2_000_000  # Google's recommended maximum payload of one request
MAX_CONFLICTS = 20  # re-plans after another writer's change before giving up
SheetSyncReport = SyncReport  # the name before the report was shared with Airtable

POLICY = RetryPolicy()  # the pacing when a caller passes none; tests and the bench swap it


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
) -> SyncReport:
    """Make tab `worksheet` of `spreadsheet_id` hold `result` (see the module docstring)."""
    started = time.monotonic()
    mode, policy = check_policy(mode, on_removed)
    columns = columns_of(result, key)
    check_result_fits(result, worksheet, key)  # before any value is converted or any call made
    rows = sheet_rows(result, columns, key)
    creds, email = load_credentials(credentials_file, endpoint)
    report = SyncReport(spreadsheet_id, worksheet, mode, policy, rows=len(rows), dry_run=dry_run,
                        service="google_sheets")
    retry = retry or POLICY
    api = SheetsApi(http_client(creds, endpoint, retry), spreadsheet_id, worksheet, email,
                    Deadline(deadline_seconds, "google_sheets.deadline_seconds"), retry, report)
    job = _Job(api, columns, list(key), rows, mode, policy, max_request_bytes, dry_run, touch_before)
    first_plan: Plan | None = None
    attempt = waits = 0
    while True:
        try:
            plan = job.run()
            first_plan = first_plan or plan
            break
        except OutOfTime:
            if job.waiting_for is not None:  # the time went on waiting for the other refresh
                raise api.held_error(job.waiting_for) from None
            raise
        except Ambiguous as err:  # a write may or may not have landed: read again, re-plan
            first_plan = first_plan or err.plan
            api.backoff(attempt, err.error)
            attempt += 1
        except Conflict:  # another writer changed the tab first: nothing of ours landed
            first_plan = None  # what counts is the plan that is finally written
            report.conflicts += 1
            if report.conflicts > MAX_CONFLICTS:
                raise GenesisError(
                    f"tab '{worksheet}' kept changing while Genesis wrote it ({report.conflicts} writes "
                    "rejected because other refreshes wrote first)",
                    hint="several refreshes of this tab are running at once; nothing more was written") from None
            time.sleep(random.uniform(0, retry.base_seconds))  # writers that collided do not collide again
        except Busy as err:
            api.wait_for_holder(err.holder, waits)
            waits += 1
    report.count(first_plan)
    report.plan, report.existing = first_plan, job.existing
    report.seconds = round(time.monotonic() - started, 3)
    log.info("sheets %s/%s: %s", spreadsheet_id, worksheet,
             {k: v for k, v in vars(report).items() if isinstance(v, (int, float))})
    return report


# --------------------------------------------------------------------------- one pass

class _Job:
    """One pass of a refresh: read the tab, plan, write; re-run after a conflict."""

    def __init__(self, api: SheetsApi, columns: list[Column], key: list[str], rows: list[ResultRow], mode: str,
                 policy: str, max_request_bytes: int, dry_run: bool, touch_before: datetime | None = None):
        self.api, self.columns, self.key, self.rows = api, columns, key, rows
        self.mode, self.policy, self.limit, self.dry_run = mode, policy, max_request_bytes, dry_run
        self.touch_before = touch_before
        self.existing: list[ExistingRow] = []
        self.run_id = secrets.token_hex(8)  # this refresh, in the tab's lease
        self.waiting_for: lease.Holder | None = None  # the other refresh that held the tab at the last read

    def run(self) -> Plan:
        """Read, diff, write. Raises Ambiguous when a write's outcome is unknown, Conflict
        when another writer changed the tab first, Busy while another refresh holds it."""
        tab = read_tab(self.api)
        if tab is None:
            tab = new_tab(self.api)
            self.api.report.created_tab = True
        holder = lease.parse(tab.lease)
        busy = holder is not None and holder.busy_for(self.run_id) and not self.dry_run
        self.waiting_for = holder if busy else None
        if self.waiting_for is not None:
            raise Busy(self.waiting_for)
        layout = layout_of(tab, self.columns, self.key)
        self.existing = layout.existing
        plan = plan_sync(layout.existing, self.rows, columns=[c.name for c in self.columns],
                         key_names=self.key, mode=self.mode, on_removed=self.policy)
        reqs, width, height = requests_for(plan, tab, layout, self.columns)
        check_limits(tab, height, width)
        if self.dry_run:
            return plan
        if not reqs:
            stamped = old_stamp(tab, layout, self.key)
            if self.touch_before is None or (stamped is not None and stamped >= self.touch_before):
                return plan
            self.api.report.stamp_only = True  # unchanged data: only the stamp moves
        reqs.append(stamp_request(tab, layout, self.key, plan, len(self.rows)))
        old = tab.lease
        longest = lease.new_value(self.run_id, 2e9)  # a busy value: the longest there is
        room = len(fenced(body_of([]), lease.fence(self.api.worksheet, max(old or "", longest, key=len), longest))) + 1
        bodies = pack(reqs, max(self.limit - room + len(body_of([])), 1))
        for i, body in enumerate(bodies):
            last = i == len(bodies) - 1
            # several bodies: the tab is busy until the last one has landed
            busy_until = None if last else time.time() + self.api.remaining() + lease.EXPIRY_MARGIN_SECONDS
            new = lease.new_value(self.run_id, busy_until)
            try:
                self.api.write(fenced(body, lease.fence(self.api.worksheet, old, new)))
            except Ambiguous as err:
                err.plan = plan
                raise
            except Rejected as err:
                if self.api.lease_value() != old:
                    raise Conflict() from None
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
    report = SyncReport(spreadsheet_id, ",".join(worksheets), "stamps", "")
    api = SheetsApi(http_client(creds, endpoint, retry), spreadsheet_id, "", email,
                    Deadline(deadline_seconds, "google_sheets.deadline_seconds"), retry, report)
    titles = list(dict.fromkeys(worksheets))
    fields = "sheets(properties(title),data(rowData(values(note))))"

    def header_notes(tabs: list[str]):
        params: dict[str, Any] = {"ranges": [absolute_range_name(t, "1:1") for t in tabs], "fields": fields}
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