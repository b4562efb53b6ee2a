"""`genesis diff` on a 300-input project with one data source changed, against `compile --all`.

    python bench/diff.py                  # fails (exit 1) if diff takes more than 2.5x compile --all
    python bench/diff.py --no-fail        # only report
    python bench/diff.py --inputs 600 --runs 5

A generated project (data sources in a join tree, one tracker per input) is committed to a
throwaway git repository in a temporary directory; then one data source's field changes in
the working tree. Both commands run through the CLI in fresh processes, alternately, in the
same run; each side keeps its best time, and the figure is the ratio of the two.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_RATIO = 2.5
TYPES = ["varchar", "bigint", "integer", "date", "double", "boolean"]


# ---------------------------------------------------------------- the generated project


def datasource_yaml(index: int, n_datasources: int, n_fields: int) -> str:
    """ds_<i>: an id, a parent key (a join tree: ds_i -> ds_{(i-1)//2}), plain and computed fields."""
    lines = [f"name: ds_{index:02d}", f"description: Generated data source {index}.",
             f"table: iceberg.bench.t{index:02d}", "primary_key: [id]", "fields:",
             "  id: {type: bigint, description: Row id}"]
    if index:
        lines.append("  parent_id: {type: bigint}")
    for f in range(n_fields):
        lines.append(f"  f{f:02d}: {{type: {TYPES[f % len(TYPES)]}, description: Field {f} of {index}}}")
    lines.append('  label_text: {type: varchar, sql: "upper(f00)"}')
    lines += ["measures:", "  row_count: {agg: count}", "  total: {agg: sum, sql: f01, type: bigint}"]
    joins = []
    if index:
        parent = (index - 1) // 2
        joins.append(f"  parent: {{datasource: ds_{parent:02d}, on: {{parent_id: id}}, relationship: many_to_one}}")
    for child in (2 * index + 1, 2 * index + 2):
        if child < n_datasources:
            joins.append(f"  kids_{child:02d}: {{datasource: ds_{child:02d}, on: {{id: parent_id}}, "
                         f"relationship: one_to_many}}")
    return "\n".join(lines + (["joins:"] + joins if joins else [])) + "\n"


def ancestors(index: int) -> list[int]:
    out = []
    while index:
        index = (index - 1) // 2
        out.append(index)
    return out


def input_yaml(number: int, root: int, rng: random.Random, n_fields: int) -> str:
    own = rng.sample(range(n_fields), 4)
    fields = [f"ds_{root:02d}.id"] + [f"ds_{root:02d}.f{f:02d}" for f in own[:3]]
    fields.append(f"{{field: ds_{root:02d}.label_text, label: Label}}")
    for hop, parent in enumerate(ancestors(root)[:2]):
        fields.append(f"{{field: ds_{parent:02d}.f{rng.randrange(n_fields):02d}, label: Up{hop}}}")
    lines = [f"name: in_{number:03d}", f"description: Generated input {number}.", f"from: ds_{root:02d}",
             "fields:"] + [f"  - {f}" for f in fields]
    lines += ["filters:", f"  - \"ds_{root:02d}.f{own[3]:02d} IS NOT NULL\""]
    lines += ["sort: [" + f"ds_{root:02d}.id DESC" + "]", "limit: 5000"]
    return "\n".join(lines) + "\n"


def tracker_yaml(number: int) -> str:
    return (f"name: tr-{number:03d}\ninput: in_{number:03d}\nowner: bench\nschedule: \"0 * * * *\"\n"
            f"destination: {{type: file, path: out/tr-{number:03d}.csv}}\n")


def write_project(root: Path, n_inputs: int, n_datasources: int = 31, n_fields: int = 12, seed: int = 7) -> None:
    rng = random.Random(seed)
    for folder in ("datasources", "inputs", "trackers"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "genesis.yaml").write_text(
        "name: bench\ndefault_target: local\ntargets:\n  local: {engine: duckdb, warehouse: .genesis/warehouse}\n")
    for i in range(n_datasources):
        (root / "datasources" / f"ds_{i:02d}.yaml").write_text(datasource_yaml(i, n_datasources, n_fields))
    for n in range(n_inputs):
        (root / "inputs" / f"in_{n:03d}.yaml").write_text(input_yaml(n, rng.randrange(n_datasources), rng, n_fields))
        (root / "trackers" / f"tr-{n:03d}.yaml").write_text(tracker_yaml(n))


def change_one_datasource(root: Path, index: int = 3) -> None:
    """The pull request: one computed field of one data source gets new SQL."""
    path = root / "datasources" / f"ds_{index:02d}.yaml"
    path.write_text(path.read_text().replace('sql: "upper(f00)"', 'sql: "lower(trim(f00))"'))


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid", *args],
                   cwd=root, check=True, capture_output=True)


def prepare(root: Path, n_inputs: int) -> None:
    write_project(root, n_inputs)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    change_one_datasource(root)


# ---------------------------------------------------------------- timing


def timed(command: list[str], cwd: Path) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr}")
    return seconds, done.stdout


def genesis() -> list[str]:
    return [sys.executable, "-m", "genesis.cli"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-fail", action="store_true", help="Report only; never exit 1.")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="genesis-bench-diff-"))
    try:
        project = tmp / "project"
        project.mkdir()
        prepare(project, args.inputs)
        diff_cmd = genesis() + ["diff", "--base", "main", "--format", "json"]
        compile_cmd = genesis() + ["compile", "--all", "--out", str(tmp / "sql")]
        diffs, compiles, report = [], [], ""
        for _ in range(args.runs):
            seconds, _ = timed(compile_cmd, project)
            compiles.append(seconds)
            seconds, report = timed(diff_cmd, project)
            diffs.append(seconds)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    import json

    summary = json.loads(report)["summary"]
    best_diff, best_compile = min(diffs), min(compiles)
    ratio = best_diff / best_compile
    print(f"project: {args.inputs} inputs, {args.inputs} trackers, 1 data source changed "
          f"({summary['changed']} trackers changed, {summary['unchanged']} unchanged)")
    print(f"genesis compile --all: best {best_compile:.2f} s (median {statistics.median(compiles):.2f} s)")
    print(f"genesis diff --base:   best {best_diff:.2f} s (median {statistics.median(diffs):.2f} s)")
    verdict = "ok" if ratio <= TARGET_RATIO else "TOO SLOW"
    print(f"ratio diff / compile --all: {ratio:.2f}x (target under {TARGET_RATIO}x): {verdict}")
    return 0 if ratio <= TARGET_RATIO or args.no_fail else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    sys.exit(main())
