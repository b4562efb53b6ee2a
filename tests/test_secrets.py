"""No secret reaches any output: every command's failure paths, run with sentinel values in
every setting a target can take from the environment and in the credentials file, with and
without GENESIS_DEBUG, in text and JSON; no sentinel may appear in stdout or stderr.
A sentinel also sits in what a token endpoint answers: that answer is never printed."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from genesis.cli import main
from tests.mini_data import build_warehouse, copy_project
from tests.servers.airtable_server import AirtableServer
from tests.servers.sheets_server import SheetsServer, new_private_key

S = {  # environment variable -> sentinel value
    "S_TRINO_HOST": "sntl-trino-host-4e1b.invalid",
    "S_TRINO_USER": "sntl-trino-user-77aa",
    "S_TRINO_PASSWORD": "sntl-trino-password-0c9d",
    "S_TRINO_TOKEN": "sntl-trino-token-3f3f",
    "S_CATALOG": "sntl-catalog-19bd",
    "S_SCHEMA": "sntl-schema-81e0",
    "S_AIRTABLE_TOKEN": "sntl-airtable-token-5a5a",
    "S_OUTPUT": "sntl-output-dir-2b7c",
    "S_WAREHOUSE_MISSING": "sntl-warehouse-dir-6d02",
}
KEY_ID = "sntl-private-key-id-9e9e"
CLIENT_ID = "sntl-client-id-1234567"
ECHO = "sntl-echoed-assertion-abcdef"
BAD_KEY = "sntl-not-a-pem-key-8f8f"

TARGETS = """
  trino_sentinel:
    engine: trino
    trino:
      host: "{{ env.S_TRINO_HOST }}"
      port: 8080
      http_scheme: http
      allow_insecure_auth: true
      user: "{{ env.S_TRINO_USER }}"
      auth: {type: basic, user: "{{ env.S_TRINO_USER }}", password: "{{ env.S_TRINO_PASSWORD }}"}
      catalog: "{{ env.S_CATALOG }}"
      schema: "{{ env.S_SCHEMA }}"
      max_attempts: 1
      retry_window: 1
  jwt_sentinel:
    engine: trino
    trino:
      host: "{{ env.S_TRINO_HOST }}"
      http_scheme: http
      allow_insecure_auth: true
      auth: {type: jwt, token: "{{ env.S_TRINO_TOKEN }}"}
      max_attempts: 1
      retry_window: 1
  missing_warehouse:
    engine: duckdb
    warehouse: "{{ env.S_WAREHOUSE_MISSING }}/wh"
    output_dir: "{{ env.S_OUTPUT }}"
  live_sentinel:
    engine: duckdb
    warehouse: .genesis/warehouse
    destinations: live
    output_dir: "{{ env.S_OUTPUT }}"
    google_sheets:
      credentials: "{{ env.S_GOOGLE_CREDS }}"
      endpoint: "{{ env.S_SHEETS_URL }}"
    airtable:
      token: "{{ env.S_AIRTABLE_TOKEN }}"
      endpoint: "{{ env.S_AIRTABLE_URL }}"
  whole_env:
    engine: duckdb
    warehouse: "{{ env }}"
"""

TRACKERS = {
    "sheet": "name: sheet\ninput: movie_listing\nkey: [movie.movie_id]\n"
             "destination: {type: google_sheets, spreadsheet_id: s1, worksheet: Movies}\n",
    "table": "name: table\ninput: movie_listing\nkey: [movie.movie_id]\n"
             "destination: {type: airtable, base_id: appS, table: Movies}\n",
}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("secrets")
    project = copy_project(tmp / "p")
    build_warehouse(project)
    (project / "genesis.yaml").write_text((project / "genesis.yaml").read_text() + TARGETS)
    for name, text in TRACKERS.items():
        (project / "trackers" / f"{name}.yaml").write_text(text)
    with SheetsServer() as sheets, AirtableServer("the-real-token-is-different") as airtable:
        sheets.create_spreadsheet("s1")
        sheets.token_error = f"invalid_grant {ECHO}"  # an endpoint that echoes what it was sent
        airtable.add_table("appS", "Movies")
        good = sheets.write_service_account(tmp / "sntl-creds-dir-good.json", private_key_pem=new_private_key())
        info = json.loads(open(good).read())
        info.update(private_key_id=KEY_ID, client_id=CLIENT_ID)
        (tmp / "good.json").write_text(json.dumps(info))
        (tmp / "bad.json").write_text(json.dumps({**info, "private_key": BAD_KEY}))
        env = {**S, "S_SHEETS_URL": sheets.url, "S_AIRTABLE_URL": airtable.url}
        yield project, tmp, env


def _commands(project, tmp) -> list[tuple[list[str], dict]]:
    p = ["--project", str(project)]
    good, bad = {"S_GOOGLE_CREDS": str(tmp / "good.json")}, {"S_GOOGLE_CREDS": str(tmp / "bad.json")}
    out = []
    for target in ("trino_sentinel", "jwt_sentinel", "missing_warehouse", "whole_env"):  # 8 commands each
        out += [
            (["validate", *p, "--target", target, "--catalog-check"], {}),
            (["validate", *p, "--target", target, "--catalog-check", "--format", "json"], {}),
            (["run", "movie_listing", *p, "--target", target], {}),
            (["run", "movie_listing", *p, "--target", target, "--format", "json"], {}),
            (["refresh", "--all", *p, "--target", target], {}),
            (["refresh", "--all", *p, "--target", target, "--format", "json"], {}),
            (["demo", *p, "--target", target], {}),
            (["diff", "HEAD", *p, "--run-data", "--target", target], {}),
        ]
    for creds in (good, bad):
        out += [
            (["refresh", "sheet", "table", *p, "--target", "live_sentinel"], creds),
            (["refresh", "sheet", "table", *p, "--target", "live_sentinel", "--format", "json"], creds),
        ]
    out += [(["refresh", "sheet", *p, "--target", "live_sentinel"], {"S_GOOGLE_CREDS": str(tmp / "missing.json")}),
            (["compile", "movie_listing", *p, "--target", "trino_sentinel"], {}),
            (["impact", "HEAD", *p], {}), (["docs", *p, "--out", str(tmp / "docs")], {})]
    return out


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "GENESIS_DEBUG"])
def test_no_sentinel_reaches_stdout_stderr_or_json(world, monkeypatch, debug):
    project, tmp, env = world
    monkeypatch.chdir(project)
    secrets = list(S.values()) + [KEY_ID, CLIENT_ID, ECHO, BAD_KEY]
    failures = 0
    for args, extra in _commands(project, tmp):
        run_env = {**env, **extra, "GENESIS_DEBUG": "1" if debug else None}
        result = CliRunner().invoke(main, args, env=run_env, catch_exceptions=False)
        failures += result.exit_code != 0
        for stream, text in (("stdout", result.stdout), ("stderr", result.stderr)):
            for secret in secrets:
                assert secret not in text, f"{' '.join(args[:2])} ({extra}) printed {secret} on {stream}:\n{text}"
    assert failures >= len(_commands(project, tmp)) - 4  # the failure paths were taken
