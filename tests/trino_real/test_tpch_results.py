"""TPC-H on the real Trino: each input's generated SQL against the official text on the same
server (SF 0.01, the data tests/test_tpch.py uses), and the typed result identical to DuckDB's."""

from __future__ import annotations

import re
from decimal import Decimal

import pyarrow as pa
import pytest

from tests.test_tpch import PARAMETER_CASES, SCALE_FACTOR
from tests.tpch import BY_INPUT, PROJECT_DIR, QUERIES
from tests.tpch.data import TABLES, _parquet_files, generate_tpch, read_table
from tests.tpch.oracle import compare_at_official_scale
from tests.trino_real.conftest import assert_same_table, make_project, run_both

QUERY_IDS = [q.id for q in QUERIES]


@pytest.fixture(scope="module")
def tpch(trino_server, request, tmp_path_factory):
    cache = request.config.cache
    parquet = __import__("pathlib").Path(cache.mkdir(f"tpch-sf{SCALE_FACTOR}")) / "parquet"
    generate_tpch(parquet, SCALE_FACTOR)
    files = _parquet_files(parquet)
    made = make_project(trino_server, PROJECT_DIR, "tpch", tmp_path_factory.mktemp("tpch-trino"),
                        lambda: {f"tpch.{t}": read_table(files[t], t) for t in TABLES})
    return made, made.load()


def official_on_trino(server, made, sql: str):
    # The statement API takes one statement without the terminating semicolon.
    sql = re.sub(r"\biceberg\.tpch\.", f"{made.catalog}.tpch.", sql).strip().rstrip(";")
    return server.table(sql)


def test_rounded_comparison_can_fail():
    official = pa.table({"x": pa.array([Decimal("25.58")], pa.decimal128(38, 2))})
    compare_at_official_scale(pa.table({"x": [25.5751]}), official, ordered=True)
    with pytest.raises(AssertionError):
        compare_at_official_scale(pa.table({"x": [25.5749]}), official, ordered=True)


@pytest.mark.parametrize("query", QUERIES, ids=QUERY_IDS)
def test_generated_sql_matches_official_text_on_trino(query, tpch, trino_server):
    made, project = tpch
    duck, trino = run_both(project, query.input)
    want = official_on_trino(trino_server, made, query.official_sql())
    assert want.num_rows > 0
    compare_at_official_scale(trino.table, want, ordered=query.ordered)
    assert_same_table(duck.table, trino.table, query.input)


@pytest.mark.parametrize("name,params,substitutions", PARAMETER_CASES, ids=[c[0] for c in PARAMETER_CASES])
def test_parameters_match_official_substitution_on_trino(name, params, substitutions, tpch, trino_server):
    made, project = tpch
    query = BY_INPUT[name]
    sql = query.official_sql()
    for old, new in substitutions:
        sql = sql.replace(old, new)
    duck, trino = run_both(project, name, **params)
    want = official_on_trino(trino_server, made, sql)
    assert want.num_rows > 0
    compare_at_official_scale(trino.table, want, ordered=query.ordered)
    assert_same_table(duck.table, trino.table, name)
