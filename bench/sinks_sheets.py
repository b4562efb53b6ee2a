"""Bench: API calls and seconds of a Google Sheets tracker refresh, against the lower bound.

A tracker of 10,000 rows x 20 columns (text, integers, doubles, formatted decimals, dates,
booleans) is refreshed with 0%, 1% and 100% of its rows changed (every non-key cell of a
changed row changes), through the real gspread client, against the local Sheets API server
(tests/servers/sheets_server.py). For each case it prints the calls the server logged for
the Genesis service account (the OAuth token call is shown apart) beside the lower bound

    1 read + ceil(payload / 2 MB) writes        (payload: the bytes of the write bodies sent;
                                                 2 MB = sheets.MAX_REQUEST_BYTES)

and the seconds the refresh took. The target is calls == bound.

    python -m bench.sinks_sheets [--rows 10000] [--columns 20] [--json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import sys
import tempfile
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from genesis.destinations.sheets import MAX_REQUEST_BYTES, RetryPolicy, sync_google_sheet  # noqa: E402
from genesis.result import OutputColumn, QueryResult  # noqa: E402
from tests.servers.sheets_server import SheetsServer  # noqa: E402

EMAIL = "genesis-bench@genesis-test.iam.gserviceaccount.com"
TAB = "Tracker"
CASES = (("0%", 0.0), ("1%", 0.01), ("100%", 1.0))
# (type, format) of the value columns, cycled to fill the width
KINDS = (
    ("varchar", None), ("bigint", None), ("double", None),
    ("decimal(18,2)", {"number": "#,##0.00", "prefix": "$"}), ("date", {"date": "%b %d, %Y"}),
    ("varchar", None), ("boolean", None), ("timestamp", None),
)


def columns(width: int) -> tuple[OutputColumn, ...]:
    out = [OutputColumn("id", "bigint")]
    for i in range(width - 1):
        kind, fmt = KINDS[i % len(KINDS)]
        out.append(OutputColumn(f"c{i + 1:02d}_{kind.split('(')[0]}", kind, fmt))
    return tuple(out)


def _value(kind: str, row: int, col: int, version: int):
    n = row * 31 + col * 7 + version * 1_000_003
    if kind == "varchar":
        return f"item {row}-{col} v{version}" if col % 2 else f"{n % 100000:05d}"  # leading zeros
    if kind == "bigint":
        return n
    if kind == "double":
        return n / 8
    if kind.startswith("decimal"):
        return Decimal(n) / 100
    if kind == "date":
        return dt.date(2020, 1, 1) + dt.timedelta(days=n % 3000)
    if kind == "boolean":
        return (n + version) % 2 == 0
    return dt.datetime(2020, 1, 1) + dt.timedelta(seconds=n % 10**8)


def result(cols: tuple[OutputColumn, ...], rows: int, version: dict[int, int]) -> QueryResult:
    """Row i's values derive from its version (0 unless changed)."""
    from genesis.project.types import arrow_type

    data = {"id": pa.array(range(rows), pa.int64())}
    for j, c in enumerate(cols[1:], start=1):
        values = [_value(c.type, i, j, version.get(i, 0)) for i in range(rows)]
        data[c.name] = pa.array(values, arrow_type(c.type))
    return QueryResult(cols, pa.table(data))


def run(report: Callable[[str], None] = print, *, rows: int = 10_000, width: int = 20) -> dict:
    """Measure the three cases, print the table through `report`, return the figures."""
    cols = columns(width)
    with SheetsServer(write_quota=60, read_quota=300) as server, tempfile.TemporaryDirectory() as tmp:
        server.create_spreadsheet("bench", sheets=(TAB,), rows=1000, cols=26)
        sa = server.write_service_account(Path(tmp) / "sa.json", EMAIL)

        def refresh(res: QueryResult):
            return sync_google_sheet(res, spreadsheet_id="bench", worksheet=TAB, key=["id"], mode="upsert",
                                     on_removed="delete", credentials_file=sa, endpoint=server.url,
                                     retry=RetryPolicy(), deadline_seconds=600)

        version: dict[int, int] = {}
        server.clear_log()
        cases = [_measure(server, "load", refresh(result(cols, rows, version)), rows)]
        for label, fraction in CASES:
            changed = math.ceil(rows * fraction)
            for i in range(changed):
                version[i] = version.get(i, 0) + 1
            res = result(cols, rows, version)
            server.clear_log()
            cases.append(_measure(server, label, refresh(res), changed))
    out = {"rows": rows, "columns": width, "max_request_bytes": MAX_REQUEST_BYTES, "cases": cases}
    for line in table(out):
        report(line)
    return out


def _measure(server: SheetsServer, label: str, sync_report, changed: int) -> dict:
    log = server.calls(user=EMAIL)
    reads = sum(1 for e in log if e.kind == "read")
    writes = [e for e in log if e.kind == "write"]
    payload = sum(e.request_bytes for e in writes)
    tokens = sum(1 for e in server.log if e.kind == "token")
    reads_needed = 2 if sync_report.created_tab else 1  # a new tab: + the lookup that finds it missing
    bound = reads_needed + math.ceil(payload / MAX_REQUEST_BYTES)
    return {
        "case": label, "changed_rows": changed, "inserted": sync_report.inserted, "updated": sync_report.updated,
        "reads": reads, "writes": len(writes), "calls": reads + len(writes), "bound": bound,
        "at_bound": reads + len(writes) == bound, "payload_bytes": payload,
        "largest_body": max((e.request_bytes for e in writes), default=0), "token_calls": tokens,
        "rate_limited": sum(1 for e in log if e.status == 429), "seconds": sync_report.seconds,
    }


def table(out: dict) -> list[str]:
    lines = [f"Google Sheets tracker of {out['rows']:,} rows x {out['columns']} columns "
             f"(bodies of at most {out['max_request_bytes']:,} bytes)",
             f"{'case':>6} {'changed':>8} {'reads':>6} {'writes':>7} {'calls':>6} {'bound':>6} {'=bound':>7} "
             f"{'payload':>11} {'429s':>5} {'seconds':>8}"]
    for c in out["cases"]:
        lines.append(f"{c['case']:>6} {c['changed_rows']:>8} {c['reads']:>6} {c['writes']:>7} {c['calls']:>6} "
                     f"{c['bound']:>6} {str(c['at_bound']):>7} {c['payload_bytes']:>11,} {c['rate_limited']:>5} "
                     f"{c['seconds']:>8.2f}")
    lines.append("load = the first refresh, into an empty tab")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--columns", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    out = run((lambda line: None) if args.json else print, rows=args.rows, width=args.columns)
    if args.json:
        print(json.dumps(out, indent=2))
    return 0 if all(c["at_bound"] for c in out["cases"]) else 1


if __name__ == "__main__":
    sys.exit(main())
