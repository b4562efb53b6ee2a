"""The DuckDB engine over a local Iceberg warehouse."""

from __future__ import annotations

import datetime as dt
import time
import warnings

import pyarrow as pa
import pytest

from genesis.engines import warehouse
from genesis.engines.base import EngineError
from genesis.engines.duckdb import DuckDBEngine, referenced_tables
from genesis.errors import GenesisError

warnings.filterwarnings("ignore", module="pyiceberg")


def people(n: int = 5) -> pa.Table:
    return pa.table({
        "id": pa.array(range(1, n + 1), pa.int64()),
        "name": [f"p{i}" for i in range(1, n + 1)],
        "born": pa.array([dt.date(1990, 1, i) for i in range(1, n + 1)], pa.date32()),
        "fee": pa.array([i * 100 for i in range(1, n + 1)], pa.decimal128(12, 2)),
        "seen": pa.array([dt.datetime(2024, 5, 1, 12, i) for i in range(1, n + 1)], pa.timestamp("us", tz="UTC")),
        "tags": pa.array([["a", "b"]] * n, pa.list_(pa.string())),
    })


@pytest.fixture
def wh(tmp_path):
    d = tmp_path / "warehouse"
    warehouse.write_table(d, "iceberg.studio.people", people())
    warehouse.write_table(d, "other.crm.visits", pa.table({
        "person_id": pa.array([1, 1, 2, 9], pa.int64()), "n": pa.array([1, 2, 3, 4], pa.int32())}))
    return d


@pytest.fixture
def engine(wh):
    e = DuckDBEngine(wh)
    yield e
    e.close()


def test_join_across_catalogs_and_namespaces(engine):
    t = engine.execute("""
        SELECT p.name, sum(v.n) AS visits
        FROM iceberg.studio.people AS p JOIN other.crm.visits AS v ON v.person_id = p.id
        GROUP BY p.name ORDER BY p.name""")
    assert t.to_pydict() == {"name": ["p1", "p2"], "visits": [3, 3]}
    assert engine.sources == {"iceberg.studio.people": "parquet", "other.crm.visits": "parquet"}


def test_types_follow_the_iceberg_schema(engine, wh):
    t = engine.execute("SELECT * FROM iceberg.studio.people ORDER BY id")
    assert t.schema.field("fee").type == pa.decimal128(12, 2)
    seen = t.schema.field("seen").type
    assert pa.types.is_timestamp(seen) and seen.tz in ("UTC", "Etc/UTC")
    assert t.column("tags")[0].as_py() == ["a", "b"]
    assert engine.table_columns("iceberg.studio.people") == {
        "id": "bigint", "name": "varchar", "born": "date", "fee": "decimal(12,2)",
        "seen": "timestamp with time zone", "tags": "array(varchar)"}
    assert engine.table_columns("iceberg.studio.nope") is None


def test_warehouse_listing_and_errors(wh, tmp_path):
    assert warehouse.list_tables(wh) == ["iceberg.studio.people", "other.crm.visits"]
    files, deletes = warehouse.table_files(wh, "iceberg.studio.people")
    assert len(files) == 1 and files[0].endswith(".parquet") and not deletes
    with pytest.raises(GenesisError) as err:
        warehouse.table_files(wh, "iceberg.studio.peple")
    assert "iceberg.studio.people" in err.value.hint
    with pytest.raises(GenesisError) as err:
        warehouse.iceberg_columns(tmp_path / "missing", "iceberg.studio.people")
    assert "genesis demo" in err.value.hint


def test_empty_table_has_typed_columns(wh):
    warehouse.write_table(wh, "iceberg.studio.empty", people().slice(0, 0))
    with DuckDBEngineCtx(wh) as e:
        t = e.execute("SELECT * FROM iceberg.studio.empty")
        assert t.num_rows == 0
        assert t.schema.field("fee").type == pa.decimal128(12, 2)
        assert e.execute("SELECT count(*) AS n FROM iceberg.studio.empty").to_pydict() == {"n": [0]}
        assert e.sources["iceberg.studio.empty"] == "empty"


def test_view_follows_new_snapshots(engine, wh):
    assert engine.execute("SELECT count(*) AS n FROM iceberg.studio.people").to_pydict() == {"n": [5]}
    warehouse.write_table(wh, "iceberg.studio.people", people(2), mode="append")
    assert engine.execute("SELECT count(*) AS n FROM iceberg.studio.people").to_pydict() == {"n": [7]}
    warehouse.write_table(wh, "iceberg.studio.people", people(3))  # overwrite
    assert engine.execute("SELECT count(*) AS n FROM iceberg.studio.people").to_pydict() == {"n": [3]}


def test_deletes_give_the_right_rows(engine, wh):
    tbl = warehouse.load_table(wh, "iceberg.studio.people")
    tbl.delete("id <= 2")  # pyiceberg may rewrite files or write delete files
    rows = engine.execute("SELECT id FROM iceberg.studio.people ORDER BY id").column("id").to_pylist()
    assert rows == [3, 4, 5]


def test_delete_files_fall_back_to_pyiceberg_scan(wh, monkeypatch):
    real = warehouse.scan_files
    monkeypatch.setattr(warehouse, "scan_files", lambda tbl: (real(tbl)[0], True))
    with DuckDBEngineCtx(wh) as e:
        t = e.execute("SELECT id, fee FROM iceberg.studio.people WHERE id > 3 ORDER BY id")
        assert t.to_pydict()["id"] == [4, 5]
        assert e.sources["iceberg.studio.people"] == "arrow"


def test_renamed_column_maps_files_by_field_id(engine, wh):
    from pyiceberg.types import LongType

    tbl = warehouse.load_table(wh, "iceberg.studio.people")
    with tbl.update_schema() as update:
        update.rename_column("name", "full_name")
        update.add_column("rank", LongType())
    tbl = warehouse.load_table(wh, "iceberg.studio.people")
    tbl.append(pa.table({
        "id": pa.array([6], pa.int64()), "full_name": ["p6"], "born": pa.array([dt.date(2000, 1, 1)]),
        "fee": pa.array([1], pa.decimal128(12, 2)), "seen": pa.array([None], pa.timestamp("us", tz="UTC")),
        "tags": pa.array([[]], pa.list_(pa.string())), "rank": pa.array([1], pa.int64())}))
    t = engine.execute("SELECT id, full_name, rank FROM iceberg.studio.people ORDER BY id")
    assert t.column("full_name").to_pylist() == ["p1", "p2", "p3", "p4", "p5", "p6"]
    assert t.column("rank").to_pylist() == [None] * 5 + [1]


def test_timeout_interrupts_a_slow_query(engine):
    start = time.monotonic()
    with pytest.raises(EngineError, match="timed out after 0.3 s"):
        engine.execute("SELECT sum(a.range * b.range) FROM range(100000000) a, range(100000000) b",
                       label="slow", timeout=0.3)
    assert time.monotonic() - start < 3
    assert engine.execute("SELECT 1 AS x").to_pydict() == {"x": [1]}  # the engine is still usable


def test_bad_column_is_an_engine_error_with_position(engine):
    with pytest.raises(EngineError) as err:
        engine.execute("SELECT id,\n  nope FROM iceberg.studio.people", label="t1")
    assert "nope" in err.value.message and "t1" in err.value.message
    assert (err.value.sql_line, err.value.sql_col) == (2, 3)
    with pytest.raises(EngineError) as err:
        engine.execute("SELECT FROM WHERE")
    assert err.value.sql_line == 1


def test_missing_table_is_an_engine_error_with_hint(engine):
    with pytest.raises(EngineError) as err:
        engine.execute("SELECT * FROM iceberg.studio.peoples")
    assert "did you mean 'iceberg.studio.people'" in err.value.hint


def test_referenced_tables_skip_ctes():
    sql = "WITH x AS (SELECT * FROM A.B.C) SELECT * FROM x JOIN a.b.d USING (k)"
    assert sorted(referenced_tables(sql)) == ["a.b.c", "a.b.d"]


def test_large_table_is_read_from_parquet_not_python(tmp_path, monkeypatch):
    import numpy as np
    from pyiceberg.table import DataScan

    n = 6_000_000
    d = tmp_path / "big"
    ids = np.arange(n, dtype=np.int64)
    warehouse.write_table(d, "iceberg.big.events", pa.table({"id": ids, "bucket": ids % 7}))

    def no_python_scan(*a, **k):
        raise AssertionError("rows were materialised through pyiceberg")
    monkeypatch.setattr(DataScan, "to_arrow", no_python_scan)
    with DuckDBEngineCtx(d) as e:
        t = e.execute("SELECT count(*) AS n, sum(bucket) AS s FROM iceberg.big.events")
        assert t.to_pydict() == {"n": [n], "s": [int((ids % 7).sum())]}
        view = e.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'events'").column(0)[0].as_py()
        assert "read_parquet" in view


class DuckDBEngineCtx:
    def __init__(self, wh):
        self.engine = DuckDBEngine(wh)

    def __enter__(self):
        return self.engine

    def __exit__(self, *exc):
        self.engine.close()
