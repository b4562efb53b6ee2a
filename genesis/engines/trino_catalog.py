"""How a Trino Iceberg catalog reads the tables of a Genesis warehouse's SQL catalog.

pyiceberg's SqlCatalog and Trino's Iceberg JDBC catalog (`iceberg.catalog.type=jdbc`) keep
the same rows (`iceberg_tables`: catalog_name, table_namespace, table_name,
metadata_location), so a Trino catalog whose `iceberg.jdbc-catalog.catalog-name` is the
pyiceberg catalog name sees every table pyiceberg wrote, and pyiceberg sees what Trino
writes. The data files are `file://` paths, read through Trino's Hadoop file system.

Standard library only: scripts/trino-server uses it before anything is installed.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit


def jdbc_settings(catalog_uri: str) -> dict[str, str]:
    """Trino's `iceberg.jdbc-catalog.*` connection settings for a SQLAlchemy PostgreSQL URI
    (postgresql+psycopg2://user[:password]@host[:port]/database), as a target's
    `catalog_uri:` gives it. Raises ValueError for anything else (Trino cannot read SQLite)."""
    parsed = urlsplit(catalog_uri)
    if parsed.scheme.split("+")[0] not in ("postgresql", "postgres"):
        raise ValueError(f"the catalog URI must be postgresql+psycopg2://user@host:port/db, not "
                         f"'{parsed.scheme}://...': Trino cannot read a SQLite catalog file")
    host = parsed.hostname or "127.0.0.1"
    database = parsed.path.lstrip("/") or "postgres"
    settings = {
        "iceberg.jdbc-catalog.driver-class": "org.postgresql.Driver",
        "iceberg.jdbc-catalog.connection-url": f"jdbc:postgresql://{host}:{parsed.port or 5432}/{database}",
        "iceberg.jdbc-catalog.connection-user": unquote(parsed.username or "postgres"),
    }
    if parsed.password:
        settings["iceberg.jdbc-catalog.connection-password"] = unquote(parsed.password)
    return settings


def iceberg_catalog_properties(catalog_uri: str, catalog_name: str, warehouse_uri: str) -> dict[str, str]:
    """The properties of a Trino catalog over pyiceberg catalog `catalog_name` in `catalog_uri`.

    `warehouse_uri` (file:///...) is only where tables created *by Trino* go; tables written
    by Genesis carry their own location.
    """
    return {
        "connector.name": "iceberg",
        "iceberg.catalog.type": "jdbc",
        "iceberg.jdbc-catalog.catalog-name": catalog_name,
        **jdbc_settings(catalog_uri),
        "iceberg.jdbc-catalog.default-warehouse-dir": warehouse_uri,
        "fs.hadoop.enabled": "true",  # file:// data files
    }


def create_catalog_sql(trino_catalog: str, properties: dict[str, str]) -> str:
    """`CREATE CATALOG` for a server started with catalog.management=dynamic."""
    props = ", ".join(f'"{k}" = \'{v.replace(chr(39), chr(39) * 2)}\'' for k, v in properties.items()
                      if k != "connector.name")
    return f'CREATE CATALOG "{trino_catalog}" USING {properties["connector.name"]} WITH ({props})'
