"""Deadlines are per target settings (`google_sheets.deadline_seconds`,
`airtable.deadline_seconds`); an endpoint that cannot be reached fails at once; no wait
starts that would end after the deadline; messages name the setting that exists."""

from __future__ import annotations

import socket
import time

import pytest
from click.testing import CliRunner

from genesis.cli import main
from genesis.destinations import airtable
from genesis.destinations.airtable import Settings, sync_airtable
from genesis.destinations.sheets import sync_google_sheet
from genesis.errors import GenesisError
from tests.mini_data import build_warehouse, copy_project
from tests.servers.airtable_server import AirtableServer
from tests.servers.sheets_server import SheetsServer, new_private_key
from tests.test_airtable_destination import make_result
from tests.test_sheets_destination import INITIAL, TAB, result_of


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def key():
    return new_private_key()


@pytest.mark.parametrize("endpoint", [f"http://127.0.0.1:{_closed_port()}", "http://genesis-no-such-host.invalid"],
                         ids=["refused", "dns"])
def test_an_unreachable_sheets_endpoint_fails_at_once(tmp_path, key, endpoint):
    with SheetsServer() as srv:  # issues the token; the Sheets endpoint itself is unreachable
        account = srv.write_service_account(tmp_path / "sa.json", private_key_pem=key)
        started = time.monotonic()
        with pytest.raises(GenesisError, match=r"cannot reach Google Sheets at .*: (connection refused|host not found)"):
            sync_google_sheet(result_of(INITIAL), spreadsheet_id="s", worksheet=TAB, key=["Movie ID"],
                              credentials_file=account, endpoint=endpoint, deadline_seconds=60)
        assert time.monotonic() - started < 15  # it retried until the deadline (300 s by default)


@pytest.mark.parametrize("endpoint", [f"http://127.0.0.1:{_closed_port()}", "http://genesis-no-such-host.invalid"],
                         ids=["refused", "dns"])
def test_an_unreachable_airtable_endpoint_fails_at_once(monkeypatch, endpoint):
    monkeypatch.setattr(airtable, "SETTINGS", Settings(backoff_seconds=2, max_backoff_seconds=8))
    started = time.monotonic()
    with pytest.raises(GenesisError, match=r"cannot reach Airtable: (connection refused|host not found)"):
        sync_airtable(make_result(3), base_id="appX", table="T", key=["movie_id"], token="pat-deadline-test", endpoint=endpoint)
    assert time.monotonic() - started < 5  # five retries with backoff before


def test_airtable_does_not_start_a_penalty_that_ends_after_the_deadline(monkeypatch):
    monkeypatch.setattr(airtable, "SETTINGS", Settings(penalty_seconds=30))
    with AirtableServer("tok", requests_per_second=1000) as srv:
        srv.add_table("appX", "T")
        srv.fail_next(1, status=429)
        started = time.monotonic()
        with pytest.raises(GenesisError, match=r"penalty of 30 s would end after the deadline.*airtable\.deadline_seconds \(now 5 s\)"):
            sync_airtable(make_result(3), base_id="appX", table="T", key=["movie_id"], token="tok", endpoint=srv.url,
                          deadline_seconds=5)
        assert time.monotonic() - started < 3


TARGET = """
  live:
    engine: duckdb
    warehouse: .genesis/warehouse
    destinations: live
    google_sheets:
      credentials: "{{ env.T_SA }}"
      endpoint: "{{ env.T_URL }}"
      deadline_seconds: 2
"""


def test_the_sheets_deadline_is_a_target_setting_and_the_hint_names_it(tmp_path, key, monkeypatch):
    project = copy_project(tmp_path / "p")
    build_warehouse(project)
    (project / "genesis.yaml").write_text((project / "genesis.yaml").read_text() + TARGET)
    (project / "trackers" / "s.yaml").write_text(
        "name: s\ninput: movie_listing\nkey: [movie.movie_id]\n"
        "destination: {type: google_sheets, spreadsheet_id: s1, worksheet: Movies}\n")
    monkeypatch.chdir(project)
    assert CliRunner().invoke(main, ["validate", "--project", str(project)]).exit_code == 0
    with SheetsServer() as srv:
        srv.create_spreadsheet("s1")
        srv.fail_next(10_000, status=503, kind="read")  # persistent 5xx
        env = {"T_SA": srv.write_service_account(tmp_path / "sa.json", private_key_pem=key), "T_URL": srv.url}
        started = time.monotonic()
        result = CliRunner().invoke(main, ["refresh", "s", "--target", "live", "--project", str(project)], env=env)
        elapsed = time.monotonic() - started
    assert result.exit_code == 1
    assert "raise google_sheets.deadline_seconds (now 2 s)" in result.output, result.output
    assert elapsed < 30  # 300 s per tracker before
