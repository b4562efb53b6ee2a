"""Time grains, date ranges and --as-of (issue 16) on the real Trino, against DuckDB and hand SQL.

The same checks as tests/test_time.py: every range keyword at the month end, leap day, DST
and year-end moments is compared, on Trino, with SQL written by hand that finds each row's
New York day with Trino's own `at_timezone`; grains and the CDC view as of a moment give the
same typed tables on DuckDB and Trino.
"""

from __future__ import annotations

import pytest

from genesis.compiler import compile_input
from genesis.project import business_time as bt
from tests import time_data as td
from tests.test_time import EXPECTED
from tests.trino_real.conftest import assert_same_table, make_project, run_both

LOCAL_DAY = {"day": "day", "at_local": "CAST(at_local AS DATE)",
             "at_utc": "CAST(at_timezone(at_utc, 'America/New_York') AS DATE)"}
KEYWORDS = list(dict.fromkeys(k for ranges in EXPECTED.values() for k in ranges))


@pytest.fixture(scope="module")
def timecheck(trino_server, tmp_path_factory):
    source = td.write_project(tmp_path_factory.mktemp("time-source"))
    made = make_project(trino_server, source, "timecheck", tmp_path_factory.mktemp("time-trino"), td.tables)
    for index, keyword in enumerate(KEYWORDS):
        for column in LOCAL_DAY:
            (made.root / "inputs" / f"r{index}_{column}.yaml").write_text(
                f"name: r{index}_{column}\nfrom: event\nfields: [event.event_id]\n"
                f"filters:\n  - {{field: event.{column}, range: '{keyword}'}}\n")
    for grain in bt.UNITS:
        for column in LOCAL_DAY:
            (made.root / "inputs" / f"g_{grain}_{column}.yaml").write_text(
                f"name: g_{grain}_{column}\nfrom: event\n"
                f"fields: [{{field: event.{column}, grain: {grain}}}, event.event_count]\n")
    return trino_server, made


@pytest.mark.parametrize("as_of", list(EXPECTED))
@pytest.mark.parametrize("column", list(LOCAL_DAY))
def test_every_range_keyword_on_trino_matches_hand_written_sql(timecheck, as_of, column):
    server, made = timecheck
    project = made.load()
    table = made.table_name("timecheck.event")
    genesis_parts, hand_parts = [], []
    for index, keyword in enumerate(KEYWORDS):
        if keyword not in EXPECTED[as_of]:
            continue
        with bt.as_of(as_of):
            sql = compile_input(project, f"r{index}_{column}").sql("trino")
        genesis_parts.append(f"SELECT '{keyword}' AS kw, count(*) AS n, sum(event_id) AS s FROM ({sql}) AS g")
        first, last = EXPECTED[as_of][keyword].split("..")
        hand_parts.append(f"SELECT '{keyword}' AS kw, count(*) AS n, sum(event_id) AS s FROM {table} "
                          f"WHERE {LOCAL_DAY[column]} BETWEEN DATE '{first}' AND DATE '{last}'")
    got = sorted(server.rows("\nUNION ALL\n".join(genesis_parts)))
    want = sorted(server.rows("\nUNION ALL\n".join(hand_parts)))
    assert len(want) == 21 and all(n > 0 for _, n, _ in want)
    assert got == want


@pytest.mark.parametrize("grain", bt.UNITS)
def test_grains_give_the_same_dates_on_duckdb_and_trino(timecheck, grain):
    _, made = timecheck
    project = made.load()
    for column in LOCAL_DAY:
        duck, trino = run_both(project, f"g_{grain}_{column}")
        assert trino.columns[0].type == "date"
        assert_same_table(duck.table, trino.table, f"grain {grain} on {column}")


def test_sunday_weeks_on_trino(timecheck):
    server, made = timecheck
    config = made.root / "genesis.yaml"
    original = config.read_text()
    config.write_text(original.replace("week_start: monday", "week_start: sunday"))
    try:
        project = made.load()
        assert project.config.week_start == "sunday"
        table = made.table_name("timecheck.event")
        for column, local in LOCAL_DAY.items():
            duck, trino = run_both(project, f"g_week_{column}")
            assert_same_table(duck.table, trino.table, f"sunday weeks on {column}")
            want = server.rows(f"SELECT date_add('day', -(day_of_week({local}) % 7), {local}) AS p, count(*) "
                               f"FROM {table} GROUP BY 1 ORDER BY 1")
            assert [tuple(r.values()) for r in trino.table.to_pylist()] == want
    finally:
        config.write_text(original)


@pytest.mark.parametrize("as_of", ["2026-03-01T09:30:00-05:00", "2026-03-06T12:00:00-05:00",
                                   "2026-03-08T01:59:59-05:00", "2026-03-08T03:00:00-04:00",
                                   "2026-11-01T01:30:00-04:00", "2026-11-01T01:30:00-05:00", "2026-11-01 00:00"])
def test_as_of_cdc_view_on_trino(timecheck, as_of):
    _, made = timecheck
    project = made.load()
    with bt.as_of(as_of):
        duck, trino = run_both(project, "items")
    assert_same_table(duck.table, trino.table, f"items as of {as_of}")
    assert [tuple(r.values()) for r in trino.table.to_pylist()] == td.latest_items(bt.parse_as_of(as_of, td.ZONE))
