

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
