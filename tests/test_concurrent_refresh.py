"""Two and three `genesis refresh` processes at once on one Sheets tab, one Airtable table
and one file, started at random offsets, round after round, with a person's notes, edits
and re-sorts in between. After every round each destination equals a clean run (one
process, the same person's actions, its own spreadsheet, base and file): no note lost, no
duplicate key, no misplaced value; and no process reports a change it did not make.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import gspread
import pytest

from genesis.destinations.sheets import EndpointHTTPClient, load_credentials
from tests.mini_data import build_warehouse, copy_project
from tests.servers.airtable_server import AirtableServer
from tests.servers.sheets_server import SheetsServer, new_private_key
from tests.test_live_refresh import LIVE_TARGET

TOKEN = "pat-concurrency-test-token"
GENESIS = "genesis@genesis-test.iam.gserviceaccount.com"
PERSON = "person@studio.example"
TAB = "Movies"
ROUNDS = (2, 3, 3, 2)  # writers per round (each round starts 3 to 4 processes)

TARGET = LIVE_TARGET  # the live target of the live-refresh test, over the local servers


def _trackers(suffix: str, sheet: str, base: str, path: str) -> dict[str, str]:
    common = "input: movie_listing\nkey: [movie.movie_id]\nmode: upsert\n"
    return {
        f"sheet{suffix}": f"name: sheet{suffix}\n{common}"
                          f"destination: {{type: google_sheets, spreadsheet_id: {sheet}, worksheet: {TAB}}}\n",
        f"airtable{suffix}": f"name: airtable{suffix}\n{common}destination: {{type: airtable, base_id: {base}, table: Movies}}\n",
        f"file{suffix}": f"name: file{suffix}\n{common}destination: {{type: file, path: {path}}}\n",
    }


@pytest.fixture
def world(tmp_path):
    project = copy_project(tmp_path / "p")
    build_warehouse(project)
    (project / "genesis.yaml").write_text((project / "genesis.yaml").read_text() + TARGET)
    for suffix, sheet, base, path in (("", "contested", "appCONTESTED", "out/movies.csv"),
                                      ("-clean", "clean", "appCLEAN", "out/clean.csv")):
        for name, text in _trackers(suffix, sheet, base, path).items():
            (project / "trackers" / f"{name}.yaml").write_text(text)
    key = new_private_key()
    with SheetsServer(window_seconds=60, write_quota=10_000, read_quota=10_000) as sheets, \
            AirtableServer(TOKEN, requests_per_second=1000) as airtable:
        for sid in ("contested", "clean"):
            sheets.create_spreadsheet(sid, sheets=(TAB,))
        for base in ("appCONTESTED", "appCLEAN"):
            airtable.add_table(base, "Movies", [{"name": "movie_id", "type": "number", "options": {"precision": 0}}])
        env = {**os.environ, "GENESIS_TEST_SA": sheets.write_service_account(tmp_path / "sa.json", GENESIS, key),
               "GENESIS_TEST_SHEETS_URL": sheets.url, "GENESIS_TEST_AIRTABLE_TOKEN": TOKEN,
               "GENESIS_TEST_AIRTABLE_URL": airtable.url}
        env.pop("GENESIS_DEBUG", None)
        person_sa = sheets.write_service_account(tmp_path / "person.json", PERSON, key)
        yield project, sheets, airtable, env, person_sa


def _start(project: Path, env: dict, trackers: list[str], delay: float) -> subprocess.Popen:
    code = f"import time, sys; time.sleep({delay}); from genesis.cli import main; sys.exit(main())"
    return subprocess.Popen([sys.executable, "-c", code, "refresh", *trackers, "--target", "live", "--format",
                             "json", "--project", str(project)], env=env, cwd=project,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _person_sheet(sheets: SheetsServer, person_sa: str, sid: str) -> gspread.Worksheet:
    client_class = type("PersonHTTPClient", (EndpointHTTPClient,), {"endpoint": sheets.url})
    creds, _ = load_credentials(person_sa, sheets.url)
    return gspread.Client(creds, http_client=client_class).open_by_key(sid).worksheet(TAB)


def _person_acts(sheets, airtable, person_sa, sid: str, base: str, round_no: int, rng_seed: int,
                 noted_before: set) -> None:
    """The same edits, by key, on one spreadsheet and one base: notes, a wrong value, a
    removed row, a stray keyed row, a re-sort."""
    rng = random.Random(rng_seed)
    ws = _person_sheet(sheets, person_sa, sid)
    grid = sheets.grid(sid, TAB)
    header = grid[0]
    if "Notes" not in header:
        ws.update([["Notes"]], gspread.utils.rowcol_to_a1(1, len(header) + 1))
        header = header + ["Notes"]
    id_col, title_col, notes_col = header.index("movie_id"), header.index("Title"), header.index("Notes")
    keyed = sorted(int(r[id_col]) for r in grid[1:] if len(r) > id_col and isinstance(r[id_col], (int, float))
                   and r[id_col] < 9000)
    noted, wrong, removed = rng.sample([k for k in keyed if k not in noted_before], 3)  # keep earlier notes
    noted_before.add(noted)
    row_of = {int(r[id_col]): i + 1 for i, r in enumerate(grid) if i and len(r) > id_col
              and isinstance(r[id_col], (int, float))}
    ws.update([[f"note {round_no}"]], gspread.utils.rowcol_to_a1(row_of[noted], notes_col + 1))
    ws.insert_note(gspread.utils.rowcol_to_a1(row_of[noted], title_col + 1), f"cell note {round_no}")
    ws.update([["typed over"]], gspread.utils.rowcol_to_a1(row_of[wrong], title_col + 1))
    ws.update([[9000 + round_no, "stray row"]], gspread.utils.rowcol_to_a1(len(grid) + 1, id_col + 1),
              raw=True)
    ws.delete_rows(row_of[removed])
    ws.sort((title_col + 1, "des" if round_no % 2 else "asc"))

    ids = {r["fields"].get("movie_id"): r["id"] for r in airtable.records(base, "Movies")}
    airtable.person_set(base, "Movies", ids[noted], "Notes", f"note {round_no}")
    airtable.person_set(base, "Movies", ids[wrong], "Title", "typed over")
    airtable.person_delete(base, "Movies", ids[removed])
    airtable.person_add(base, "Movies", {"movie_id": 9000 + round_no, "Title": "stray record"})


def _sheet_state(sheets: SheetsServer, sid: str) -> tuple:
    """Grid and every note but the refresh stamp in the header."""
    notes = {k: v for k, v in sheets.notes(sid, TAB).items() if k[0] > 0}
    return sheets.grid(sid, TAB), notes


def _airtable_state(airtable: AirtableServer, base: str) -> list[str]:
    return sorted(json.dumps(r["fields"], sort_keys=True) for r in airtable.records(base, "Movies"))


def _keys(grid: list[list]) -> list:
    col = grid[0].index("movie_id")
    return [r[col] for r in grid[1:] if len(r) > col and r[col] is not None]


SHEET_COUNTS = ("inserted", "updated", "deleted", "marked", "unmarked")


def test_concurrent_refreshes_equal_a_clean_run(world):
    project, sheets, airtable, env, person_sa = world
    rng = random.Random(11)
    contested, clean = ["sheet", "airtable", "file"], ["sheet-clean", "airtable-clean", "file-clean"]
    first = [_start(project, env, contested + clean, 0)]
    assert first[0].wait(120) == 0, first[0].communicate()
    sheets.slow(0.05)  # every answer takes a little while: the writers' reads and writes overlap
    noted: dict[str, set] = {"contested": set(), "clean": set()}
    for round_no, writers in enumerate(ROUNDS, start=1):
        for sid, base in (("contested", "appCONTESTED"), ("clean", "appCLEAN")):
            _person_acts(sheets, airtable, person_sa, sid, base, round_no, round_no, noted[sid])
        (project / "out" / "movies.csv").write_text("half a fi")  # a damaged file to repair
        (project / "out" / "clean.csv").write_text("half a fi")
        if round_no % 2:  # odd rounds: the writers' reads meet, so they all plan on the same state
            sheets.gather_reads("contested", writers)
        procs = [_start(project, env, clean, 0)]
        procs += [_start(project, env, contested, round(rng.uniform(0, 0.4), 2)) for _ in range(writers)]
        outputs = [(p.wait(180), *p.communicate()) for p in procs]
        reports = []
        for code, out, err in outputs:
            assert "Traceback" not in err, err
            if code != 0:  # a loser may fail, but only clearly: another refresh holds the tab
                assert "another refresh holds" in out + err, (code, out, err)
            reports.append({t["tracker"]: t for t in json.loads(out)["trackers"]})
        for report in reports:
            for tracker in report.values():
                assert tracker["status"] in ("ok", "unchanged") or "another refresh holds" in str(tracker["error"])
                if tracker["status"] == "ok" and "sheet" in tracker["tracker"]:
                    assert any(tracker["details"].get(n) for n in SHEET_COUNTS)  # no ok for a write not made

        assert _sheet_state(sheets, "contested") == _sheet_state(sheets, "clean"), f"round {round_no}"
        keys = _keys(sheets.grid("contested", TAB))
        assert len(keys) == len(set(keys)), f"duplicate keys after round {round_no}"
        # every change landed exactly once: the contenders' counts add up to the clean run's
        clean_counts = [reports[0]["sheet-clean"]["details"].get(n, 0) for n in SHEET_COUNTS]
        counts = [sum(r["sheet"]["details"].get(n, 0) for r in reports[1:]) for n in SHEET_COUNTS]
        assert counts == clean_counts, f"round {round_no}"
        assert _airtable_state(airtable, "appCONTESTED") == _airtable_state(airtable, "appCLEAN")
        assert (project / "out" / "movies.csv").read_bytes() == (project / "out" / "clean.csv").read_bytes()
        assert not [p for p in (project / "out").iterdir() if p.name.startswith(".genesis-tmp-")]

    notes = _sheet_state(sheets, "contested")[1]
    assert sorted(notes.values()) == sorted(f"cell note {i}" for i in range(1, len(ROUNDS) + 1))
    grid = sheets.grid("contested", TAB)
    notes_col = grid[0].index("Notes")
    assert sorted(r[notes_col] for r in grid[1:] if len(r) > notes_col and r[notes_col]) == \
        sorted(f"note {i}" for i in range(1, len(ROUNDS) + 1))
