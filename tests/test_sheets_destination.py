"""Google Sheets destination end to end: the real gspread client against a local Sheets API.

A "person" edits the sheet through gspread (a second service account), Genesis refreshes
with sync_google_sheet, and the server's state and request log are checked.
"""

from __future__ import annotations

import json
import logging
import math
import subprocess
import sys
import time
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import gspread
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from genesis.destinations.formatting import spreadsheet_number_format
from genesis.destinations.sheets import (
    MAX_REQUEST_BYTES,
    EndpointHTTPClient,
    RetryPolicy,
    load_credentials,
    sync_google_sheet,
)
from genesis.destinations.sync import STATUS_COLUMN, STATUS_REMOVED
from genesis.errors import GenesisError
from genesis.result import OutputColumn, QueryResult
from tests.servers.sheets_server import SheetsServer, new_private_key

ROOT = Path(__file__).resolve().parents[1]
GENESIS = "genesis@genesis-test.iam.gserviceaccount.com"
PERSON = "person@studio.example"
FAST = RetryPolicy(base_seconds=0.01, max_seconds=0.05, writes_per_minute=100_000, reads_per_minute=100_000)
COLUMNS = (
    OutputColumn("Movie ID", "bigint"),
    OutputColumn("Title", "varchar"),
    OutputColumn("Budget", "decimal(18,2)", {"number": "#,##0.00", "prefix": "$"}),
    OutputColumn("Shoot start", "date", {"date": "%b %d, %Y"}),
    OutputColumn("Active", "boolean"),
    OutputColumn("Updated", "timestamp"),
)
TAB = "In photography"


def movie(i: int, title: str | None = None, budget: str | None = None) -> dict:
    return {"Movie ID": i, "Title": title or f"Movie {i:02d}", "Budget": Decimal(budget or f"{i * 1000}.50"),
            "Shoot start": date(2024, 1, i % 28 + 1), "Active": i % 2 == 0,
            "Updated": datetime(2024, 5, 1, 12, i % 60, 30)}


def result_of(rows: list[dict], columns=COLUMNS) -> QueryResult:
    from genesis.project.types import arrow_type

    arrays = [pa.array([r.get(c.name) for r in rows], arrow_type(c.type)) for c in columns]
    return QueryResult(tuple(columns), pa.Table.from_arrays(arrays, names=[c.name for c in columns]))


@pytest.fixture(scope="session")
def private_key() -> str:
    return new_private_key()


class Harness:
    """A server, a Genesis service account and a person with gspread."""

    def __init__(self, tmp_path: Path, key: str):
        self.tmp = tmp_path
        self.srv = SheetsServer(window_seconds=60).start()
        self.genesis_sa = self.srv.write_service_account(tmp_path / "genesis.json", GENESIS, key)
        self.person_sa = self.srv.write_service_account(tmp_path / "person.json", PERSON, key)
        self.sid = self.srv.create_spreadsheet("sheet-1", title="Production office")
        self._person: gspread.Spreadsheet | None = None

    def sync(self, rows_or_result, sid: str | None = None, **kw):
        result = rows_or_result if isinstance(rows_or_result, QueryResult) else result_of(rows_or_result)
        args = dict(spreadsheet_id=sid or self.sid, worksheet=TAB, key=["Movie ID"], mode="upsert",
                    on_removed="delete", credentials_file=self.genesis_sa, endpoint=self.srv.url, retry=FAST)
        args.update(kw)
        return sync_google_sheet(result, **args)

    def person(self, sid: str | None = None) -> gspread.Spreadsheet:
        client_class = type("PersonHTTPClient", (EndpointHTTPClient,), {"endpoint": self.srv.url})
        creds, _ = load_credentials(self.person_sa, self.srv.url)
        return gspread.Client(creds, http_client=client_class).open_by_key(sid or self.sid)

    def table(self, sid: str | None = None, tab: str = TAB) -> list[dict]:
        """Data rows as {header: value}; blank rows as {}."""
        grid = self.srv.grid(sid or self.sid, tab)
        header = grid[0]
        return [{h: row[i] for i, h in enumerate(header) if h and i < len(row) and row[i] is not None}
                for row in grid[1:]]

    def row_number(self, key: int, sid: str | None = None) -> int:
        """1-based sheet row of a key."""
        for i, row in enumerate(self.table(sid)):
            if row.get("Movie ID") == key:
                return i + 2
        raise KeyError(key)

    def column(self, name: str, sid: str | None = None) -> int:
        return self.srv.grid(sid or self.sid, TAB)[0].index(name)

    def genesis_calls(self, kind: str | None = None):
        return [e for e in self.srv.calls(user=GENESIS, kind=kind)]

    def close(self):
        self.srv.stop()


@pytest.fixture
def h(tmp_path, private_key):
    harness = Harness(tmp_path, private_key)
    yield harness
    harness.close()


def expected_owned(rows: list[dict]) -> dict[int, dict]:
    """What the owned cells must hold, by key, as the sheet stores it."""
    out = {}
    for r in rows:
        out[r["Movie ID"]] = {
            "Movie ID": float(r["Movie ID"]), "Title": r["Title"], "Budget": float(r["Budget"]),
            "Shoot start": float((r["Shoot start"] - date(1899, 12, 30)).days),
            "Active": r["Active"],
            "Updated": round((r["Updated"] - datetime(1899, 12, 30)).total_seconds() / 86400, 10),
        }
    return out


def owned_by_key(h: Harness, sid: str | None = None) -> dict[int, dict]:
    out = {}
    for row in h.table(sid):
        if "Movie ID" in row:
            owned = {c.name: row.get(c.name) for c in COLUMNS}
            owned["Updated"] = round(owned["Updated"], 10)
            out[int(row["Movie ID"])] = owned
    return out


# --------------------------------------------------------------------------- first refresh

def test_first_refresh_writes_typed_values_a_bold_frozen_header_and_a_stamp(h):
    rows = [movie(1, title="007"), movie(2, title="=1+1"), movie(3, title="+44 20"), movie(4, title="-x"),
            movie(5, title="@here")]
    report = h.sync(rows)
    assert (report.inserted, report.write_calls, report.created_tab) == (5, 1, True)
    grid = h.srv.grid(h.sid, TAB)
    assert grid[0] == [c.name for c in COLUMNS]
    assert owned_by_key(h) == expected_owned(rows)
    title = h.column("Title")
    for r in range(1, 6):  # text stays text: no formula, leading zeros kept
        assert "stringValue" in h.srv.cell(h.sid, TAB, r, title)["userEnteredValue"]
    assert not any("formulaValue" in (h.srv.cell(h.sid, TAB, r, c).get("userEnteredValue") or {})
                   for r in range(6) for c in range(6))
    cell = h.srv.cell(h.sid, TAB, 1, h.column("Shoot start"))
    assert cell["userEnteredFormat"]["numberFormat"] == spreadsheet_number_format("date", {"date": "%b %d, %Y"})
    assert cell["formattedValue"] == "Jan 02, 2024"
    assert h.srv.cell(h.sid, TAB, 1, h.column("Updated"))["userEnteredFormat"]["numberFormat"]["type"] == "DATE_TIME"
    assert h.srv.cell(h.sid, TAB, 1, h.column("Budget"))["userEnteredFormat"]["numberFormat"]["type"] == "CURRENCY"
    assert h.srv.cell(h.sid, TAB, 2, h.column("Active"))["userEnteredValue"] == {"boolValue": True}
    assert h.srv.cell(h.sid, TAB, 1, 0)["userEnteredValue"] == {"numberValue": 1.0}
    formats = h.srv.formats(h.sid, TAB)
    assert all(formats[(0, c)]["textFormat"]["bold"] for c in range(len(COLUMNS)))
    assert h.srv.frozen_rows(h.sid, TAB) == 1
    notes = h.srv.notes(h.sid, TAB)
    assert list(notes) == [(0, 0)] and notes[(0, 0)].startswith("Refreshed by Genesis at ")


def test_unchanged_result_makes_no_write_call(h):
    rows = [movie(i) for i in range(1, 30)]
    h.sync(rows)
    h.srv.clear_log()
    report = h.sync(rows)
    assert (report.read_calls, report.write_calls, report.unchanged) == (1, 0, 29)
    assert [e.kind for e in h.genesis_calls() if e.kind != "token"] == ["read"]


def test_dry_run_reads_and_plans_but_writes_nothing(h):
    h.sync([movie(1), movie(2)])
    report = h.sync([movie(1, title="new"), movie(3)], dry_run=True)
    assert (report.updated, report.inserted, report.deleted, report.write_calls) == (1, 1, 1, 0)
    assert owned_by_key(h) == expected_owned([movie(1), movie(2)])


# --------------------------------------------------------------------------- the scenario

def annotate(h: Harness, sid: str | None = None) -> None:
    """A person adds a notes column, writes notes, re-sorts, inserts a blank row, deletes a row."""
    sh = h.person(sid)
    ws = sh.worksheet(TAB)
    notes_col = len(COLUMNS) + 1
    ws.update([["Notes"]], gspread.utils.rowcol_to_a1(1, notes_col))
    for key, text in [(2, "call the line producer"), (4, "=not a formula"), (6, "budget approved")]:
        ws.update([[text]], gspread.utils.rowcol_to_a1(h.row_number(key, sid), notes_col))
    ws.update_note(gspread.utils.rowcol_to_a1(h.row_number(7, sid), 2), "title under review")
    ws.sort((2, "des"))  # by Title, descending: every row moves
    sh.batch_update({"requests": [{"insertDimension": {"range": {
        "sheetId": ws.id, "dimension": "ROWS", "startIndex": 3, "endIndex": 4}, "inheritFromBefore": True}}]})
    ws.delete_rows(h.row_number(8, sid))


def people_state(h: Harness, sid: str | None = None) -> dict:
    """Every person's note and cell note, by the key of its row."""
    sid = sid or h.sid
    grid = h.srv.grid(sid, TAB)
    notes_col = grid[0].index("Notes")
    id_col = grid[0].index("Movie ID")
    state = {}
    for row in grid[1:]:
        if len(row) > id_col and row[id_col] is not None and len(row) > notes_col and row[notes_col]:
            state[("Notes", row[id_col])] = row[notes_col]
    for (r, c), text in h.srv.notes(sid, TAB).items():
        if r > 0:
            state[("note", grid[r][id_col], grid[0][c])] = text
    return state


INITIAL = [movie(i) for i in range(1, 9)]
CHANGED = ([movie(1, title="Movie 01 (renamed)"), movie(3, budget="9999.99"), movie(4), movie(6), movie(8)]
           + [movie(9), movie(10)])  # 2, 5, 7 left; 2 and 7 are annotated


def test_people_annotate_resort_insert_and_delete_rows_then_the_data_changes(h):
    h.sync(INITIAL)
    annotate(h)
    before = people_state(h)
    assert before == {("Notes", 2.0): "call the line producer", ("Notes", 4.0): "=not a formula",
                      ("Notes", 6.0): "budget approved", ("note", 7.0, "Title"): "title under review"}
    h.srv.clear_log()

    report = h.sync(CHANGED)

    assert (report.updated, report.inserted, report.deleted, report.marked) == (2, 3, 1, 2)
    assert people_state(h) == before  # every note still beside its row
    owned = owned_by_key(h)
    expected = expected_owned(CHANGED)
    assert {k: v for k, v in owned.items() if k in expected} == expected
    assert set(owned) == set(expected) | {2, 7}  # 5 deleted; 2 and 7 annotated: kept
    status = {int(r["Movie ID"]): r.get(STATUS_COLUMN) for r in h.table() if "Movie ID" in r}
    assert status == {k: (STATUS_REMOVED if k in (2, 7) else None) for k in owned}
    assert {} in h.table()  # the person's blank row is theirs
    assert h.srv.frozen_rows(h.sid, TAB) == 1
    calls = [e for e in h.genesis_calls() if e.kind != "token"]
    assert [e.kind for e in calls] == ["read", "write"]  # one read, one atomic write
    assert set(calls[1].requests) <= {"appendDimension", "updateCells", "repeatCell", "deleteDimension",
                                      "deleteDeveloperMetadata", "createDeveloperMetadata"}  # + the lease

    h.srv.clear_log()
    again = h.sync(CHANGED)
    assert (again.write_calls, again.unchanged) == (0, 7)
    back = h.sync(CHANGED + [movie(2)])  # a removed key comes back: unmarked, note still there
    assert (back.unmarked, back.write_calls) == (1, 1)
    assert people_state(h) == before
    assert {int(r["Movie ID"]): r.get(STATUS_COLUMN) for r in h.table() if "Movie ID" in r}[2] is None


def test_columns_are_found_wherever_people_moved_them(h):
    h.sync(INITIAL)
    sh = h.person()
    ws = sh.worksheet(TAB)
    ws.insert_cols([["Priority", "high"]], col=1)  # everything shifts right
    sh.batch_update({"requests": [{"moveDimension": {  # Title moved to the far right
        "source": {"sheetId": ws.id, "dimension": "COLUMNS", "startIndex": 2, "endIndex": 3},
        "destinationIndex": 7}}]})
    header = h.srv.grid(h.sid, TAB)[0]
    assert header == ["Priority", "Movie ID", "Budget", "Shoot start", "Active", "Updated", "Title"]
    changed = [movie(i, title=f"T{i}") for i in range(1, 9)]
    h.sync(changed)
    assert owned_by_key(h) == expected_owned(changed)
    assert h.table()[0]["Priority"] == "high"

    wider = COLUMNS + (OutputColumn("Country", "varchar"),)
    rows = [dict(r, Country="US") for r in changed]
    h.sync(result_of(rows, wider))
    assert h.srv.grid(h.sid, TAB)[0][-1] == "Country"  # a new owned column goes right of everything
    assert all(r["Country"] == "US" for r in h.table())
    assert h.srv.formats(h.sid, TAB)[(0, 7)]["textFormat"]["bold"]


def test_a_changed_format_rewrites_the_number_formats_only_where_needed(h):
    h.sync(INITIAL)
    columns = tuple(OutputColumn(c.name, c.type, {"date": "%Y/%m/%d"}) if c.name == "Shoot start" else c
                    for c in COLUMNS)
    report = h.sync(result_of(INITIAL, columns))
    assert report.updated == len(INITIAL)
    col = h.column("Shoot start")
    assert {h.srv.cell(h.sid, TAB, r, col)["formattedValue"] for r in (1, 2)} == {"2024/01/02", "2024/01/03"}
    writes = h.genesis_calls("write")
    h.srv.clear_log()
    assert h.sync(result_of(INITIAL, columns)).write_calls == 0
    assert len(writes) == 2


@pytest.mark.parametrize("policy", ["mark", "keep"])
def test_removed_rows_policy(h, policy):
    h.sync(INITIAL)
    report = h.sync(INITIAL[:5], on_removed=policy)
    assert report.deleted == 0
    keys = sorted(int(r["Movie ID"]) for r in h.table())
    assert keys == list(range(1, 9))
    status = {int(r["Movie ID"]): r.get(STATUS_COLUMN) for r in h.table()}
    marked = {k for k, v in status.items() if v == STATUS_REMOVED}
    assert marked == ({6, 7, 8} if policy == "mark" else set())


def test_replace_makes_the_owned_block_exact_and_keeps_notes(h):
    h.sync(INITIAL)
    annotate(h)
    before = people_state(h)
    report = h.sync(CHANGED, mode="replace")
    assert report.deleted == 2  # key 5 and the person's blank row
    assert {} not in h.table()
    assert people_state(h) == before
    with pytest.raises(GenesisError, match="cannot keep removed rows"):
        h.sync(CHANGED, mode="replace", on_removed="keep")


def test_append_only_adds_rows(h):
    h.sync(INITIAL[:3])
    report = h.sync([movie(1, title="ignored"), movie(4)], mode="append")
    assert (report.inserted, report.updated, report.deleted) == (1, 0, 0)
    assert owned_by_key(h) == expected_owned(INITIAL[:4])


# --------------------------------------------------------------------------- errors before writing

def test_duplicate_keys_in_the_destination_fail_before_any_write(h):
    h.sync(INITIAL[:3])
    ws = h.person().worksheet(TAB)
    ws.append_rows([[2, "copy of 2"]])
    h.srv.clear_log()
    with pytest.raises(GenesisError, match=r"duplicate keys: Movie ID=2.0 \(rows 3, 5\)"):
        h.sync(INITIAL[:3])
    assert not h.genesis_calls("write")


def test_a_column_twice_in_the_header_fails_before_any_write(h):
    h.sync(INITIAL[:3])
    h.person().worksheet(TAB).update([["Title"]], "H1")
    with pytest.raises(GenesisError, match=r"column 'Title' appears more than once in the header .* \(B1, H1\)"):
        h.sync(INITIAL[:3])
    assert len(h.genesis_calls("write")) == 1


def test_duplicate_keys_in_the_result_fail_before_any_write(h):
    with pytest.raises(GenesisError, match=r"duplicate key in the result: Movie ID=3 \(2 rows\)"):
        h.sync([movie(3), movie(3, title="again")])
    assert not h.genesis_calls("write")


def test_sheets_limits_are_checked_before_writing(h):
    big = h.srv.create_spreadsheet("big", sheets=("Archive",), rows=99_990, cols=100)  # 9,999,000 cells
    with pytest.raises(GenesisError, match=r"at most 10,000,000"):
        h.sync([movie(i) for i in range(1, 200)], sid=big)
    with pytest.raises(GenesisError, match=r"at most 50,000"):
        h.sync([movie(1, title="x" * 50_001)])
    h.srv.create_spreadsheet("wide", sheets=(TAB,), rows=10, cols=18_278)
    h.person("wide").worksheet(TAB).update([["far away"]], "ZZZ1")  # column 18,278
    with pytest.raises(GenesisError, match=r"18,278"):
        h.sync(INITIAL, sid="wide")
    assert not h.genesis_calls("write")


def test_the_server_enforces_google_limits_and_parses_user_entered_text(h):
    ws = h.person().sheet1
    with pytest.raises(gspread.exceptions.APIError, match="50000 characters"):
        ws.update([["x" * 50_001]], "A1")
    with pytest.raises(gspread.exceptions.APIError, match="10000000 cells"):
        h.person().add_worksheet("huge", rows=100_000, cols=100)
    with pytest.raises(gspread.exceptions.APIError, match="exceeds grid limits"):
        ws.update([[1]], "A1001")
    ws.update([["=1+1", "007", "'=text"]], "A1", value_input_option="USER_ENTERED")
    assert h.srv.grid(h.sid, "Sheet1")[0] == [{"formula": "=1+1"}, 7.0, "=text"]
    assert ws.get("A1", value_render_option="UNFORMATTED_VALUE") == [[2]]
    ws.batch_update([{"range": "A3:B3", "values": [["=2*3", "2024-01-02"]]}], raw=False)
    got = ws.batch_get(["A3:B3"], value_render_option="UNFORMATTED_VALUE", date_time_render_option="SERIAL_NUMBER")
    assert got[0] == [[6, 45293]]
    ws.hide_columns(3, 4)  # updateDimensionProperties
    assert h.srv.calls(user=PERSON, kind="write")[-1].requests == ["updateDimensionProperties"]


def test_not_found_and_no_permission_name_the_service_account(h):
    with pytest.raises(GenesisError, match="was not found") as err:
        h.sync(INITIAL, sid="no-such-sheet")
    assert GENESIS in err.value.hint
    h.srv.create_spreadsheet("private", shared_with={PERSON})
    with pytest.raises(GenesisError, match=f"the service account {GENESIS} has no access") as err:
        h.sync(INITIAL, sid="private")
    assert "share the spreadsheet" in err.value.hint


def test_key_must_be_an_output_column(h):
    with pytest.raises(GenesisError, match="key column 'movie_id' is not an output column"):
        h.sync(INITIAL, key=["movie_id"])


# --------------------------------------------------------------------------- size of the writes

def test_a_large_change_is_split_into_bodies_under_the_limit(h):
    rows = [movie(i) for i in range(1, 301)]
    limit = 12_000
    report = h.sync(rows, max_request_bytes=limit)
    writes = h.genesis_calls("write")
    assert len(writes) == report.write_calls > 1
    assert all(e.request_bytes <= limit for e in writes)
    assert report.write_calls <= math.ceil(report.payload_bytes / limit) + 1
    assert owned_by_key(h) == expected_owned(rows)
    assert MAX_REQUEST_BYTES == 2_000_000


# --------------------------------------------------------------------------- rate limits and faults

def test_a_429_storm_is_retried_with_backoff(h):
    h.srv.fail_next(6, status=429)
    report = h.sync(INITIAL)
    assert report.retries == 6
    assert len(h.srv.calls(status=429)) == 6
    assert owned_by_key(h) == expected_owned(INITIAL)


def test_the_per_user_write_quota_answers_429_until_the_window_ends(h):
    h.srv.write_quota, h.srv.window_seconds = 2, 0.4
    rows = [movie(i) for i in range(1, 121)]
    report = h.sync(rows, max_request_bytes=6_000)
    assert report.write_calls > 3 and h.srv.calls(user=GENESIS, status=429)
    assert owned_by_key(h) == expected_owned(rows)


def test_writes_are_paced_under_the_quota(h):
    h.srv.write_quota, h.srv.window_seconds = 3, 0.3
    policy = RetryPolicy(base_seconds=0.01, writes_per_minute=3, window_seconds=0.5)  # slack over the server
    rows = [movie(i) for i in range(1, 121)]
    report = h.sync(rows, max_request_bytes=6_000, retry=policy)
    assert report.write_calls > 3 and not h.srv.calls(status=429)


def test_a_slow_response_times_out_and_is_retried(h):
    h.srv.slow(2.0, n=1, kind="read")  # a normal answer comes well within the timeout, even under load
    report = h.sync(INITIAL, retry=RetryPolicy(base_seconds=0.01, request_timeout=0.7, writes_per_minute=100_000))
    assert report.retries == 1 and report.read_calls == 3  # timed out, tab lookup, metadata
    assert owned_by_key(h) == expected_owned(INITIAL)


def test_retry_after_is_honoured(h):
    h.srv.retry_after = 0.3
    h.srv.fail_next(1, status=429)
    started = time.monotonic()
    h.sync(INITIAL[:2])
    assert time.monotonic() - started >= 0.3


def test_a_refresh_that_keeps_failing_stops_at_the_deadline(h):
    h.srv.fail_next(10_000, status=503)
    started = time.monotonic()
    with pytest.raises(GenesisError, match=r"gave up before the deadline of 0.5 s.*google_sheets.deadline_seconds"):
        h.sync(INITIAL, deadline_seconds=0.5)
    assert time.monotonic() - started < 2
    assert not h.genesis_calls("write")


def setup_annotated(h: Harness, sid: str) -> None:
    h.sync(INITIAL + [movie(i) for i in range(20, 40)], sid=sid)
    annotate(h, sid)


BIG_CHANGE = ([movie(i, title=f"Changed {i}") for i in (1, 3, 4, 6, 8)]
              + [movie(i) for i in range(20, 40) if i % 3] + [movie(i) for i in range(50, 80)])


def comparable(h: Harness, sid: str) -> tuple:
    """Grid and notes, without the refresh stamp."""
    notes = {k: v for k, v in h.srv.notes(sid, TAB).items() if k[0] > 0}
    return h.srv.grid(sid, TAB), notes


def clean_run(h: Harness) -> tuple:
    h.srv.create_spreadsheet("clean")
    setup_annotated(h, "clean")
    h.sync(BIG_CHANGE, sid="clean", max_request_bytes=4_000)
    return comparable(h, "clean")


@pytest.mark.parametrize("applied", [False, True], ids=["503-not-applied", "503-after-applying"])
def test_a_503_mid_write_converges_to_the_clean_state(h, applied):
    clean = clean_run(h)
    setup_annotated(h, h.sid)
    h.srv.fail_write(2, status=503, apply=applied)
    report = h.sync(BIG_CHANGE, max_request_bytes=4_000)
    assert report.retries >= 1 and report.read_calls == 2  # read again and re-planned, never re-sent blind
    assert comparable(h, h.sid) == clean  # no lost note, no duplicated row


SUBPROCESS = """
import json, sys
import pyarrow.parquet as pq
from genesis.destinations.sheets import RetryPolicy, sync_google_sheet
from genesis.result import OutputColumn, QueryResult
args = json.load(open(sys.argv[1]))
columns = tuple(OutputColumn(**c) for c in args["columns"])
result = QueryResult(columns, pq.read_table(args["parquet"]))
sync_google_sheet(result, retry=RetryPolicy(base_seconds=0.01), **args["kwargs"])
"""


def test_a_process_killed_between_two_writes_then_rerun_equals_a_clean_run(h, tmp_path):
    clean = clean_run(h)
    setup_annotated(h, h.sid)
    notes = people_state(h)
    result = result_of(BIG_CHANGE)
    pq.write_table(result.table, tmp_path / "result.parquet")
    args = {"parquet": str(tmp_path / "result.parquet"),
            "columns": [{"name": c.name, "type": c.type, "format": c.format} for c in COLUMNS],
            "kwargs": dict(spreadsheet_id=h.sid, worksheet=TAB, key=["Movie ID"], mode="upsert",
                           on_removed="delete", credentials_file=h.genesis_sa, endpoint=h.srv.url,
                           max_request_bytes=4_000)}
    (tmp_path / "args.json").write_text(json.dumps(args))
    (tmp_path / "run.py").write_text(SUBPROCESS)
    hold = h.srv.hold_write(2)
    proc = subprocess.Popen([sys.executable, str(tmp_path / "run.py"), str(tmp_path / "args.json")], cwd=ROOT)
    try:
        assert hold.arrived.wait(30), "the second write never came"
        proc.kill()
        proc.wait(10)
    finally:
        hold.release(apply=False)  # the killed process's write never lands
    assert comparable(h, h.sid) != clean  # half done
    assert len([e for e in h.genesis_calls("write") if e.status == 200]) >= 3  # setup 1 + first write

    h.sync(BIG_CHANGE, max_request_bytes=4_000)

    assert comparable(h, h.sid) == clean
    assert {k: v for k, v in people_state(h).items() if k[1] != 5.0} == notes


# --------------------------------------------------------------------------- secrets

def test_secrets_never_reach_messages_or_logs(h, caplog, capsys, private_key, tmp_path):
    caplog.set_level(logging.DEBUG)
    h.sync(INITIAL)
    h.srv.fail_next(1, status=503)
    h.sync(INITIAL[:4])
    messages = []
    for sid in ("missing", h.sid):
        try:
            if sid == h.sid:
                h.srv.token_error = "invalid_grant"
            h.sync(INITIAL, sid=sid)
        except GenesisError as err:
            messages.append(err.render())
    broken = json.loads(Path(h.genesis_sa).read_text())
    broken["private_key"] = broken["private_key"].replace("MII", "XX", 1)
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    try:
        h.sync(INITIAL, credentials_file=str(tmp_path / "broken.json"))
    except GenesisError as err:
        messages.append(err.render())
    assert len(messages) == 3 and "could not get an access token" in messages[1]
    out = capsys.readouterr()
    text = "\n".join([caplog.text, out.out, out.err, *messages])
    key_lines = [line for line in private_key.splitlines() if "PRIVATE KEY" not in line]
    assert not any(line in text for line in key_lines)
    assert h.srv.tokens and not any(token in text for token in h.srv.tokens)


def test_a_result_too_large_for_a_spreadsheet_is_refused_from_its_shape_before_any_call(h):
    columns = tuple(OutputColumn("Movie ID" if i == 0 else f"c{i}", "bigint") for i in range(201))
    ids = pa.array(range(50_000), pa.int64())
    table = pa.Table.from_arrays([ids] * 201, names=[c.name for c in columns])
    started = time.monotonic()
    with pytest.raises(GenesisError, match=r"50,001 rows x 201 columns = 10,050,201 cells; a spreadsheet holds at most"):
        h.sync(QueryResult(columns, table))
    assert time.monotonic() - started < 10  # it took 54 s and 6.7 GB when checked after building
    assert h.genesis_calls() == []  # refused before reading the tab, before building anything


def test_an_oversized_cell_is_refused_from_the_column_before_any_call(h):
    rows = [movie(i) for i in range(1, 4)]
    rows[1]["Title"] = "x" * 50_001
    with pytest.raises(GenesisError, match=r"column 'Title' of the row Movie ID=2 holds 50,001 characters"):
        h.sync(rows)
    assert h.genesis_calls() == []
