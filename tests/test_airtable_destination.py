"""The Airtable destination through the real pyairtable client against a local Airtable.

Scenario tests: refresh, people annotate, the data changes, refresh again: every note is
still with its record, the owned fields equal the new result, and the request log shows
only the calls needed. Fault tests: 429 storms, 503s mid-write, a process killed between
two writes, a deadline; each followed by a re-run that must converge to a clean run.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
import requests

from genesis.destinations import airtable
from genesis.destinations.airtable import Settings, sync_airtable
from genesis.destinations.sync import STATUS_COLUMN, STATUS_REMOVED
from genesis.errors import GenesisError
from genesis.result import OutputColumn, QueryResult
from tests.servers.airtable_server import AirtableServer

BASE = "appGenesisTest01"
TOKEN = "patSECRET.abc123-never-log-me"
ROOT = Path(__file__).resolve().parents[1]
FAST = Settings(requests_per_second=1000, penalty_seconds=0.25, backoff_seconds=0.01,
                max_backoff_seconds=0.05)

COLUMNS = (
    OutputColumn("movie_id", "bigint", None, "movie.movie_id"),
    OutputColumn("Title", "varchar", None, "movie.title"),
    OutputColumn("Budget", "decimal(18,2)", {"number": "#,##0", "prefix": "$"}),
    OutputColumn("Share", "double", {"percent": 1}),
    OutputColumn("Launch", "date", {"date": "%b %d, %Y"}),
    OutputColumn("Updated", "timestamp with time zone"),
    OutputColumn("Active", "boolean"),
    OutputColumn("Cast", "array(varchar)"),
)


def make_result(n: int, changed=(), removed=(), added: int = 0, title_prefix: str = "Movie") -> QueryResult:
    """Rows 0..n-1 minus `removed`, plus `added` new keys from 1000; `changed` rows differ."""
    ids = [i for i in range(n) if i not in set(removed)] + list(range(1000, 1000 + added))
    changed = set(changed)

    def title(i):
        return f"{title_prefix} {i}" + (" (v2)" if i in changed else "")

    table = pa.table({
        "movie_id": pa.array(ids, pa.int64()),
        "Title": [title(i) for i in ids],
        "Budget": pa.array([Decimal(i * 1000 + (7 if i in changed else 0)) / 4 for i in ids], pa.decimal128(18, 2)),
        "Share": [i / 1000 for i in ids],
        "Launch": pa.array([dt.date(2025, 1, 1) + dt.timedelta(days=i % 300) for i in ids], pa.date32()),
        "Updated": pa.array([dt.datetime(2025, 3, 1, 12, 30, 15, 250000, tzinfo=dt.UTC)
                             + dt.timedelta(minutes=i) for i in ids], pa.timestamp("us", tz="UTC")),
        "Active": [i % 2 == 0 for i in ids],
        "Cast": [[f"Actor {i}", "Ann Lee"] if i % 3 else [] for i in ids],
    })
    return QueryResult(COLUMNS, table)


@pytest.fixture(autouse=True)
def fast(monkeypatch):
    monkeypatch.setattr(airtable, "SETTINGS", FAST)


@pytest.fixture
def server():
    with AirtableServer(TOKEN, requests_per_second=1000, penalty_seconds=0.25) as srv:
        yield srv


def sync(server, result, table="Movies", **kw):
    kw.setdefault("key", ["movie_id"])
    return sync_airtable(result, base_id=kw.pop("base", BASE), table=table, token=TOKEN,
                         endpoint=server.url, **kw)


def by_key(server, table="Movies", base=BASE):
    out = {}
    for record in server.records(base, table):
        k = record["fields"].get("movie_id")
        assert k not in out, f"duplicate record for key {k}"
        out[k] = record["fields"]
    return out


def owned(fields):
    return {c.name: fields.get(c.name) for c in COLUMNS}


def expected_owned(result: QueryResult) -> dict:
    """What the owned fields must hold, written independently of the module's encoders."""
    out = {}
    for row in result.table.to_pylist():
        cast = ", ".join(row["Cast"]) or None
        out[row["movie_id"]] = {
            "movie_id": row["movie_id"], "Title": row["Title"],
            "Budget": float(row["Budget"]) if row["Budget"] % 1 else int(row["Budget"]),
            "Share": row["Share"],
            "Launch": row["Launch"].isoformat(),
            "Updated": row["Updated"].strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "Active": True if row["Active"] else None, "Cast": cast,
        }
    return out


def clean_state(server, table="Movies"):
    """Records without ids and times, sorted by key: what two runs must agree on."""
    return sorted(json.dumps(r["fields"], sort_keys=True) for r in server.records(BASE, table))


def max_in_window(times, window=1.0):
    times = sorted(times)
    return max((sum(1 for u in times if t - window < u <= t) for t in times), default=0)


# ---------------------------------------------------------------------------------------
# Scenario
# ---------------------------------------------------------------------------------------


def test_first_refresh_creates_typed_fields_and_writes_only_batches(server):
    server.add_table(BASE, "Movies", [{"name": "movie_id", "type": "number", "options": {"precision": 0}}])
    result = make_result(25)
    report = sync(server, result)

    assert (report.inserted, report.updated, report.deleted) == (25, 0, 0)
    assert report.read_calls == 1 and report.write_calls == 3  # ceil(25 / 10)
    assert {w.records for w in server.calls("write")} == {10, 5}
    assert server.field_types(BASE, "Movies") == {
        "movie_id": "number", "Title": "singleLineText", "Budget": "currency", "Share": "percent",
        "Launch": "date", "Updated": "dateTime", "Active": "checkbox", "Cast": "singleLineText",
    }
    assert server.field_options(BASE, "Movies", "Budget") == {"precision": 0, "symbol": "$"}
    assert server.field_options(BASE, "Movies", "Share") == {"precision": 1}
    assert server.field_options(BASE, "Movies", "Launch")["dateFormat"]["name"] == "friendly"
    assert server.field_options(BASE, "Movies", "Updated")["timeZone"] == "utc"
    assert report.fields_created == ("Title", "Budget", "Share", "Launch", "Updated", "Active", "Cast")
    assert {k: owned(v) for k, v in by_key(server).items()} == expected_owned(result)
    for write in server.calls("write"):
        assert write.body["performUpsert"] == {"fieldsToMergeOn": ["movie_id"]}
        assert write.body["typecast"] is False


def test_unchanged_result_makes_no_write_and_no_schema_call(server):
    server.add_table(BASE, "Movies", [{"name": "movie_id", "type": "number", "options": {"precision": 0}}])
    sync(server, make_result(30))
    server.reset_log()

    report = sync(server, make_result(30))

    assert report.unchanged == 30 and report.write_calls == 0 and report.meta_calls == 0
    assert [(r.method, r.kind) for r in server.log] == [("GET", "read")]
    assert server.log[0].query["pageSize"] == ["100"]


def test_notes_stay_with_their_records_through_updates_inserts_and_removals(server):
    server.add_table(BASE, "Movies", [{"name": "movie_id", "type": "number", "options": {"precision": 0}}])
    sync(server, make_result(30))
    ids = {f["movie_id"]: r["id"] for r in server.records(BASE, "Movies") for f in [r["fields"]]}
    notes = {k: f"note on {k}" for k in (1, 4, 7, 20, 21)}
    for k, text in notes.items():
        server.person_set(BASE, "Movies", ids[k], "Notes", text)
    server.person_set(BASE, "Movies", ids[4], "Priority", "high")
    server.person_comment(BASE, "Movies", ids[22], "keep this one")
    # A person re-sorts nothing we care about, but edits an owned cell by mistake:
    server.person_set(BASE, "Movies", ids[9], "Title", "typo")
    server.reset_log()

    # Updates 1, 2, 3, 4, 5; new keys 1000..1002; removed 20, 21 (notes), 22 (comment), 23, 24.
    result = make_result(30, changed={1, 2, 3, 4, 5}, removed={20, 21, 22, 23, 24}, added=3)
    report = sync(server, result)

    assert (report.inserted, report.updated, report.deleted, report.marked) == (3, 6, 2, 3)
    rows = by_key(server)
    assert set(rows) == set(range(30)) - {23, 24} | {1000, 1001, 1002}
    for k, text in notes.items():
        assert rows[k]["Notes"] == text
    assert rows[4]["Priority"] == "high"
    assert {k for k, f in rows.items() if f.get(STATUS_COLUMN) == STATUS_REMOVED} == {20, 21, 22}
    want = expected_owned(result)
    assert {k: owned(rows[k]) for k in want} == want
    # 1 read; schema (removed records carry person fields: are they computed?) + status
    # field creation; ceil((6 updates + 3 inserts + 3 marks) / 10) upserts + 1 delete.
    assert [r.kind for r in server.log].count("read") == 1
    assert [(r.method, r.path.rsplit("/", 1)[-1]) for r in server.calls("meta")] == [
        ("GET", "tables"), ("POST", "fields")]
    assert [(w.method, w.records) for w in server.calls("write")] == [("PATCH", 10), ("PATCH", 2), ("DELETE", 2)]
    assert report.write_calls == 3 and report.read_calls == 1

    # Unchanged again: nothing to write; and a removed key that comes back is unmarked.
    server.reset_log()
    assert sync(server, result).write_calls == 0
    back = make_result(30, changed={1, 2, 3, 4, 5}, removed={22, 23, 24}, added=3)
    report = sync(server, back)
    assert (report.unmarked, report.updated, report.write_calls) == (2, 0, 1)
    rows = by_key(server)
    assert STATUS_COLUMN not in rows[20] and rows[20]["Notes"] == "note on 20"
    assert rows[22][STATUS_COLUMN] == STATUS_REMOVED


def test_missing_table_is_created_with_the_key_as_primary_field(server):
    server.add_table(BASE, "Other")
    report = sync(server, make_result(3), table="Brand new")
    table = server.table(BASE, "Brand new")
    assert table.fields[0].name == "movie_id"
    assert report.inserted == 3 and "movie_id" in report.fields_created


def test_pagination_reads_pages_of_100(server):
    server.add_table(BASE, "Movies", [{"name": "movie_id", "type": "number", "options": {"precision": 0}}])
    report = sync(server, make_result(250))
    assert report.write_calls == 25
    server.reset_log()
    report = sync(server, make_result(250, changed={5}))
    assert (report.read_calls, report.write_calls, report.updated) == (3, 1, 1)
    assert [r.query.get("pageSize") for r in server.calls("read")] == [["100"]] * 3


def test_formula_like_text_is_written_as_text(server):
    server.add_table(BASE, "Movies", [{"name": "movie_id", "type": "number", "options": {"precision": 0}}])
    titles = ["=1+1", "+SUM(A1)", "-3", "@me", "=HYPERLINK(\"x\")"]
    result = make_result(5)
    result = QueryResult(COLUMNS, result.table.set_column(1, "Title", pa.array(titles)))
    sync(server, result)
    assert [by_key(server)[i]["Title"] for i in range(5)] == titles
    assert all(w.body["typecast"] is False for w in server.calls("write"))


def test_modes_and_removed_policies(server):
    for name in ("Append", "Mark", "Keep", "Replace"):
        server.add_table(BASE, name, [{"name": "movie_id", "type": "number", "options": {"precision": 0}}])
        sync(server, make_result(10), table=name)
    changed = make_result(10, changed={1}, removed={8, 9}, added=1)

    report = sync(server, changed, table="Append", mode="append")
    assert (report.inserted, report.updated, report.deleted) == (1, 0, 0)
    assert by_key(server, "Append")[1]["Title"] == "Movie 1" and 9 in by_key(server, "Append")

    report = sync(server, changed, table="Mark", on_removed="mark")
    assert (report.marked, report.deleted) == (2, 0)
    assert by_key(server, "Mark")[9][STATUS_COLUMN] == STATUS_REMOVED

    report = sync(server, changed, table="Keep", on_removed="keep")
    assert (report.kept, report.deleted, report.marked) == (2, 0, 0)
    assert STATUS_COLUMN not in by_key(server, "Keep")[9]

    # replace: a person's keyless record holding only owned values goes, an annotated one
    # keeps its note with owned cells cleared.
    bare = server.person_add(BASE, "Replace", {"Title": "stray"})
    noted = server.person_add(BASE, "Replace", {"Title": "stray 2"})
    server.person_set(BASE, "Replace", noted, "Notes", "mine")
    report = sync(server, changed, table="Replace", mode="replace")
    remaining = {r["id"]: r["fields"] for r in server.records(BASE, "Replace")}
    assert bare not in remaining and remaining[noted] == {"Notes": "mine"}
    assert report.deleted == 3 and report.updated == 2


def test_composite_keys_match_on_every_key_field(server):
    cols = (OutputColumn("movie_id", "bigint"), OutputColumn("country", "varchar"),
            OutputColumn("Gross", "double", {"number": "#,##0.0", "prefix": "€"}))

    def result(gross):
        return QueryResult(cols, pa.table({"movie_id": pa.array([1, 1, 2], pa.int64()),
                                           "country": ["US", "CA", "US"], "Gross": gross}))

    server.add_table(BASE, "Other")  # the base exists; Genesis creates the table
    sync(server, result([1.5, 2.5, 3.5]), key=["movie_id", "country"])
    assert server.field_options(BASE, "Movies", "Gross") == {"precision": 1, "symbol": "€"}
    report = sync(server, result([1.5, 9.0, 3.5]), key=["movie_id", "country"])
    assert (report.updated, report.unchanged, report.write_calls) == (1, 2, 1)
    rows = {(f["movie_id"], f["country"]): f["Gross"] for f in server.rows(BASE, "Movies")}
    assert rows == {(1, "US"): 1.5, (1, "CA"): 9.0, (2, "US"): 3.5}


def test_duplicate_keys_are_an_error_before_any_write(server):
    server.add_table(BASE, "Movies", [{"name": "movie_id", "type": "number", "options": {"precision": 0}}])
    doubled = make_result(4)
    doubled = QueryResult(COLUMNS, pa.concat_tables([doubled.table, doubled.table.slice(0, 1)]))
    with pytest.raises(GenesisError, match="duplicate key in the result: movie_id=0"):
        sync(server, doubled)
    assert server.calls("write") == []

    sync(server, make_result(4))
    server.person_add(BASE, "Movies", {"movie_id": 2, "Title": "copy"})
    server.reset_log()
    with pytest.raises(GenesisError, match="destination holds duplicate keys: movie_id=2"):
        sync(server, make_result(4, changed={1}))
    assert [r.kind for r in server.log] == ["read"]


def test_computed_fields_are_not_annotations(server):
    server.add_table(BASE, "Movies", [{"name": "movie_id", "type": "number", "options": {"precision": 0}},
                                      {"name": "Row", "type": "autoNumber"},
                                      {"name": "Created", "type": "createdTime"}])
    sync(server, make_result(5))
    report = sync(server, make_result(5, removed={3, 4}))
    assert (report.deleted, report.marked) == (2, 0)
    assert report.meta_calls == 1  # the schema, to learn that Row and Created are computed


def test_dry_run_reads_and_plans_but_writes_nothing(server):
    server.add_table(BASE, "Movies", [{"name": "movie_id", "type": "number", "options": {"precision": 0}}])
    sync(server, make_result(10))
    before = clean_state(server)
    server.reset_log()
    report = sync(server, make_result(10, changed={1}, removed={2}, added=1), dry_run=True)
    assert (report.inserted, report.updated, report.deleted, report.dry_run) == (1, 1, 1, True)
    assert report.write_calls == 0 and clean_state(server) == before


def test_field_type_mismatch_is_a_clear_error(server):
    server.add_table(BASE, "Movies", [{"name": "movie_id", "type": "number", "options": {"precision": 0}},
                                      {"name": "Title", "type": "number", "options": {"precision": 0}}])
    with pytest.raises(GenesisError, match="INVALID_VALUE_FOR_COLUMN: Field \"Title\" cannot accept"):
        sync(server, make_result(3))


def test_token_never_reaches_messages_or_logs(server, caplog):
    caplog.set_level(logging.DEBUG)
    server.add_table(BASE, "Movies", [{"name": "movie_id", "type": "number", "options": {"precision": 0}}])
    sync(server, make_result(3))
    server.fail_next(20, status=503)
    with pytest.raises(GenesisError) as failed:
        sync(server, make_result(3, changed={1}))
    with pytest.raises(GenesisError) as denied:
        sync_airtable(make_result(3), base_id=BASE, table="Movies", key=["movie_id"],
                      token=TOKEN + "x", endpoint=server.url)
    assert "401" in str(denied.value) and "token" in denied.value.render()
    texts = [caplog.text, failed.value.render(), denied.value.render(), repr(denied.value)]
    assert not any(TOKEN in t or "abc123" in t for t in texts)


# ---------------------------------------------------------------------------------------
# Rate limits
# ---------------------------------------------------------------------------------------


def test_two_trackers_on_one_base_stay_under_five_requests_per_second(monkeypatch):
    monkeypatch.setattr(airtable, "SETTINGS", Settings(penalty_seconds=0.5, backoff_seconds=0.01))
    with AirtableServer(TOKEN, requests_per_second=5, penalty_seconds=0.5) as srv:
        for name in ("A", "B"):
            srv.add_table(BASE, name, [{"name": f.name, "type": t, "options": o} for f, (t, o) in zip(
                COLUMNS[:2], [("number", {"precision": 0}), ("singleLineText", None)])])
        small = QueryResult(COLUMNS[:2], make_result(60).table.select(["movie_id", "Title"]))
        reports = {}
        threads = [threading.Thread(target=lambda n=n: reports.__setitem__(n, sync(srv, small, table=n)))
                   for n in ("A", "B")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert reports["A"].inserted == reports["B"].inserted == 60
        assert [r for r in srv.log if r.status == 429] == []
        # each: 1 read, 1 schema (an empty table shows no fields), 6 writes
        assert len(srv.log) == 16 and max_in_window([r.time for r in srv.log]) <= 5


def test_a_429_makes_the_client_wait_out_the_penalty(monkeypatch):
    # The server allows 2 requests/s; the client believes 5: every burst earns a 429 storm.
    monkeypatch.setattr(airtable, "SETTINGS", Settings(penalty_seconds=0.3, backoff_seconds=0.01))
    with AirtableServer(TOKEN, requests_per_second=2, penalty_seconds=0.3) as srv:
        srv.add_table(BASE, "Movies", [{"name": "movie_id", "type": "number", "options": {"precision": 0}},
                                       {"name": "Title", "type": "singleLineText"}])
        small = QueryResult(COLUMNS[:2], make_result(40).table.select(["movie_id", "Title"]))
        report = sync(srv, small)
        assert report.inserted == 40 and len(by_key(srv)) == 40
        limited = [r for r in srv.log if r.status == 429]
        assert limited and report.retries == len(limited)
        for hit in limited:  # nothing is sent while the penalty runs
            during = [r for r in srv.log if hit.time < r.time < hit.time + 0.3]
            assert during == []


# ---------------------------------------------------------------------------------------
# Faults and convergence
# ---------------------------------------------------------------------------------------


def _annotated_then_changed(server, table):
    """A tracker with notes, then a second result that needs 4 write calls."""
    server.add_table(BASE, table, [{"name": "movie_id", "type": "number", "options": {"precision": 0}}])
    sync(server, make_result(40), table=table)
    for record in server.records(BASE, table):
        if record["fields"]["movie_id"] % 4 == 0:
            server.person_set(BASE, table, record["id"], "Notes", f"n{record['fields']['movie_id']}")
    return make_result(40, changed=set(range(0, 40, 3)), removed={36, 37, 38, 39}, added=12)


def test_503_mid_write_is_retried_and_converges(server):
    changed = _annotated_then_changed(server, "Clean")
    sync(server, changed, table="Clean")
    changed = _annotated_then_changed(server, "Movies")
    server.fail_write(2, status=503)
    server.fail_write(3, status=503, after_apply=True)  # applied, but the answer is lost
    report = sync(server, changed)
    assert report.retries == 2
    assert clean_state(server) == clean_state(server, "Clean")


def test_5xx_storm_fails_cleanly_then_a_rerun_converges(server):
    changed = _annotated_then_changed(server, "Clean")
    sync(server, changed, table="Clean")
    changed = _annotated_then_changed(server, "Movies")
    for k in range(2, 2 + FAST.max_retries + 1):
        server.fail_write(k, status=503)
    with pytest.raises(GenesisError, match="503"):
        sync(server, changed)
    assert len(by_key(server)) >= 40  # no duplicate (by_key checks), nothing half-written
    sync(server, changed)
    assert clean_state(server) == clean_state(server, "Clean")


def test_deadline_stops_the_refresh_and_a_rerun_converges(server):
    changed = _annotated_then_changed(server, "Clean")
    sync(server, changed, table="Clean")
    changed = _annotated_then_changed(server, "Movies")
    server.delay_seconds = 0.2
    with pytest.raises(GenesisError, match="deadline"):
        sync(server, changed, deadline_seconds=0.5)
    server.delay_seconds = 0
    sync(server, changed)
    assert clean_state(server) == clean_state(server, "Clean")


_CHILD = """
import json, sys
from genesis.destinations import airtable
from tests.test_airtable_destination import FAST, make_result
airtable.SETTINGS = FAST
args = json.loads(sys.argv[1])
result = make_result(40, changed=set(range(0, 40, 3)), removed={36, 37, 38, 39}, added=12)
airtable.sync_airtable(result, base_id=args["base"], table="Movies", key=["movie_id"],
                       token=args["token"], endpoint=args["url"])
print("finished")
"""


def test_process_killed_between_two_writes_then_rerun_converges(server):
    changed = _annotated_then_changed(server, "Clean")
    sync(server, changed, table="Clean")
    changed = _annotated_then_changed(server, "Movies")
    notes_before = {k: f["Notes"] for k, f in by_key(server).items() if "Notes" in f}
    server.reset_log()
    block = server.block_write(2)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, json.dumps({"base": BASE, "token": TOKEN, "url": server.url})],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert block.arrived.wait(20), child.communicate(timeout=5)
        child.kill()
        child.wait(10)
    finally:
        block.release(apply=False)  # the write in flight never lands
    assert len(server.calls("write")) == 1  # killed between the first and the second write
    halfway = by_key(server)  # no duplicate record even now
    assert {k: f["Notes"] for k, f in halfway.items() if "Notes" in f} == notes_before

    report = sync(server, changed)
    assert report.write_calls >= 1
    assert clean_state(server) == clean_state(server, "Clean")


# ---------------------------------------------------------------------------------------
# The server keeps Airtable's rules (so the tests above mean something)
# ---------------------------------------------------------------------------------------


def test_server_enforces_airtables_rules(server):
    server.add_table(BASE, "T", [{"name": "k", "type": "singleLineText"},
                                 {"name": "n", "type": "number", "options": {"precision": 0}}])
    url = f"{server.url}/v0/{BASE}/T"
    auth = {"Authorization": f"Bearer {TOKEN}"}

    def call(method, body=None, params=None, headers=auth):
        return requests.request(method, url, json=body, params=params, headers=headers, timeout=5)

    assert call("GET", headers={}).status_code == 401
    too_many = call("POST", {"records": [{"fields": {"k": str(i)}} for i in range(11)]})
    assert too_many.status_code == 422 and too_many.json()["error"]["type"] == "INVALID_RECORDS"
    bad = call("POST", {"records": [{"fields": {"k": "a", "n": "12"}}]})
    assert bad.status_code == 422 and bad.json()["error"]["type"] == "INVALID_VALUE_FOR_COLUMN"
    cast = call("POST", {"records": [{"fields": {"k": "a", "n": "12"}}], "typecast": True})
    assert cast.json()["records"][0]["fields"] == {"k": "a", "n": 12}
    call("POST", {"records": [{"fields": {"k": "a"}}]})  # a second "a"
    upsert = {"records": [{"fields": {"k": "a", "n": 1}}], "performUpsert": {"fieldsToMergeOn": ["k"]}}
    assert call("PATCH", upsert).status_code == 422  # two records match
    upsert["records"][0]["fields"]["k"] = "b"
    answer = call("PATCH", upsert).json()
    assert len(answer["createdRecords"]) == 1 and answer["updatedRecords"] == []
    assert call("GET", params={"pageSize": 101}).status_code == 422
    page = call("GET", params={"pageSize": 1}).json()
    assert len(page["records"]) == 1 and call("GET", params={"offset": page["offset"]}).ok


def test_server_penalty_rejects_every_request_to_the_base():
    with AirtableServer(TOKEN, requests_per_second=5, penalty_seconds=0.3) as srv:
        srv.add_table(BASE, "T")
        url, auth = f"{srv.url}/v0/{BASE}/T", {"Authorization": f"Bearer {TOKEN}"}
        statuses = [requests.get(url, headers=auth, timeout=5).status_code for _ in range(7)]
        assert statuses == [200] * 5 + [429, 429]
        time.sleep(0.35 + 1.0 - 0.35)  # the penalty and the window have passed
        assert requests.get(url, headers=auth, timeout=5).status_code == 200


def test_a_second_writers_delete_of_an_already_deleted_record_re_reads_instead_of_failing(server):
    import threading

    server.add_table(BASE, "Movies", [{"name": "movie_id", "type": "number", "options": {"precision": 0}}])
    sync(server, make_result(30))
    result = make_result(30, changed={1}, removed={23, 24, 25})
    block = server.block_write(2)  # the first writer's delete waits at the door...
    outcome = {}

    def first():
        try:
            outcome["report"] = sync(server, result)
        except Exception as err:  # noqa: BLE001 - handed to the test
            outcome["error"] = err

    thread = threading.Thread(target=first, daemon=True)
    thread.start()
    assert block.arrived.wait(30)
    second = sync(server, result)  # ...while a second refresh does the same work
    assert (second.deleted, second.replans) == (3, 0)
    block.release(apply=True)  # the first one's delete now names records that are gone
    thread.join(30)
    assert "error" not in outcome, outcome.get("error")
    report = outcome["report"]
    assert report.replans == 1 and (report.deleted, report.updated) == (0, 0)
    assert set(by_key(server)) == set(range(30)) - {23, 24, 25}
    assert by_key(server)[1]["Title"] == make_result(30, changed={1}).table.to_pylist()[1]["Title"]
