"""TPC-H data for the oracle tests and the benchmark.

`generate_tpch(out_dir, scale_factor)` runs the `tpchgen-cli` binary (parquet output) once per
directory and reuses what it wrote on later calls; `load_into_warehouse(warehouse_dir,
parquet_dir)` writes the 8 tables as Iceberg tables `iceberg.tpch.<table>` into a local Genesis
warehouse (pyiceberg SQL catalog at DIR/catalog.db), cast to the TPC-H column types below.

`duckdb_over_warehouse(warehouse_dir)` gives a plain DuckDB connection on which
`iceberg.tpch.<table>` names resolve (views over the Iceberg data files): a way to run the
official query text without any Genesis module.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

CATALOG = "iceberg"
SCHEMA = "tpch"
MARKER = "_tpchgen_done"

# The TPC-H columns as Trino types: keys bigint, small counts integer, money and quantities
# decimal(15,2), dates date, text varchar (TPC-H's char(n) columns read as varchar).
TPCH_COLUMNS: dict[str, list[tuple[str, str]]] = {
    "region": [("r_regionkey", "bigint"), ("r_name", "varchar"), ("r_comment", "varchar")],
    "nation": [("n_nationkey", "bigint"), ("n_name", "varchar"), ("n_regionkey", "bigint"),
               ("n_comment", "varchar")],
    "supplier": [("s_suppkey", "bigint"), ("s_name", "varchar"), ("s_address", "varchar"),
                 ("s_nationkey", "bigint"), ("s_phone", "varchar"), ("s_acctbal", "decimal(15,2)"),
                 ("s_comment", "varchar")],
    "customer": [("c_custkey", "bigint"), ("c_name", "varchar"), ("c_address", "varchar"),
                 ("c_nationkey", "bigint"), ("c_phone", "varchar"), ("c_acctbal", "decimal(15,2)"),
                 ("c_mktsegment", "varchar"), ("c_comment", "varchar")],
    "part": [("p_partkey", "bigint"), ("p_name", "varchar"), ("p_mfgr", "varchar"),
             ("p_brand", "varchar"), ("p_type", "varchar"), ("p_size", "integer"),
             ("p_container", "varchar"), ("p_retailprice", "decimal(15,2)"), ("p_comment", "varchar")],
    "partsupp": [("ps_partkey", "bigint"), ("ps_suppkey", "bigint"), ("ps_availqty", "integer"),
                 ("ps_supplycost", "decimal(15,2)"), ("ps_comment", "varchar")],
    "orders": [("o_orderkey", "bigint"), ("o_custkey", "bigint"), ("o_orderstatus", "varchar"),
               ("o_totalprice", "decimal(15,2)"), ("o_orderdate", "date"),
               ("o_orderpriority", "varchar"), ("o_clerk", "varchar"), ("o_shippriority", "integer"),
               ("o_comment", "varchar")],
    "lineitem": [("l_orderkey", "bigint"), ("l_partkey", "bigint"), ("l_suppkey", "bigint"),
                 ("l_linenumber", "integer"), ("l_quantity", "decimal(15,2)"),
                 ("l_extendedprice", "decimal(15,2)"), ("l_discount", "decimal(15,2)"),
                 ("l_tax", "decimal(15,2)"), ("l_returnflag", "varchar"), ("l_linestatus", "varchar"),
                 ("l_shipdate", "date"), ("l_commitdate", "date"), ("l_receiptdate", "date"),
                 ("l_shipinstruct", "varchar"), ("l_shipmode", "varchar"), ("l_comment", "varchar")],
}
TABLES = list(TPCH_COLUMNS)

_ARROW = {"bigint": pa.int64(), "integer": pa.int32(), "varchar": pa.string(), "date": pa.date32(),
          "decimal(15,2)": pa.decimal128(15, 2)}


def arrow_schema(table: str) -> pa.Schema:
    """The Arrow schema a TPC-H table is written with (nullable columns, as Trino creates them)."""
    return pa.schema([pa.field(name, _ARROW[t]) for name, t in TPCH_COLUMNS[table]])


def tpchgen_binary() -> str:
    found = shutil.which("tpchgen-cli")
    if found:
        return found
    # A virtualenv's bin directory may not be on PATH when Python is run by its full path.
    import sys

    candidate = Path(sys.executable).parent / "tpchgen-cli"
    if candidate.exists():
        return str(candidate)
    raise RuntimeError("the `tpchgen-cli` binary is not installed (it comes with the test extra: "
                       "pip install -e '.[test]')")


def _parquet_files(out_dir: Path) -> dict[str, list[str]]:
    files: dict[str, list[str]] = {}
    for table in TABLES:
        single = out_dir / f"{table}.parquet"
        if single.is_file():
            files[table] = [str(single)]
        else:  # `--parts` layout: <table>/<table>.<n>.parquet
            files[table] = sorted(str(p) for p in (out_dir / table).glob("*.parquet"))
        if not files[table]:
            raise FileNotFoundError(f"no parquet files for {table} under {out_dir}")
    return files


def generate_tpch(out_dir: str | Path, scale_factor: float) -> dict[str, list[str]]:
    """Parquet files for the 8 TPC-H tables at `scale_factor` under `out_dir`: {table: [paths]}.

    The directory is the cache: when it already holds a finished generation for the same
    scale factor nothing runs. Generation writes to a temporary sibling directory first and
    renames it into place, so concurrent callers (pytest-xdist workers) never see half a data set.
    """
    out = Path(out_dir)
    marker = out / MARKER
    if marker.is_file() and marker.read_text().strip() == str(scale_factor):
        return _parquet_files(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        cmd = [tpchgen_binary(), "parquet", "--scale-factor", str(scale_factor),
               "--output-dir", str(staging), "--no-progress", "--quiet"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"tpchgen-cli failed ({proc.returncode}): {proc.stderr.strip()}")
        (staging / MARKER).write_text(str(scale_factor))
        if out.exists():
            if (out / MARKER).is_file() and (out / MARKER).read_text().strip() == str(scale_factor):
                return _parquet_files(out)  # someone else finished first
            shutil.rmtree(out)
        try:
            os.rename(staging, out)
        except OSError:
            if not marker.is_file():  # lost a race against a writer that is not done: give up
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return _parquet_files(out)


def read_table(paths: list[str], table: str) -> pa.Table:
    """The TPC-H table from tpchgen's parquet files, cast to the TPC-H types."""
    data = pa.concat_tables([pq.read_table(p) for p in paths])
    schema = arrow_schema(table)
    columns = []
    for field in schema:
        column = data.column(field.name)
        if column.type != field.type:
            column = column.cast(field.type)  # string_view -> string, int64 -> int32, ...
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=schema)


def _write_table(warehouse_dir: Path, name: str, data: pa.Table) -> None:
    try:
        from genesis.engines.warehouse import write_table
    except ImportError:  # the project's warehouse module is not there: plain pyiceberg
        write_table = _write_table_pyiceberg
    write_table(warehouse_dir, name, data, mode="overwrite")


def _write_table_pyiceberg(warehouse_dir: Path, name: str, data: pa.Table, mode: str = "overwrite") -> None:
    from pyiceberg.catalog.sql import SqlCatalog

    catalog_name, namespace, table = name.split(".")
    root = Path(warehouse_dir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    catalog = SqlCatalog(catalog_name, uri=f"sqlite:///{root / 'catalog.db'}", warehouse=root.as_uri())
    catalog.create_namespace_if_not_exists(namespace)
    ident = (namespace, table)
    if catalog.table_exists(ident):
        catalog.drop_table(ident)
    location = (root / catalog_name / namespace / table).as_uri()
    tbl = catalog.create_table(ident, schema=data.schema, location=location)
    tbl.append(data)


def load_into_warehouse(warehouse_dir: str | Path, parquet_dir: str | Path,
                        tables: list[str] | None = None) -> dict[str, int]:
    """Write every TPC-H table found in `parquet_dir` to `iceberg.tpch.<table>`; {table: rows}."""
    files = _parquet_files(Path(parquet_dir))
    counts = {}
    for table in tables or TABLES:
        data = read_table(files[table], table)
        _write_table(Path(warehouse_dir), f"{CATALOG}.{SCHEMA}.{table}", data)
        counts[table] = data.num_rows
    return counts


def build_warehouse(warehouse_dir: str | Path, parquet_dir: str | Path, scale_factor: float) -> Path:
    """Generate (or reuse) the parquet data and load it into the warehouse; returns the warehouse dir.

    A warehouse already holding this scale factor (marker file) is reused as is.
    """
    wh = Path(warehouse_dir)
    marker = wh / "_tpch_loaded"
    if marker.is_file() and marker.read_text().strip() == str(scale_factor):
        return wh
    generate_tpch(parquet_dir, scale_factor)
    load_into_warehouse(wh, parquet_dir)
    marker.write_text(str(scale_factor))
    return wh


def warehouse_files(warehouse_dir: str | Path, table: str) -> list[str]:
    """The parquet data files of `iceberg.tpch.<table>` as pyiceberg's scan planning lists them."""
    try:
        from genesis.engines.warehouse import table_files

        paths, has_deletes = table_files(warehouse_dir, f"{CATALOG}.{SCHEMA}.{table}")
        assert not has_deletes
        return paths
    except ImportError:
        from urllib.parse import unquote, urlparse

        from pyiceberg.catalog.sql import SqlCatalog

        root = Path(warehouse_dir).resolve()
        catalog = SqlCatalog(CATALOG, uri=f"sqlite:///{root / 'catalog.db'}", warehouse=root.as_uri())
        tbl = catalog.load_table((SCHEMA, table))
        return [unquote(urlparse(t.file.file_path).path) for t in tbl.scan().plan_files()]


def duckdb_over_warehouse(warehouse_dir: str | Path, *, materialize: bool = False):
    """A DuckDB connection where `iceberg.tpch.<table>` are views over the warehouse's data files
    (or, with `materialize`, in-memory tables). Independent of Genesis' own engine."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"ATTACH ':memory:' AS {CATALOG}")
    con.execute(f"CREATE SCHEMA {CATALOG}.{SCHEMA}")
    for table in TABLES:
        files = ", ".join("'" + p.replace("'", "''") + "'" for p in warehouse_files(warehouse_dir, table))
        kind = "TABLE" if materialize else "VIEW"
        con.execute(f"CREATE {kind} {CATALOG}.{SCHEMA}.{table} AS SELECT * FROM read_parquet([{files}])")
    return con


def small_tpch(request, tmp_path_factory, name: str):
    """DuckDB over a fresh warehouse (`name`) of TPC-H at scale factor 0.01, whose Parquet files
    are generated once into pytest's cache, for the module fixtures of the golden-SQL tests."""
    cache = getattr(request.config, "cache", None)
    base = Path(cache.mkdir("tpch-sf0.01")) if cache is not None else tmp_path_factory.mktemp("tpch-data")
    generate_tpch(base / "parquet", 0.01)
    warehouse = tmp_path_factory.mktemp(name)
    load_into_warehouse(warehouse, base / "parquet")
    return duckdb_over_warehouse(warehouse)


def duckdb_over_parquet(parquet_dir: str | Path):
    """A DuckDB connection where `iceberg.tpch.<table>` are views straight over tpchgen's files."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"ATTACH ':memory:' AS {CATALOG}")
    con.execute(f"CREATE SCHEMA {CATALOG}.{SCHEMA}")
    for table, paths in _parquet_files(Path(parquet_dir)).items():
        files = ", ".join("'" + p.replace("'", "''") + "'" for p in paths)
        con.execute(f"CREATE VIEW {CATALOG}.{SCHEMA}.{table} AS SELECT * FROM read_parquet([{files}])")
    return con


def main(argv: list[str] | None = None) -> int:
    """Generate and load, printing the timings.

        python -m tests.tpch.data --sf 0.01 --out DIR          # DIR/parquet, DIR/warehouse
        python -m tests.tpch.data --sf 0.01 --project tests/tpch/project
            # the project's own local warehouse (.genesis/warehouse), so that
            # `genesis run tpch_q01 --project tests/tpch/project` works
    """
    import argparse

    parser = argparse.ArgumentParser(description="Generate TPC-H with tpchgen-cli and load it as Iceberg tables")
    parser.add_argument("--sf", type=float, default=0.01)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", type=Path, help="directory for parquet/ and warehouse/")
    where.add_argument("--project", type=Path, help="a Genesis project: load into its .genesis/warehouse")
    args = parser.parse_args(argv)
    if args.project:
        parquet_dir = args.project / ".genesis" / f"tpch-sf{args.sf:g}"
        warehouse_dir = args.project / ".genesis" / "warehouse"
    else:
        parquet_dir, warehouse_dir = args.out / "parquet", args.out / "warehouse"
    t0 = time.perf_counter()
    generate_tpch(parquet_dir, args.sf)
    t1 = time.perf_counter()
    counts = load_into_warehouse(warehouse_dir, parquet_dir)
    t2 = time.perf_counter()
    print(f"sf={args.sf:g}: tpchgen {t1 - t0:.1f}s, iceberg load {t2 - t1:.1f}s -> {warehouse_dir}")
    print("rows: " + ", ".join(f"{t}={n}" for t, n in counts.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
