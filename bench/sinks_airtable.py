"""Bench: API calls and seconds of an Airtable tracker refresh, against the lower bound.

A 5,000-record tracker is refreshed with 0%, 1% and 100% of its rows changed, through the
real pyairtable client, against the local Airtable server (tests/servers/airtable_server.py)
enforcing a request limit per base. For each case it reports the calls the server logged
(reads, writes, schema calls) beside the lower bound

    ceil(records / 100) reads + ceil(changed / 10) writes

and the seconds the refresh took at the limit used. The target is calls == bound. At
Airtable's real 5 requests/s the seconds are bound by the limit (100% changed = 550 calls
= about 110 s); `--rps` runs it faster, and the report states the limit it used.

    python -m bench.sinks_airtable [--records 5000] [--rps 5] [--json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import sys
import time
from decimal import Decimal
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from genesis.destinations import airtable  # noqa: E402
from genesis.destinations.airtable import Settings, sync_airtable  # noqa: E402
from genesis.result import OutputColumn, QueryResult  # noqa: E402
from tests.servers.airtable_server import AirtableServer  # noqa: E402

BASE, TABLE, TOKEN = "appBench00000001", "Tracker", "pat-bench-token"
COLUMNS = (
    OutputColumn("id", "bigint"),
    OutputColumn("Title", "varchar"),
    OutputColumn("Budget", "decimal(18,2)", {"number": "#,##0.00", "prefix": "$"}),
    OutputColumn("Launch", "date"),
    OutputColumn("Active", "boolean"),
)
CASES = (("0%", 0.0), ("1%", 0.01), ("100%", 1.0))


def result(records: int, version: dict[int, int]) -> QueryResult:
    """`records` rows; row i's title and budget carry its version (0 unless changed)."""
    ids = range(records)
    table = pa.table({
        "id": pa.array(ids, pa.int64()),
        "Title": [f"Title {i} v{version.get(i, 0)}" for i in ids],
        "Budget": pa.array([Decimal(i * 100 + version.get(i, 0)) / 4 for i in ids], pa.decimal128(18, 2)),
        "Launch": pa.array([dt.date(2025, 1, 1) + dt.timedelta(days=i % 365) for i in ids], pa.date32()),
        "Active": [i % 2 == 0 for i in ids],
    })
    return QueryResult(COLUMNS, table)


def _refresh(server: AirtableServer, res: QueryResult):
    return sync_airtable(res, base_id=BASE, table=TABLE, key=["id"], token=TOKEN,
                         endpoint=server.url, deadline_seconds=3600)


def run(records: int = 5000, rps: int = 5) -> dict:
    """Measure the three cases at `rps` requests per second per base; returns the report."""
    saved = airtable.SETTINGS
    server = AirtableServer(TOKEN, requests_per_second=rps, penalty_seconds=30).start()
    try:
        server.add_table(BASE, TABLE, [{"name": "id", "type": "number", "options": {"precision": 0}}])
        # Seed the tracker at full speed: the first load is not what is measured.
        server.enforce_rate_limit = False
        airtable.SETTINGS = Settings(requests_per_second=10_000)
        version: dict[int, int] = {}
        _refresh(server, result(records, version))
        server.enforce_rate_limit = True
        airtable.SETTINGS = Settings(requests_per_second=rps)
        time.sleep(1.0)  # an empty window on the server before measuring
        cases = []
        for label, fraction in CASES:
            changed = math.ceil(records * fraction)
            for i in range(changed):
                version[i] = version.get(i, 0) + 1
            cases.append(_measure(server, label, records, changed, result(records, version)))
        return {"records": records, "requests_per_second": rps, "cases": cases}
    finally:
        airtable.SETTINGS = saved
        server.stop()


def _measure(server: AirtableServer, label: str, records: int, changed: int, res: QueryResult) -> dict:
    server.reset_log()
    report = _refresh(server, res)
    log = list(server.log)
    reads = sum(1 for r in log if r.kind == "read")
    writes = sum(1 for r in log if r.kind == "write")
    meta = sum(1 for r in log if r.kind == "meta")
    bound = math.ceil(records / 100) + math.ceil(changed / 10)
    return {
        "case": label, "changed": changed, "updated": report.updated,
        "reads": reads, "writes": writes, "meta": meta, "calls": reads + writes + meta,
        "bound": bound, "at_bound": reads + writes + meta == bound,
        "rate_limited": sum(1 for r in log if r.status == 429),
        "seconds": round(report.seconds, 2),
    }


def _print(report: dict) -> None:
    print(f"Airtable tracker of {report['records']} records, "
          f"limit {report['requests_per_second']} requests/s per base")
    print(f"{'case':>6} {'changed':>8} {'reads':>6} {'writes':>7} {'meta':>5} {'calls':>6} "
          f"{'bound':>6} {'=bound':>7} {'429s':>5} {'seconds':>8}")
    for c in report["cases"]:
        print(f"{c['case']:>6} {c['changed']:>8} {c['reads']:>6} {c['writes']:>7} {c['meta']:>5} "
              f"{c['calls']:>6} {c['bound']:>6} {str(c['at_bound']):>7} {c['rate_limited']:>5} "
              f"{c['seconds']:>8.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--rps", type=int, default=5, help="requests/s per base (Airtable: 5)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    report = run(args.records, args.rps)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print(report)
    return 0 if all(c["at_bound"] for c in report["cases"]) else 1


if __name__ == "__main__":
    sys.exit(main())
