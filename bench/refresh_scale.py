"""Scale benchmark: 300 trackers, refreshed one at a time and with `--jobs`, next to the
lower bound that the query latencies and the APIs' quotas allow.

    python bench/refresh_scale.py                       # 300 trackers, --jobs 16
    python bench/refresh_scale.py --trackers 60 --jobs 8 --sequential-sample 12 --no-fail

The trackers (`tests/farm.py`) are about 40% Google Sheets tabs over 20 spreadsheets, 30%
Airtable tables over 10 bases and 30% CSV files. Every query goes through the real `trino`
client to the local Trino-protocol server, which holds each one 0.5 to 3 s (`--latency`,
fixed per query) before DuckDB answers it; Sheets and Airtable writes go through gspread and
pyairtable to the local servers, with the real quotas: 60 reads and 60 writes a minute for
the service account, 5 requests a second per Airtable base (30-s penalty after a 429).

Printed: the wall time of the concurrent run; the sequential time, measured on a sample of
`--sequential-sample` trackers of the same mix and extrapolated by the tracker count (a
full sequential run takes 10+ minutes; `--sequential-sample 0` runs it in full); and the
lower bound, the longest of
  - total query time / jobs                     (the engine, with `jobs` workers),
  - Sheets reads / 60 per minute, and writes / 60 per minute (the service account),
  - the busiest base's requests / 5 per second  (Airtable),
with the counts taken from the servers' request logs. Exit 1 when the concurrent run takes
more than 1.25x the bound (unless --no-fail). The Sheets quota is a sliding minute: a run
may beat "calls / quota" by bursting 60 calls at the start, so the ratio can be below 1.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from genesis.project.load import load_project  # noqa: E402
from genesis.run.refresh import refresh, select_trackers  # noqa: E402
from tests.farm import Farm, latency_between  # noqa: E402

TARGET_RATIO = 1.25
SHEETS_PER_MINUTE = 60
AIRTABLE_PER_SECOND = 5


def mix(trackers: int) -> dict[str, int]:
    sheets, airtable = round(trackers * 0.4), round(trackers * 0.3)
    return {"sheets": sheets, "airtable": airtable, "files": trackers - sheets - airtable}


def build(root: Path, trackers: int, latency: tuple[float, float], prefix: str = "t") -> Farm:
    counts = mix(trackers)
    farm = Farm.build(root, sheets=counts["sheets"], spreadsheets=min(20, max(1, counts["sheets"])),
                      airtable=counts["airtable"], bases=min(10, max(1, counts["airtable"])),
                      files=counts["files"], latency=latency_between(*latency), prefix=prefix,
                      tabs_exist=True)  # as in a running studio: one read and one write per refresh
    os.environ.update(farm.env)
    return farm


def timed_run(farm: Farm, jobs: int) -> tuple[float, object]:
    project = load_project(farm.project)
    chosen = select_trackers(project, [], True, False)
    started = time.perf_counter()
    report = refresh(project, chosen, jobs=jobs)
    return time.perf_counter() - started, report


def lower_bound(farm: Farm, jobs: int) -> dict[str, float]:
    queries = [q for q in farm.trino.queries() if q.finished]
    query_seconds = sum(q.finished - q.started for q in queries)
    reads = sum(1 for e in farm.sheets.log if e.kind == "read")
    writes = sum(1 for e in farm.sheets.log if e.kind == "write")
    per_base: dict[str, int] = {}
    for e in farm.airtable.log:
        if e.base:
            per_base[e.base] = per_base.get(e.base, 0) + 1
    busiest = max(per_base.values(), default=0)
    return {
        "queries / jobs": query_seconds / jobs,
        "Sheets reads / quota": reads / SHEETS_PER_MINUTE * 60,
        "Sheets writes / quota": writes / SHEETS_PER_MINUTE * 60,
        "busiest base / 5 per s": busiest / AIRTABLE_PER_SECOND,
        "_counts": (len(queries), query_seconds, reads, writes, busiest),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trackers", type=int, default=300)
    parser.add_argument("--jobs", type=int, default=16)
    parser.add_argument("--latency", default="0.5-3.0", help="LOW-HIGH seconds per query")
    parser.add_argument("--sequential-sample", type=int, default=30,
                        help="trackers in the sequential sample (0: run all of them sequentially)")
    parser.add_argument("--no-fail", action="store_true")
    args = parser.parse_args()
    latency = tuple(float(x) for x in args.latency.split("-"))
    problems = []
    with tempfile.TemporaryDirectory(prefix="genesis-scale-") as tmp:
        with build(Path(tmp) / "concurrent", args.trackers, latency) as farm:
            wall, report = timed_run(farm, args.jobs)
            failed = [t for t in report.trackers if t.status not in ("ok", "unchanged")]
            bound = lower_bound(farm, args.jobs)
            throttled = [e for e in farm.sheets.log if e.status == 429] + \
                        [e for e in farm.airtable.log if e.status == 429]
        sample = args.sequential_sample or args.trackers
        with build(Path(tmp) / "sequential", sample, latency) as farm:
            sequential, seq_report = timed_run(farm, 1)
            seq_failed = [t for t in seq_report.trackers if t.status not in ("ok", "unchanged")]
    count, query_seconds, reads, writes, busiest = bound.pop("_counts")
    limit = max(bound.values())
    extrapolated = sequential * args.trackers / sample
    print(f"{args.trackers} trackers {mix(args.trackers)}; query latency {args.latency} s; jobs {args.jobs}")
    print(f"  {count} queries, {query_seconds:.0f} s of query time; Sheets {reads} reads, {writes} writes; "
          f"busiest Airtable base {busiest} requests")
    # what the sliding minute allows at best: 60 calls at once, then 60 more a minute later
    burst = max(query_seconds / args.jobs, (max(-(-reads // 60), -(-writes // 60), 1) - 1) * 61.0,
                busiest / AIRTABLE_PER_SECOND)
    for name, seconds in bound.items():
        print(f"  bound {name:<24} {seconds:8.1f} s" + ("   <- the lower bound" if seconds == limit else ""))
    how = "measured" if sample == args.trackers else f"measured on {sample}, extrapolated x{args.trackers / sample:.1f}"
    print(f"  sequential (--jobs 1)          {extrapolated:8.1f} s   ({how}: {sequential:.1f} s)")
    print(f"  concurrent (--jobs {args.jobs:<3})        {wall:8.1f} s   = {wall / limit:.2f}x the bound "
          f"(target <= {TARGET_RATIO}x), {extrapolated / wall:.1f}x faster than sequential")
    print(f"  (with the quota's burst of 60 at the start, the bound would be {burst:.1f} s: {wall / burst:.2f}x)")
    print(f"  429 answers: {len(throttled)}; failed trackers: {len(failed)} concurrent, {len(seq_failed)} sequential")
    if failed or seq_failed:
        problems.append("trackers failed: " + "; ".join(f"{t.tracker}: {t.error}" for t in (failed + seq_failed)[:3]))
    if throttled:
        problems.append(f"{len(throttled)} requests were throttled (429)")
    if wall > TARGET_RATIO * limit:
        problems.append(f"{wall / limit:.2f}x the lower bound (target {TARGET_RATIO}x)")
    for problem in problems:
        print("FAIL:", problem)
    return 1 if problems and not args.no_fail else 0


if __name__ == "__main__":
    sys.exit(main())
