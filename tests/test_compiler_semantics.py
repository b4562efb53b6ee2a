"""Compiled inputs run on DuckDB and compared with SQL written by hand on the same data.

The hand-written SQL computes each aggregate at its own grain in the most obvious way
(correlated sub-queries, pre-aggregated children), so a fan-out bug in the compiler
shows up as a different number here.
"""

from __future__ import annotations

import decimal

import duckdb
import pytest
import sqlglot

from genesis.api import run_query
from genesis.compiler import compile_input
from genesis.errors import GenesisError
from genesis.project.load import load_project
from tests.mini_data import build_warehouse, copy_project

LATEST_MOVIE = """
WITH movie AS (
  SELECT * EXCLUDE (rn) FROM (
    SELECT *, row_number() OVER (PARTITION BY movie_id ORDER BY op_ts DESC) AS rn FROM movie_cdc
  ) WHERE rn = 1 AND op <> 'd'
)
"""
LABEL = ("CASE m.status WHEN 'DEV' THEN 'Development' WHEN 'PHOT' THEN 'In photography' "
         "WHEN 'POST' THEN 'Post-production' ELSE m.status END")


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    root = copy_project(tmp_path_factory.mktemp("mini"))
    data = build_warehouse(root)
    con = duckdb.connect()
    con.execute("SET integer_division = true")
    for name, table in data.items():
        con.register(name, table)
    return load_project(root), con


def hand(con, sql: str) -> list[tuple]:
    return [tuple(_norm(v) for v in row) for row in con.sql(sql).fetchall()]


def genesis_rows(project, name, **params) -> list[tuple]:
    result = run_query(project, name, params=params)
    return [tuple(_norm(v) for v in row.values()) for row in result.table.to_pylist()]


def _norm(value):
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, decimal.Decimal):
        return round(float(value), 6)
    return value


def test_listing_collapses_one_to_many_and_keeps_one_row_per_root(mini):
    project, con = mini
    expected = hand(con, LATEST_MOVIE + f"""
        SELECT m.movie_id, m.title, {LABEL}, CAST(m.runtime_seconds // 60 AS INTEGER),
               CAST(date_trunc('month', m.launch_date) AS DATE),
               (SELECT string_agg(DISTINCT c.talent_name, ', ' ORDER BY c.talent_name)
                  FROM movie_talent c WHERE c.movie_id = m.movie_id AND c.talent_name IS NOT NULL),
               (SELECT sum(p.amount) FROM purchase_order p WHERE p.movie_id = m.movie_id),
               v.name
        FROM movie m JOIN production pr ON pr.movie_id = m.movie_id
        LEFT JOIN vendor v ON v.vendor_id = pr.vendor_id
        WHERE pr.country IN ('US', 'CA')
        ORDER BY m.movie_id""")
    got = genesis_rows(project, "movie_listing")
    assert len(expected) > 10
    assert got == expected


def test_listing_parameter_from_command_line(mini):
    project, con = mini
    got = genesis_rows(project, "movie_listing", countries="GB")
    expected = hand(con, LATEST_MOVIE + """
        SELECT m.movie_id FROM movie m JOIN production pr ON pr.movie_id = m.movie_id
        WHERE pr.country = 'GB' ORDER BY 1""")
    assert [r[0] for r in got] == [r[0] for r in expected] and expected


def test_measures_of_parent_and_children_are_not_multiplied(mini):
    project, con = mini
    expected = hand(con, LATEST_MOVIE + f"""
        , f AS (SELECT movie_id, sum(fee) AS fee, count(*) AS n FROM movie_talent GROUP BY 1)
        , p AS (SELECT movie_id, sum(amount) AS amount FROM purchase_order GROUP BY 1)
        SELECT {LABEL} AS status, sum(m.budget_usd), count(*), sum(f.fee), sum(coalesce(f.n, 0)),
               sum(p.amount), CAST(sum(f.fee) AS DOUBLE) / CAST(sum(m.budget_usd) AS DOUBLE)
        FROM movie m LEFT JOIN f USING (movie_id) LEFT JOIN p USING (movie_id)
        GROUP BY m.status HAVING sum(m.budget_usd) > 0 ORDER BY 1""")
    got = genesis_rows(project, "budget_by_status")
    assert len(expected) == 4
    assert got == expected
    sql = compile_input(project, "budget_by_status").sql("trino")
    assert "WITH base AS" in sql  # the keyed query was used, and each grain joins only what it
    assert "SELECT DISTINCT" not in sql  # reads, so no DISTINCT is needed (fewest_joins.py)


def test_having_on_measure_with_parameter(mini):
    project, con = mini
    threshold = hand(con, LATEST_MOVIE + "SELECT median(s) FROM (SELECT sum(budget_usd) s FROM movie GROUP BY status)")[0][0]
    got = genesis_rows(project, "budget_by_status", min_budget=str(threshold))
    expected = hand(con, LATEST_MOVIE + f"""
        SELECT {LABEL} FROM movie m GROUP BY m.status HAVING sum(m.budget_usd) > {threshold} ORDER BY 1""")
    assert [r[0] for r in got] == [r[0] for r in expected]
    assert 0 < len(got) < 4


def test_filter_on_children_counts_each_parent_once(mini):
    project, con = mini
    expected = hand(con, LATEST_MOVIE + f"""
        SELECT {LABEL}, count(*) FROM movie m
        WHERE EXISTS (SELECT 1 FROM movie_talent c WHERE c.movie_id = m.movie_id AND c.fee >= 100)
        GROUP BY m.status ORDER BY 1""")
    assert expected
    assert genesis_rows(project, "movies_with_big_fees") == expected


def test_many_to_one_aggregates_case_inside_sum_having_limit(mini):
    project, con = mini
    expected = hand(con, LATEST_MOVIE + """
        SELECT v.name, sum(po.amount), count(*), sum(CASE WHEN po.paid THEN po.amount ELSE 0 END),
               count(DISTINCT m.movie_id)
        FROM purchase_order po LEFT JOIN vendor v ON v.vendor_id = po.vendor_id
        LEFT JOIN movie m ON m.movie_id = po.movie_id
        GROUP BY v.name HAVING count(*) >= 1 ORDER BY 2 DESC, 1 LIMIT 10""")
    got = genesis_rows(project, "vendor_spend")
    assert got == expected and len(got) == 3
    assert "DISTINCT" not in compile_input(project, "vendor_spend").sql("trino").split("COUNT(DISTINCT")[0]


def test_cdc_latest_row_per_key_drops_deleted_keys(mini):
    project, con = mini
    got = {r[0]: r[1] for r in genesis_rows(project, "title_search", title="Title 20 again")}
    assert got == {20: "Title 20 again"}  # re-created after its delete
    listing = run_query(project, "budget_by_status")
    total = sum(listing.table.column("movie_count").to_pylist())
    expected = hand(con, LATEST_MOVIE + "SELECT count(*) FROM movie")[0][0]
    assert total == expected == 40 - 4 + 1  # 4 deleted keys, one of them re-created


@pytest.mark.parametrize("value", ["x' OR '1'='1", "'; DROP TABLE movie_cdc; --", "{{ 7 * 7 }}"])
def test_parameter_values_are_literals_never_sql(mini, value):
    project, _ = mini
    assert genesis_rows(project, "title_search", title=value) == []
    sql = compile_input(project, "title_search", {"title": value}).sql("trino")
    assert sqlglot.parse_one(sql, read="trino").find(sqlglot.exp.Or) is None


def test_quoted_title_parameter_matches(mini):
    project, _ = mini
    assert genesis_rows(project, "title_search", title="It's a 'quoted' title") == [(7, "It's a 'quoted' title")]


def test_every_input_parses_as_trino_and_duckdb(mini):
    project, _ = mini
    for name in project.inputs:
        compiled = compile_input(project, name)
        for dialect in ("trino", "duckdb"):
            assert sqlglot.parse_one(compiled.sql(dialect), read=dialect) is not None


def test_declared_types_are_kept(mini):
    project, _ = mini
    result = run_query(project, "movie_listing")
    types = {c.name: c.type for c in result.columns}
    assert types["runtime_min"] == "integer" and str(result.table.schema.field("runtime_min").type) == "int32"
    assert types["launch_month"] == "date" and str(result.table.schema.field("launch_month").type) == "date32[day]"
    assert str(result.table.schema.field("PO total").type) == "decimal128(38, 2)"


def test_only_needed_joins_are_made(mini):
    project, _ = mini
    sql = compile_input(project, "title_search").sql("trino")
    assert "JOIN" not in sql
    sql = compile_input(project, "vendor_spend").sql("trino")
    assert "movie_talent" not in sql and "production" not in sql


def test_unknown_parameter_from_command_line_is_an_error(mini):
    project, _ = mini
    with pytest.raises(GenesisError, match="unknown parameter 'titel'.*did you mean 'title'"):
        compile_input(project, "title_search", {"titel": "x"})


def _with_input(mini, tmp_path, name: str, text: str):
    """The mini project plus one input, over the same warehouse."""
    project, _ = mini
    root = copy_project(tmp_path / "p")
    (root / ".genesis").symlink_to(project.root + "/.genesis")
    (root / "inputs" / f"{name}.yaml").write_text(text)
    return load_project(root)


def test_negative_parameter_after_minus_is_not_a_comment(mini, tmp_path):
    project = _with_input(mini, tmp_path, "negative", """name: negative
from: movie
fields: [movie.movie_id]
filters: ["movie.movie_id >= -{{ n }} AND movie.movie_id < 5"]
parameters: {n: {type: integer, default: 1}}
""")
    sql = compile_input(project, "negative", {"n": "-3"}).sql("trino")
    assert "/*" not in sql and "--" not in sql
    assert [r[0] for r in genesis_rows(project, "negative", n="-3")] == [3, 4]


def test_date_diff_counts_whole_units_on_duckdb_as_on_trino(mini, tmp_path):
    project = _with_input(mini, tmp_path, "ages", """name: ages
from: movie
fields:
  - movie.movie_id
  - {name: years, sql: "date_diff('year', DATE '2000-12-31', DATE '2001-01-01')", type: bigint}
  - {name: months, sql: "date_diff('month', DATE '2000-01-15', DATE '2000-03-14')", type: bigint}
filters: ["movie.movie_id = 1"]
""")
    assert genesis_rows(project, "ages") == [(1, 0, 1)]


def test_list_of_a_labelled_field_shows_the_labels(mini, tmp_path):
    project = _with_input(mini, tmp_path, "statuses", """name: statuses
from: purchase_order
fields:
  - field: vendor.name
  - {field: movie.status, agg: list}
sort: [vendor.name]
""")
    rows = genesis_rows(project, "statuses")
    assert rows and all("PHOT" not in (r[1] or "") for r in rows)
    assert any("In photography" in (r[1] or "") for r in rows)


def test_each_print_takes_a_tree_of_its_own(mini):
    """The generator rewrites the tree it prints (no copy is made for it, CompiledQuery.tree):
    Trino's printer turns a QUALIFY into a sub-query in place, and the DuckDB text printed
    afterwards must still be that of the original query."""
    import dataclasses

    project, _ = mini
    text = "SELECT a FROM t QUALIFY ROW_NUMBER() OVER (PARTITION BY a ORDER BY b) = 1"
    compiled = dataclasses.replace(compile_input(project, next(iter(project.inputs))), _texts={}, _spare=[],
                                   build=lambda: sqlglot.parse_one(text, read="duckdb"))
    assert "SELECT a FROM (SELECT" in compiled.sql("trino", pretty=False)
    assert compiled.sql("duckdb", pretty=False) == sqlglot.parse_one(text, read="duckdb").sql("duckdb")
    first, second = compiled.tree(), compiled.tree()
    assert first is not second and first == second


def test_a_query_prints_the_same_in_either_order(mini):
    """The tree built at compile time goes to the first print; later prints build their own."""
    project, _ = mini
    for name in project.inputs:
        duckdb_first = compile_input(project, name)
        duckdb_text = duckdb_first.sql("duckdb")
        trino_first = compile_input(load_project(project.root), name)  # another project: nothing shared
        assert (trino_first.sql("trino"), trino_first.sql("duckdb")) == (duckdb_first.sql("trino"), duckdb_text)
