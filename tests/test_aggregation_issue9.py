"""The cases of issue 9 on its orders / lines / part / payments schema, with the rows
each must give written out by hand, and the reference evaluator agreeing with them."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from genesis.compiler import compile_input
from genesis.errors import GenesisError
from tests.reference.evaluator import evaluate
from tests.reference.expr import Agg, Arith, Case, Cmp, Coalesce, Col, Lit, Ref
from tests.reference.project import GenesisRunner, write_input, write_project
from tests.reference.spec import FieldSpec, InputSpec, Item, JoinSpec, MeasureSpec, SourceSpec


def _fields(columns: dict[str, str]) -> dict[str, FieldSpec]:
    return {n: FieldSpec(n, t) for n, t in columns.items()}


def issue_schema():
    orders_cols = {"id": "bigint", "amount": "decimal(10,2)"}
    lines_cols = {"id": "bigint", "order_id": "bigint", "part_id": "bigint", "qty": "bigint", "code": "varchar"}
    part_cols = {"id": "bigint", "price": "decimal(10,2)", "name": "varchar"}
    pay_cols = {"id": "bigint", "order_id": "bigint", "paid": "decimal(10,2)"}
    return {
        "orders": SourceSpec("orders", "orders", orders_cols, ["id"], _fields(orders_cols),
                             {"total_amount": MeasureSpec("total_amount", "sum", Col("amount"))},
                             {"order_lines": JoinSpec("order_lines", "lines", (("id", "order_id"),), "one_to_many"),
                              "order_payments": JoinSpec("order_payments", "payments", (("id", "order_id"),),
                                                         "one_to_many")}),
        "lines": SourceSpec("lines", "lines", lines_cols, ["id"], _fields(lines_cols), {
            "line_count": MeasureSpec("line_count", "count"),
            "total_qty": MeasureSpec("total_qty", "sum", Col("qty")),
            "a_qty": MeasureSpec("a_qty", "sum", Case(Cmp("=", Col("code"), Lit("A")), Col("qty"), Lit(0))),
            "coded_lines": MeasureSpec("coded_lines", "count", Coalesce((Col("code"), Lit("?")))),
            "code_kinds": MeasureSpec("code_kinds", "count_distinct", Coalesce((Col("code"), Lit("?")))),
        }, {"the_part": JoinSpec("the_part", "part", (("part_id", "id"),), "many_to_one"),
            "the_order": JoinSpec("the_order", "orders", (("order_id", "id"),), "many_to_one")}),
        "part": SourceSpec("part", "part", part_cols, ["id"], _fields(part_cols)),
        "payments": SourceSpec("payments", "payments", pay_cols, ["id"], _fields(pay_cols),
                               {"total_paid": MeasureSpec("total_paid", "sum", Col("paid"))}),
    }


ROWS = {
    "orders": [{"id": 1, "amount": D("2.00")}, {"id": 2, "amount": D("3.00")}, {"id": 3, "amount": D("4.00")}],
    "lines": [
        {"id": 1, "order_id": 1, "part_id": 10, "qty": 1, "code": "A"},
        {"id": 2, "order_id": 1, "part_id": 10, "qty": 2, "code": None},
        {"id": 3, "order_id": 2, "part_id": 11, "qty": 3, "code": "A"},
        {"id": 4, "order_id": 2, "part_id": 10, "qty": 4, "code": "B"},
    ],
    "part": [{"id": 10, "price": D("5.00"), "name": "bolt"}, {"id": 11, "price": D("7.00"), "name": "nut"}],
    "payments": [{"id": 1, "order_id": 1, "paid": D("1.50")}, {"id": 2, "order_id": 1, "paid": D("0.50")},
                 {"id": 3, "order_id": 2, "paid": D("3.00")}],
}

PRICE = Ref("order_lines.the_part.price", ("order_lines", "the_part"), "price")
ORDER_ID = Ref("orders.id", (), "id")


def _m(text: str) -> Ref:
    *path, member = text.split(".")
    return Ref(text, tuple(path), member)


INPUTS = {
    "sum_price_per_order": InputSpec("sum_price_per_order", "orders", [
        Item("id", ORDER_ID), Item("sum_price", PRICE, "sum"), Item("count_price", PRICE, "count")]),
    "sql_sum_price_per_order": InputSpec("sql_sum_price_per_order", "orders", [
        Item("id", ORDER_ID), Item("sum_price", sql=Agg("sum", PRICE))]),
    "measures_of_childless_order": InputSpec("measures_of_childless_order", "orders", [
        Item("id", ORDER_ID), Item("coded", _m("order_lines.coded_lines")),
        Item("kinds", _m("order_lines.code_kinds")), Item("a_qty", _m("order_lines.a_qty")),
        Item("lines", _m("order_lines.line_count"))]),
    "global_two_branches": InputSpec("global_two_branches", "orders", [
        Item("qty", _m("order_lines.total_qty")), Item("paid", _m("order_payments.total_paid"))]),
    "price_times_amount": InputSpec("price_times_amount", "orders", [
        Item("id", ORDER_ID),
        Item("value", sql=Agg("sum", Arith("*", PRICE, Ref("orders.amount", (), "amount"))))]),
    "sibling_lines": InputSpec("sibling_lines", "lines", [
        Item("id", Ref("lines.id", (), "id")),
        Item("order_qty", Ref("the_order.order_lines.qty", ("the_order", "order_lines"), "qty"), "sum")]),
    "sort_by_source_name": InputSpec("sort_by_source_name", "lines", [
        Item("part", Ref("the_part.name", ("the_part",), "name")), Item("n", Ref("lines.line_count", (), "line_count"))],
        sort=[(Ref("part.name", ("the_part",), "name"), True)]),
    "listing_sorted_by_root_field": InputSpec("listing_sorted_by_root_field", "orders", [
        Item("id", ORDER_ID), Item("codes", Ref("order_lines.code", ("order_lines",), "code"), "list")],
        sort=[(Ref("orders.amount", (), "amount"), True)]),
    "sum_amount_per_part": InputSpec("sum_amount_per_part", "lines", [
        Item("part", Ref("the_part.name", ("the_part",), "name")),
        Item("amount", sql=Agg("sum", Ref("the_order.amount", ("the_order",), "amount"))),
        Item("orders_amount", _m("the_order.total_amount"))]),
}

EXPECTED = {
    # 1: each line's part price once per line (order 1: two lines of price 5).
    "sum_price_per_order": [(1, D("10.00"), 2), (2, D("12.00"), 2), (3, None, 0)],
    "sql_sum_price_per_order": [(1, D("10.00")), (2, D("12.00")), (3, None)],
    # 2: an order without lines has no line to count, and a sum over no rows is NULL.
    "measures_of_childless_order": [(1, 2, 2, 1, 2), (2, 2, 2, 3, 2), (3, 0, 0, None, 0)],
    # 3: one row: all lines' qty, all payments.
    "global_two_branches": [(10, D("5.00"))],
    # 4: per line, its part's price times its order's amount.
    "price_times_amount": [(1, D("20.0000")), (2, D("36.0000")), (3, None)],
    # 5: every line with the quantity of all lines of its order.
    "sibling_lines": [(1, 3), (2, 3), (3, 7), (4, 7)],
    # 6: `part.name` is the column written `the_part.name`; a listing sorts by a root field.
    "sort_by_source_name": [("nut", 1), ("bolt", 3)],
    "listing_sorted_by_root_field": [(3, None), (2, "A, B"), (1, "A")],
    # Lines per part carry their order's amount; the measure counts each order once.
    "sum_amount_per_part": [("bolt", D("7.00"), D("5.00")), ("nut", D("3.00"), D("3.00"))],
}


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    directory = write_project(tmp_path_factory.mktemp("issue9"), issue_schema(), ROWS, list(INPUTS.values()))
    runner = GenesisRunner(directory)
    yield runner
    runner.close()


@pytest.mark.parametrize("name", list(INPUTS))
def test_issue_case_gives_the_rows_worked_out_by_hand(runner, name):
    assert runner.run(name) == EXPECTED[name]


@pytest.mark.parametrize("name", list(INPUTS))
def test_reference_evaluator_agrees_with_the_rows_worked_out_by_hand(name):
    assert evaluate(issue_schema(), ROWS, INPUTS[name]) == EXPECTED[name]


def test_an_aggregate_over_two_independent_branches_is_refused_with_the_reason(tmp_path):
    bad = InputSpec("cross", "orders", [Item("id", ORDER_ID), Item("x", sql=Agg(
        "sum", Arith("*", Ref("order_lines.qty", ("order_lines",), "qty"),
                     Ref("order_payments.paid", ("order_payments",), "paid"))))])
    directory = write_project(tmp_path / "p", issue_schema(), ROWS, [])
    write_input(directory, bad)
    with pytest.raises(GenesisError, match="two one_to_many joins on different branches") as err:
        compile_input(GenesisRunner(directory).project, "cross")
    assert err.value.location is not None and err.value.location.line


def test_derived_field_of_a_missing_joined_row_is_null(tmp_path):
    """docs/semantics.md: a `sql:` field of a row a left join did not find is NULL, not
    what its expression gives over NULL columns (here 0)."""
    schema = issue_schema()
    schema["part"].fields["is_cheap"] = FieldSpec(
        "is_cheap", "bigint", Case(Cmp("<", Col("price"), Lit(6)), Lit(1), Lit(0)))
    rows = dict(ROWS, lines=ROWS["lines"] + [{"id": 5, "order_id": 2, "part_id": 99, "qty": 1, "code": "C"}])
    listing = InputSpec("cheap", "lines", [Item("id", Ref("lines.id", (), "id")),
                                           Item("cheap", Ref("the_part.is_cheap", ("the_part",), "is_cheap"))])
    counted = InputSpec("cheap_count", "orders", [
        Item("id", ORDER_ID),
        Item("cheap_lines", sql=Agg("count", Ref("order_lines.the_part.is_cheap", ("order_lines", "the_part"),
                                                 "is_cheap")))])
    expected = {"cheap": [(1, 1), (2, 1), (3, 0), (4, 1), (5, None)], "cheap_count": [(1, 2), (2, 2), (3, 0)]}
    runner = GenesisRunner(write_project(tmp_path / "p", schema, rows, [listing, counted]))
    try:
        for inp in (listing, counted):
            assert evaluate(schema, rows, inp) == expected[inp.name]
            assert runner.run(inp.name) == expected[inp.name]
    finally:
        runner.close()
