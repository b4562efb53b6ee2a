"""TPC-H benchmark: Genesis SQL against the official query text, on DuckDB.

    python bench/tpch.py --sf 1              # fails (exit 1) if any query is >10% slower
    python bench/tpch.py --sf 1 --no-fail    # only report

The data is generated once per scale factor with tpchgen-cli and loaded into a local Iceberg
warehouse under bench/.data/sf<SF>/ (reused by later runs). Each query's Genesis input
(tests/tpch/project) is compiled once; then the official text and the Genesis SQL run
alternately on the same DuckDB connection: `--warmup` untimed rounds, then `--runs` timed
rounds, keeping each side's best time. The results of both are compared first (by position,
numbers within a tolerance): a query that gives different rows is a failure, whatever its speed.

By default both run on a plain DuckDB connection whose `iceberg.tpch.<table>` views read the
warehouse's data files, so only the SQL differs; `--via engine` runs them through Genesis'
DuckDBEngine.execute instead (adds its per-call catalog lookups to both sides).
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
from tests.tpch.data import duckdb_over_warehouse, generate_tpch, load_into_warehouse  # noqa: E402
from tests.tpch.oracle import Mismatch, compare  # noqa: E402

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="TPC-H: Genesis SQL vs the official text on DuckDB")
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
    args = parser.parse_args(argv)

    queries = QUERIES
    if args.queries:
        wanted = {q.strip().lower() for q in args.queries.split(",")}
        queries = [q for q in QUERIES if q.id in wanted]
    warehouse = prepare_data(args.sf, args.data_dir)

    try:
        from genesis.compiler import compile_input
        from genesis.project import load_project
    except ImportError as exc:
        print(f"error: the Genesis compiler is not available: {exc}", file=sys.stderr)
        return 2
    project = load_project(PROJECT_DIR)
    runner = Runner(warehouse, args.via)

    rows, problems = [], []
    for query in queries:
        official_sql = query.official_sql()
        try:
            genesis_sql = compile_input(project, query.input).sql("duckdb")
        except Exception as exc:  # a compile error is a result of the benchmark, not a crash
            problems.append(f"{query.id}: compile failed: {exc}")
            rows.append((query.id, None, None, None))
            continue
        try:
            compare(runner.run(genesis_sql, query.input), runner.run(official_sql, query.id),
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
    print(f"TPC-H SF {args.sf:g}, DuckDB {duckdb.__version__} via {args.via}, best of {args.runs} "
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
