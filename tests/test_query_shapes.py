"""The query shapes of bench/shapes.py: golden SQL (fixture input -> expected SQL) and rows.

The golden files pin the plans of the passes that make these shapes fast
(genesis/compiler/passes/fewest_joins.py: a CTE joins only what it reads, a semi-join in place of
DISTINCT over a one_to_many join; genesis/compiler/passes/order.py: the fewest tie-breakers), so
switching a pass off fails here. The row tests run the same SQL on TPC-H SF 0.01 and compare
with the hand-written SQL of each shape. Regenerate the golden files after a deliberate plan
change with GENESIS_UPDATE_GOLDEN=1.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.shapes import _ORDERS_LOG_SQL, SHAPES, shapes_project
from genesis.compiler import compile_input
from genesis.project.load import load_project
from tests.tpch.data import small_tpch
from tests.tpch.oracle import compare

GOLDEN = Path(__file__).parent / "fixtures" / "golden_shapes"
BY_NAME = {s.name: s for s in SHAPES}


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return load_project(shapes_project(tmp_path_factory.mktemp("shapes")))


@pytest.fixture(scope="module")
def con(request, tmp_path_factory):
    connection = small_tpch(request, tmp_path_factory, "shapes-warehouse")
    connection.execute(_ORDERS_LOG_SQL)
    yield connection
    connection.close()


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_shape_compiles_to_its_golden_sql(shapes, name):
    sql = compile_input(shapes, f"shape_{name}").sql("duckdb")
    golden = GOLDEN / f"{name}.sql"
    if os.environ.get("GENESIS_UPDATE_GOLDEN"):
        golden.write_text(sql + "\n")
    assert sql + "\n" == golden.read_text()


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_shape_gives_the_rows_of_the_hand_written_sql(shapes, con, name):
    shape = BY_NAME[name]
    got = con.sql(compile_input(shapes, f"shape_{name}").sql("duckdb")).to_arrow_table()
    expected = con.sql(shape.hand).to_arrow_table()
    assert expected.num_rows > 0
    compare(got, expected, ordered=shape.ordered)


def test_a_parent_measure_is_aggregated_without_the_child_join(shapes):
    sql = compile_input(shapes, "shape_parent_child").sql("duckdb")
    grain = sql[sql.index("grain_orders AS"):sql.index("\n)\nSELECT")]
    assert "SELECT DISTINCT" not in sql and "lineitem" not in grain


def test_a_filter_over_the_child_join_becomes_a_semi_join_for_the_parent_measure(shapes):
    sql = compile_input(shapes, "shape_filter_parent_child").sql("duckdb")
    grain = sql[sql.index("grain_orders AS"):sql.index("\n)\nSELECT")]
    assert "SELECT DISTINCT" not in sql and "EXISTS(" in grain and "JOIN iceberg.tpch.lineitem" not in grain


def test_ties_are_broken_by_the_key_not_by_every_column(shapes):
    listing = compile_input(shapes, "shape_sort_limit").sql("duckdb")
    assert listing.split("ORDER BY")[1].split() == ['"o_totalprice"', "DESC,", '"o_orderkey"', "ASC", "LIMIT", "100"]
    grouped = compile_input(shapes, "shape_grouped_sort_limit").sql("duckdb")
    assert grouped.split("ORDER BY")[1].split() == ['"revenue"', "DESC,", '"c_custkey"', "ASC", "LIMIT", "20"]
