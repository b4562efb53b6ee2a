"""What a many_to_one join prints as (genesis/compiler/join_types.py), and that rows never change.

A LEFT JOIN becomes INNER only where that cannot drop a row: a filter that is not true on a
row without its parent, or a join declared `required: true` (referential integrity). Each case
has golden SQL (so switching the pass off fails here) and runs on DuckDB against SQL written by
hand on the same small data, which holds an order whose customer does not exist and an order
without a customer: those rows must survive every undeclared join.
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from genesis.api import run_query
from genesis.compiler import compile_input
from genesis.engines.warehouse import write_table
from genesis.errors import GenesisError
from genesis.project.load import load_project

GOLDEN = Path(__file__).parent / "fixtures" / "golden_join_types"
D = pa.decimal128(18, 2)

CUSTOMER = """name: customer
table: iceberg.shop.customer
primary_key: [customer_id]
fields:
  customer_id: {type: bigint}
  segment: {type: varchar}
"""
ORDERS = """name: orders
table: iceberg.shop.orders
primary_key: [order_id]
fields:
  order_id: {type: bigint}
  customer_id: {type: bigint}
  status: {type: varchar}
  amount: {type: "decimal(18,2)"}
measures:
  total: {agg: sum, field: amount, type: "decimal(38,2)"}
joins:
  customer: {datasource: customer, on: {customer_id: customer_id}, relationship: many_to_one}
"""
LINE = """name: line
table: iceberg.shop.line
primary_key: [line_id]
fields:
  line_id: {type: bigint}
  order_id: {type: bigint}
  quantity: {type: bigint}
measures:
  quantity_total: {agg: sum, field: quantity, type: bigint}
joins:
  orders: {datasource: orders, on: {order_id: order_id}, relationship: many_to_one, required: true}
"""
INPUTS = {
    # No filter on the customer: an order without one (orphan key 9, NULL key) still counts.
    "by_segment": {"from": "orders", "fields": ["customer.segment", "orders.total"]},
    # A filter that holds on a row without a customer: the join must stay LEFT.
    "segment_not_b": {"from": "orders", "fields": ["customer.segment", "orders.total"],
                      "filters": ["coalesce(customer.segment, 'none') <> 'B'"]},
    # A filter that is never true without a customer: INNER drops nothing more.
    "segment_a": {"from": "orders", "fields": ["orders.status", "orders.total"],
                  "filters": ["customer.segment = 'A'"]},
    # Declared `required: true` (every line has its order): INNER.
    "by_status": {"from": "line", "fields": ["orders.status", "line.quantity_total"]},
    # Declared, but a listing with a LIMIT: LEFT lets the engine take the top rows before joining.
    "top_lines": {"from": "line", "fields": ["line.line_id", "orders.status"],
                  "sort": ["line.quantity DESC"], "limit": 3},
    # Declared below, undeclared above: line -> orders INNER, orders -> customer LEFT.
    "lines_by_segment": {"from": "line", "fields": ["orders.customer.segment", "line.quantity_total"]},
}
HAND = {
    "by_segment": "SELECT c.segment, sum(o.amount) FROM orders o LEFT JOIN customer c USING (customer_id) "
                  "GROUP BY 1 ORDER BY 1 NULLS LAST",
    "segment_not_b": "SELECT c.segment, sum(o.amount) FROM orders o LEFT JOIN customer c USING (customer_id) "
                     "WHERE coalesce(c.segment, 'none') <> 'B' GROUP BY 1 ORDER BY 1 NULLS LAST",
    "segment_a": "SELECT o.status, sum(o.amount) FROM orders o LEFT JOIN customer c USING (customer_id) "
                 "WHERE c.segment = 'A' GROUP BY 1 ORDER BY 1 NULLS LAST",
    "by_status": "SELECT o.status, sum(l.quantity) FROM line l LEFT JOIN orders o USING (order_id) "
                 "GROUP BY 1 ORDER BY 1 NULLS LAST",
    "top_lines": "SELECT l.line_id, o.status FROM line l LEFT JOIN orders o USING (order_id) "
                 "ORDER BY l.quantity DESC LIMIT 3",
    "lines_by_segment": "SELECT c.segment, sum(l.quantity) FROM line l LEFT JOIN orders o USING (order_id) "
                        "LEFT JOIN customer c ON c.customer_id = o.customer_id GROUP BY 1 ORDER BY 1 NULLS LAST",
}


def _tables() -> dict[str, pa.Table]:
    return {
        "customer": pa.table({"customer_id": pa.array([1, 2, 3], pa.int64()), "segment": ["A", "B", "A"]}),
        "orders": pa.table({
            "order_id": pa.array([10, 11, 12, 13, 14], pa.int64()),
            "customer_id": pa.array([1, 2, 9, None, 3], pa.int64()),  # 9: no such customer; NULL: none
            "status": ["open", "done", "open", "done", "open"],
            "amount": pa.array([Decimal("10.00"), Decimal("20.00"), Decimal("40.00"), Decimal("80.00"),
                                Decimal("160.00")], D),
        }),
        "line": pa.table({"line_id": pa.array(range(1, 8), pa.int64()),
                          "order_id": pa.array([10, 10, 11, 12, 13, 13, 14], pa.int64()),
                          "quantity": pa.array([1, 2, 4, 8, 16, 32, 64], pa.int64())}),
    }


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    import yaml

    root = tmp_path_factory.mktemp("shop")
    (root / "genesis.yaml").write_text(
        "name: shop\ndefault_target: local\ntargets:\n"
        "  local: {engine: duckdb, warehouse: .genesis/warehouse, destinations: local}\n")
    for folder in ("datasources", "inputs", "trackers"):
        (root / folder).mkdir()
    for name, text in (("customer", CUSTOMER), ("orders", ORDERS), ("line", LINE)):
        (root / "datasources" / f"{name}.yaml").write_text(text)
    for name, body in INPUTS.items():
        (root / "inputs" / f"{name}.yaml").write_text(yaml.safe_dump({"name": name, **body}, sort_keys=False))
    data = _tables()
    con = duckdb.connect()
    for name, table in data.items():
        write_table(root / ".genesis" / "warehouse", f"iceberg.shop.{name}", table)
        con.register(name, table)
    return load_project(root), con


def _joins(sql: str) -> list[str]:
    """Each join's keyword and table, e.g. ['LEFT JOIN iceberg.shop.customer']."""
    words = sql.split()
    return [" ".join(words[i - 1:i + 2]) if words[i - 1] == "LEFT" else " ".join(words[i:i + 2])
            for i, w in enumerate(words) if w == "JOIN"]


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_join_types_golden_sql_and_rows(shop, name):
    project, con = shop
    sql = compile_input(project, name).sql("duckdb")
    golden = GOLDEN / f"{name}.sql"
    if os.environ.get("GENESIS_UPDATE_GOLDEN"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(sql + "\n")
    assert sql + "\n" == golden.read_text()
    got = [tuple(row.values()) for row in run_query(project, name).table.to_pylist()]
    assert got == con.sql(HAND[name]).fetchall()


def test_an_undeclared_join_stays_left_and_keeps_orders_without_their_customer(shop):
    project, _ = shop
    assert _joins(compile_input(project, "by_segment").sql("trino")) == ["LEFT JOIN iceberg.shop.customer"]
    rows = {r["segment"]: r["total"] for r in run_query(project, "by_segment").table.to_pylist()}
    assert rows[None] == Decimal("120.00")  # order 12 (customer 9 missing) + order 13 (no customer)


def test_a_filter_true_without_the_parent_keeps_the_left_join(shop):
    project, _ = shop
    assert _joins(compile_input(project, "segment_not_b").sql("trino")) == ["LEFT JOIN iceberg.shop.customer"]
    rows = {r["segment"] for r in run_query(project, "segment_not_b").table.to_pylist()}
    assert None in rows


def test_a_null_rejecting_filter_makes_the_join_inner(shop):
    project, _ = shop
    assert _joins(compile_input(project, "segment_a").sql("trino")) == ["JOIN iceberg.shop.customer"]


def test_a_required_join_is_inner_and_the_undeclared_one_above_it_stays_left(shop):
    project, _ = shop
    assert _joins(compile_input(project, "by_status").sql("trino")) == ["JOIN iceberg.shop.orders"]
    assert _joins(compile_input(project, "lines_by_segment").sql("trino")) == [
        "JOIN iceberg.shop.orders", "LEFT JOIN iceberg.shop.customer"]
    rows = {r["segment"]: r["quantity_total"] for r in run_query(project, "lines_by_segment").table.to_pylist()}
    assert rows[None] == 8 + 16 + 32  # the lines of orders 12 and 13, whose customer is missing


def test_a_listing_with_a_limit_keeps_a_required_join_left(shop):
    project, _ = shop
    assert _joins(compile_input(project, "top_lines").sql("trino")) == ["LEFT JOIN iceberg.shop.orders"]


def test_required_on_a_one_to_many_join_is_refused_with_its_location(tmp_path):
    (tmp_path / "genesis.yaml").write_text("name: bad\ndefault_target: local\ntargets:\n"
                                           "  local: {engine: duckdb, warehouse: .genesis/warehouse}\n")
    (tmp_path / "datasources").mkdir()
    (tmp_path / "datasources" / "orders.yaml").write_text(
        ORDERS + "  lines: {datasource: line, on: {order_id: order_id}, relationship: one_to_many, required: true}\n")
    (tmp_path / "datasources" / "line.yaml").write_text(LINE)
    (tmp_path / "datasources" / "customer.yaml").write_text(CUSTOMER)
    with pytest.raises(GenesisError) as caught:
        load_project(tmp_path)
    text = str(caught.value)
    assert "required: true" in text and "one_to_many" in text and "orders.yaml:13:" in text
