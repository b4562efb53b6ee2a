"""Query shapes: Genesis SQL against hand-written SQL for every shape the compiler plans differently.

    python bench/shapes.py --sf 1                 # DuckDB, median of 7 rounds per side
    python bench/shapes.py --sf 1 --shapes parent_child,sort_limit --rounds 11
    python bench/shapes.py --engine trino --trino-url http://localhost:8080   # a Trino with the data

TPC-H is a benchmark of plain joins and aggregates. Operational trackers mostly ask other things:
a parent's measure beside a child's measure, two one_to_many branches, a listing with `agg:`
fields, a filter over a one_to_many join, a CDC latest-row view, HAVING, sort + limit. Each
shape below is a Genesis input over the TPC-H project (tests/tpch/project, plus a one_to_many
join part -> lineitem and a CDC log of orders) next to the SQL a person would write for it.

The data is bench/tpch.py's warehouse (generated once per scale factor). Both sides run on the
same connection, alternating, after a warm-up; the figure is the median over `--rounds` rounds
of each side, and the ratio is genesis / hand-written in the same run (a busy machine makes
absolute times meaningless; ratios within a run are what count). Results are compared first:
a shape whose rows differ is reported as a failure, whatever its speed.

Joins: the TPC-H project declares its foreign-key joins `required: true` (TPC-H guarantees
referential integrity), so Genesis prints them as INNER JOIN, as the hand-written SQL does;
a join without that declaration prints as LEFT JOIN (a row without its parent is kept) unless
a filter rejects the NULL-extended row (genesis/compiler/join_types.py). On Trino this is what
made grouped_sort_limit (q10-like) fast: Trino pushes the partial aggregation below the
customer join and adds dynamic filters only through inner joins (1.95x -> 1.07-1.10x at SF 1 on
Trino 476, the plan now the hand-written one's). A listing with a LIMIT (sort_limit) keeps the
LEFT JOIN: Trino pushes its TopN through an outer join only (as INNER it measured 3.5x).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import yaml  # noqa: E402

from bench.tpch import DATA_DIR, prepare_data  # noqa: E402
from tests.tpch import PROJECT_DIR  # noqa: E402
from tests.tpch.data import duckdb_over_warehouse  # noqa: E402
from tests.tpch.oracle import Mismatch, compare  # noqa: E402

T = "iceberg.tpch"


@dataclass(frozen=True)
class Shape:
    name: str
    input: dict  # the Genesis input (YAML as a dict; `name` is added)
    hand: str  # the hand-written SQL for the same rows
    ordered: bool = True  # compare rows in order (the hand-written ORDER BY is total)


SHAPES = [
    Shape("parent_child", {
        "from": "orders",
        "fields": ["orders.o_orderpriority", "orders.total_price",
                   {"name": "line_price", "sql": "sum(lineitem.l_extendedprice)", "type": "decimal(38,2)"}],
    }, f"""
WITH o AS (SELECT o_orderpriority, sum(o_totalprice) AS total_price FROM {T}.orders GROUP BY o_orderpriority),
     l AS (SELECT o_orderpriority, sum(l_extendedprice) AS line_price
           FROM {T}.orders LEFT JOIN {T}.lineitem ON o_orderkey = l_orderkey GROUP BY o_orderpriority)
SELECT o.o_orderpriority, o.total_price, l.line_price
FROM o JOIN l ON o.o_orderpriority = l.o_orderpriority ORDER BY o.o_orderpriority"""),

    Shape("two_branches", {
        "from": "part",
        "fields": ["part.p_brand",
                   {"name": "available", "sql": "sum(partsupp.ps_availqty)", "type": "bigint"},
                   {"name": "sold", "sql": "sum(lineitem.l_quantity)", "type": "decimal(38,2)"}],
    }, f"""
WITH s AS (SELECT p_brand, sum(ps_availqty) AS available
           FROM {T}.part LEFT JOIN {T}.partsupp ON p_partkey = ps_partkey GROUP BY p_brand),
     l AS (SELECT p_brand, sum(l_quantity) AS sold
           FROM {T}.part LEFT JOIN {T}.lineitem ON p_partkey = l_partkey GROUP BY p_brand)
SELECT s.p_brand, s.available, l.sold FROM s JOIN l ON s.p_brand = l.p_brand ORDER BY s.p_brand"""),

    Shape("listing_agg", {
        "from": "orders",
        "fields": ["orders.o_orderkey", "orders.o_orderdate",
                   {"field": "lineitem.l_quantity", "agg": "sum", "label": "quantity"},
                   {"field": "lineitem.l_shipmode", "agg": "count_distinct", "label": "modes"}],
        "filters": ["orders.o_orderdate >= DATE '1995-01-01'", "orders.o_orderdate < DATE '1995-04-01'"],
    }, f"""
SELECT o_orderkey, o_orderdate, sum(l_quantity) AS quantity, count(DISTINCT l_shipmode) AS modes
FROM {T}.orders LEFT JOIN {T}.lineitem ON o_orderkey = l_orderkey
WHERE o_orderdate >= DATE '1995-01-01' AND o_orderdate < DATE '1995-04-01'
GROUP BY o_orderkey, o_orderdate ORDER BY o_orderkey"""),

    Shape("filter_one_to_many", {
        "from": "orders",
        "fields": ["orders.o_orderpriority", "orders.total_price"],
        "filters": ["lineitem.l_shipmode = 'MAIL'"],
    }, f"""
SELECT o_orderpriority, sum(o_totalprice) AS total_price FROM {T}.orders
WHERE EXISTS (SELECT 1 FROM {T}.lineitem WHERE l_orderkey = o_orderkey AND l_shipmode = 'MAIL')
GROUP BY o_orderpriority ORDER BY o_orderpriority"""),

    Shape("filter_parent_child", {
        "from": "orders",
        "fields": ["orders.o_orderpriority", "orders.total_price",
                   {"name": "mail_price", "sql": "sum(lineitem.l_extendedprice)", "type": "decimal(38,2)"}],
        "filters": ["lineitem.l_shipmode = 'MAIL'"],
    }, f"""
WITH o AS (SELECT o_orderpriority, sum(o_totalprice) AS total_price FROM {T}.orders
           WHERE EXISTS (SELECT 1 FROM {T}.lineitem WHERE l_orderkey = o_orderkey AND l_shipmode = 'MAIL')
           GROUP BY o_orderpriority),
     l AS (SELECT o_orderpriority, sum(l_extendedprice) AS mail_price
           FROM {T}.orders JOIN {T}.lineitem ON o_orderkey = l_orderkey WHERE l_shipmode = 'MAIL'
           GROUP BY o_orderpriority)
SELECT o.o_orderpriority, o.total_price, l.mail_price
FROM o JOIN l ON o.o_orderpriority = l.o_orderpriority ORDER BY o.o_orderpriority"""),

    Shape("cdc_latest", {
        "from": "orders_log",
        "fields": ["orders_log.o_orderpriority", "orders_log.total_price", "orders_log.order_count"],
    }, f"""
SELECT o_orderpriority, sum(o_totalprice) AS total_price, count(*) AS order_count
FROM (SELECT *, row_number() OVER (PARTITION BY o_orderkey ORDER BY version DESC) AS rn
      FROM {T}.orders_log) AS latest
WHERE rn = 1 AND op <> 'D' GROUP BY o_orderpriority ORDER BY o_orderpriority"""),

    Shape("having", {
        "from": "orders",
        "fields": ["orders.o_custkey", "orders.total_price"],
        "filters": ["orders.total_price > 4000000"],
    }, f"""
SELECT o_custkey, sum(o_totalprice) AS total_price FROM {T}.orders
GROUP BY o_custkey HAVING sum(o_totalprice) > 4000000 ORDER BY o_custkey"""),

    Shape("sort_limit", {
        "from": "orders",
        "fields": ["orders.o_orderkey", "orders.o_orderdate", "orders.o_totalprice", "orders.o_clerk",
                   "orders.o_comment", "customer.c_name"],
        "sort": ["orders.o_totalprice DESC"],
        "limit": 100,
    }, f"""
SELECT o_orderkey, o_orderdate, o_totalprice, o_clerk, o_comment, c_name
FROM {T}.orders LEFT JOIN {T}.customer ON o_custkey = c_custkey
ORDER BY o_totalprice DESC, o_orderkey LIMIT 100"""),

    Shape("grouped_sort_limit", {
        "from": "lineitem",
        "fields": ["orders.customer.c_custkey", "orders.customer.c_name", "orders.customer.c_address",
                   "orders.customer.c_comment", {"field": "lineitem.revenue", "label": "revenue"}],
        "filters": ["lineitem.l_returnflag = 'R'"],
        "sort": ["revenue DESC"],
        "limit": 20,
    }, f"""
SELECT c_custkey, c_name, c_address, c_comment, sum(l_extendedprice * (1 - l_discount)) AS revenue
FROM {T}.lineitem JOIN {T}.orders ON l_orderkey = o_orderkey JOIN {T}.customer ON o_custkey = c_custkey
WHERE l_returnflag = 'R'
GROUP BY c_custkey, c_name, c_address, c_comment ORDER BY revenue DESC, c_custkey LIMIT 20"""),
]

# The shapes need two things the TPC-H project does not have.
_PART_TO_LINEITEM = "  lineitem: {datasource: lineitem, on: {p_partkey: l_partkey}, relationship: one_to_many}\n"
_ORDERS_LOG = """name: orders_log
description: A change log of orders (every order created, a seventh updated, a thirteenth deleted).
table: iceberg.tpch.orders_log
primary_key: [o_orderkey]
latest: {order_by: version, deleted: "op = 'D'"}
fields:
  o_orderkey: {type: bigint}
  o_custkey: {type: bigint}
  o_totalprice: {type: "decimal(15,2)"}
  o_orderpriority: {type: varchar}
  version: {type: bigint}
  op: {type: varchar}
measures:
  order_count: {agg: count, type: bigint}
  total_price: {agg: sum, sql: o_totalprice, type: "decimal(38,2)"}
"""
_ORDERS_LOG_SQL = f"""
CREATE TABLE {T}.orders_log AS
SELECT o_orderkey, o_custkey, o_totalprice, o_orderpriority, 1::BIGINT AS version, 'C' AS op FROM {T}.orders
UNION ALL
SELECT o_orderkey, o_custkey, o_totalprice + 1, o_orderpriority, 2, 'U' FROM {T}.orders WHERE o_orderkey % 7 = 0
UNION ALL
SELECT o_orderkey, o_custkey, o_totalprice, o_orderpriority, 3, 'D' FROM {T}.orders WHERE o_orderkey % 13 = 0"""


def shapes_project(directory: Path) -> Path:
    """The TPC-H project plus the shapes' data source and join and one input per shape."""
    project = directory / "project"
    shutil.copytree(PROJECT_DIR, project)
    with open(project / "datasources" / "part.yaml", "a") as handle:
        handle.write(_PART_TO_LINEITEM)
    (project / "datasources" / "orders_log.yaml").write_text(_ORDERS_LOG)
    for shape in SHAPES:
        body = {"name": f"shape_{shape.name}", **shape.input}
        (project / "inputs" / f"shape_{shape.name}.yaml").write_text(yaml.safe_dump(body, sort_keys=False))
    return project


class DuckDBRunner:
    def __init__(self, warehouse: Path):
        import duckdb

        self.version = f"DuckDB {duckdb.__version__}"
        self.con = duckdb_over_warehouse(warehouse)
        self.con.execute(_ORDERS_LOG_SQL)
        self.dialect = "duckdb"

    def run(self, sql: str):
        return self.con.sql(sql).to_arrow_table()


class TrinoRunner:
    """A Trino server: the TPC-H tables are CTAS-loaded once from its tpch connector into
    `iceberg.bench_sf<N>` (bench/tpch.py's loader), plus the `orders_log` CDC table; every
    query's `iceberg.tpch.` names are pointed there."""

    def __init__(self, url: str, sf: float, data_dir: Path):
        from bench.tpch import TrinoRunner as TpchLoader

        loader = TpchLoader(url, sf, data_dir)  # loads the tables when missing
        self.engine, self.schema, self.dialect = loader.engine, loader.schema, "trino"
        version = self.engine.execute("SELECT version() AS v").column(0)[0].as_py()
        self.version = f"Trino {version} at {url}"
        self.run(f"DROP TABLE IF EXISTS {T}.orders_log")
        self.run(_ORDERS_LOG_SQL.replace("1::BIGINT", "CAST(1 AS BIGINT)"))

    def run(self, sql: str):
        return self.engine.execute(sql.replace("iceberg.tpch.", f"iceberg.{self.schema}.").strip().rstrip(";"),
                                   label="shapes")


def timed(runner, sql: str) -> float:
    start = time.perf_counter()
    runner.run(sql)
    return (time.perf_counter() - start) * 1000.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Query shapes: Genesis SQL vs hand-written SQL")
    parser.add_argument("--sf", type=float, default=1.0, help="scale factor (default 1)")
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds per side (the median is kept)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds per side first")
    parser.add_argument("--threshold", type=float, default=1.10, help="max genesis/hand-written ratio")
    parser.add_argument("--no-fail", action="store_true", help="report only; exit 0 even when slower")
    parser.add_argument("--shapes", help="comma-separated subset of: " + ", ".join(s.name for s in SHAPES))
    parser.add_argument("--show-sql", action="store_true", help="print each shape's Genesis SQL")
    parser.add_argument("--engine", choices=["duckdb", "trino"], default="duckdb")
    parser.add_argument("--trino-url", help="with --engine trino: the server, e.g. http://localhost:8080")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    args = parser.parse_args(argv)

    shapes = SHAPES
    if args.shapes:
        wanted = {s.strip() for s in args.shapes.split(",")}
        shapes = [s for s in SHAPES if s.name in wanted]
    if args.engine == "trino":
        if not args.trino_url:
            parser.error("--engine trino needs --trino-url")
        runner = TrinoRunner(args.trino_url, args.sf, args.data_dir)
    else:
        runner = DuckDBRunner(prepare_data(args.sf, args.data_dir))

    from genesis.compiler import compile_input
    from genesis.project.load import load_project

    rows, problems = [], []
    with tempfile.TemporaryDirectory(prefix="genesis-shapes-") as tmp:
        project = load_project(shapes_project(Path(tmp)))
        for shape in shapes:
            genesis_sql = compile_input(project, f"shape_{shape.name}").sql(runner.dialect)
            if args.show_sql:
                print(f"-- {shape.name}\n{genesis_sql}\n", flush=True)
            try:
                compare(runner.run(genesis_sql), runner.run(shape.hand), ordered=shape.ordered)
            except Mismatch as exc:
                problems.append(f"{shape.name}: genesis result differs from the hand-written one: {exc}")
            for _ in range(args.warmup):
                runner.run(shape.hand)
                runner.run(genesis_sql)
            hand_ms, genesis_ms = [], []
            for _ in range(args.rounds):  # alternate so drift hits both sides alike
                hand_ms.append(timed(runner, shape.hand))
                genesis_ms.append(timed(runner, genesis_sql))
            hand, genesis = statistics.median(hand_ms), statistics.median(genesis_ms)
            rows.append((shape.name, hand, genesis, genesis / hand))
            print(f"  {shape.name:>20}  {hand:9.1f}  {genesis:9.1f}  {genesis / hand:6.3f}", flush=True)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nshapes at TPC-H SF {args.sf:g}, {runner.version}, median of {args.rounds} rounds after "
          f"{args.warmup} warm-up; {os.cpu_count()} CPUs, load {load:.2f}")
    print(f"{'shape':>22}  {'hand_ms':>9}  {'genesis_ms':>10}  {'ratio':>6}")
    slower = []
    for name, hand, genesis, ratio in rows:
        mark = "  SLOWER" if ratio > args.threshold else ""
        print(f"{name:>22}  {hand:9.1f}  {genesis:10.1f}  {ratio:6.3f}{mark}")
        if ratio > args.threshold:
            slower.append(name)
    for problem in problems:
        print(f"FAIL {problem}")
    if problems or (slower and not args.no_fail):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
