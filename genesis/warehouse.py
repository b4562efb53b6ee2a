"""The local Iceberg warehouse: a pyiceberg SQL catalog (SQLite) plus data files in one directory.

`DIR/catalog.db` holds every catalog; a table `a.b.c` is catalog `a`, namespace `b`, table `c`.
All catalog names share the one SQLite file (pyiceberg keys its rows by catalog name).
"""

from __future__ import annotations

import sqlite3
import warnings
from pathlib import Path
from urllib.parse import unquote, urlparse

import pyarrow as pa

from .errors import GenesisError, did_you_mean

CATALOG_FILE = "catalog.db"
MODES = ("overwrite", "append")


def open_catalog(warehouse_dir: str | Path, catalog_name: str, *, create: bool = False):
    """The pyiceberg SqlCatalog named `catalog_name` stored in `warehouse_dir`."""
    from pyiceberg.catalog.sql import SqlCatalog

    root = Path(warehouse_dir).resolve()
    if create:
        root.mkdir(parents=True, exist_ok=True)
    elif not (root / CATALOG_FILE).is_file():
        raise GenesisError(
            f"no local warehouse at {root} (missing {CATALOG_FILE})",
            hint="run `genesis demo` to build the sample warehouse, or check the target's `warehouse:`",
        )
    return SqlCatalog(catalog_name, uri=f"sqlite:///{root / CATALOG_FILE}", warehouse=root.as_uri())


def split_name(table: str) -> tuple[str, str, str]:
    """'a.b.c' -> ('a', 'b', 'c'); anything else is a user error."""
    parts = str(table).split(".")
    if len(parts) != 3 or not all(parts):
        raise GenesisError(f"table '{table}' must be written catalog.schema.table")
    return parts[0], parts[1], parts[2]


def list_tables(warehouse_dir: str | Path) -> list[str]:
    """Every table of the warehouse as 'catalog.namespace.table', sorted."""
    root = Path(warehouse_dir).resolve()
    db = root / CATALOG_FILE
    if not db.is_file():
        return []
    # pyiceberg has no "list catalogs": its SQLite table is the one place that knows them.
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        try:
            rows = con.execute("SELECT catalog_name, table_namespace, table_name FROM iceberg_tables").fetchall()
        except sqlite3.OperationalError:
            return []
    return sorted(f"{c}.{n}.{t}" for c, n, t in rows)


def load_table(warehouse_dir: str | Path, table: str):
    """The pyiceberg Table for 'a.b.c'; a missing one is an error with a did-you-mean hint."""
    from pyiceberg.exceptions import NoSuchTableError

    catalog_name, namespace, name = split_name(table)
    catalog = open_catalog(warehouse_dir, catalog_name)
    try:
        return catalog.load_table((namespace, name))
    except NoSuchTableError:
        known = list_tables(warehouse_dir)
        hint = did_you_mean(table, known)
        if hint is None:
            hint = f"the warehouse has: {', '.join(known)}" if known else "the warehouse is empty; run `genesis demo`"
        raise GenesisError(f"table '{table}' does not exist in the warehouse at {Path(warehouse_dir)}",
                           hint=hint) from None


def table_exists(warehouse_dir: str | Path, table: str) -> bool:
    return table in list_tables(warehouse_dir)


def write_table(warehouse_dir: str | Path, table: str, data: pa.Table, *, mode: str = "overwrite") -> None:
    """Write an Arrow table to 'a.b.c', creating the namespace and table as needed.

    `overwrite` replaces the data (and the schema if it changed); `append` adds rows.
    """
    if mode not in MODES:
        raise GenesisError(f"write mode must be one of {', '.join(MODES)}, not '{mode}'")
    catalog_name, namespace, name = split_name(table)
    catalog = open_catalog(warehouse_dir, catalog_name, create=True)
    catalog.create_namespace_if_not_exists(namespace)
    ident = (namespace, name)
    if catalog.table_exists(ident):
        tbl = catalog.load_table(ident)
        if mode == "overwrite" and not _same_schema(tbl, data):
            catalog.drop_table(ident)  # a changed shape: start the table afresh
            tbl = _create(catalog, warehouse_dir, catalog_name, ident, data)
    else:
        tbl = _create(catalog, warehouse_dir, catalog_name, ident, data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyiceberg warns about things that do not matter locally
        if mode == "overwrite":
            tbl.overwrite(data)
        else:
            tbl.append(data)


def _create(catalog, warehouse_dir, catalog_name: str, ident: tuple[str, str], data: pa.Table):
    # An explicit location per catalog: the default (`DIR/ns.db/table`) would make two
    # catalogs with the same namespace and table name share a directory.
    location = (Path(warehouse_dir).resolve() / catalog_name / ident[0] / ident[1]).as_uri()
    return catalog.create_table(ident, schema=data.schema, location=location)


def _same_schema(tbl, data: pa.Table) -> bool:
    # Compared as Trino types: Iceberg reads strings back as large_string and adds field ids.
    from .types import trino_type_of_arrow

    current = [(f.name, trino_type(f.field_type)) for f in tbl.schema().fields]
    return current == [(f.name, trino_type_of_arrow(f.type)) for f in data.schema]


def table_files(warehouse_dir: str | Path, table: str) -> tuple[list[str], bool]:
    """The local parquet paths pyiceberg's scan planning lists for 'a.b.c', and whether any
    of them comes with delete files (then the files alone do not give the right rows)."""
    return scan_files(load_table(warehouse_dir, table))


def scan_files(tbl) -> tuple[list[str], bool]:
    paths, has_deletes = [], False
    for task in tbl.scan().plan_files():
        paths.append(local_path(task.file.file_path))
        has_deletes = has_deletes or bool(task.delete_files)
    return paths, has_deletes


def local_path(uri: str) -> str:
    """'file:///x/y.parquet' -> '/x/y.parquet'; other schemes are returned unchanged."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return unquote(parsed.path)
    return uri


def iceberg_columns(warehouse_dir: str | Path, table: str) -> dict[str, str]:
    """The current columns of 'a.b.c' as {name: canonical Trino type}."""
    return {f.name: trino_type(f.field_type) for f in load_table(warehouse_dir, table).schema().fields}


def trino_type(itype) -> str:
    """The Trino type Trino's Iceberg connector reports for an Iceberg type."""
    from pyiceberg import types as it

    simple = {
        it.StringType: "varchar", it.IntegerType: "integer", it.LongType: "bigint",
        it.DoubleType: "double", it.FloatType: "real", it.DateType: "date",
        it.TimestampType: "timestamp", it.TimestamptzType: "timestamp with time zone",
        it.BooleanType: "boolean", it.BinaryType: "varbinary", it.FixedType: "varbinary",
        it.UUIDType: "uuid", it.TimeType: "time",
    }
    for cls, name in simple.items():
        if isinstance(itype, cls):
            return name
    if isinstance(itype, it.DecimalType):
        return f"decimal({itype.precision},{itype.scale})"
    if isinstance(itype, it.ListType):
        return f"array({trino_type(itype.element_type)})"
    if isinstance(itype, it.MapType):
        return f"map({trino_type(itype.key_type)}, {trino_type(itype.value_type)})"
    if isinstance(itype, it.StructType):
        return "row(" + ", ".join(f"{f.name} {trino_type(f.field_type)}" for f in itype.fields) + ")"
    return str(itype)
