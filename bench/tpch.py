"""TPC-H benchmark: Genesis SQL against the official query text, on DuckDB or Trino.

    python bench/tpch.py --sf 1              # fails (exit 1) if any query is >10% slower
    python bench/tpch.py --sf 1 --no-fail    # only report
    python bench/tpch.py --sf 1 --engine trino   # on the real Trino at $GENESIS_TRINO_URL

The data is generated once per scale factor with tpchgen-cli and loaded into a local Iceberg
warehouse under bench/.data/sf<SF>/ (reused by later runs). Each query's Genesis input
(tests/tpch/project) is compiled once; then the official text and the Genesis SQL run
alternately on the same DuckDB connection: `--warmup` untimed rounds, then `--runs` timed
rounds, keeping each side's best time. The results of both are compared first (by position,
numbers within a tolerance): a query that gives different rows is a failure, whatever its speed.

By default both run on a plain DuckDB connection whose `iceberg.tpch.<table>` views read the
warehouse's data files, so only the SQL differs; `--via engine` runs them through Genesis'
DuckDBEngine.execute instead (adds its per-call catalog lookups to both sides).

`--engine trino` runs both texts through Genesis' TrinoEngine on a running server
(scripts/trino-server start; URL from --trino-url or $GENESIS_TRINO_URL). The tables are made
once on that server with CREATE TABLE AS from Trino's own `tpch` connector, cast to the TPC-H
types, in `iceberg.bench_sf<SF>` (data under --data-dir); both texts are pointed at that schema.
Trino keeps decimals at its arithmetic's scale in the official text (Q1's averages, Q8 and Q14's
ratios), so results are compared at the official column's scale (compare_at_official_scale).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import duckdb  # noqa: E402

from tests.tpch import PROJECT_DIR, QUERIES  # noqa: E402
from tests.tpch.data import TPCH_COLUMNS, duckdb_over_warehouse, generate_tpch, load_into_warehouse  # noqa: E402
from tests.tpch.oracle import Mismatch, compare, compare_at_official_scale  # noqa: E402

DATA_DIR = REPO / "bench" / ".data"


def _sf_label(sf: float) -> str:
    return f"{sf:g}"


def prepare_data(sf: float, data_dir: Path) -> Path:
    """The warehouse for `sf`, generated and loaded on first use (timings printed)."""
    base = data_dir / f"sf{_sf_label(sf)}"
    warehouse = base / "warehouse"
    marker = warehouse / "_tpch_loaded"
    if marker.is_file() and marker.read_text().strip() == str(sf):
        return warehouse
    print(f"generating TPC-H SF {sf:g} under {base} ...", flush=True)
    t0 = time.perf_counter()
    generate_tpch(base / "parquet", sf)
    t1 = time.perf_counter()
    load_into_warehouse(warehouse, base / "parquet")
    marker.write_text(str(sf))
    print(f"  tpchgen-cli {t1 - t0:.1f} s, Iceberg load {time.perf_counter() - t1:.1f} s", flush=True)
    return warehouse


class Runner:
    def __init__(self, warehouse: Path, via: str):
        self.via = via
        if via == "engine":
            from genesis.engines.duckdb import DuckDBEngine

            self.engine = DuckDBEngine(warehouse)
        else:
            self.con = duckdb_over_warehouse(warehouse)

    def run(self, sql: str, label: str = ""):
        if self.via == "engine":
            return self.engine.execute(sql, label=label)
        return self.con.sql(sql).to_arrow_table()

    def timed(self, sql: str, label: str = "") -> float:
        start = time.perf_counter()
        self.run(sql, label)
        return (time.perf_counter() - start) * 1000.0


class TrinoRunner:
    """Both texts through Genesis' TrinoEngine, on tables CTAS-loaded from Trino's tpch connector."""

    def __init__(self, url: str, sf: float, data_dir: Path):
        from urllib.parse import urlsplit

        from genesis.engines.trino import TrinoEngine

        parts = urlsplit(url)
        self.engine = TrinoEngine({"host": parts.hostname, "port": parts.port or 8080,
                                   "http_scheme": parts.scheme or "http", "user": "genesis",
                                   "request_timeout": 600})
        self.schema = f"bench_sf{_sf_label(sf).replace('.', '_')}"
        self.load(sf, data_dir / f"trino-sf{_sf_label(sf)}")

    def load(self, sf: float, location: Path) -> None:
        have = {r["table_name"] for r in self.engine.execute(
            f"SELECT table_name FROM iceberg.information_schema.tables WHERE table_schema = '{self.schema}'"
        ).to_pylist()}
        missing = [t for t in TPCH_COLUMNS if t not in have]
        if not missing:
            return
        source = "tiny" if sf == 0.01 else f"sf{_sf_label(sf)}"
        print(f"loading TPC-H SF {sf:g} into iceberg.{self.schema} with CTAS from tpch.{source} ...", flush=True)
        started = time.perf_counter()
        location.mkdir(parents=True, exist_ok=True)
        self.engine.execute(f"CREATE SCHEMA IF NOT EXISTS iceberg.{self.schema} "
                            f"WITH (location = '{location.resolve().as_uri()}')")
        for table in missing:
            columns = ", ".join(f"CAST({name.split('_', 1)[1]} AS {ctype}) AS {name}"
                                for name, ctype in TPCH_COLUMNS[table])
            self.engine.execute(f"CREATE TABLE iceberg.{self.schema}.{table} AS "
                                f"SELECT {columns} FROM tpch.{source}.{table}", label=f"load {table}")
        print(f"  CTAS {time.perf_counter() - started:.1f} s", flush=True)

    def sql(self, text: str) -> str:
        return text.replace("iceberg.tpch.", f"iceberg.{self.schema}.").strip().rstrip(";")

    def run(self, sql: str, label: str = ""):
        return self.engine.execute(self.sql(sql), label=label)

    def timed(self, sql: str, label: str = "") -> float:
        sql = self.sql(sql)
        start = time.perf_counter()
        self.engine.execute(sql, label=label)
        return (time.perf_counter() - start) * 1000.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="TPC-H: Genesis SQL vs the official text on DuckDB or Trino")
    parser.add_argument("--sf", type=float, default=1.0, help="scale factor (default 1)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per side (best is kept)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs per side first")
    parser.add_argument("--threshold", type=float, default=1.10, help="max genesis/official ratio")
    parser.add_argument("--confirm", type=int, default=2,
                        help="extra rounds of --runs for a query over the threshold before it counts "
                             "as slower (a busy machine makes single rounds noisy)")
    parser.add_argument("--no-fail", action="store_true", help="report only; exit 0 even when slower")
    parser.add_argument("--queries", help="comma-separated subset, e.g. q1,q6")
    parser.add_argument("--via", choices=["duckdb", "engine"], default="duckdb")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--engine", choices=["duckdb", "trino"], default="duckdb")
    parser.add_argument("--trino-url", default=os.environ.get("GENESIS_TRINO_URL"),
                        help="a running Trino (scripts/trino-server start); default $GENESIS_TRINO_URL")
    args = parser.parse_args(argv)
    if args.engine == "trino" and not args.trino_url:
        print("error: --engine trino needs a server: scripts/trino-server start, then --trino-url URL "
              "or GENESIS_TRINO_URL", file=sys.stderr)
        return 2

    queries = QUERIES
    if args.queries:
        wanted = {q.strip().lower() for q in args.queries.split(",")}
        queries = [q for q in QUERIES if q.id in wanted]
    warehouse = prepare_data(args.sf, args.data_dir) if args.engine == "duckdb" else None

    try:
        from genesis.compiler import compile_input
        from genesis.project.load import load_project
    except ImportError as exc:
        print(f"error: the Genesis compiler is not available: {exc}", file=sys.stderr)
        return 2
    project = load_project(PROJECT_DIR)
    runner = Runner(warehouse, args.via) if args.engine == "duckdb" else TrinoRunner(args.trino_url, args.sf, args.data_dir)
    same_rows = compare if args.engine == "duckdb" else compare_at_official_scale

    rows, problems = [], []
    for query in queries:
        official_sql = query.official_sql()
        try:
            genesis_sql = compile_input(project, query.input).sql(args.engine)
        except Exception as exc:  # a compile error is a result of the benchmark, not a crash
            problems.append(f"{query.id}: compile failed: {exc}")
            rows.append((query.id, None, None, None))
            continue
        try:
            same_rows(runner.run(genesis_sql, query.input), runner.run(official_sql, query.id),
                      ordered=query.ordered)
        except Mismatch as exc:
            problems.append(f"{query.id}: genesis result differs from the official one: {exc}")
        except Exception as exc:
            problems.append(f"{query.id}: failed: {exc}")
            rows.append((query.id, None, None, None))
            continue
        for _ in range(args.warmup):
            runner.run(official_sql)
            runner.run(genesis_sql)
        official_ms, genesis_ms = [], []
        for round_ in range(1 + max(0, args.confirm)):
            if round_ and min(genesis_ms) / min(official_ms) <= args.threshold:
                break
            for _ in range(args.runs):  # alternate so drift (caches, CPU clocks) hits both sides alike
                official_ms.append(runner.timed(official_sql))
                genesis_ms.append(runner.timed(genesis_sql))
        best_o, best_g = min(official_ms), min(genesis_ms)
        rows.append((query.id, best_o, best_g, best_g / best_o))
        print(f"  {query.id:>4}  {best_o:9.1f}  {best_g:9.1f}  {best_g / best_o:6.3f}", flush=True)

    print()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    where = f"DuckDB {duckdb.__version__} via {args.via}" if args.engine == "duckdb" else \
        f"Trino {runner.engine.execute('SELECT version() AS v').column(0)[0].as_py()} at {args.trino_url}"
    print(f"TPC-H SF {args.sf:g}, {where}, best of {args.runs} "
          f"(up to {args.runs * (1 + args.confirm)} when over the threshold) after {args.warmup} warm-up; "
          f"{os.cpu_count()} CPUs, load {load:.2f}")
    print(f"{'query':>5}  {'official_ms':>11}  {'genesis_ms':>10}  {'ratio':>6}")
    for qid, o, g, r in rows:
        if r is None:
            print(f"{qid:>5}  {'-':>11}  {'-':>10}  {'-':>6}")
        else:
            flag = "  <-- slower than allowed" if r > args.threshold else ""
            print(f"{qid:>5}  {o:11.1f}  {g:10.1f}  {r:6.3f}{flag}")
    ratios = [r for *_, r in rows if r is not None]
    worst = max(ratios) if ratios else float("nan")
    print(f"max ratio: {worst:.3f} (threshold {args.threshold:.2f})")
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)

    slow = [qid for qid, _, _, r in rows if r is not None and r > args.threshold]
    if args.no_fail:
        return 0
    if problems or slow:
        if slow:
            print(f"FAIL: slower than {args.threshold:.2f}x: {', '.join(slow)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
