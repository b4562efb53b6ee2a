"""`genesis refresh` into Google Sheets and Airtable through a `destinations: live` target.

The target config names the credentials by environment variable and points the endpoints
at local Sheets-API and Airtable-API servers; the real gspread and pyairtable clients talk
to them over HTTP. This checks the wiring a user configures in genesis.yaml: env
rendering, endpoints, keys, a second run that changes nothing, and no secret in output.
"""

from __future__ import annotations

import contextlib
import json

import pytest
from click.testing import CliRunner

from genesis.api import run_query
from genesis.cli import main
from genesis.project.load import load_project
from tests.mini_data import build_warehouse, copy_project
from tests.servers.airtable_server import AirtableServer
from tests.servers.sheets_server import SheetsServer, new_private_key

TOKEN = "pat-live-refresh-secret-token"
SERVICE_ACCOUNT = "genesis@genesis-test.iam.gserviceaccount.com"

LIVE_TARGET = """
  live:
    engine: duckdb
    warehouse: .genesis/warehouse
    destinations: live
    google_sheets:
      credentials: "{{ env.GENESIS_TEST_SA }}"
      endpoint: "{{ env.GENESIS_TEST_SHEETS_URL }}"
    airtable:
      token: "{{ env.GENESIS_TEST_AIRTABLE_TOKEN }}"
      endpoint: "{{ env.GENESIS_TEST_AIRTABLE_URL }}"
"""

SHEET_TRACKER = """name: movies-sheet
input: movie_listing
destination: {type: google_sheets, spreadsheet_id: sheet-live, worksheet: Movies}
key: [movie.movie_id]
mode: upsert
checks: {min_rows: 1, unique: [movie.movie_id]}
"""

AIRTABLE_TRACKER = """name: vendors-airtable
input: vendor_spend
destination: {type: airtable, base_id: appLIVE, table: Vendors}
key: [vendor.name]
mode: upsert
"""


@pytest.fixture
def live(tmp_path, monkeypatch):
    project = copy_project(tmp_path / "p")
    build_warehouse(project)
    (project / "genesis.yaml").write_text((project / "genesis.yaml").read_text() + LIVE_TARGET)
    (project / "trackers" / "movies-sheet.yaml").write_text(SHEET_TRACKER)
    (project / "trackers" / "vendors-airtable.yaml").write_text(AIRTABLE_TRACKER)
    with live_servers(project, tmp_path, monkeypatch, spreadsheet=("sheet-live", "Production office"),
                      base="appLIVE") as (sheets, airtable, key):
        yield project, sheets, airtable, key


@contextlib.contextmanager
def live_servers(project, tmp_path, monkeypatch, *, spreadsheet: tuple[str, str], base: str):
    """Local Sheets and Airtable servers with one spreadsheet (id, title) and one base (holding a
    table of people's own), a service account, and the environment LIVE_TARGET reads; the
    working directory is `project`. Yields (sheets, airtable, the service account's key)."""
    key = new_private_key()
    with SheetsServer(window_seconds=60) as sheets, AirtableServer(TOKEN, requests_per_second=50) as airtable:
        sheets.create_spreadsheet(spreadsheet[0], title=spreadsheet[1])
        airtable.add_table(base, "People's own table")  # a base exists; Genesis creates its tables
        account = sheets.write_service_account(tmp_path / "sa.json", SERVICE_ACCOUNT, key)
        monkeypatch.setenv("GENESIS_TEST_SA", str(account))
        monkeypatch.setenv("GENESIS_TEST_SHEETS_URL", sheets.url)
        monkeypatch.setenv("GENESIS_TEST_AIRTABLE_TOKEN", TOKEN)
        monkeypatch.setenv("GENESIS_TEST_AIRTABLE_URL", airtable.url)
        monkeypatch.chdir(project)
        yield sheets, airtable, key


def _refresh(project) -> tuple[int, str, dict]:
    result = CliRunner().invoke(main, ["refresh", "--all", "--target", "live", "--format", "json",
                                       "--project", str(project)])
    return result.exit_code, result.output, json.loads(result.output)


def test_refresh_writes_sheets_and_airtable_then_changes_nothing(live):
    project, sheets, airtable, key = live
    code, output, report = _refresh(project)
    assert code == 0, output
    assert {t["tracker"]: t["status"] for t in report["trackers"]} == {
        "movies-sheet": "ok", "vendors-airtable": "ok"}

    expected = run_query(load_project(project), "movies-sheet").table.to_pylist()
    grid = sheets.grid("sheet-live", "Movies")
    header, rows = grid[0], [r for r in grid[1:] if any(v is not None for v in r)]
    assert header[:3] == ["movie_id", "Title", "Status"]
    assert sorted(int(r[0]) for r in rows) == sorted(r["movie_id"] for r in expected)
    by_id = {int(r[0]): r for r in rows}
    for row in expected:
        assert by_id[row["movie_id"]][1] == row["Title"]

    vendors = run_query(load_project(project), "vendors-airtable").table.to_pylist()
    records = {r["Vendor"]: r for r in airtable.rows("appLIVE", "Vendors")}
    assert set(records) == {v["Vendor"] for v in vendors}
    for vendor in vendors:
        assert records[vendor["Vendor"]]["po_count"] == vendor["po_count"]

    writes_before = len(sheets.calls(user=SERVICE_ACCOUNT, kind="write"))
    airtable_writes = [e for e in airtable.log if e.method in ("POST", "PATCH", "DELETE")]
    code, output, report = _refresh(project)
    assert code == 0, output
    assert {t["status"] for t in report["trackers"]} == {"unchanged"}
    assert len(sheets.calls(user=SERVICE_ACCOUNT, kind="write")) == writes_before
    assert [e for e in airtable.log if e.method in ("POST", "PATCH", "DELETE")] == airtable_writes

    secret_lines = [line for line in key.splitlines() if "PRIVATE KEY" not in line and line]
    assert TOKEN not in output and not any(line in output for line in secret_lines)


def test_missing_credentials_variable_is_one_clear_error(live, monkeypatch):
    project, sheets, airtable, _ = live
    monkeypatch.delenv("GENESIS_TEST_AIRTABLE_TOKEN")
    result = CliRunner().invoke(main, ["refresh", "--all", "--target", "live", "--project", str(project)])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "error: environment variable GENESIS_TEST_AIRTABLE_TOKEN is not set (needed by airtable.token of "
        "target 'live') (export GENESIS_TEST_AIRTABLE_TOKEN=... before running genesis)"]
    assert not sheets.calls(user=SERVICE_ACCOUNT, kind="write")
    assert not [e for e in airtable.log if e.method in ("POST", "PATCH", "DELETE")]
