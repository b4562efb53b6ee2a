"""Time grains, relative date ranges, the project time zone and --as-of (issue 16) on DuckDB.

Genesis's SQL runs on a real DuckDB (through the engine for a part of the cases, and as the
compiled text on an in-memory DuckDB whose session time zone is Asia/Tokyo, to show that no
result depends on it) and is compared with SQL written by hand that finds each row's New York
day with DuckDB's own time zone functions. The expected days of every range keyword are
written out below for a month end, a leap day, both 2026 DST changes of America/New_York and
a year end: they are the documented meaning (docs/inputs.md, "Relative date ranges").
"""

from __future__ import annotations

import datetime as dt
import json

import duckdb
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genesis.api import run_query
from genesis.cli import main
from genesis.compiler import compile_input
from genesis.engines.warehouse import write_table
from genesis.errors import GenesisError, ValidationError
from genesis.project import business_time as bt
from genesis.project.load import load_project
from tests import time_data as td

# As-of moment -> {range: "first..last" day, both included}, weeks starting on Monday.
EXPECTED = {
    "2026-01-31T23:30:00-05:00": {  # a Saturday, the last day of January (already February in UTC)
        "today": "2026-01-31..2026-01-31", "yesterday": "2026-01-30..2026-01-30",
        "tomorrow": "2026-02-01..2026-02-01", "last 7 days": "2026-01-24..2026-01-30",
        "next 14 days": "2026-02-01..2026-02-14", "last 2 weeks": "2026-01-12..2026-01-25",
        "next 1 week": "2026-02-02..2026-02-08", "last 3 months": "2025-10-01..2025-12-31",
        "next 1 month": "2026-02-01..2026-02-28", "last 1 quarter": "2025-10-01..2025-12-31",
        "next 2 quarters": "2026-04-01..2026-09-30", "last 1 year": "2025-01-01..2025-12-31",
        "this week": "2026-01-26..2026-02-01", "this month": "2026-01-01..2026-01-31",
        "this quarter": "2026-01-01..2026-03-31", "this year": "2026-01-01..2026-12-31",
        "week to date": "2026-01-26..2026-01-31", "month to date": "2026-01-01..2026-01-31",
        "quarter to date": "2026-01-01..2026-01-31", "year to date": "2026-01-01..2026-01-31",
        "2026-01-01..2026-03-31": "2026-01-01..2026-03-31",
    },
    "2028-02-29T10:00:00-05:00": {  # a leap day, a Tuesday
        "today": "2028-02-29..2028-02-29", "yesterday": "2028-02-28..2028-02-28",
        "tomorrow": "2028-03-01..2028-03-01", "last 7 days": "2028-02-22..2028-02-28",
        "next 14 days": "2028-03-01..2028-03-14", "last 2 weeks": "2028-02-14..2028-02-27",
        "next 1 week": "2028-03-06..2028-03-12", "last 3 months": "2027-11-01..2028-01-31",
        "next 1 month": "2028-03-01..2028-03-31", "last 1 quarter": "2027-10-01..2027-12-31",
        "next 2 quarters": "2028-04-01..2028-09-30", "last 1 year": "2027-01-01..2027-12-31",
        "this week": "2028-02-28..2028-03-05", "this month": "2028-02-01..2028-02-29",
        "this quarter": "2028-01-01..2028-03-31", "this year": "2028-01-01..2028-12-31",
        "week to date": "2028-02-28..2028-02-29", "month to date": "2028-02-01..2028-02-29",
        "quarter to date": "2028-01-01..2028-02-29", "year to date": "2028-01-01..2028-02-29",
        "2028-02-28..2028-03-01": "2028-02-28..2028-03-01",
    },
    "2026-03-08T12:00:00-04:00": {  # the spring change (a 23-hour Sunday)
        "today": "2026-03-08..2026-03-08", "yesterday": "2026-03-07..2026-03-07",
        "tomorrow": "2026-03-09..2026-03-09", "last 7 days": "2026-03-01..2026-03-07",
        "next 14 days": "2026-03-09..2026-03-22", "last 2 weeks": "2026-02-16..2026-03-01",
        "next 1 week": "2026-03-09..2026-03-15", "last 3 months": "2025-12-01..2026-02-28",
        "next 1 month": "2026-04-01..2026-04-30", "last 1 quarter": "2025-10-01..2025-12-31",
        "next 2 quarters": "2026-04-01..2026-09-30", "last 1 year": "2025-01-01..2025-12-31",
        "this week": "2026-03-02..2026-03-08", "this month": "2026-03-01..2026-03-31",
        "this quarter": "2026-01-01..2026-03-31", "this year": "2026-01-01..2026-12-31",
        "week to date": "2026-03-02..2026-03-08", "month to date": "2026-03-01..2026-03-08",
        "quarter to date": "2026-01-01..2026-03-08", "year to date": "2026-01-01..2026-03-08",
        "2026-03-08..2026-03-08": "2026-03-08..2026-03-08",
    },
    "2026-11-01T01:30:00-05:00": {  # the autumn change, the second 01:30 (a 25-hour Sunday)
        "today": "2026-11-01..2026-11-01", "yesterday": "2026-10-31..2026-10-31",
        "tomorrow": "2026-11-02..2026-11-02", "last 7 days": "2026-10-25..2026-10-31",
        "next 14 days": "2026-11-02..2026-11-15", "last 2 weeks": "2026-10-12..2026-10-25",
        "next 1 week": "2026-11-02..2026-11-08", "last 3 months": "2026-08-01..2026-10-31",
        "next 1 month": "2026-12-01..2026-12-31", "last 1 quarter": "2026-07-01..2026-09-30",
        "next 2 quarters": "2027-01-01..2027-06-30", "last 1 year": "2025-01-01..2025-12-31",
        "this week": "2026-10-26..2026-11-01", "this month": "2026-11-01..2026-11-30",
        "this quarter": "2026-10-01..2026-12-31", "this year": "2026-01-01..2026-12-31",
        "week to date": "2026-10-26..2026-11-01", "month to date": "2026-11-01..2026-11-01",
        "quarter to date": "2026-10-01..2026-11-01", "year to date": "2026-01-01..2026-11-01",
        "2026-10-31..2026-11-01": "2026-10-31..2026-11-01",
    },
    "2026-12-31T23:59:59-05:00": {  # a Thursday, the last second of the year
        "today": "2026-12-31..2026-12-31", "yesterday": "2026-12-30..2026-12-30",
        "tomorrow": "2027-01-01..2027-01-01", "last 7 days": "2026-12-24..2026-12-30",
        "next 14 days": "2027-01-01..2027-01-14", "last 2 weeks": "2026-12-14..2026-12-27",
        "next 1 week": "2027-01-04..2027-01-10", "last 3 months": "2026-09-01..2026-11-30",
        "next 1 month": "2027-01-01..2027-01-31", "last 1 quarter": "2026-07-01..2026-09-30",
        "next 2 quarters": "2027-01-01..2027-06-30", "last 1 year": "2025-01-01..2025-12-31",
        "this week": "2026-12-28..2027-01-03", "this month": "2026-12-01..2026-12-31",
        "this quarter": "2026-10-01..2026-12-31", "this year": "2026-01-01..2026-12-31",
        "week to date": "2026-12-28..2026-12-31", "month to date": "2026-12-01..2026-12-31",
        "quarter to date": "2026-10-01..2026-12-31", "year to date": "2026-01-01..2026-12-31",
        "2026-12-31..2027-01-01": "2026-12-31..2027-01-01",
    },
}
# How the hand-written SQL finds a row's New York day, per column (DuckDB's own zone rules).
LOCAL_DAY = {"day": "day", "at_local": "CAST(at_local AS DATE)",
             "at_utc": "CAST(timezone('America/New_York', at_utc) AS DATE)"}
HAND_PERIOD = {
    "day": "{d}", "week": "{d} - CAST(isodow({d}) - 1 AS INTEGER)",
    "month": "make_date(year({d}), month({d}), 1)", "quarter": "make_date(year({d}), 3 * quarter({d}) - 2, 1)",
    "year": "make_date(year({d}), 1, 1)",
}


@pytest.fixture(scope="module")
def timecheck(tmp_path_factory):
    """The project (weeks on Monday), its data, and an in-memory DuckDB holding the same tables."""
    root = td.write_project(tmp_path_factory.mktemp("timecheck"))
    data = td.tables()
    for name, table in data.items():
        write_table(root / ".genesis" / "warehouse", f"iceberg.{name}", table)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'Asia/Tokyo'")  # a session zone that must not matter
    con.execute("ATTACH ':memory:' AS iceberg")
    con.execute("CREATE SCHEMA iceberg.timecheck")
    for name, table in data.items():
        con.register("arrow_in", table)
        con.execute(f"CREATE TABLE iceberg.{name} AS SELECT * FROM arrow_in")
        con.unregister("arrow_in")
    return root, con


def _input(root, name: str, text: str):
    (root / "inputs" / f"{name}.yaml").write_text(text)
    return load_project(root)


def _ids(con, sql: str) -> list[int]:
    return [row[0] for row in con.sql(sql).fetchall()]


def test_every_range_keyword_at_month_ends_leap_day_and_dst_changes(timecheck):
    root, con = timecheck
    inputs = {}
    keywords = list(dict.fromkeys(k for ranges in EXPECTED.values() for k in ranges))
    for index, keyword in enumerate(keywords):
        for column in LOCAL_DAY:
            inputs[(keyword, column)] = name = f"r{index}_{column}"
            (root / "inputs" / f"{name}.yaml").write_text(
                f"name: {name}\nfrom: event\nfields: [event.event_id]\n"
                f"filters:\n  - {{field: event.{column}, range: '{keyword}'}}\n")
    project = load_project(root)
    checked = 0
    for as_of, ranges in EXPECTED.items():
        for (keyword, column), name in inputs.items():
            if keyword not in ranges:  # an explicit range is checked on its own as-of day
                continue
            first, last = ranges[keyword].split("..")
            with bt.as_of(as_of):
                sql = compile_input(project, name).sql("duckdb")
            got = _ids(con, sql)
            want = _ids(con, f"SELECT event_id FROM iceberg.timecheck.event WHERE {LOCAL_DAY[column]} "
                             f"BETWEEN DATE '{first}' AND DATE '{last}' ORDER BY event_id")
            assert want, f"{as_of} {keyword}: the data set has no row in {ranges[keyword]}"
            assert got == want, f"as of {as_of}, '{keyword}' on {column}: {len(got)} rows, want {len(want)}"
            checked += 1
    assert checked == 5 * 21 * 3


def test_range_bounds_are_typed_literals_of_the_project_zone(timecheck):
    """Half-open [start, end): the spring change's day starts at 05:00 UTC and ends at 04:00 UTC."""
    root, _ = timecheck
    project = _input(root, "dst_day", "name: dst_day\nfrom: event\nfields: [event.event_id]\nfilters:\n"
                                      "  - {field: event.at_utc, range: today}\n")
    with bt.as_of("2026-03-08T12:00:00-04:00"):
        sql = compile_input(project, "dst_day").sql("trino")
    assert "event.at_utc >= CAST('2026-03-08 05:00:00.000000 UTC' AS TIMESTAMP(6) WITH TIME ZONE)" in sql
    assert "event.at_utc < CAST('2026-03-09 04:00:00.000000 UTC' AS TIMESTAMP(6) WITH TIME ZONE)" in sql
    # The engine path gives the hand-written rows too (23 hours of quarter-hours, plus the midnight).
    with bt.as_of("2026-03-08T12:00:00-04:00"):
        rows = run_query(project, "dst_day").table.column("event_id").to_pylist()
    stamps = [td.instants()[i - 1] for i in rows]
    assert min(stamps) == dt.datetime(2026, 3, 8, 5, tzinfo=dt.UTC)
    assert max(stamps) == dt.datetime(2026, 3, 9, 4, tzinfo=dt.UTC) - dt.timedelta(microseconds=1)
    assert len([s for s in stamps if s.minute % 15 == 0 and s.microsecond == 0]) == 23 * 4


@pytest.mark.parametrize("grain", ["day", "week", "month", "quarter", "year"])
def test_grains_match_hand_written_periods_on_every_column_type(timecheck, grain):
    root, con = timecheck
    for column, local in LOCAL_DAY.items():
        name = f"g_{grain}_{column}"
        project = _input(root, name, f"name: {name}\nfrom: event\n"
                                     f"fields: [{{field: event.{column}, grain: {grain}}}, event.event_count]\n")
        compiled = compile_input(project, name)
        assert [c.name for c in compiled.columns] == [f"{column}_{grain}", "event_count"]
        assert compiled.columns[0].type == "date"
        got = con.sql(compiled.sql("duckdb")).fetchall()
        period = HAND_PERIOD[grain].format(d=local)
        want = con.sql(f"SELECT {period} AS p, count(*) FROM iceberg.timecheck.event GROUP BY p ORDER BY p").fetchall()
        assert got == want, f"grain {grain} on {column}"


def test_grain_through_the_engine_gives_a_sorted_date_column(timecheck):
    root, con = timecheck
    project = _input(root, "weekly", "name: weekly\nfrom: event\n"
                                     "fields: [{field: event.at_utc, grain: week, label: Week}, event.event_count]\n"
                                     "filters: [{field: event.at_utc, range: 2026-03-01..2026-03-14}]\n")
    table = run_query(project, "weekly").table
    assert str(table.schema.field("Week").type) == "date32[day]"
    # Sunday 2026-03-01 belongs to the week of Monday 2026-02-23; the next Monday starts one.
    assert table.column("Week").to_pylist() == [dt.date(2026, 2, 23), dt.date(2026, 3, 2), dt.date(2026, 3, 9)]
    want = con.sql("SELECT count(*) FROM iceberg.timecheck.event WHERE CAST(timezone('America/New_York', at_utc) "
                   "AS DATE) BETWEEN DATE '2026-03-01' AND DATE '2026-03-14'").fetchall()[0][0]
    assert sum(table.column("event_count").to_pylist()) == want


def test_week_start_sunday_moves_week_grains_and_ranges(tmp_path, timecheck):
    _, con = timecheck
    root = td.write_project(tmp_path, week_start="sunday")
    project = _input(root, "sunday", "name: sunday\nfrom: event\n"
                                     "fields: [{field: event.at_utc, grain: week}, event.event_count]\n"
                                     "filters: [{field: event.at_utc, range: this week}]\n")
    with bt.as_of("2026-03-08T12:00:00-04:00"):  # a Sunday: its week starts that day
        sql = compile_input(project, "sunday").sql("duckdb")
    assert con.sql(sql).fetchall() == con.sql(
        "SELECT DATE '2026-03-08', count(*) FROM iceberg.timecheck.event WHERE CAST(timezone('America/New_York', "
        "at_utc) AS DATE) BETWEEN DATE '2026-03-08' AND DATE '2026-03-14'").fetchall()
    for column, local in LOCAL_DAY.items():
        name = f"sun_{column}"
        project = _input(root, name, f"name: {name}\nfrom: event\n"
                                     f"fields: [{{field: event.{column}, grain: week}}, event.event_count]\n")
        want = con.sql(f"SELECT {local} - CAST(dayofweek({local}) AS INTEGER) AS p, count(*) "
                       f"FROM iceberg.timecheck.event GROUP BY p ORDER BY p").fetchall()
        assert con.sql(compile_input(project, name).sql("duckdb")).fetchall() == want, column


# --------------------------------------------------------------------------- --as-of on CDC views

@pytest.mark.parametrize("as_of, expected", [
    ("2026-03-01T09:30:00-05:00", [(1, "chair", 10)]),
    ("2026-03-06T12:00:00-05:00", [(1, "chair", 12), (3, "lamp", 30)]),  # the delete's own instant
    ("2026-03-08T01:59:59-05:00", [(1, "chair", 12), (3, "lamp", 30), (4, "shelf", 80)]),
    ("2026-03-08T03:00:00-04:00", [(1, "chair", 12), (3, "lamp", 30), (4, "shelf", 85)]),
    ("2026-11-01T01:30:00-04:00", [(1, "chair", 12), (2, "desk v2", 210), (4, "shelf", 85)]),
    ("2026-11-01T01:30:00-05:00", [(1, "chair", 15), (2, "desk v2", 210), (4, "shelf", 85)]),
    ("2026-11-01 00:00", [(1, "chair", 12), (2, "desk v2", 210), (3, "lamp", 30), (4, "shelf", 85)]),
])
def test_as_of_reads_the_cdc_log_as_it_stood(timecheck, as_of, expected):
    root, _ = timecheck
    project = load_project(root)
    with bt.as_of(as_of):
        rows = [tuple(r.values()) for r in run_query(project, "items").table.to_pylist()]
    assert rows == expected
    assert rows == td.latest_items(bt.parse_as_of(as_of, td.ZONE))


def test_without_as_of_the_cdc_view_is_the_whole_log(timecheck):
    root, _ = timecheck
    rows = [tuple(r.values()) for r in run_query(load_project(root), "items").table.to_pylist()]
    assert rows == td.latest_items(dt.datetime.max.replace(tzinfo=dt.UTC))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(offset=st.integers(min_value=-2 * 86400, max_value=260 * 86400), micro=st.sampled_from([0, -1, 1]))
def test_as_of_equals_the_latest_rows_of_the_truncated_log(timecheck, offset, micro):
    """Property: for any moment, the view as of it is the newest row per key of the log cut there."""
    root, con = timecheck
    project = load_project(root)
    logged = [row[4] for row in td.ITEM_LOG]
    moment = dt.datetime(2026, 3, 1, 14, tzinfo=dt.UTC) + dt.timedelta(seconds=offset)
    if micro:  # right at a change, or a microsecond either side of it
        moment = logged[offset % len(logged)] + dt.timedelta(microseconds=micro)
    with bt.as_of(moment.isoformat()):
        sql = compile_input(project, "items").sql("duckdb")
    assert con.sql(sql).fetchall() == td.latest_items(moment)


def test_cli_as_of_on_run_and_compile(timecheck):
    root, _ = timecheck
    runner = CliRunner()
    done = runner.invoke(main, ["run", "items", "--project", str(root), "--format", "json",
                                "--as-of", "2026-03-06T12:00:00-05:00"])
    assert done.exit_code == 0, done.output
    assert [(r["item_id"], r["price"]) for r in json.loads(done.stdout)] == [(1, 12), (3, 30)]
    done = runner.invoke(main, ["compile", "items", "--project", str(root), "--dialect", "duckdb",
                                "--as-of", "2026-03-06 07:00"])  # no offset: New York time
    assert done.exit_code == 0, done.output
    assert "op_ts <= CAST('2026-03-06 12:00:00.000000 UTC' AS TIMESTAMPTZ)" in done.stdout
    done = runner.invoke(main, ["run", "items", "--project", str(root), "--as-of", "last tuesday"])
    assert done.exit_code != 0 and "--as-of 'last tuesday' is not an ISO 8601 date or time" in done.output


def test_as_of_needs_a_time_ordered_log(tmp_path):
    root = td.write_project(tmp_path)
    path = root / "datasources" / "item.yaml"
    path.write_text(td.ITEM.replace("order_by: op_ts", "order_by: price"))
    with bt.as_of("2026-03-06"), pytest.raises(GenesisError) as caught:
        compile_input(load_project(root), "items")
    assert "latest.order_by (price) is bigint" in caught.value.render()
    assert caught.value.location.path.endswith("item.yaml") and caught.value.location.line == 5


# --------------------------------------------------------------------------- errors

def _errors(root) -> str:
    with pytest.raises(ValidationError) as caught:
        load_project(root)
    return caught.value.render()


def test_bad_zone_and_week_start_are_located_with_did_you_mean(tmp_path):
    root = td.write_project(tmp_path, zone="Europe/Pari")
    assert "genesis.yaml:3:12: error: unknown time zone 'Europe/Pari' (did you mean 'Europe/Paris'?)" in _errors(root)
    root = td.write_project(tmp_path, week_start="sundy")
    assert "genesis.yaml:4:13: error: 'sundy' is not one of: monday" in _errors(root)
    assert "(did you mean 'sunday'?)" in _errors(root)
    root = td.write_project(tmp_path, zone="america/new_york")
    assert "did you mean 'America/New_York'? (zone names are case-sensitive)" in _errors(root)


def test_bad_range_and_grain_are_located_with_did_you_mean(tmp_path):
    root = td.write_project(tmp_path)
    (root / "inputs" / "grain.yaml").write_text(
        "name: grain\nfrom: event\nfields:\n  - {field: event.at_utc, grain: weak}\n")
    assert "grain.yaml:4:34: error: 'weak' is not one of: day, week, month, quarter, year in fields item 1, grain " \
           "(did you mean 'week'?)" in _errors(root)
    (root / "inputs" / "grain.yaml").unlink()
    (root / "inputs" / "bad.yaml").write_text(
        "name: bad\nfrom: event\nfields: [event.event_id]\n"
        "filters:\n  - {field: event.day, range: nxt 14 days}\n  - {field: event.day, range: last 3 fortnights}\n"
        "  - {field: event.day, range: 2026-03-31..2026-03-01}\n")
    text = _errors(root)
    assert ("bad.yaml:5:31: error: range 'nxt 14 days' is not a date range Genesis knows "
            "(did you mean 'next'?") in text
    assert "bad.yaml:6:31: error: range 'last 3 fortnights' is not a date range Genesis knows" in text
    assert "bad.yaml:7:31: error: range '2026-03-31..2026-03-01': 2026-03-01 is before 2026-03-31" in text


def test_grain_or_range_on_a_non_time_field_is_located(tmp_path):
    root = td.write_project(tmp_path)
    (root / "inputs" / "text.yaml").write_text(
        "name: text\nfrom: event\nfields:\n  - {field: event.label, grain: month}\n")
    (root / "inputs" / "text2.yaml").write_text(
        "name: text2\nfrom: event\nfields: [event.event_id]\nfilters:\n  - {field: event.label, range: today}\n")
    project = load_project(root)
    with pytest.raises(GenesisError) as caught:
        compile_input(project, "text")
    assert caught.value.render().startswith(f"{caught.value.location.path}:4:5: error: grain 'month' needs a date")
    with pytest.raises(GenesisError) as caught:
        compile_input(project, "text2")
    assert "range 'today' needs a date or timestamp, but 'event.label' is varchar" in caught.value.render()
    assert caught.value.location.line == 5


def test_range_days_are_computed_in_the_project_zone():
    settings = bt.TimeSettings("Pacific/Auckland")
    moment = dt.datetime(2026, 6, 30, 13, tzinfo=dt.UTC)  # already July 1st in Auckland
    assert bt.today(settings, moment) == dt.date(2026, 7, 1)
    days = bt.parse_range("month to date", bt.today(settings, moment), 0)
    assert (days.start, days.last) == (dt.date(2026, 7, 1), dt.date(2026, 7, 1))
    assert bt.start_of_day(dt.date(2026, 11, 1), "America/New_York") == dt.datetime(2026, 11, 1, 4, tzinfo=dt.UTC)
    assert bt.start_of_day(dt.date(2026, 11, 2), "America/New_York") == dt.datetime(2026, 11, 2, 5, tzinfo=dt.UTC)
    # Chile skips local midnight on 2026-09-06 (00:00 -04 becomes 01:00 -03): the day starts at 01:00.
    assert bt.start_of_day(dt.date(2026, 9, 6), "America/Santiago") == dt.datetime(2026, 9, 6, 4, tzinfo=dt.UTC)
    # A wall-clock time inside the gap is read with the offset before it (01:30 -03, as most tools do).
    assert bt.parse_as_of("2026-09-06 00:30", "America/Santiago") == dt.datetime(2026, 9, 6, 4, 30, tzinfo=dt.UTC)


def test_catalog_shows_grains_ranges_and_the_zone(tmp_path):
    from genesis.review.catalog import render_catalog

    root = td.write_project(tmp_path)
    project = _input(root, "weekly", "name: weekly\nfrom: event\n"
                                     "fields: [{field: event.at_utc, grain: week}, event.event_count]\n"
                                     "filters: [{field: event.day, range: last 3 months}]\n")
    html = render_catalog(project, "duckdb", dt.datetime(2026, 3, 8, tzinfo=dt.UTC))
    assert "by week" in html and "event.day in last 3 months" in html
    assert "Dates in America/New_York, weeks from Monday" in html


def _git(root, *args):
    import subprocess

    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def test_refresh_and_diff_data_as_of(tmp_path):
    """`refresh --as-of` writes the log as it stood; `diff --data --as-of` compares both refs then."""
    root = td.write_project(tmp_path / "repo")
    (root / ".gitignore").write_text(".genesis/\nout/\n")
    (root / "trackers" / "items.yaml").write_text(
        "name: items\ninput: items\ndestination: {type: file, path: out/items.csv}\nkey: [item.item_id]\n"
        "mode: replace\n")
    for name, table in td.tables().items():
        write_table(root / ".genesis" / "warehouse", f"iceberg.{name}", table)
    runner = CliRunner()
    done = runner.invoke(main, ["refresh", "items", "--project", str(root), "--as-of", "2026-03-08T03:00:00-04:00"])
    assert done.exit_code == 0, done.output
    lines = (root / "out" / "items.csv").read_text().splitlines()
    assert lines[1:] == ['1,"chair",12', '3,"lamp",30', '4,"shelf",85']
    _git(root, "init", "-q")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "base")
    (root / "inputs" / "items.yaml").write_text(td.ITEMS_INPUT.replace("sort:", "filters: ['item.price < 50']\nsort:"))
    done = runner.invoke(main, ["diff", "--base", "HEAD", "--data", "--format", "json", "--project", str(root),
                                "--as-of", "2026-03-08T03:00:00-04:00"])
    assert done.exit_code == 0, done.output
    data = next(t["data"] for t in json.loads(done.stdout)["trackers"] if t["name"] == "items")
    assert (data["base_rows"], data["head_rows"], data["removed"]) == (3, 2, 1)  # the shelf at 85, as of then
    done = runner.invoke(main, ["diff", "--base", "HEAD", "--data", "--format", "json", "--project", str(root)])
    data = next(t["data"] for t in json.loads(done.stdout)["trackers"] if t["name"] == "items")
    assert (data["base_rows"], data["head_rows"]) == (4, 1)  # now: chair 15, desk v2, shelf 85, rug 60
