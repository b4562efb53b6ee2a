"""A small studio warehouse with the awkward cases: CDC updates, deletes and re-creates,
movies without cast or POs, several one_to_many branches, NULLs, quotes in titles."""

from __future__ import annotations

import datetime as dt
import random
import shutil
from decimal import Decimal
from pathlib import Path

import pyarrow as pa

from genesis.engines.warehouse import write_table

FIXTURE = Path(__file__).parent / "fixtures" / "mini"
D18 = pa.decimal128(18, 2)


def copy_project(target: Path) -> Path:
    shutil.copytree(FIXTURE, target, dirs_exist_ok=True)
    for folder in ("datasources", "inputs", "trackers"):  # git keeps no empty folder
        (target / folder).mkdir(exist_ok=True)
    return target


def tables(seed: int = 7) -> dict[str, pa.Table]:
    rng = random.Random(seed)
    statuses = ["DEV", "PHOT", "POST", "REL"]
    movie_rows = []
    base = dt.datetime(2024, 1, 1)
    for movie_id in range(1, 41):
        title = f"Title {movie_id}" if movie_id != 7 else "It's a 'quoted' title"
        ts = base + dt.timedelta(hours=movie_id)
        row = dict(movie_id=movie_id, title=title, status=rng.choice(statuses),
                   runtime_seconds=rng.randint(4800, 9000), launch_date=dt.date(2025, rng.randint(1, 12), rng.randint(1, 28)),
                   budget_usd=Decimal(rng.randint(100, 900)) * 1000, op="c", op_ts=ts)
        movie_rows.append(row)
        if movie_id % 3 == 0:  # an update: newer status and budget
            movie_rows.append({**row, "status": "PHOT", "budget_usd": row["budget_usd"] + 500, "op": "u",
                               "op_ts": ts + dt.timedelta(days=1)})
        if movie_id % 10 == 0:  # deleted
            movie_rows.append({**row, "op": "d", "op_ts": ts + dt.timedelta(days=2)})
        if movie_id == 20:  # re-created after the delete
            movie_rows.append({**row, "title": "Title 20 again", "op": "c", "op_ts": ts + dt.timedelta(days=3)})
    rng.shuffle(movie_rows)  # a log is not stored in key order
    movie = pa.Table.from_pylist(movie_rows, schema=pa.schema([
        ("movie_id", pa.int64()), ("title", pa.string()), ("status", pa.string()), ("runtime_seconds", pa.int32()),
        ("launch_date", pa.date32()), ("budget_usd", D18), ("op", pa.string()), ("op_ts", pa.timestamp("us"))]))

    production = pa.Table.from_pylist([
        dict(production_id=100 + m, movie_id=m, shoot_start=dt.date(2024, 1 + m % 12, 1),
             country=["US", "CA", "GB"][m % 3], vendor_id=[1, 2, 3, None][m % 4])
        for m in range(1, 41) if m % 5 != 0
    ], schema=pa.schema([("production_id", pa.int64()), ("movie_id", pa.int64()), ("shoot_start", pa.date32()),
                         ("country", pa.string()), ("vendor_id", pa.int64())]))

    talent_rows = []
    for m in range(1, 41):
        for t in range(m % 4):  # 0..3 cast members; movies with m % 4 == 0 have none
            talent_id = (m * 7 + t * 3) % 25
            talent_rows.append(dict(movie_id=m, talent_id=talent_id, talent_name=f"Talent {talent_id:02d}" if t != 2 else None,
                                    fee=Decimal(rng.randint(10, 200))))
    movie_talent = pa.Table.from_pylist(talent_rows, schema=pa.schema([
        ("movie_id", pa.int64()), ("talent_id", pa.int64()), ("talent_name", pa.string()), ("fee", D18)]))

    po_rows = []
    po_id = 1000
    for m in range(1, 41):
        for _ in range(m % 5):
            po_id += 1
            po_rows.append(dict(po_id=po_id, movie_id=m, vendor_id=rng.choice([1, 2, 3]),
                                amount=Decimal(rng.randint(1, 5000)) / 4, paid=rng.random() < 0.5))
    purchase_order = pa.Table.from_pylist(po_rows, schema=pa.schema([
        ("po_id", pa.int64()), ("movie_id", pa.int64()), ("vendor_id", pa.int64()), ("amount", D18), ("paid", pa.bool_())]))

    vendor = pa.table({"vendor_id": pa.array([1, 2, 3, 4], pa.int64()), "name": ["Acme", "Bolt", "Crane", "Unused"]})
    return {"movie_cdc": movie, "production": production, "movie_talent": movie_talent,
            "purchase_order": purchase_order, "vendor": vendor}


def build_warehouse(project_dir: Path) -> dict[str, pa.Table]:
    data = tables()
    warehouse = project_dir / ".genesis" / "warehouse"
    for name, table in data.items():
        write_table(warehouse, f"iceberg.studio.{name}", table)
    return data
