"""Validate and compile a generated project of 60 data sources, 300 inputs and 300 trackers.

    python bench/compile.py             # exit 1 if compile --all takes 1.5 s or more
    python bench/compile.py --no-fail   # only report

The project has the realistic shape of issue 12: every input reads 2 to 5 fields over 1 to
3 joins, reaches one data source by two paths (`parent.parent` and `grandparent`), and uses
measures, aggregate computed columns and parameters; every input has a tracker that sets
its own parameter values.

Each figure is the best of several fresh `genesis` processes, start-up included, beside
bare interpreter start-up (`python -c pass`) measured in the same run.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_SECONDS = 1.5
TYPES = ["varchar", "bigint", "integer", "date", "double", "decimal(18,2)", "boolean"]


def datasource(index: int, rng: random.Random, n: int) -> str:
    fields = ["  id: {type: bigint}", "  parent_id: {type: bigint}", "  grandparent_id: {type: bigint}",
              "  name: {type: varchar}",
              "  amount: {type: \"decimal(18,2)\"}", "  created: {type: date}"]
    for f in range(8):
        fields.append(f"  attr_{f}: {{type: \"{rng.choice(TYPES)}\", description: attribute {f}}}")
    fields.append("  amount_k: {type: double, sql: \"amount / 1000.0\"}")
    joins = []
    parent = (index - 1) // 2
    if index > 0:
        joins.append(f"  parent: {{datasource: ds_{parent:02d}, on: {{parent_id: id}}, relationship: many_to_one}}")
    if parent > 0:  # the grandparent again, by a second path beside parent.parent
        joins.append(f"  grandparent: {{datasource: ds_{(parent - 1) // 2:02d}, on: {{grandparent_id: id}}, "
                     f"relationship: many_to_one}}")
    for child in (2 * index + 1, 2 * index + 2):
        if child < n:
            joins.append(f"  children_{child:02d}: {{datasource: ds_{child:02d}, on: {{id: parent_id}}, "
                         f"relationship: one_to_many}}")
    text = [f"name: ds_{index:02d}", f"description: generated data source {index}",
            f"table: iceberg.bench.t{index:02d}", "primary_key: [id]"]
    if index % 5 == 0:
        text += ["latest: {order_by: created, deleted: \"name = 'deleted'\"}"]
    text += ["fields:"] + fields
    text += ["measures:", "  total: {agg: sum, field: amount}", "  rows: {agg: count}"]
    if joins:
        text += ["joins:"] + joins
    return "\n".join(text) + "\n"


def input_def(number: int, rng: random.Random, n: int) -> str:
    """An input of 2 to 5 fields over 1 to 3 joins; every third one groups (measures, aggregates)."""
    root = rng.randrange(3, n)  # depth 2 at least: every root has a grandparent
    child = 2 * root + 1
    reachable = ["  - parent.name",
                 "  - {field: parent.parent.created, label: Grandparent created, format: {date: \"%b %d, %Y\"}}",
                 "  - {field: grandparent.name, label: Grandparent by its own join}"]
    if root >= 7:
        reachable.append("  - {field: parent.parent.parent.name, label: Great-grandparent}")
    grouped = number % 3 == 0
    lines = [f"name: input_{number:03d}", f"from: ds_{root:02d}", "fields:"]
    if grouped:
        lines += rng.sample(reachable, rng.randint(1, 2))
        lines += [f"  - ds_{root:02d}.total", "  - parent.rows",
                  f"  - {{name: avg_amount, sql: \"sum(ds_{root:02d}.amount) / count(*)\", type: double}}"][:rng.randint(1, 3)]
        if child < n:
            lines.append(f"  - {{field: children_{child:02d}.total, label: Children total}}")
    else:
        lines += [f"  - ds_{root:02d}.id"] + rng.sample(reachable, rng.randint(1, 3))
        if child < n and rng.random() < 0.5:
            lines.append(f"  - {{field: children_{child:02d}.name, label: Children, agg: list}}")
    lines += ["filters:", f"  - \"ds_{root:02d}.created >= {{{{ since }}}}\"",
              f"  - \"parent.attr_0 IS NOT NULL OR ds_{root:02d}.amount > {{{{ min_amount }}}}\"",
              "parameters:", "  since: {type: date, default: 2024-01-01}",
              "  min_amount: {type: \"decimal(18,2)\", default: 10}"]
    if not grouped:
        lines += [f"sort: [\"ds_{root:02d}.id DESC\"]", "limit: 5000"]
    return "\n".join(lines) + "\n"


def tracker_def(number: int) -> str:
    """A tracker of input NUMBER (a file destination); every fifth sets its own parameter value."""
    parameters = f"parameters: {{min_amount: {number % 50}}}\n" if number % 5 == 0 else ""
    return (f"name: tracker_{number:03d}\ninput: input_{number:03d}\n{parameters}"
            f"destination: {{type: file, path: out/tracker_{number:03d}.csv}}\n")


def write_project(root: Path, n_datasources: int = 60, n_inputs: int = 300, seed: int = 11) -> None:
    rng = random.Random(seed)
    for folder in ("datasources", "inputs", "trackers"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "genesis.yaml").write_text(
        "name: bench\ndefault_target: local\ntargets:\n"
        "  local: {engine: duckdb, warehouse: .genesis/warehouse, destinations: local}\n")
    for index in range(n_datasources):
        (root / "datasources" / f"ds_{index:02d}.yaml").write_text(datasource(index, rng, n_datasources))
    for number in range(n_inputs):
        (root / "inputs" / f"input_{number:03d}.yaml").write_text(input_def(number, rng, n_datasources))
        (root / "trackers" / f"tracker_{number:03d}.yaml").write_text(tracker_def(number))


def best_of(command: list[str], runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        completed = subprocess.run(command, capture_output=True, text=True)
        elapsed = time.perf_counter() - started
        if completed.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed:\n{completed.stderr[-2000:]}")
        best = min(best, elapsed)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--inputs", type=int, default=300)
    parser.add_argument("--datasources", type=int, default=60)
    parser.add_argument("--no-fail", action="store_true")
    args = parser.parse_args()
    genesis = [sys.executable, "-m", "genesis.cli"]
    with tempfile.TemporaryDirectory() as tmp:
        project, out = Path(tmp) / "project", Path(tmp) / "sql"
        write_project(project, args.datasources, args.inputs)
        startup = best_of([sys.executable, "-c", "pass"], args.runs)
        validate = best_of(genesis + ["validate", "--project", str(project)], args.runs)
        compile_all = best_of(genesis + ["compile", "--all", "--out", str(out), "--project", str(project)], args.runs)
        written = len(list(out.glob("*/*.sql")))
    print(f"project: {args.datasources} data sources, {args.inputs} inputs and as many trackers "
          f"({written} SQL files written)")
    print(f"{'step':<38} {'seconds':>8} {'ms/input':>9} {'x start-up':>11}")
    for name, seconds in (("python -c pass", startup), ("genesis validate", validate),
                          ("genesis compile --all (validates too)", compile_all)):
        print(f"{name:<38} {seconds:8.3f} {1000 * seconds / args.inputs:9.2f} {seconds / startup:11.1f}")
    verdict = "ok" if compile_all < TARGET_SECONDS else "SLOW"
    print(f"target: validate + compile of all {args.inputs} inputs under {TARGET_SECONDS:.1f} s wall: "
          f"{compile_all:.2f} s {verdict}")
    return 0 if compile_all < TARGET_SECONDS or args.no_fail else 1


if __name__ == "__main__":
    sys.exit(main())
