"""Hundreds of trackers on time: `refresh --jobs`, catch-up `--due`, `--shard`, stopping.

Many trackers run through the local Trino-protocol server (with per-query latency), the
Sheets server and the Airtable server (with their quotas enforced, scaled down in time so
that a test takes seconds), through the real trino, gspread and pyairtable clients. What
is checked comes from the servers' own request logs: quotas never exceeded, one writer at a
time per spreadsheet and per base, queries really in parallel; and from the destinations'
final contents, compared with a sequential run.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from genesis.destinations import sheets as sheets_destination
from genesis.engines.duckdb import DuckDBEngine
from genesis.errors import GenesisError
from genesis.project.config import get_target, render_settings
from genesis.project.load import load_project
from genesis.run.pool import ByteBudget
from genesis.run.refresh import refresh, select_trackers
from genesis.run.scheduler import last_fire, parse_shard, read_file_stamp, shard_of, write_file_stamp, write_lane
from tests.farm import SERVICE_ACCOUNT, Farm, latency_between
from tests.mini_data import build_warehouse, copy_project

REPO = Path(__file__).resolve().parent.parent
UTC = dt.UTC

# The Sheets quotas, scaled: 6 reads and 6 writes per 2 s per service account on the server.
# The client paces to 6 per 2.3 s: its clock starts a call before the server sees it.
QUOTA, WINDOW = 6, 2.0
CLIENT_POLICY = sheets_destination.RetryPolicy(base_seconds=0.05, writes_per_minute=QUOTA,
                                               reads_per_minute=QUOTA, window_seconds=WINDOW + 0.3)


@pytest.fixture
def paced(monkeypatch):
    monkeypatch.setattr(sheets_destination, "POLICY", CLIENT_POLICY)


def make_farm(root: Path, monkeypatch, **options) -> Farm:
    options = {"latency": latency_between(0.05, 0.4), "write_quota": QUOTA, "read_quota": QUOTA,
               "window_seconds": WINDOW, **options}
    farm = Farm.build(root, **options)
    farm.sheets.slow(0.05)  # every answer takes a moment, so two clients at once would show
    farm.airtable.delay_seconds = 0.03
    for name, value in farm.env.items():
        monkeypatch.setenv(name, value)
    return farm


def with_failures(farm: Farm) -> None:
    """A tracker whose spreadsheet does not exist (fails at write) and one whose checks fail,
    in the same spreadsheet as healthy trackers."""
    farm.add_tracker("zz-missing-sheet", {"type": "google_sheets", "spreadsheet_id": "no-such-sheet",
                                          "worksheet": "Tab"})
    farm.add_tracker("zz-failing-checks", {"type": "google_sheets", "spreadsheet_id": "sheet00",
                                           "worksheet": "Strict"}, checks="checks: {min_rows: 1000}")


def run_all(farm: Farm, jobs: int, **options):
    project = load_project(farm.project)
    return refresh(project, select_trackers(project, [], True, False), jobs=jobs, **options)


# ------------------------------------------------------------------------ log checks

def max_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def overlapping(intervals: list[tuple[float, float]]) -> list[tuple]:
    """Pairs of intervals that overlap (touching ends are fine)."""
    ordered = sorted(intervals)
    return [(a, b) for a, b in zip(ordered, ordered[1:]) if b[0] < a[1] - 1e-6]


def spreadsheet_of(path: str) -> str:
    return path.split("/")[3].split(":")[0]


def assert_sheets_within_quota(farm: Farm) -> None:
    log = [e for e in farm.sheets.log if e.kind in ("read", "write")]
    assert not [e for e in log if e.status == 429], "a Sheets quota was exceeded"
    for kind in ("read", "write"):
        times = [e.started for e in log if e.kind == kind and e.user == SERVICE_ACCOUNT]
        assert max_in_window(times, WINDOW) <= QUOTA, f"more than {QUOTA} {kind}s in {WINDOW} s"


def assert_one_writer_per_spreadsheet(farm: Farm) -> None:
    """No two requests to one spreadsheet at once, and no interleaving: a tab's read is
    followed by its writes before the next tab is read (every tracker here writes)."""
    by_book: dict[str, list] = {}
    for e in sorted(farm.sheets.log, key=lambda e: e.started):
        if e.kind in ("read", "write"):
            by_book.setdefault(spreadsheet_of(e.path), []).append(e)
    for book, entries in by_book.items():
        assert not overlapping([(e.started, e.started + e.seconds) for e in entries]), \
            f"two trackers talked to spreadsheet {book} at once"
        if book not in farm.sheets.books:
            continue  # the failing tracker's missing spreadsheet: one read, no write
        sequence = "".join("W" if e.kind == "write" else "R" for e in entries
                           if e.kind == "write" or e.query.get("ranges"))
        assert re.fullmatch(r"(RW+)*", sequence), f"spreadsheet {book}: trackers interleaved ({sequence})"


def assert_airtable_within_limits(farm: Farm) -> None:
    log = [e for e in farm.airtable.log if e.base]
    assert not [e for e in log if e.status == 429], "Airtable's 5 requests/s per base was exceeded"
    for base in {e.base for e in log}:
        times = [e.time for e in log if e.base == base]
        assert max_in_window(times, 1.0) <= 5, f"base {base}: more than 5 requests in a second"
        intervals = [(e.time, e.done) for e in log if e.base == base]
        assert not overlapping(intervals), f"two trackers talked to base {base} at once"


def max_parallel_queries(farm: Farm) -> int:
    events = sorted([(q.started, 1) for q in farm.trino.queries()]
                    + [(q.finished, -1) for q in farm.trino.queries() if q.finished])
    level = best = 0
    for _, step in events:
        level += step
        best = max(best, level)
    return best


# ------------------------------------------------------------------------ concurrency

def test_concurrent_refresh_equals_sequential_within_quotas(tmp_path, monkeypatch, paced):
    """20 trackers and two failing ones, `jobs=6`: the quotas hold (server logs), one client
    at a time per spreadsheet and per base, queries really overlap, the failures stay with
    their own trackers, and every destination ends as a sequential run leaves it."""
    with make_farm(tmp_path / "seq", monkeypatch, sheets=8, spreadsheets=3, airtable=6, bases=2,
                   files=6) as sequential:
        with_failures(sequential)
        report = run_all(sequential, jobs=1)
        expected = sequential.states()
        seq_status = {t.tracker: t.status for t in report.trackers}
        assert max_parallel_queries(sequential) == 1

    with make_farm(tmp_path / "par", monkeypatch, sheets=8, spreadsheets=3, airtable=6, bases=2,
                   files=6) as farm:
        with_failures(farm)
        lines: list[str] = []
        report = run_all(farm, jobs=6, progress=lambda event, r: lines.append(f"{event} {r.tracker}"))
        status = {t.tracker: t.status for t in report.trackers}
        assert status == seq_status
        assert status["zz-missing-sheet"] == status["zz-failing-checks"] == "failed"
        assert {s for n, s in status.items() if not n.startswith("zz-")} == {"ok"}
        by_name = {t.tracker: t for t in report.trackers}
        assert by_name["zz-missing-sheet"].stage == "write" and "no-such-sheet" in by_name["zz-missing-sheet"].error
        assert by_name["zz-failing-checks"].stage == "checks"
        # the summary keeps the selection's order; progress is one line per finished tracker
        assert [t.tracker for t in report.trackers] == sorted(status)
        assert sorted(lines) == sorted(f"end {n}" for n in status)

        assert farm.states() == expected
        assert farm.state("zz-missing-sheet") is None and farm.state("zz-failing-checks") is None
        assert_sheets_within_quota(farm)
        assert_one_writer_per_spreadsheet(farm)
        assert_airtable_within_limits(farm)
        assert 2 <= max_parallel_queries(farm) <= 6


def test_duckdb_cursor_per_worker_gives_the_serial_results(tmp_path):
    """The embedded engine shares one warehouse connection; each thread queries on a cursor
    of its own (DuckDB's rule for threads) and gets exactly what a serial run gets."""
    project_dir = copy_project(tmp_path / "p")
    build_warehouse(project_dir)
    from genesis.project.config import warehouse_dir

    project = load_project(project_dir)
    engine = DuckDBEngine(warehouse_dir(project, render_settings(get_target(project))))
    from genesis.compiler import compile_input

    sqls = [compile_input(project, "budget_by_status", {"min_budget": str(b)}).sql("duckdb")
            for b in range(0, 9_000_000, 800_000)]
    serial = [engine.execute(sql).to_pylist() for sql in sqls]
    results: dict[int, list] = {}
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for _ in range(3):
                results[i] = engine.execute(sqls[i]).to_pylist()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(sqls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    engine.close()
    assert not errors
    assert [results[i] for i in range(len(sqls))] == serial
    assert len({json.dumps(r, default=str) for r in serial}) > 3  # the queries differ


# ------------------------------------------------------------------------ catch-up

def test_catch_up_picks_exactly_the_trackers_whose_schedule_fired_since_their_stamp(
        tmp_path, monkeypatch, paced):
    """Stamps from an earlier run (sheet header notes, Airtable table descriptions, file
    sidecars), then a clock moved past missed schedules: `--due` picks the trackers whose
    schedule fired since their stamp, however long ago (no window), refreshes them once,
    and then picks nothing more."""
    schedules = ["*/15 * * * *", "0 * * * *", "0 9 * * *", "30 10 * * 1-5", "0 0 1 * *"]
    farm = make_farm(tmp_path / "f", monkeypatch, sheets=5, spreadsheets=2, airtable=5, bases=2, files=5,
                     latency=0.0, schedule=lambda n, kind: schedules[n % len(schedules)])
    with farm:
        first = dt.datetime(2026, 3, 2, 8, 50, tzinfo=UTC)  # a Monday
        monkeypatch.setenv("GENESIS_NOW", first.isoformat())
        report = run_all(farm, jobs=4)
        assert report.ok, [t.error for t in report.trackers if t.failed]
        project = load_project(farm.project)
        table = next(t["where"] for t in farm.trackers.values() if t["kind"] == "airtable")
        with farm.airtable._lock:  # a person describes the table in Airtable's UI
            described = farm.airtable.table(table["base_id"], table["table"])
            described.description = "Budgets by movie. Ask Dana before editing.\n\n" + described.description
        # right after the run, at the same moment: nothing is due
        assert select_trackers(project, [], False, True, 15, now=first) == []

        # the scheduler was down for two hours; it comes back at 10:55 (window: 15 minutes)
        later = dt.datetime(2026, 3, 2, 10, 55, tzinfo=UTC)
        due = {t.name for t in select_trackers(project, [], False, True, 15, now=later)}
        fired_since = {"*/15 * * * *", "0 * * * *", "0 9 * * *", "30 10 * * 1-5"}  # not the 1st-of-month
        expected = {n for n, t in farm.trackers.items() if t["schedule"] in fired_since}
        assert due == expected
        # the plain window rule (fired in the last 15 minutes) would have dropped the 09:00 and 10:00 refreshes
        assert all(later - last_fire(s, later) >= dt.timedelta(minutes=15) for s in ("0 9 * * *", "0 * * * *"))

        monkeypatch.setenv("GENESIS_NOW", later.isoformat())
        writes_before = len([e for e in farm.sheets.log if e.kind == "write"])
        report = refresh(project, select_trackers(project, [], False, True, 15, now=later), jobs=4, now=later)
        assert report.ok and {t.tracker for t in report.trackers} == expected
        # unchanged data: each due Sheets tracker rewrote its stamp alone, one write each
        sheet_due = [n for n in expected if farm.trackers[n]["kind"] == "google_sheets"]
        assert len([e for e in farm.sheets.log if e.kind == "write"]) - writes_before == len(sheet_due)
        assert {t.status for t in report.trackers} == {"unchanged"}
        # the Airtable stamp moved; the person's words stayed
        assert described.description.startswith("Budgets by movie. Ask Dana before editing.")
        assert described.description.endswith("Refreshed by Genesis at 2026-03-02 10:55:00 UTC.")
        assert described.description.count("Refreshed by Genesis") == 1
        # caught up: once
        assert select_trackers(project, [], False, True, 15, now=later) == []
        assert select_trackers(project, [], False, True, 15, now=later + dt.timedelta(minutes=4)) == []
        quarter = {n for n, t in farm.trackers.items() if t["schedule"] == "*/15 * * * *"}
        assert {t.name for t in select_trackers(project, [], False, True, 15,
                                                 now=dt.datetime(2026, 3, 2, 11, 0, tzinfo=UTC))} == quarter | {
            n for n, t in farm.trackers.items() if t["schedule"] == "0 * * * *"}


def test_a_file_stamp_is_trusted_only_while_the_file_is_unchanged(tmp_path):
    path = tmp_path / "out" / "a.csv"
    path.parent.mkdir()
    path.write_text("id\n1\n")
    at = dt.datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    assert write_file_stamp(path, "a", at, changed=True, touch=at)
    assert read_file_stamp(path) == at
    assert not write_file_stamp(path, "a", at + dt.timedelta(hours=1), changed=False, touch=at)  # fresh enough
    assert write_file_stamp(path, "a", at + dt.timedelta(hours=1), changed=False,
                            touch=at + dt.timedelta(minutes=30))  # the schedule fired since: renewed
    assert read_file_stamp(path) == at + dt.timedelta(hours=1)
    path.write_text("id\n1\n2\n")  # replaced by someone else: the stamp no longer speaks for it
    assert read_file_stamp(path) is None
    assert not write_file_stamp(path, "b", at, changed=True, touch=None)  # unscheduled: no sidecar needed


def test_a_destination_without_a_stamp_falls_back_to_the_window(tmp_path, monkeypatch, paced):
    with make_farm(tmp_path / "f", monkeypatch, sheets=2, spreadsheets=1, airtable=2, bases=1, files=2,
                   schedule=lambda n, kind: "0 * * * *") as farm:
        project = load_project(farm.project)
        names = set(farm.trackers)
        assert {t.name for t in select_trackers(project, [], False, True, 15,
                                                 now=dt.datetime(2026, 3, 2, 10, 14, tzinfo=UTC))} == names
        assert select_trackers(project, [], False, True, 15, now=dt.datetime(2026, 3, 2, 10, 16, tzinfo=UTC)) == []


def test_an_unreadable_stamp_makes_the_tracker_due(tmp_path, monkeypatch, paced):
    """No access to the spreadsheet: its tracker is due (and then fails loudly), not skipped."""
    with make_farm(tmp_path / "f", monkeypatch, sheets=0, airtable=0, files=1,
                   schedule=lambda n, kind: "0 0 1 1 *") as farm:
        farm.add_tracker("zz-nowhere", {"type": "google_sheets", "spreadsheet_id": "no-such-sheet",
                                        "worksheet": "Tab"}, schedule="0 0 1 1 *")
        project = load_project(farm.project)
        due = select_trackers(project, [], False, True, 15, now=dt.datetime(2026, 6, 1, tzinfo=UTC))
        assert [t.name for t in due] == ["zz-nowhere"]


# ------------------------------------------------------------------------ shards

def test_shards_partition_the_trackers_and_keep_a_spreadsheet_or_base_together(tmp_path, monkeypatch):
    with make_farm(tmp_path / "f", monkeypatch, sheets=30, spreadsheets=7, airtable=20, bases=5,
                   files=20, latency=0.0) as farm:
        project = load_project(farm.project)
        target = get_target(project)
        settings = render_settings(target)
        everyone = {t for t in project.trackers}
        shards = [{t.name for t in select_trackers(project, [], True, False, shard=(k, 4))} for k in range(1, 5)]
        assert set().union(*shards) == everyone and sum(map(len, shards)) == len(everyone)
        assert all(shards), "every runner gets some trackers"
        for name, tracker in project.trackers.items():
            lane = write_lane(project, tracker, target, settings)
            same_lane = {n for n, t in project.trackers.items() if write_lane(project, t, target, settings) == lane}
            home = next(s for s in shards if name in s)
            assert same_lane <= home
        # stable: a hash of the lane's name, not of the process
        assert shard_of("sheets:sheet00", 4) == shard_of("sheets:sheet00", 4)
        code = ("from genesis.run.scheduler import shard_of; print(shard_of('sheets:sheet00', 4), "
                "shard_of('file:out/a.csv', 7))")
        other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                               env={**os.environ, "PYTHONHASHSEED": "123"})
        assert other.stdout.split() == [str(shard_of("sheets:sheet00", 4)), str(shard_of("file:out/a.csv", 7))]


@pytest.mark.parametrize("text", ["0/4", "5/4", "2", "a/b", "1/0", ""])
def test_a_bad_shard_is_a_clear_error(text):
    with pytest.raises(GenesisError, match="must be K/N"):
        parse_shard(text)


# ------------------------------------------------------------------------ stopping

def test_stop_cancels_running_trino_queries_and_starts_no_write(tmp_path, monkeypatch, paced):
    """Stopped while every query is still running on the cluster: each running query gets a
    DELETE (cancelled on the cluster), nothing is written, every tracker says cancelled."""
    with make_farm(tmp_path / "f", monkeypatch, sheets=3, spreadsheets=1, airtable=2, bases=1, files=3,
                   latency=20.0) as farm:
        stop = threading.Event()
        threading.Timer(1.5, stop.set).start()
        started = time.monotonic()
        report = run_all(farm, jobs=4, stop=stop)
        assert time.monotonic() - started < 10, "the run waited for the queries instead of cancelling them"
        assert {t.status for t in report.trackers} == {"cancelled"} and report.cancelled and not report.ok
        running = [q for q in farm.trino.queries()]
        assert len(running) == 4 and all(q.cancelled for q in running)
        assert len(farm.trino.deletes) >= 4
        assert all(state is None for state in farm.states().values())
        assert not [e for e in farm.sheets.log if e.kind == "write"]
        assert not [e for e in farm.airtable.log if e.kind == "write"]


def snapshot(farm: Farm) -> dict:
    return {name: json.dumps(state, default=str) if not isinstance(state, bytes) else state.hex()
            for name, state in farm.states().items()}


def test_sigterm_at_random_moments_leaves_whole_destinations_and_a_rerun_converges(tmp_path, monkeypatch):
    """`genesis refresh --all --jobs 4` in a real process, sent SIGTERM at random moments
    (a bounded number of times): afterwards every destination holds either what it held
    before or exactly its final content; a last run without a signal converges."""
    rng = random.Random(1404)
    with make_farm(tmp_path / "f", monkeypatch, sheets=5, spreadsheets=2, airtable=4, bases=2, files=4,
                   latency=latency_between(0.2, 1.2), write_quota=60, read_quota=60, window_seconds=60) as farm:
        env = {**os.environ, **farm.env, "PYTHONPATH": str(REPO)}
        command = [sys.executable, "-m", "genesis.cli", "refresh", "--all", "--jobs", "4", "--format", "json",
                   "--project", str(farm.project)]
        history: list[tuple[dict, dict]] = []
        codes = []
        for _ in range(4):
            before = snapshot(farm)
            process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            time.sleep(rng.uniform(1.0, 5.0))
            process.send_signal(signal.SIGTERM)
            out, err = process.communicate(timeout=60)
            codes.append(process.returncode)
            assert b"Traceback" not in err, err.decode()
            if process.returncode == 130:  # stopped: the summary of what was done, as JSON
                report = json.loads(out)
                assert report["cancelled"] is True
                assert {t["status"] for t in report["trackers"]} <= {"ok", "unchanged", "cancelled"}
            history.append((before, snapshot(farm)))
        final_run = subprocess.run(command, env=env, capture_output=True, timeout=120)
        assert final_run.returncode == 0, final_run.stderr.decode()
        final = snapshot(farm)
        assert all(v not in (None, "null") for v in final.values())
        for before, after in history:
            for name in farm.trackers:
                assert after[name] in (before[name], final[name]), f"{name} was left half-written"
        assert 130 in codes, f"no run was stopped mid-way: {codes}"
        again = subprocess.run(command, env=env, capture_output=True, timeout=120)
        assert {t["status"] for t in json.loads(again.stdout)["trackers"]} == {"unchanged"}


def test_results_waiting_for_a_write_lane_are_bounded_in_memory():
    budget = ByteBudget(100)
    stop = threading.Event()
    budget.take(80, stop)
    waited = threading.Event()

    def second():
        budget.take(50, stop)  # 80 + 50 > 100: waits for the first to be written
        waited.set()

    worker = threading.Thread(target=second)
    worker.start()
    assert not waited.wait(0.5)
    budget.give(80)
    assert waited.wait(5)
    worker.join()
    budget.give(50)
    budget.take(500, stop)  # alone, a result larger than the budget still goes through
    assert budget.used == 500
