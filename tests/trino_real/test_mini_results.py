"""The mini project's awkward cases on DuckDB and on the real Trino: identical typed results.

Fan-out (one_to_many branches summed at their own grain), CDC latest row per key with
deletes and re-creates, HAVING on a measure with a parameter, array and quoted parameters,
labels, `agg: list`, integer division and date_diff: every result is compared as a typed
Arrow table (columns, types, decimal scales, nulls, row order) between the two engines, and
the cases whose values the DuckDB tests pin are checked again on Trino's own rows.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.mini_data import FIXTURE, tables
from tests.trino_real.conftest import assert_same_table, make_project, run_both

EXTRA_INPUTS = {
    "negative": """name: negative
from: movie
fields: [movie.movie_id]
filters: ["movie.movie_id >= -{{ n }} AND movie.movie_id < 5"]
parameters: {n: {type: integer, default: 1}}
""",
    "ages": """name: ages
from: movie
fields:
  - movie.movie_id
  - {name: years, sql: "date_diff('year', DATE '2000-12-31', DATE '2001-01-01')", type: bigint}
  - {name: months, sql: "date_diff('month', DATE '2000-01-15', DATE '2000-03-14')", type: bigint}
  - {name: hours, sql: "movie.runtime_min / 60"}
  - {name: per_million, sql: "movie.budget_usd / 1000000"}
  - {name: avg_budget, sql: "avg(movie.budget_usd)"}
  - {name: avg_div, sql: "7 / 2", type: integer}
filters: ["movie.movie_id <= 3"]
sort: [movie.movie_id]
""",
    "statuses": """name: statuses
from: purchase_order
fields:
  - field: vendor.name
  - {field: movie.status, agg: list}
  - {field: movie.title, agg: list}
  - {name: paid_share, sql: "avg(CASE WHEN purchase_order.paid THEN 1.0 ELSE 0.0 END)", type: double}
sort: [vendor.name]
""",
    "money": """name: money
from: purchase_order
fields:
  - purchase_order.movie_id
  - {name: total, sql: "sum(purchase_order.amount)", format: {number: "#,##0.00", prefix: "$"}}
  - {name: average, sql: "avg(purchase_order.amount)"}
  - {name: biggest, sql: "max(purchase_order.amount)", type: "decimal(18,2)"}
  - {name: scaled, sql: "sum(purchase_order.amount) * 1.5"}
  - {name: share, sql: "sum(purchase_order.amount) / 1000"}
  - {name: first_paid, sql: "min(CASE WHEN purchase_order.paid THEN purchase_order.po_id END)"}
sort: [purchase_order.movie_id]
""",
    "dates": """name: dates
from: movie
fields:
  - movie.movie_id
  - movie.launch_month
  - {name: launch_year, sql: "year(movie.launch_date)", type: integer}
  - {name: launch_ts, sql: "CAST(movie.launch_date AS timestamp)", type: timestamp}
  - {name: week, sql: "date_trunc('week', movie.launch_date)", type: date}
sort: ["movie.movie_id DESC"]
limit: 12
""",
}


@pytest.fixture(scope="module")
def mini(trino_server, tmp_path_factory):
    made = make_project(trino_server, FIXTURE, "mini", tmp_path_factory.mktemp("mini-trino"),
                        lambda: {f"studio.{name}": t for name, t in tables().items()})
    for name, text in EXTRA_INPUTS.items():
        (made.root / "inputs" / f"{name}.yaml").write_text(text)
    return made.load()


CASES = [
    ("movie_listing", {}),
    ("movie_listing", {"countries": "GB"}),
    ("movie_listing", {"countries": ["US", "GB"]}),
    ("budget_by_status", {}),
    ("budget_by_status", {"min_budget": "3000000"}),
    ("movies_with_big_fees", {}),
    ("title_search", {"title": "Title 20 again"}),
    ("title_search", {"title": "It's a 'quoted' title"}),
    ("title_search", {"title": "x' OR '1'='1"}),
    ("vendor_spend", {}),
    ("negative", {"n": "-3"}),
    ("ages", {}),
    ("statuses", {}),
    ("money", {}),
    ("dates", {}),
]


@pytest.mark.parametrize("name,params", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_same_typed_result_on_duckdb_and_trino(mini, name, params):
    duck, trino = run_both(mini, name, **params)
    assert [c.type for c in duck.columns] == [c.type for c in trino.columns]
    assert_same_table(duck.table, trino.table, name)


def test_trino_rows_are_the_expected_ones(mini):
    """Values pinned on Trino's own result, not only equal to DuckDB's."""
    _, listing = run_both(mini, "budget_by_status")
    assert sum(listing.table.column("movie_count").to_pylist()) == 40 - 4 + 1  # CDC: 4 deletes, 1 re-create
    _, found = run_both(mini, "title_search", title="It's a 'quoted' title")
    assert found.table.to_pylist() == [{"movie_id": 7, "title": "It's a 'quoted' title"}]
    _, negative = run_both(mini, "negative", n="-3")
    assert negative.table.column(0).to_pylist() == [3, 4]
    _, ages = run_both(mini, "ages")
    row = ages.table.to_pylist()[0]
    assert (row["years"], row["months"], row["avg_div"]) == (0, 1, 3)
    assert isinstance(row["hours"], int) and row["hours"] in (1, 2)  # integer division truncates
    _, statuses = run_both(mini, "statuses")
    lists = statuses.table.column(1).to_pylist()
    assert any("In photography" in (v or "") for v in lists) and not any("PHOT" in (v or "") for v in lists)
    _, money = run_both(mini, "money")
    assert all(isinstance(v, Decimal) for v in money.table.column("total").to_pylist() if v is not None)


def test_having_parameter_filters_groups_on_trino(mini):
    _, everything = run_both(mini, "budget_by_status")
    budgets = sorted(everything.table.column("total_budget").to_pylist())
    middle = budgets[len(budgets) // 2]
    _, some = run_both(mini, "budget_by_status", min_budget=str(middle))
    assert 0 < some.table.num_rows < everything.table.num_rows
    assert all(b > middle for b in some.table.column("total_budget").to_pylist())
