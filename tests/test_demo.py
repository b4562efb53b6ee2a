"""The sample studio warehouse."""

from __future__ import annotations

import warnings
from collections import defaultdict
from datetime import date, datetime, timedelta

import pytest

from genesis.authoring import demo
from genesis.engines import warehouse
from genesis.engines.duckdb import DuckDBEngine

warnings.filterwarnings("ignore", module="pyiceberg")

TODAY = date(2025, 6, 11)  # a Wednesday
CDC_KEYS = {"movie_cdc": "movie_id", "production_cdc": "production_id",
            "purchase_order_cdc": "po_id", "contract_cdc": "contract_id"}


@pytest.fixture(scope="module")
def tables():
    return demo.generate(seed=42, today=TODAY)


def test_same_seed_same_rows(tables):
    again = demo.generate(seed=42, today=TODAY)
    assert all(tables[name].equals(again[name]) for name in tables)
    other = demo.generate(seed=7, today=TODAY)
    assert not tables["movie_cdc"].equals(other["movie_cdc"])


def test_about_100k_rows_at_scale_1(tables):
    total = sum(t.num_rows for t in tables.values())
    assert 80_000 <= total <= 130_000
    assert set(tables) == set(demo.SCHEMAS)


def test_cdc_tables_have_updates_and_deletes(tables):
    for name, key in CDC_KEYS.items():
        rows = tables[name].select([key, "op", "op_ts"]).to_pylist()
        history = defaultdict(list)
        for row in rows:
            history[row[key]].append((row["op_ts"], row["op"]))
        latest = {k: max(h)[1] for k, h in history.items()}
        assert sum(1 for h in history.values() if len(h) > 1) > len(history) / 4, name
        assert "d" in latest.values(), f"{name}: no key whose newest row is a delete"
        assert any(op == "u" for h in history.values() for _, op in h), name
        for k, h in history.items():  # op_ts orders each key's history without ties
            stamps = [ts for ts, _ in h]
            assert len(set(stamps)) == len(stamps), (name, k)
            assert sorted(h)[0][1] == "c", (name, k)
        assert max(r["op_ts"] for r in rows) <= datetime(2025, 6, 11, 6, 0), name


def test_some_rows_are_near_today(tables):
    monday = TODAY - timedelta(days=TODAY.weekday())
    days = tables["shoot_day"].column("shoot_date").to_pylist()
    assert sum(monday <= d < monday + timedelta(days=7) for d in days) > 50


def test_build_is_rerunnable_and_queryable(tmp_path):
    wh = tmp_path / "wh"
    first = demo.build_demo(wh, seed=1, today=TODAY)
    second = demo.build_demo(wh, seed=1, today=TODAY)
    assert first == second
    assert warehouse.list_tables(wh) == sorted(first)
    engine = DuckDBEngine(wh)
    try:
        for table, count in second.items():
            got = engine.execute(f"SELECT count(*) AS n FROM {table}").column("n")[0].as_py()
            assert got == count, table
        # the "latest row per key" view drops deleted titles
        live = engine.execute("""
            SELECT count(*) AS n FROM (
              SELECT op, row_number() OVER (PARTITION BY movie_id ORDER BY op_ts DESC) AS rn
              FROM iceberg.studio.movie_cdc) WHERE rn = 1 AND op <> 'd'""").column("n")[0].as_py()
        keys = engine.execute("SELECT count(DISTINCT movie_id) AS n FROM iceberg.studio.movie_cdc")
        assert 0 < live < keys.column("n")[0].as_py()
    finally:
        engine.close()
    assert warehouse.iceberg_columns(wh, "iceberg.studio.movie_cdc")["budget_usd"] == "decimal(18,2)"


def test_keys_are_unique_and_consistent(tables):
    keys = [("shoot_day", ["shoot_day_id"]), ("talent", ["talent_id"]), ("vendor", ["vendor_id"]),
            ("vendor", ["name"]), ("movie_talent", ["movie_id", "talent_id"])]
    for name, key in keys:
        rows = tables[name].select(key).to_pylist()
        assert len({tuple(r.values()) for r in rows}) == len(rows), (name, key)
    owner = {}
    for row in tables["production_cdc"].select(["production_id", "movie_id"]).to_pylist():
        assert owner.setdefault(row["production_id"], row["movie_id"]) == row["movie_id"]
