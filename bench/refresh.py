"""Refresh benchmark: what Genesis itself costs on top of the SQL it runs.

    python bench/refresh.py                  # --scale 10; exit 1 if Genesis/direct > 1.3x
    python bench/refresh.py --scale 1 --no-fail

Builds the demo warehouse at `--scale` in a temporary directory holding a copy of the
example project (genesis.yaml, datasources/, inputs/, trackers/ of the repo root, or
`--project DIR`), then compares, on the same warehouse:

Every tracker's `checks.max_rows` is multiplied by the scale in the copy (the example sizes
its limits for the scale-1 demo; a failed check would skip the write being measured).

- Genesis: `genesis.run.refresh.refresh` of every tracker on the project's default (local)
  target -- compile, run, conform types, checks, write `out/...` -- timed per tracker from
  its report (the first tracker's time includes opening the engine);
- direct: the same compiled DuckDB SQL of each tracker run with `DuckDBEngine.execute` on a
  fresh `genesis.engines.duckdb.DuckDBEngine` (opened and closed inside the timing, as
  refresh does), with nothing done to the rows.

Both sides are warmed once, then `--rounds` rounds alternate which side goes first; each side
keeps its best time per tracker and its best round total. The ratio is Genesis' best total
over the direct best total. Before each timed Genesis round every output file is deleted
(untimed), so every round renders and writes every output; `--steady` keeps them instead and
times the refresh a 15-minute job usually runs (result unchanged: rendered, compared, not
replaced).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from genesis.authoring.demo import build_demo  # noqa: E402
from genesis.engines.duckdb import DuckDBEngine  # noqa: E402
from genesis.project.config import get_target, render_settings, warehouse_dir  # noqa: E402
from genesis.project.load import load_project  # noqa: E402
from genesis.run.fan_out_refresh import expand  # noqa: E402
from genesis.run.refresh import local_path, refresh, select_trackers  # noqa: E402
from genesis.validate import check_tracker  # noqa: E402

PROJECT_PARTS = ("genesis.yaml", "datasources", "inputs", "trackers")
TARGET_RATIO = 1.3


def copy_project(source: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for part in PROJECT_PARTS:
        src = source / part
        if src.is_dir():
            shutil.copytree(src, dest / part)
        elif src.is_file():
            shutil.copy2(src, dest / part)
        elif part == "genesis.yaml":
            raise SystemExit(f"bench: no {part} in {source}")
    return dest


def scale_max_rows(root: Path, scale: int) -> list[str]:
    """Multiply every tracker's checks.max_rows by `scale` in the bench copy.

    The example's limits are sized for the scale-1 demo; at --scale 10 a tracker would fail
    its check and skip the write, which is not the path being measured. Returns the trackers
    changed. (The copy is rewritten with PyYAML: comments are lost, values are not.)
    """
    import yaml

    changed = []
    for path in sorted((root / "trackers").glob("*.y*ml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        checks = (doc or {}).get("checks") or {}
        if scale > 1 and isinstance(checks.get("max_rows"), int):
            checks["max_rows"] *= scale
            path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
            changed.append(str(doc.get("name", path.stem)))
    return changed


def genesis_round(project, trackers, outputs: list[Path] | None = None
                  ) -> tuple[dict[str, float], dict[str, int], float]:
    for path in outputs or []:  # untimed: make this round write every output for real
        path.unlink(missing_ok=True)
    report = refresh(project, trackers)
    failed = [t for t in report.trackers if t.failed]
    if failed:
        raise SystemExit("bench: refresh failed: " + "; ".join(f"{t.tracker}: {t.error}" for t in failed))
    return ({t.tracker: t.seconds for t in report.trackers}, {t.tracker: t.rows for t in report.trackers},
            report.seconds)


def direct_round(warehouse: Path, sqls: dict[str, str]) -> tuple[dict[str, float], dict[str, int], float]:
    seconds, rows = {}, {}
    started = time.perf_counter()
    engine = DuckDBEngine(warehouse)
    try:
        mark = started
        for name, sql in sqls.items():
            table = engine.execute(sql, label=name)
            now = time.perf_counter()
            seconds[name], rows[name] = now - mark, table.num_rows
            mark = now
    finally:
        engine.close()
    return seconds, rows, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=int, default=10, help="demo size multiplier (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per side (default 3)")
    parser.add_argument("--project", type=Path, default=REPO, help="project to copy (default: the repo root)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--no-fail", action="store_true", help=f"report only; do not exit 1 above {TARGET_RATIO}x")
    parser.add_argument("--steady", action="store_true",
                        help="time refreshes whose outputs are already up to date (unchanged) instead of "
                             "deleting every output before each round so that each round writes it")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON document")
    parser.add_argument("--keep", action="store_true", help="keep the temporary project and print its path")
    args = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="genesis-bench-refresh-"))
    try:
        root = copy_project(args.project.resolve(), tmp / "project")
        scaled = scale_max_rows(root, args.scale)
        project = load_project(root)
        target = get_target(project)
        if target.engine != "duckdb":
            raise SystemExit(f"bench: the default target '{target.name}' is not a local duckdb target")
        warehouse = warehouse_dir(project, render_settings(target))
        t0 = time.perf_counter()
        counts = build_demo(warehouse, scale=args.scale, seed=args.seed)
        log = sys.stderr if args.json else sys.stdout
        print(f"demo --scale {args.scale}: {sum(counts.values()):,} rows in {time.perf_counter() - t0:.1f} s",
              file=log, flush=True)
        if scaled:
            print(f"checks.max_rows x{args.scale} in the bench copy for: {', '.join(scaled)}", file=log, flush=True)

        trackers = select_trackers(project, [], all_=True, due=False)
        if not trackers:
            raise SystemExit(f"bench: no trackers in {args.project}")
        # A for_each tracker is measured as its parts, each with its own query and output.
        fanned = expand(project, trackers, target, render_settings(target), judge_vanished=False)
        if fanned.failed:
            raise SystemExit("bench: " + "; ".join(f"{n}: {r.error}" for n, r in fanned.failed.items()))
        project, trackers = fanned.project, fanned.trackers
        sqls = {t.name: check_tracker(project, t).sql("duckdb") for t in trackers}
        settings = render_settings(target)
        outputs = None if args.steady else [local_path(project, t, settings) for t in trackers]

        # warm-up: the first refresh writes every output; both sides read the files once
        genesis_round(project, trackers)
        direct_round(warehouse, sqls)

        best_g: dict[str, float] = {}
        best_d: dict[str, float] = {}
        totals_g: list[float] = []
        totals_d: list[float] = []
        rows_g: dict[str, int] = {}
        rows_d: dict[str, int] = {}
        for index in range(args.rounds):
            sides = ["genesis", "direct"] if index % 2 == 0 else ["direct", "genesis"]
            for side in sides:
                if side == "genesis":
                    seconds, rows_g, total = genesis_round(project, trackers, outputs)
                    best, totals = best_g, totals_g
                else:
                    seconds, rows_d, total = direct_round(warehouse, sqls)
                    best, totals = best_d, totals_d
                totals.append(total)
                for name, value in seconds.items():
                    best[name] = min(value, best.get(name, value))
        mismatched = [n for n in sqls if rows_g.get(n) != rows_d.get(n)]
        if mismatched:
            raise SystemExit(f"bench: row counts differ between Genesis and direct SQL: {', '.join(mismatched)}")

        total_g, total_d = min(totals_g), min(totals_d)
        ratio = total_g / total_d if total_d else float("inf")
        figures = {
            "scale": args.scale, "rounds": args.rounds, "target_ratio": TARGET_RATIO,
            "mode": "steady (outputs unchanged)" if args.steady else "write (every output rewritten)",
            "trackers": [{"tracker": n, "rows": rows_g[n], "genesis_seconds": round(best_g[n], 4),
                          "direct_seconds": round(best_d[n], 4),
                          "ratio": round(best_g[n] / best_d[n], 3) if best_d[n] else None}
                         for n in sqls],
            "genesis_total_seconds": round(total_g, 4), "direct_total_seconds": round(total_d, 4),
            "ratio": round(ratio, 3),
        }
        if args.json:
            print(json.dumps(figures, indent=2))
        else:
            print(render(figures))
        if args.keep:
            print(f"project kept in {root}", file=sys.stderr)
        if ratio > TARGET_RATIO and not args.no_fail:
            print(f"FAIL: Genesis takes {ratio:.2f}x the direct SQL time (target < {TARGET_RATIO}x)", file=sys.stderr)
            return 1
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


def render(figures: dict) -> str:
    rows = [("tracker", "rows", "genesis s", "direct s", "ratio")]
    for t in figures["trackers"]:
        rows.append((t["tracker"], f"{t['rows']:,}", f"{t['genesis_seconds']:.3f}", f"{t['direct_seconds']:.3f}",
                     "-" if t["ratio"] is None else f"{t['ratio']:.2f}x"))
    rows.append(("TOTAL (best round)", f"{sum(t['rows'] for t in figures['trackers']):,}",
                 f"{figures['genesis_total_seconds']:.3f}", f"{figures['direct_total_seconds']:.3f}",
                 f"{figures['ratio']:.2f}x"))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.insert(len(lines) - 1, "  ".join("-" * w for w in widths))
    lines.insert(0, f"demo --scale {figures['scale']}, best of {figures['rounds']} rounds, {figures['mode']}")
    verdict = "ok" if figures["ratio"] <= figures["target_ratio"] else "ABOVE TARGET"
    lines.append(f"Genesis overhead: {figures['ratio']:.2f}x the direct DuckDB time "
                 f"(target < {figures['target_ratio']}x): {verdict}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
