"""Derived measures and segments (issue 16) on DuckDB, against SQL written by hand.

The schema is issue 9's orders / lines / part / payments: orders have one_to_many lines
and payments, lines a many_to_one part and order. Every derived measure here reads a
measure over a join that multiplies rows (a line per order, an order per line), so a
compiler that aggregated after joining would give other numbers. The hand-written SQL
aggregates each measure on its own table first; the reference evaluator must agree too.
"""

from __future__ import annotations

from decimal import Decimal as D

import duckdb
import pytest
from click.testing import CliRunner

from genesis.cli import main
from tests.reference.evaluator import evaluate
from tests.reference.expr import Arith, Cmp, Col, IsNull, Lit, Logic, Not, Ratio, Ref
from tests.reference.project import GenesisRunner, same_rows, write_project
from tests.reference.spec import InputSpec, Item, MeasureSpec
from tests.test_aggregation_issue9 import issue_schema


def _ref(text: str) -> Ref:
    """`join.member` (a path of join names), or `orders.x` / `lines.x` (the root's own member)."""
    *path, member = text.split(".")
    return Ref(text, () if path[0] in ("orders", "lines") else tuple(path), member)


def schema():
    s = issue_schema()
    orders, lines, part = s["orders"], s["lines"], s["part"]
    orders.measures["amount_per_line"] = MeasureSpec(
        "amount_per_line", None, Ratio(Ref("total_amount", (), "total_amount"), _ref("order_lines.line_count")))
    orders.measures["paid_per_line"] = MeasureSpec(  # two one_to_many branches, each at its own grain
        "paid_per_line", None, Ratio(_ref("order_payments.total_paid"), _ref("order_lines.line_count")))
    orders.measures["amount_per_line_x2"] = MeasureSpec(  # nested: a derived measure of a derived one
        "amount_per_line_x2", None, Arith("*", Ref("amount_per_line", (), "amount_per_line"), Lit(2)))
    lines.measures["qty_per_amount"] = MeasureSpec(  # a many_to_one measure: each order's amount once
        "qty_per_amount", None, Ratio(Ref("total_qty", (), "total_qty"), _ref("the_order.total_amount")))
    # Typed: an untyped `sum` of a bigint is decimal(38,0) on DuckDB and bigint on Trino (an
    # engine difference older than this issue; the Trino test compares typed tables).
    lines.measures["total_qty"] = MeasureSpec("total_qty", "sum", Col("qty"), "bigint")
    lines.segments["coded"] = IsNull(Col("code"), negated=True)
    orders.segments["big"] = Cmp(">=", Col("amount"), Lit(3))
    part.segments["cheap"] = Cmp("<", Col("price"), Lit(6))
    return s


ROWS = {
    "orders": [{"id": 1, "amount": D("2.00")}, {"id": 2, "amount": D("3.00")}, {"id": 3, "amount": D("4.00")},
               {"id": 4, "amount": D("10.00")}],
    "lines": [
        {"id": 1, "order_id": 1, "part_id": 10, "qty": 1, "code": "A"},
        {"id": 2, "order_id": 1, "part_id": 10, "qty": 2, "code": None},
        {"id": 3, "order_id": 2, "part_id": 11, "qty": 3, "code": "A"},
        {"id": 4, "order_id": 2, "part_id": 10, "qty": 4, "code": "B"},
        {"id": 5, "order_id": 4, "part_id": 10, "qty": 6, "code": "C"},
        {"id": 6, "order_id": 4, "part_id": 11, "qty": 9, "code": None},
        {"id": 7, "order_id": 4, "part_id": 11, "qty": 1, "code": "A"},
    ],
    "part": [{"id": 10, "price": D("5.00"), "name": "bolt"}, {"id": 11, "price": D("7.00"), "name": "nut"}],
    "payments": [{"id": 1, "order_id": 1, "paid": D("1.50")}, {"id": 2, "order_id": 1, "paid": D("0.50")},
                 {"id": 3, "order_id": 2, "paid": D("3.00")}, {"id": 4, "order_id": 4, "paid": D("7.00")}],
}

INPUTS = {
    # Root and joined measures over two one_to_many branches, nested, per order.
    "per_order": InputSpec("per_order", "orders", [
        Item("id", _ref("orders.id")), Item("amount_per_line", _ref("orders.amount_per_line")),
        Item("paid_per_line", _ref("orders.paid_per_line")), Item("x2", _ref("orders.amount_per_line_x2"))],
        sort=[("id", False)]),
    # The same over all orders at once (one row), with a segment of the root as the filter.
    "big_orders": InputSpec("big_orders", "orders", [
        Item("amount_per_line", _ref("orders.amount_per_line")), Item("paid_per_line", _ref("orders.paid_per_line"))],
        filters=[_ref("orders.big")]),
    # A many_to_one measure inside a derived measure, grouped by part, two segments and a filter.
    "qty_per_amount_by_part": InputSpec("qty_per_amount_by_part", "lines", [
        Item("part", _ref("the_part.name")), Item("ratio", _ref("lines.qty_per_amount"))],
        filters=[_ref("lines.coded"), Logic("OR", _ref("the_part.cheap"), Cmp(">", _ref("lines.qty"), Lit(2)))],
        sort=[("part", False)]),
    # A segment over a one_to_many join (keeps orders with such a line; aggregates see those
    # lines only), combined with a negated root segment; and a segment as a HAVING partner.
    "coded_lines_of_small_orders": InputSpec("coded_lines_of_small_orders", "orders", [
        Item("id", _ref("orders.id")), Item("qty", _ref("order_lines.total_qty")),
        Item("per_line", _ref("orders.amount_per_line"))],
        filters=[_ref("order_lines.coded"), Logic("OR", Not(_ref("orders.big")), Cmp("=", _ref("orders.id"), Lit(4)))],
        sort=[("id", False)]),
}

HAND_SQL = {
    "per_order": """
        WITH l AS (SELECT order_id, count(*) AS n FROM lines GROUP BY order_id),
             p AS (SELECT order_id, sum(paid) AS paid FROM payments GROUP BY order_id)
        SELECT o.id,
               CAST(o.amount AS double) / NULLIF(CAST(coalesce(l.n, 0) AS double), 0),
               CAST(p.paid AS double) / NULLIF(CAST(coalesce(l.n, 0) AS double), 0),
               2 * (CAST(o.amount AS double) / NULLIF(CAST(coalesce(l.n, 0) AS double), 0))
        FROM orders o LEFT JOIN l ON l.order_id = o.id LEFT JOIN p ON p.order_id = o.id ORDER BY o.id""",
    "big_orders": """
        WITH o AS (SELECT * FROM orders WHERE amount >= 3)
        SELECT CAST((SELECT sum(amount) FROM o) AS double)
                 / NULLIF(CAST((SELECT count(*) FROM lines WHERE order_id IN (SELECT id FROM o)) AS double), 0),
               CAST((SELECT sum(paid) FROM payments WHERE order_id IN (SELECT id FROM o)) AS double)
                 / NULLIF(CAST((SELECT count(*) FROM lines WHERE order_id IN (SELECT id FROM o)) AS double), 0)""",
    "qty_per_amount_by_part": """
        WITH kept AS (SELECT l.qty, l.order_id, p.name FROM lines l LEFT JOIN part p ON l.part_id = p.id
                      WHERE l.code IS NOT NULL AND (p.price < 6 OR l.qty > 2)),
             q AS (SELECT name, sum(qty) AS qty FROM kept GROUP BY name),
             a AS (SELECT d.name, sum(o.amount) AS amount FROM (SELECT DISTINCT name, order_id FROM kept) d
                   JOIN orders o ON o.id = d.order_id GROUP BY d.name)
        SELECT q.name, CAST(q.qty AS double) / NULLIF(CAST(a.amount AS double), 0)
        FROM q LEFT JOIN a ON a.name = q.name ORDER BY q.name""",
    "coded_lines_of_small_orders": """
        WITH kept AS (SELECT * FROM lines WHERE code IS NOT NULL)
        SELECT o.id, sum(k.qty),
               CAST(o.amount AS double) / NULLIF(CAST(count(k.id) AS double), 0)
        FROM orders o JOIN kept k ON k.order_id = o.id
        WHERE NOT (o.amount >= 3) OR o.id = 4
        GROUP BY o.id, o.amount ORDER BY o.id""",
}


def _hand(sql: str) -> list[tuple]:
    con = duckdb.connect()
    try:
        for name, rows in ROWS.items():
            columns = list(rows[0])
            types = {"code": "VARCHAR", "name": "VARCHAR", "amount": "DECIMAL(10,2)", "price": "DECIMAL(10,2)",
                     "paid": "DECIMAL(10,2)"}
            declared = ", ".join(f"{c} {types.get(c, 'BIGINT')}" for c in columns)
            con.execute(f"CREATE TABLE {name} ({declared})")
            con.executemany(f"INSERT INTO {name} VALUES ({', '.join('?' for _ in columns)})",
                            [tuple(r[c] for c in columns) for r in rows])
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    directory = write_project(tmp_path_factory.mktemp("derived"), schema(), ROWS, list(INPUTS.values()))
    run = GenesisRunner(directory)
    yield run
    run.close()


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_derived_measures_and_segments_give_the_rows_of_hand_written_sql(runner, name):
    expected = _hand(HAND_SQL[name])
    assert expected, "the hand-written SQL returns rows"
    assert same_rows(runner.run(name), expected), (runner.run(name), expected)
    assert same_rows(evaluate(schema(), ROWS, INPUTS[name]), expected)


def test_a_derived_measure_is_not_multiplied_by_the_join_to_its_parts(runner):
    """Order 4 has 3 lines and 1 payment: 10.00 / 3 lines and 7.00 / 3 lines, not 30 / 3 or 21 / 3."""
    rows = {row[0]: row[1:] for row in runner.run("per_order")}
    assert rows[4][0] == pytest.approx(10 / 3) and rows[4][1] == pytest.approx(7 / 3)
    assert rows[3] == (None, None, None)  # no lines: the ratio over zero is NULL


def test_segments_and_derived_measures_are_references_of_the_query(runner):
    from genesis.compiler import compile_input

    refs = compile_input(runner.project, "coded_lines_of_small_orders").references
    assert {"lines.coded", "orders.big", "orders.amount_per_line", "orders.total_amount",
            "lines.line_count"} <= refs


def test_impact_of_a_segment_lists_the_inputs_that_use_it(runner):
    result = CliRunner().invoke(main, ["impact", "lines.coded", "--project", str(runner.project.root), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert "qty_per_amount_by_part" in result.output and "coded_lines_of_small_orders" in result.output
    assert "per_order" not in result.output.replace("qty_per_amount_by_part", "")


# ---------------------------------------------------------------- located errors

def _broken(tmp_path, edit) -> str:
    """`genesis validate` output after `edit(orders document)`; it must fail."""
    import yaml

    directory = write_project(tmp_path / "p", schema(), ROWS, list(INPUTS.values()))
    path = directory / "datasources" / "orders.yaml"
    doc = yaml.safe_load(path.read_text())
    edit(doc)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    result = CliRunner().invoke(main, ["validate", "--project", str(directory)])
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    return result.output


def test_a_derived_measure_that_refers_to_itself_is_refused_with_the_loop(tmp_path):
    def edit(doc):
        doc["measures"]["a"] = {"sql": "b + 1"}
        doc["measures"]["b"] = {"sql": "a * total_amount"}
    output = _broken(tmp_path, edit)
    assert "datasources/orders.yaml" in output
    assert "refers to itself: orders.a -> orders.b -> orders.a" in output


def test_a_derived_measure_that_refers_to_itself_directly_is_refused(tmp_path):
    output = _broken(tmp_path, lambda doc: doc["measures"].update(me={"sql": "me + 1"}))
    assert "measure 'orders.me' refers to itself: orders.me -> orders.me" in output


def test_an_unknown_measure_in_a_derived_measure_gets_did_you_mean(tmp_path):
    output = _broken(tmp_path, lambda doc: doc["measures"].update(r={"sql": "total_amout / 2"}))
    assert "measure 'orders.r' uses 'total_amout'" in output and "did you mean 'total_amount'" in output
    output = _broken(tmp_path, lambda doc: doc["measures"].update(r={"sql": "order_lines.line_cnt / 2"}))
    assert "has no field, measure or segment 'line_cnt'" in output or "has no field or measure 'line_cnt'" in output
    assert "did you mean 'line_count'" in output


def test_a_derived_measure_over_a_field_is_refused(tmp_path):
    output = _broken(tmp_path, lambda doc: doc["measures"].update(r={"sql": "amount / 2"}))
    assert "measure 'orders.r' is derived from measures, but 'amount' is a field" in output


def test_a_segment_that_aggregates_is_refused(tmp_path):
    output = _broken(tmp_path, lambda doc: doc["segments"].update(many="count(*) > 1"))
    assert "segment 'orders.many' aggregates" in output


def test_an_unknown_segment_in_a_filter_gets_did_you_mean(tmp_path):
    import yaml

    directory = write_project(tmp_path / "p", schema(), ROWS, list(INPUTS.values()))
    path = directory / "inputs" / "big_orders.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["filters"] = ["orders.bigg"]
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    result = CliRunner().invoke(main, ["validate", "--project", str(directory)])
    assert result.exit_code != 0
    assert "inputs/big_orders.yaml" in result.output
    assert "data source 'orders' has no field, measure or segment 'bigg' (did you mean 'big'?)" in result.output


def test_the_catalog_shows_segments_and_derived_measures(runner, tmp_path):
    import html

    result = CliRunner().invoke(main, ["docs", "--out", str(tmp_path / "site"), "--project",
                                       str(runner.project.root)])
    assert result.exit_code == 0, result.output
    page = html.unescape((tmp_path / "site" / "index.html").read_text())
    row = page[page.index('id="field-lines-coded"'):]
    row = row[:row.index("</tr>")]
    assert '<span class="badge badge-measure">segment</span>' in row and "code IS NOT NULL" in row
    derived = page[page.index('id="field-orders-amount_per_line"'):]
    derived = derived[:derived.index("</tr>")]
    assert "CAST(total_amount AS double) / NULLIF(CAST(order_lines.line_count AS double), 0)" in derived


def test_a_changed_segment_is_a_change_of_that_reference(runner):
    """Review (`genesis diff`) names a changed segment by its reference, so the trackers
    that use it are the ones reported, not every user of the data source."""
    from dataclasses import replace

    from genesis.review.definitions import datasource_changes

    old = runner.project.datasources["lines"]
    changed = replace(old, segments={**old.segments, "coded": replace(old.segments["coded"], sql="code = 'A'")})
    assert datasource_changes(old, changed) == [("lines.coded", "data source 'lines': segment 'coded' changed")]
