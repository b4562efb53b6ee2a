"""A small project for time grains, date ranges and --as-of (issue 16), on any engine.

`event` holds instants every 7h13m from 2025-09 to 2028-06, every 15 minutes around both
2026 DST changes of America/New_York, and each local midnight of those days and one
microsecond before it: `at_utc` (timestamp with time zone), `at_local` (its New York
wall-clock time, a plain timestamp) and `day` (its New York date). `item_cdc` is a CDC log
with creates, updates, deletes and re-creates at known instants.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path

import pyarrow as pa

ZONE = "America/New_York"
NY = zoneinfo.ZoneInfo(ZONE)
UTC = dt.UTC

CONFIG = """name: timecheck
default_target: local
time_zone: {zone}
week_start: {week_start}
targets:
  local: {{engine: duckdb, warehouse: .genesis/warehouse, destinations: local}}
"""

EVENT = """name: event
table: iceberg.timecheck.event
primary_key: [event_id]
fields:
  event_id: {type: bigint}
  day: {type: date}
  at_local: {type: timestamp}
  at_utc: {type: timestamp with time zone}
  label: {type: varchar}
measures:
  event_count: {agg: count}
"""

ITEM = """name: item
table: iceberg.timecheck.item_cdc
primary_key: [item_id]
latest:
  order_by: op_ts
  deleted: "op = 'd'"
fields:
  item_id: {type: bigint}
  name: {type: varchar}
  price: {type: bigint}
  op_ts: {type: timestamp with time zone}
"""

ITEMS_INPUT = """name: items
from: item
fields: [item.item_id, item.name, item.price]
sort: [item.item_id]
"""


def instants() -> list[dt.datetime]:
    """Every instant of the `event` table, UTC, sorted and distinct."""
    found: set[dt.datetime] = set()
    moment, end = dt.datetime(2025, 9, 1, tzinfo=UTC), dt.datetime(2028, 7, 1, tzinfo=UTC)
    while moment < end:
        found.add(moment)
        moment += dt.timedelta(hours=7, minutes=13)
    for first, last in ((dt.date(2026, 3, 6), dt.date(2026, 3, 10)), (dt.date(2026, 10, 30), dt.date(2026, 11, 3))):
        moment = dt.datetime.combine(first, dt.time(), NY).astimezone(UTC)
        while moment.astimezone(NY).date() <= last:
            found.add(moment)
            moment += dt.timedelta(minutes=15)
    day = dt.date(2025, 9, 1)
    while day < dt.date(2028, 7, 1):  # each local midnight, and the microsecond before it
        midnight = dt.datetime.combine(day, dt.time(), NY).astimezone(UTC)
        found.update((midnight, midnight - dt.timedelta(microseconds=1)))
        day += dt.timedelta(days=1)
    return sorted(found)


def event_table() -> pa.Table:
    rows = []
    for index, moment in enumerate(instants(), 1):
        local = moment.astimezone(NY)
        rows.append(dict(event_id=index, day=local.date(), at_local=local.replace(tzinfo=None), at_utc=moment,
                         label=f"e{index}"))
    return pa.Table.from_pylist(rows, schema=pa.schema([
        ("event_id", pa.int64()), ("day", pa.date32()), ("at_local", pa.timestamp("us")),
        ("at_utc", pa.timestamp("us", tz="UTC")), ("label", pa.string())]))


def t(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(UTC)


# (item_id, name, price, op, op_ts): creates, updates, deletes, a re-create; not in time order.
ITEM_LOG = [
    (1, "chair", 10, "c", t("2026-03-01T09:00:00-05:00")),
    (2, "desk", 200, "c", t("2026-03-01T10:00:00-05:00")),
    (3, "lamp", 30, "c", t("2026-03-02T08:00:00-05:00")),
    (1, "chair", 12, "u", t("2026-03-05T09:00:00-05:00")),
    (2, "desk", 200, "d", t("2026-03-06T12:00:00-05:00")),
    (4, "shelf", 80, "c", t("2026-03-08T01:59:59-05:00")),  # the second before the spring change
    (4, "shelf", 85, "u", t("2026-03-08T03:00:00-04:00")),  # the first instant after it
    (2, "desk v2", 210, "c", t("2026-03-10T10:00:00-04:00")),  # re-created after its delete
    (3, "lamp", 30, "d", t("2026-11-01T01:30:00-04:00")),  # the first 01:30 of the autumn change
    (1, "chair", 15, "u", t("2026-11-01T01:30:00-05:00")),  # the second 01:30, an hour later
    (5, "rug", 60, "c", t("2026-11-02T00:00:00-05:00")),
]


def item_table(log=ITEM_LOG) -> pa.Table:
    rows = [dict(item_id=i, name=n, price=p, op=o, op_ts=ts) for i, n, p, o, ts in reversed(log)]
    return pa.Table.from_pylist(rows, schema=pa.schema([
        ("item_id", pa.int64()), ("name", pa.string()), ("price", pa.int64()), ("op", pa.string()),
        ("op_ts", pa.timestamp("us", tz="UTC"))]))


def latest_items(as_of: dt.datetime, log=ITEM_LOG) -> list[tuple]:
    """The CDC latest view computed in Python: the newest row per key at or before `as_of`."""
    newest: dict[int, tuple] = {}
    for row in log:
        if row[4] <= as_of and (row[0] not in newest or row[4] > newest[row[0]][4]):
            newest[row[0]] = row
    return sorted((r[0], r[1], r[2]) for r in newest.values() if r[3] != "d")


def write_project(root: Path, week_start: str = "monday", zone: str = ZONE) -> Path:
    """The project's files (no data): genesis.yaml, the two data sources and the items input."""
    for folder in ("datasources", "inputs", "trackers"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "genesis.yaml").write_text(CONFIG.format(zone=zone, week_start=week_start))
    (root / "datasources" / "event.yaml").write_text(EVENT)
    (root / "datasources" / "item.yaml").write_text(ITEM)
    (root / "inputs" / "items.yaml").write_text(ITEMS_INPUT)
    return root


def tables() -> dict[str, pa.Table]:
    return {"timecheck.event": event_table(), "timecheck.item_cdc": item_table()}
