"""Run history, `genesis status`, alerts on change, freshness and `genesis audit`, end to end.

Refreshes go through the local Google Sheets and Airtable servers (real gspread and
pyairtable over HTTP), the Trino-protocol server, and a webhook receiver on 127.0.0.1 that
stands in for the alert channel (apprise posts to it over real HTTP).
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import gspread
import pytest
from click.testing import CliRunner

from genesis.cli import main
from genesis.compiler import compile_tracker
from genesis.destinations.sheets import EndpointHTTPClient, load_credentials
from genesis.monitoring.history import DEFAULT_TABLE, IcebergHistory, TrinoHistory, sql_hash
from genesis.monitoring.monitor import after_refresh
from genesis.monitoring.status import tracker_statuses
from genesis.project.config import get_target, render_settings
from genesis.project.load import load_project
from genesis.run.refresh import RefreshReport
from tests.mini_data import build_warehouse, copy_project, tables
from tests.servers.airtable_server import AirtableServer
from tests.servers.sheets_server import SheetsServer, new_private_key
from tests.servers.trino_server import TrinoProtocolServer
from tests.test_live_refresh import LIVE_TARGET

TOKEN = "pat-monitoring-secret-token"
HOOK_SECRET = "hook-secret-Zx81"
GENESIS_SA = "genesis@genesis-test.iam.gserviceaccount.com"
PERSON_SA = "person@studio.example"

CONFIG_EXTRA = LIVE_TARGET + """history:
  late_after: 30m
alerts:
  channels:
    team-hook: {type: webhook, url: "{{ env.GENESIS_TEST_HOOK_URL }}"}
  owners:
    data-team: [team-hook]
"""

SHEET_TRACKER = """name: movies-sheet
input: movie_listing
owner: data-team
schedule: "0 6 * * *"
destination: {type: google_sheets, spreadsheet_id: sheet-mon, worksheet: Movies}
key: [movie.movie_id]
mode: upsert
checks: {min_rows: 1, unique: [movie.movie_id]}
"""

AIRTABLE_TRACKER = """name: vendors-airtable
input: vendor_spend
owner: data-team
destination: {type: airtable, base_id: appMON, table: Vendors}
key: [vendor.name]
mode: upsert
"""

BROKEN_AIRTABLE_TRACKER = AIRTABLE_TRACKER + "checks:\n  min_rows: 1000\n"


class Receiver:
    """A webhook endpoint on 127.0.0.1 that keeps every JSON body posted to it."""

    def __init__(self) -> None:
        posts = self.posts = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                posts.append({"path": self.path, "body": json.loads(body or b"{}")})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/genesis/{HOOK_SECRET}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live(tmp_path, monkeypatch):
    project = copy_project(tmp_path / "p")
    build_warehouse(project)
    (project / "genesis.yaml").write_text((project / "genesis.yaml").read_text() + CONFIG_EXTRA)
    (project / "trackers" / "movies-sheet.yaml").write_text(SHEET_TRACKER)
    (project / "trackers" / "vendors-airtable.yaml").write_text(AIRTABLE_TRACKER)
    key = new_private_key()
    receiver = Receiver()
    with SheetsServer(window_seconds=60) as sheets, AirtableServer(TOKEN, requests_per_second=50) as airtable:
        sheets.create_spreadsheet("sheet-mon", title="Monitoring")
        airtable.add_table("appMON", "People's own table")
        account = sheets.write_service_account(tmp_path / "sa.json", GENESIS_SA, key)
        person = sheets.write_service_account(tmp_path / "person.json", PERSON_SA, key)
        for name, value in {"GENESIS_TEST_SA": str(account), "GENESIS_TEST_SHEETS_URL": sheets.url,
                            "GENESIS_TEST_AIRTABLE_TOKEN": TOKEN, "GENESIS_TEST_AIRTABLE_URL": airtable.url,
                            "GENESIS_TEST_HOOK_URL": receiver.url, "GITHUB_SERVER_URL": "https://github.example",
                            "GITHUB_REPOSITORY": "studio/trackers", "GITHUB_RUN_ID": "4242",
                            "GITHUB_SHA": "a" * 40}.items():
            monkeypatch.setenv(name, value)
        monkeypatch.chdir(project)
        yield {"project": project, "sheets": sheets, "airtable": airtable, "receiver": receiver,
               "person": person}
    receiver.close()


def cli(*args: str, project: Path):
    result = CliRunner().invoke(main, [*args, "--project", str(project)])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def refresh_live(project: Path, *names: str):
    result = cli("refresh", *(names or ("--all",)), "--target", "live", "--format", "json", project=project)
    return result.exit_code, json.loads(result.stdout)


def history_rows(project: Path) -> list[dict]:
    rows = IcebergHistory(project / ".genesis" / "warehouse", DEFAULT_TABLE).read().to_pylist()
    return sorted(rows, key=lambda r: (r["ended_at"], r["tracker"]))


# ------------------------------------------------------------------------------- history


def test_history_rows_match_what_happened(live):
    project = live["project"]
    code, first = refresh_live(project)
    assert code == 0, first
    (project / "trackers" / "vendors-airtable.yaml").write_text(BROKEN_AIRTABLE_TRACKER)
    code, second = refresh_live(project)
    assert code == 1

    rows = history_rows(project)
    assert len(rows) == 4 and len({r["run_id"] for r in rows}) == 2
    by_run = {}
    for row in rows:
        by_run.setdefault(row["run_id"], {})[row["tracker"]] = row
    run1, run2 = sorted(by_run.values(), key=lambda r: r["movies-sheet"]["ended_at"])
    reports = [{t["tracker"]: t for t in report["trackers"]} for report in (first, second)]

    for run, report in zip((run1, run2), reports):
        for name, row in run.items():
            entry = report[name]
            assert row["status"] == entry["status"] and row["rows"] == entry["rows"]
            assert row["target"] == "live" and row["owner"] == "data-team"
            assert row["started_at"] <= row["ended_at"]
            assert row["seconds"] == pytest.approx(entry["seconds"], abs=0.01)
            assert row["git_commit"] == "a" * 40
            assert row["run_url"] == "https://github.example/studio/trackers/actions/runs/4242"
    expected_hash = sql_hash(compile_tracker(load_project(project), "movies-sheet").sql("duckdb"))
    assert run1["movies-sheet"]["sql_hash"] == expected_hash

    # what was written: every owned cell of the new tab; one record per vendor
    sheet = live["sheets"].grid("sheet-mon", "Movies")
    data_rows = [r for r in sheet[1:] if any(v is not None for v in r)]
    assert run1["movies-sheet"]["written_unit"] == "cells"
    assert run1["movies-sheet"]["written"] == len(data_rows) * len(sheet[0])
    assert run1["vendors-airtable"]["written_unit"] == "records"
    assert run1["vendors-airtable"]["written"] == len(live["airtable"].rows("appMON", "Vendors"))
    assert run2["movies-sheet"]["status"] == "unchanged" and run2["movies-sheet"]["written"] == 0

    failed = run2["vendors-airtable"]
    assert failed["status"] == "failed" and failed["stage"] == "checks"
    assert "min_rows" in failed["error"] and failed["written"] is None
    assert failed["error_location"].startswith("trackers/vendors-airtable.yaml:")
    line = int(failed["error_location"].split(":")[1])
    assert (project / "trackers" / "vendors-airtable.yaml").read_text().splitlines()[line - 1].startswith("  min_rows")


def test_dry_run_records_nothing(live):
    project = live["project"]
    result = cli("refresh", "--all", "--target", "live", "--dry-run", project=project)
    assert result.exit_code == 0
    assert history_rows(project) == []


def test_concurrent_appends_from_several_processes_all_land_once(tmp_path):
    """Processes that finish at once: optimistic commits retried, every row exactly once."""
    warehouse = tmp_path / "wh"
    IcebergHistory(warehouse, DEFAULT_TABLE).ensure()
    script = textwrap.dedent(f"""
        import sys
        import genesis.monitoring.history
        from genesis.monitoring.history import IcebergHistory
        genesis.monitoring.history.COMPACT_AT = 6  # compactions race with the other processes' appends too
        store = IcebergHistory({str(warehouse)!r}, {DEFAULT_TABLE!r})
        worker = sys.argv[1]
        for i in range(4):
            store.append([{{"run_id": f"{{worker}}-{{i}}", "tracker": f"t{{j}}", "status": "ok"}} for j in range(3)])
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, str(w)], stderr=subprocess.PIPE, text=True)
             for w in range(4)]
    errors = [p.communicate(timeout=240)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errors
    rows = IcebergHistory(warehouse, DEFAULT_TABLE).read().to_pylist()
    keys = sorted((r["run_id"], r["tracker"]) for r in rows)
    assert keys == sorted((f"{w}-{i}", f"t{j}") for w in range(4) for i in range(4) for j in range(3))


def test_history_on_a_trino_target(tmp_path, monkeypatch):
    """A `trino` target keeps its history in a table on the cluster, written with SQL."""
    project = copy_project(tmp_path / "p")
    (project / "trackers" / "movies.yaml").write_text(
        "name: movies\ninput: movie_listing\nowner: data-team\n"
        "destination: {type: file, path: out/movies.csv}\n")
    with TrinoProtocolServer() as server:
        for name, table in tables().items():
            server.load_table(f"iceberg.studio.{name}", table)
        (project / "genesis.yaml").write_text(textwrap.dedent(f"""
            name: mini
            default_target: trino
            targets:
              trino:
                engine: trino
                trino: {{host: 127.0.0.1, port: {server.port}, http_scheme: http, user: ci,
                        catalog: iceberg, schema: studio}}
            history:
              table: iceberg.ops.tracker_runs
        """))
        result = cli("refresh", "--all", "--format", "json", project=project)
        assert result.exit_code == 0, result.output
        stored = server.duckdb("SELECT tracker, target, status, rows FROM iceberg.ops.tracker_runs").to_pylist()
        report = json.loads(result.stdout)["trackers"][0]
        assert stored == [{"tracker": "movies", "target": "trino", "status": "ok", "rows": report["rows"]}]

        status = cli("status", "--format", "json", project=project)
        assert status.exit_code == 0, status.output
        entry = json.loads(status.stdout)["trackers"][0]
        assert entry["state"] == "ok" and entry["last_success"]["rows"] == report["rows"]

        store = TrinoHistory({"host": "127.0.0.1", "port": server.port, "http_scheme": "http", "user": "ci",
                              "catalog": "iceberg", "schema": "studio"}, "iceberg.ops.tracker_runs")
        when = dt.datetime(2026, 1, 2, 3, 4, 5, 123456)
        store.append([{"run_id": "r'2", "tracker": "x", "status": "failed", "error": "it's broken",
                       "started_at": when, "ended_at": when, "seconds": 1.5, "rows": 3}])
        back = [r for r in store.read().to_pylist() if r["tracker"] == "x"]
        assert len(back) == 1 and back[0]["run_id"] == "r'2" and back[0]["error"] == "it's broken"
        assert back[0]["ended_at"] == when and back[0]["seconds"] == 1.5


# ------------------------------------------------------------------------------- alerts


def test_exactly_one_alert_per_state_change(live):
    project, posts = live["project"], live["receiver"].posts
    tracker_file = project / "trackers" / "vendors-airtable.yaml"

    assert refresh_live(project)[0] == 0
    assert posts == []  # first runs that are ok are no change
    tracker_file.write_text(BROKEN_AIRTABLE_TRACKER)
    assert refresh_live(project)[0] == 1
    assert len(posts) == 1
    alert = posts[0]["body"]
    assert posts[0]["path"] == f"/genesis/{HOOK_SECRET}"
    assert alert["title"] == "Genesis: tracker 'vendors-airtable' failed"
    assert "failed at the checks stage on target 'live'" in alert["message"]
    assert "Where: trackers/vendors-airtable.yaml:" in alert["message"] and "min_rows" in alert["message"]
    assert "Run: https://github.example/studio/trackers/actions/runs/4242" in alert["message"]

    assert refresh_live(project)[0] == 1  # still failing: no new alert
    assert len(posts) == 1
    tracker_file.write_text(AIRTABLE_TRACKER)
    assert refresh_live(project)[0] == 0
    assert len(posts) == 2 and posts[1]["body"]["title"] == "Genesis: tracker 'vendors-airtable' recovered"
    assert refresh_live(project)[0] == 0
    assert len(posts) == 2


def test_a_tracker_that_misses_its_schedule_becomes_late_once(live):
    project, posts = live["project"], live["receiver"].posts
    assert refresh_live(project)[0] == 0
    loaded = load_project(project)
    target = get_target(loaded, "live")
    settings = render_settings(target)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    nothing_ran = RefreshReport("live", [], 0.0)

    assert after_refresh(loaded, target, settings, nothing_ran, now=later) == []
    assert [p["body"]["title"] for p in posts] == ["Genesis: tracker 'movies-sheet' is late"]
    assert "schedule '0 6 * * *'" in posts[0]["body"]["message"]
    late = [r for r in history_rows(project) if r["status"] == "late"]
    assert [r["tracker"] for r in late] == ["movies-sheet"]  # vendors-airtable has no schedule

    after_refresh(loaded, target, settings, nothing_ran, now=later + dt.timedelta(hours=1))
    assert len(posts) == 1  # still late: told once

    history = IcebergHistory(project / ".genesis" / "warehouse", DEFAULT_TABLE).read()
    statuses = {s.tracker: s for s in tracker_statuses(loaded, history, now=later)}
    assert statuses["movies-sheet"].late and statuses["movies-sheet"].state == "late"
    assert not statuses["vendors-airtable"].late and statuses["vendors-airtable"].state == "ok"

    assert refresh_live(project, "movies-sheet")[0] == 0
    assert [p["body"]["title"] for p in posts][1:] == ["Genesis: tracker 'movies-sheet' recovered"]


def test_status_shows_last_success_last_failure_and_why(live):
    project = live["project"]
    refresh_live(project)
    (project / "trackers" / "vendors-airtable.yaml").write_text(BROKEN_AIRTABLE_TRACKER)
    refresh_live(project)
    result = cli("status", "--target", "live", "--format", "json", project=project)
    assert result.exit_code == 0, result.output
    entries = {t["tracker"]: t for t in json.loads(result.stdout)["trackers"]}
    vendors = entries["vendors-airtable"]
    assert vendors["state"] == "failed" and vendors["runs"] == 2
    assert vendors["last_failure"]["stage"] == "checks" and "min_rows" in vendors["last_failure"]["error"]
    assert vendors["last_success"]["at"] <= vendors["last_failure"]["at"]  # seconds: both runs may share one
    assert entries["movies-sheet"]["state"] == "ok" and entries["movies-sheet"]["last_failure"] is None
    text = cli("status", "--target", "live", project=project)
    assert text.exit_code == 0
    line = next(x for x in text.stdout.splitlines() if x.startswith("vendors-airtable"))
    assert "failed" in line and "checks:" in line and "min_rows" in line


def test_unreachable_or_unconfigured_channels_are_warnings_never_failures(live, monkeypatch, caplog):
    caplog.set_level("DEBUG")
    project = live["project"]
    (project / "trackers" / "vendors-airtable.yaml").write_text(BROKEN_AIRTABLE_TRACKER)
    monkeypatch.delenv("GENESIS_TEST_HOOK_URL")
    result = cli("refresh", "--all", "--target", "live", project=project)
    assert result.exit_code == 1  # the broken tracker, not the alert
    assert ("warning: alert for 'vendors-airtable' not sent to 'team-hook': error: environment variable "
            "GENESIS_TEST_HOOK_URL is not set") in result.stdout

    (project / "trackers" / "vendors-airtable.yaml").write_text(AIRTABLE_TRACKER)  # a change: failed -> ok
    unreachable = f"http://127.0.0.1:{closed_port()}/hook?token={HOOK_SECRET}"
    monkeypatch.setenv("GENESIS_TEST_HOOK_URL", unreachable)
    result = cli("refresh", "--all", "--target", "live", "--format", "json", project=project)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["warnings"] == ["alert for 'vendors-airtable' not delivered to channel 'team-hook' (webhook): "
                                  "unreachable or refused"]
    assert HOOK_SECRET not in result.output and TOKEN not in result.output
    assert HOOK_SECRET not in caplog.text and TOKEN not in caplog.text
    assert live["receiver"].posts == []


def test_bad_alert_config_is_a_located_error_at_validate(tmp_path):
    project = copy_project(tmp_path / "p")
    (project / "genesis.yaml").write_text(textwrap.dedent("""\
        name: mini
        default_target: local
        targets:
          local: {engine: duckdb, warehouse: .genesis/warehouse, destinations: local}
        history:
          late_after: soon
        alerts:
          channels:
            ops-slack: {type: slack, url: "https://example.com/services/T/B/C"}
            ops-mail: {type: email, url: "https://mail.example.com"}
            ops-hook: {type: webhook, url: "{{ env.OPS_HOOK }}"}
          owners:
            ops: [ops-slak, ops-hook]
        """))
    (project / "trackers" / "movies.yaml").write_text(
        "name: movies\ninput: movie_listing\nowner: opps\ndestination: {type: file, path: out/m.csv}\n")
    result = cli("validate", "--format", "json", project=project)
    assert result.exit_code == 1
    errors = json.loads(result.stdout)["errors"]
    found = {(e["path"].rsplit("/", 1)[-1], e["line"]): e for e in errors}
    assert found[("genesis.yaml", 6)]["message"].startswith("history.late_after: 'soon' is not a duration")
    assert "slack channel takes a Slack incoming-webhook URL" in found[("genesis.yaml", 9)]["message"]
    assert "email channel needs a mailto or mailtos URL" in found[("genesis.yaml", 10)]["message"]
    unknown = found[("genesis.yaml", 13)]
    assert unknown["message"] == "alerts.owners.ops: unknown alert channel 'ops-slak'"
    assert unknown["hint"] == "did you mean 'ops-slack'?"
    owner = found[("movies.yaml", 3)]
    assert owner["message"] == "owner 'opps' of tracker 'movies' has no alert channel"
    assert owner["hint"] == "did you mean 'ops'?"
    assert len(errors) == 5

    # an unknown channel type is a schema error at its line
    text = (project / "genesis.yaml").read_text().replace("{type: webhook,", "{type: pager,")
    (project / "genesis.yaml").write_text(text)
    result = cli("validate", "--format", "json", project=project)
    assert result.exit_code == 1
    errors = json.loads(result.stdout)["errors"]
    assert [(e["path"].rsplit("/", 1)[-1], e["line"]) for e in errors] == [("genesis.yaml", 11)]
    assert "pager" in errors[0]["message"]


# ------------------------------------------------------------------------------- freshness


FRESH_TRACKER = """name: fresh-movies
input: movie_listing
destination: {type: file, path: out/fresh-movies.csv}
checks:
  min_rows: 1
  fresh: {field: movie.op_ts, within: WITHIN}
"""


def with_op_ts(project: Path) -> Path:
    """The mini project with movie.op_ts declared (its CDC log has the column)."""
    path = project / "datasources" / "movie.yaml"
    text = path.read_text()
    path.write_text(text.replace("  budget_usd: {type: \"decimal(18,2)\"}\n",
                                 "  budget_usd: {type: \"decimal(18,2)\"}\n  op_ts: {type: timestamp}\n"))
    assert "op_ts" in path.read_text()
    return project


def newest_live_op_ts() -> dt.datetime:
    """The newest op_ts of a movie that is not deleted (the data source reads the CDC log's latest rows)."""
    latest = {}
    for row in tables()["movie_cdc"].to_pylist():
        if row["movie_id"] not in latest or row["op_ts"] > latest[row["movie_id"]]["op_ts"]:
            latest[row["movie_id"]] = row
    return max(r["op_ts"] for r in latest.values() if r["op"] != "d").replace(tzinfo=dt.UTC)


def test_a_stale_source_fails_the_freshness_check_and_writes_nothing(tmp_path, monkeypatch):
    project = with_op_ts(copy_project(tmp_path / "p"))
    build_warehouse(project)
    monkeypatch.chdir(project)
    tracker = project / "trackers" / "fresh-movies.yaml"
    tracker.write_text(FRESH_TRACKER.replace("WITHIN", "2h"))
    result = cli("refresh", "--all", "--format", "json", project=project)
    assert result.exit_code == 1
    entry = json.loads(result.stdout)["trackers"][0]
    assert entry["status"] == "failed" and entry["stage"] == "checks"
    assert "checks failed, nothing written: fresh: the newest 'movie.op_ts' is" in entry["error"]
    assert "at most 2h allowed" in entry["error"]
    assert not (project / "out" / "fresh-movies.csv").exists()
    expected_age = (dt.datetime.now(dt.UTC) - newest_live_op_ts()).total_seconds()
    row = history_rows(project)[-1]
    assert row["status"] == "failed" and row["data_age_seconds"] == pytest.approx(expected_age, abs=120)

    tracker.write_text(FRESH_TRACKER.replace("WITHIN", "3000d"))
    result = cli("refresh", "--all", project=project)
    assert result.exit_code == 0, result.output
    assert (project / "out" / "fresh-movies.csv").is_file()
    row = history_rows(project)[-1]
    assert row["status"] == "ok" and row["data_age_seconds"] == pytest.approx(expected_age, abs=120)


@pytest.mark.parametrize("spec, at, message, hint", [
    ("{field: movie.title, within: 2h}", "movie.title",
     "checks.fresh.field 'movie.title' is varchar, not a date or timestamp", None),
    ("{field: movie.op_tz, within: 2h}", "movie.op_tz", "op_tz", "did you mean 'op_ts'?"),
    ("{field: movie.op_ts, within: 2 hours}", "2 hours", "'2 hours' is not a duration", "90s, 15m, 2h"),
])
def test_freshness_check_errors_are_located(tmp_path, spec, at, message, hint):
    project = with_op_ts(copy_project(tmp_path / "p"))
    text = FRESH_TRACKER.replace("{field: movie.op_ts, within: WITHIN}", spec)
    (project / "trackers" / "fresh-movies.yaml").write_text(text)
    line = next(i for i, x in enumerate(text.splitlines(), 1) if at in x)
    col = text.splitlines()[line - 1].index(at) + 1
    result = cli("validate", "--format", "json", project=project)
    assert result.exit_code == 1
    errors = json.loads(result.stdout)["errors"]
    assert len(errors) == 1, errors
    error = errors[0]
    assert error["path"].endswith("trackers/fresh-movies.yaml")
    assert (error["line"], error["col"]) == (line, col)
    assert message in error["message"]
    if hint:
        assert hint in (error["hint"] or "")


# ------------------------------------------------------------------------------- audit


def person_sheet(live) -> gspread.Worksheet:
    client_class = type("PersonHTTPClient", (EndpointHTTPClient,), {"endpoint": live["sheets"].url})
    creds, _ = load_credentials(str(live["person"]), live["sheets"].url)
    return gspread.Client(creds, http_client=client_class).open_by_key("sheet-mon").worksheet("Movies")


def audit(project: Path, *names: str):
    result = cli("audit", *names, "--target", "live", "--format", "json", project=project)
    return result.exit_code, json.loads(result.stdout)


def test_audit_finds_every_injected_drift_and_none_after_a_clean_refresh(live):
    project, sheets, airtable = live["project"], live["sheets"], live["airtable"]
    assert refresh_live(project)[0] == 0
    code, report = audit(project)
    assert code == 0, report
    assert [(t["tracker"], t["drift"]) for t in report["trackers"]] == [
        ("movies-sheet", False), ("vendors-airtable", False)]

    # A person edits the sheet: a Title overwritten, a row deleted, a row added with a key the
    # query does not return, and a note in a column of their own (theirs: not drift).
    ws = person_sheet(live)
    grid = sheets.grid("sheet-mon", "Movies")
    header = grid[0]
    id_col, title_col = header.index("movie_id"), header.index("Title")
    edited_id, edited_title = int(grid[1][id_col]), grid[1][title_col]
    deleted_id = int(grid[3][id_col])
    ws.update([["Overwritten"]], gspread.utils.rowcol_to_a1(2, title_col + 1))
    ws.update([["Notes"], ["call the producer"]], gspread.utils.rowcol_to_a1(1, len(header) + 2))
    ws.delete_rows(4)
    ws.append_row([999999, "Not from the query"], table_range="A1")

    # ... and the Airtable table: a count changed, a record deleted, a stranger added, a note.
    records = {r["fields"]["Vendor"]: r for r in airtable.records("appMON", "Vendors")}
    names = sorted(records)
    changed, removed, noted = names[0], names[1], names[2]
    airtable.person_set("appMON", "Vendors", records[changed]["id"], "po_count", 12345)
    airtable.person_delete("appMON", "Vendors", records[removed]["id"])
    airtable.person_add("appMON", "Vendors", {"Vendor": "Ghost Vendor"})
    airtable.person_set("appMON", "Vendors", records[noted]["id"], "Notes", "chase them")

    writes = (len(sheets.calls(user=GENESIS_SA, kind="write")),
              len([e for e in airtable.log if e.method in ("POST", "PATCH", "DELETE")]))
    code, report = audit(project)
    assert code == 1
    assert writes == (len(sheets.calls(user=GENESIS_SA, kind="write")),
                      len([e for e in airtable.log if e.method in ("POST", "PATCH", "DELETE")]))
    by_name = {t["tracker"]: t for t in report["trackers"]}
    sheet = by_name["movies-sheet"]
    assert sheet["drift"] and sheet["missing"] == [f"movie_id={deleted_id}"]
    assert sheet["extra"] == ["movie_id=999999"]
    assert sheet["changed"] == [{"key": f"movie_id={edited_id}", "column": "Title",
                                 "destination": "Overwritten", "expected": edited_title}]
    assert sheet["counts"]["changed_cells"] == 1
    vendors = by_name["vendors-airtable"]
    assert vendors["missing"] == [f"Vendor='{removed}'"] and vendors["extra"] == ["Vendor='Ghost Vendor'"]
    assert vendors["changed"] == [{"key": f"Vendor='{changed}'", "column": "po_count", "destination": 12345,
                                   "expected": records[changed]["fields"]["po_count"]}]

    text = cli("audit", "movies-sheet", "--target", "live", project=project)
    assert text.exit_code == 1
    assert "movies-sheet -> Google Sheets sheet-mon / Movies: DRIFT: 1 missing, 1 extra, 1 changed cell" in text.stdout
    assert "vendors-airtable" not in text.stdout

    assert refresh_live(project)[0] == 0
    code, report = audit(project)
    assert code == 0, report
    assert ws.acell(gspread.utils.rowcol_to_a1(1, len(header) + 2)).value == "Notes"  # the person's column stays


def test_audit_of_local_files(tmp_path, monkeypatch):
    project = copy_project(tmp_path / "p")
    build_warehouse(project)
    (project / "trackers" / "movies.yaml").write_text(
        "name: movies\ninput: movie_listing\ndestination: {type: file, path: out/movies.csv}\n")
    assert cli("audit", project=project).exit_code == 1  # never written: every row is missing
    assert cli("refresh", "--all", project=project).exit_code == 0
    assert cli("audit", project=project).exit_code == 0
    path = project / "out" / "movies.csv"
    path.write_text(path.read_text().replace("Title 1", "Title one", 1))
    result = cli("audit", "--format", "json", project=project)
    assert result.exit_code == 1
    assert json.loads(result.stdout)["trackers"][0]["note"].endswith("differs from what a refresh would write")


# ------------------------------------------------------------------------------- catalog


def test_catalog_shows_each_trackers_last_refresh_when_the_history_is_reachable(tmp_path, monkeypatch):
    from genesis.review.catalog import build_docs

    project = copy_project(tmp_path / "p")
    monkeypatch.chdir(project)
    (project / "trackers" / "movies.yaml").write_text(
        "name: movies\ninput: movie_listing\ndestination: {type: file, path: out/movies.csv}\n")
    (project / "trackers" / "strict.yaml").write_text(
        "name: strict\ninput: movie_listing\ndestination: {type: file, path: out/strict.csv}\n"
        "checks: {min_rows: 100000}\n")
    html = build_docs(load_project(project), tmp_path / "before").read_text()
    assert "Last refresh" not in html  # no warehouse, no history: the catalog is built without it

    build_warehouse(project)
    assert cli("refresh", "--all", project=project).exit_code == 1
    html = build_docs(load_project(project), tmp_path / "after").read_text()
    movies = html[html.index('id="tracker-movies"'):html.index('id="tracker-strict"')]
    strict = html[html.index('id="tracker-strict"'):]
    assert '<span class="run run-ok">ok</span>' in movies
    assert '<span class="run run-failed">failed</span>' in strict
    assert "last success never" in strict and "min_rows: " in strict


def test_the_due_job_notices_a_missed_schedule_even_when_nothing_is_due(live):
    project, posts = live["project"], live["receiver"].posts
    (project / "trackers" / "movies-sheet.yaml").write_text(
        SHEET_TRACKER.replace('schedule: "0 6 * * *"', 'schedule: "0 0 1 1 *"'))  # New Year only
    last_year = dt.datetime(dt.datetime.now().year - 1, 6, 1, 12)
    IcebergHistory(project / ".genesis" / "warehouse", DEFAULT_TABLE).append([
        {"run_id": "old", "tracker": "movies-sheet", "target": "live", "status": "ok",
         "started_at": last_year, "ended_at": last_year}])
    result = cli("refresh", "--due", "--target", "live", "--format", "json", project=project)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["message"] == "no tracker is due"
    assert [p["body"]["title"] for p in posts] == ["Genesis: tracker 'movies-sheet' is late"]
    assert [r["status"] for r in history_rows(project)] == ["ok", "late"]
    cli("refresh", "--due", "--target", "live", project=project)
    assert len(posts) == 1


def test_many_appends_are_compacted_and_keep_every_row(tmp_path, monkeypatch):
    import genesis.monitoring.history as history

    monkeypatch.setattr(history, "COMPACT_AT", 8)
    store = IcebergHistory(tmp_path / "wh", DEFAULT_TABLE)
    for i in range(20):
        store.append([{"run_id": str(i), "tracker": "t", "status": "ok"}])
    tbl = store.ensure()
    assert int(tbl.current_snapshot().summary["total-data-files"]) < 8
    assert len(tbl.snapshots()) < 8
    assert sorted(int(r["run_id"]) for r in store.read().to_pylist()) == list(range(20))
    monkeypatch.setattr(history, "COMPACT_AT", 10**6)  # switched off: one file per append
    for i in range(20, 30):
        store.append([{"run_id": str(i), "tracker": "t", "status": "ok"}])
    assert int(store.ensure().current_snapshot().summary["total-data-files"]) >= 10


# ------------------------------------------------------------------------------- units


@pytest.mark.parametrize("kind, url, problem", [
    ("slack", "https://hooks.slack.com/services/T000/B000/XXXXXXXX", None),
    ("email", "mailtos://ap:pw@smtp.example.com?to=ap@studio.example", None),
    ("webhook", "https://hooks.example.com/genesis", None),
    ("webhook", "http://127.0.0.1:8080/genesis", None),
    ("slack", "http://hooks.slack.com/services/T/B/C", "needs a https URL"),
    ("email", "smtp://smtp.example.com", "needs a mailto or mailtos URL"),
    ("webhook", "ftp://files.example.com", "needs a http or https URL"),
])
def test_channel_urls(kind, url, problem):
    from genesis.monitoring.alerts import url_problem

    found = url_problem(kind, url)
    assert (found is None) if problem is None else (problem in found)


def test_secrets_of_the_target_are_masked_in_recorded_errors(tmp_path):
    """A history row's error goes through errors.redact: the values the target took from the
    environment, and those of secret-named settings, are masked (registered when rendered)."""
    from genesis.monitoring.monitor import record_of
    from genesis.project.model import Target
    from genesis.run.refresh import TrackerReport

    settings = {"trino": {"host": "h", "auth": {"type": "jwt", "token": "{{ env.MON_TOKEN }}"}},
                "airtable": {"token": "pat-abcdef", "endpoint": "https://api.airtable.com"},
                "google_sheets": {"credentials": "/secrets/sa.json"}}
    render_settings(Target("t", "trino", settings), {"MON_TOKEN": "tok-123456"})
    project = load_project(copy_project(tmp_path / "p"))
    report = TrackerReport("nobody", status="failed", stage="write",
                           error="401 for pat-abcdef with tok-123456 reading /secrets/sa.json on https://api.airtable.com")
    record = record_of(project, Target("t", "trino", settings), report, "run", None)
    assert record["error"] == "401 for *** with *** reading *** on https://api.airtable.com"


def test_an_unwritable_history_is_a_warning_and_status_reads_an_absent_table(tmp_path):
    project = copy_project(tmp_path / "p")
    (project / "trackers" / "movies.yaml").write_text(
        "name: movies\ninput: movie_listing\ndestination: {type: file, path: out/movies.csv}\n")
    with TrinoProtocolServer() as server:
        for name, table in tables().items():
            server.load_table(f"iceberg.studio.{name}", table)
        config = textwrap.dedent(f"""
            name: mini
            default_target: trino
            targets:
              trino:
                engine: trino
                trino: {{host: 127.0.0.1, port: {server.port}, http_scheme: http, user: ci,
                        catalog: iceberg, schema: studio, max_attempts: 1}}
            history:
              table: TABLE
        """)
        (project / "genesis.yaml").write_text(config.replace("TABLE", "iceberg.ops.runs"))
        status = cli("status", "--format", "json", project=project)
        assert status.exit_code == 0, status.output
        assert json.loads(status.stdout)["trackers"][0]["state"] == "never run"

        (project / "genesis.yaml").write_text(config.replace("TABLE", "nocatalog.ops.runs"))
        result = cli("refresh", "--all", "--format", "json", project=project)
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert report["ok"] and report["trackers"][0]["status"] == "ok"
        assert len(report["warnings"]) == 1 and report["warnings"][0].startswith("run history not recorded: ")
        assert (project / "out" / "movies.csv").is_file()


def test_a_warehouse_older_than_the_history_gets_it_before_the_health_tracker_reads_it(tmp_path):
    project = copy_project(tmp_path / "p")
    build_warehouse(project)  # no `genesis demo`: no history table yet
    repo = Path(__file__).resolve().parent.parent
    for part in ("datasources/genesis_runs.yaml", "datasources/tracker_state.yaml", "inputs/tracker_health.yaml",
                 "trackers/tracker-health.yaml"):
        (project / part).write_text((repo / part).read_text())
    result = cli("refresh", "tracker-health", "--format", "json", project=project)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["trackers"][0]["rows"] == 0
    assert [r["tracker"] for r in history_rows(project)] == ["tracker-health"]


def test_a_stale_source_writes_nothing_to_a_google_sheet(live):
    project, sheets = live["project"], live["sheets"]
    with_op_ts(project)
    (project / "trackers" / "movies-sheet.yaml").write_text(
        SHEET_TRACKER.replace("checks: {min_rows: 1, unique: [movie.movie_id]}",
                              "checks: {min_rows: 1, fresh: {field: movie.op_ts, within: 1d}}"))
    code, report = refresh_live(project, "movies-sheet")
    assert code == 1
    entry = report["trackers"][0]
    assert entry["stage"] == "checks" and "fresh: the newest 'movie.op_ts'" in entry["error"]
    assert sheets.calls(user=GENESIS_SA, kind="write") == []
    assert not sheets.has_sheet("sheet-mon", "Movies")
    assert live["receiver"].posts[0]["body"]["title"] == "Genesis: tracker 'movies-sheet' failed"
