"""The local Iceberg warehouse: a pyiceberg SQL catalog plus data files in one directory.

By default `DIR/catalog.db` (SQLite) holds every catalog; a table `a.b.c` is catalog `a`,
namespace `b`, table `c`. All catalog names share the one catalog database (pyiceberg keys
its rows by catalog name). A target's `catalog_uri:` puts the catalog in PostgreSQL instead:
the same `iceberg_tables` rows are then what Trino's Iceberg JDBC catalog reads, so DuckDB
and Trino query one warehouse (see docs/trino.md).
"""

from __future__ import annotations

import os
import re
import sqlite3
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import pyarrow as pa

from ..errors import GenesisError, did_you_mean

CATALOG_FILE = "catalog.db"
MODES = ("overwrite", "append")
_PASSWORD = re.compile(r"(://[^:/@]*:)[^@]*@")


@dataclass(frozen=True)
class Warehouse:
    """Where a local warehouse lives: data files under `root`, catalog rows in `catalog_uri`
    (a SQLAlchemy URI such as postgresql+psycopg2://user@host:5432/db), or in
    `root/catalog.db` when it is None. Path-like, so it goes wherever a directory did."""

    root: Path
    catalog_uri: str | None = None

    def __fspath__(self) -> str:
        return str(self.root)

    def __str__(self) -> str:
        return str(self.root)

    @property
    def uri(self) -> str:
        """The catalog's SQLAlchemy URI: `catalog_uri`, else the SQLite file. May hold a password."""
        return self.catalog_uri or f"sqlite:///{self.root / CATALOG_FILE}"

    @property
    def shown_uri(self) -> str:
        """The catalog URI without its password, for messages."""
        return _PASSWORD.sub(r"\1***@", self.uri)


Location = str | os.PathLike | Warehouse  # what every function here accepts


def as_warehouse(location: Location) -> Warehouse:
    """A Warehouse for a directory (SQLite catalog) or an existing Warehouse, root resolved."""
    if isinstance(location, Warehouse):
        return Warehouse(Path(location.root).resolve(), location.catalog_uri)
    return Warehouse(Path(location).resolve())


def open_catalog(warehouse_dir: Location, catalog_name: str, *, create: bool = False):
    """The pyiceberg SqlCatalog named `catalog_name` of the warehouse."""
    from pyiceberg.catalog.sql import SqlCatalog

    wh = as_warehouse(warehouse_dir)
    root = wh.root
    if create:
        root.mkdir(parents=True, exist_ok=True)
    elif wh.catalog_uri is None and not (root / CATALOG_FILE).is_file():
        raise GenesisError(
            f"no local warehouse at {root} (missing {CATALOG_FILE})",
            hint="run `genesis demo` to build the sample warehouse, or check the target's `warehouse:`",
        )
    try:
        return SqlCatalog(catalog_name, uri=wh.uri, warehouse=root.as_uri())
    except Exception as exc:  # a wrong URI, a missing driver, an unreachable server
        if wh.catalog_uri is None:
            raise
        reason = _PASSWORD.sub(r"\1***@", " ".join(str(exc).split()))[:300]
        raise GenesisError(f"cannot open the Iceberg catalog at {wh.shown_uri}: {reason}",
                           hint="check the target's catalog_uri: (is PostgreSQL running? "
                                "scripts/postgres-server start starts a local one)") from None


def split_name(table: str) -> tuple[str, str, str]:
    """'a.b.c' -> ('a', 'b', 'c'); anything else is a user error."""
    parts = str(table).split(".")
    if len(parts) != 3 or not all(parts):
        raise GenesisError(f"table '{table}' must be written catalog.schema.table")
    return parts[0], parts[1], parts[2]


def list_tables(warehouse_dir: Location) -> list[str]:
    """Every table of the warehouse as 'catalog.namespace.table', sorted."""
    wh = as_warehouse(warehouse_dir)
    if wh.catalog_uri is not None:
        return _list_sql_tables(wh)
    db = wh.root / CATALOG_FILE
    if not db.is_file():
        return []
    # pyiceberg has no "list catalogs": its SQLite table is the one place that knows them.
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        try:
            rows = con.execute("SELECT catalog_name, table_namespace, table_name FROM iceberg_tables").fetchall()
        except sqlite3.OperationalError:
            return []
    return sorted(f"{c}.{n}.{t}" for c, n, t in rows)


def _list_sql_tables(wh: Warehouse) -> list[str]:
    """The same listing from a catalog database that SQLAlchemy reaches (PostgreSQL)."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(wh.uri)  # == catalog_uri: only called when one is set
    try:
        with engine.connect() as con:
            if not sqlalchemy.inspect(con).has_table("iceberg_tables"):
                return []
            rows = con.execute(sqlalchemy.text(
                "SELECT catalog_name, table_namespace, table_name FROM iceberg_tables")).fetchall()
    except sqlalchemy.exc.SQLAlchemyError as exc:
        raise GenesisError(f"cannot list the tables of the Iceberg catalog at {wh.shown_uri}: "
                           f"{type(exc).__name__}") from None
    finally:
        engine.dispose()
    return sorted(f"{c}.{n}.{t}" for c, n, t in rows)


def load_table(warehouse_dir: Location, table: str):
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
        raise GenesisError(f"table '{table}' does not exist in the warehouse at {as_warehouse(warehouse_dir).root}",
                           hint=hint) from None


def write_table(warehouse_dir: Location, table: str, data: pa.Table, *, mode: str = "overwrite") -> None:
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
    location = (as_warehouse(warehouse_dir).root / catalog_name / ident[0] / ident[1]).as_uri()
    return catalog.create_table(ident, schema=data.schema, location=location)


def _same_schema(tbl, data: pa.Table) -> bool:
    # Compared as Trino types: Iceberg reads strings back as large_string and adds field ids.
    from ..project.types import trino_type_of_arrow

    current = [(f.name, trino_type(f.field_type)) for f in tbl.schema().fields]
    return current == [(f.name, trino_type_of_arrow(f.type)) for f in data.schema]


def table_files(warehouse_dir: Location, table: str) -> tuple[list[str], bool]:
    """The local parquet paths pyiceberg's scan planning lists for 'a.b.c', and whether any
    of them comes with delete files (then the files alone do not give the right rows)."""
    return scan_files(load_table(warehouse_dir, table))


def scan_files(tbl) -> tuple[list[str], bool]:
    """table_files for a pyiceberg Table already loaded (non-local paths stay URIs)."""
    paths, has_deletes = [], False
    for task in tbl.scan().plan_files():
        paths.append(path_of_uri(task.file.file_path))
        has_deletes = has_deletes or bool(task.delete_files)
    return paths, has_deletes


def path_of_uri(uri: str) -> str:
    """'file:///x/y.parquet' -> '/x/y.parquet'; other schemes are returned unchanged."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return unquote(parsed.path)
    return uri


def iceberg_columns(warehouse_dir: Location, table: str) -> dict[str, str]:
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
