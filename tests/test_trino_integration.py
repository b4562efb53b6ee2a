"""Genesis on Trino, end to end: the same project on the embedded DuckDB engine and through a
local server that speaks Trino's client protocol (tests/servers/trino_server.py), refreshes
through a `trino` target under faults, engine errors located in the YAML, and the catalog
check (`genesis validate --catalog-check`) against a drifting schema.
"""

from __future__ import annotations

import datetime as dt
import json
import textwrap
import warnings
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
from click.testing import CliRunner

from genesis import warehouse
from genesis.api import execute
from genesis.catalog_check import check_catalog
from genesis.cli import main as cli
from genesis.compiler import compile_input, compile_tracker
from genesis.engines import open_engine
from genesis.engines.base import EngineError
from genesis.engines.duckdb import DuckDBEngine
from genesis.engines.trino import TrinoEngine
from genesis.errors import GenesisError, ValidationError
from genesis.project import load_project
from genesis.refresh import refresh
from tests.servers.trino_server import Faults, TrinoProtocolServer

warnings.filterwarnings("ignore", module="pyiceberg")

PASSWORD = "Tr1no-pw-Sup3rSecret"
USER = "genesis-ci"

# ----------------------------------------------------------------------------- the studio data

UTC = dt.timezone.utc
D = Decimal

MOVIE_CDC = pa.table({
    "movie_id": pa.array([1, 2, 3, 1, 4, 2, 5, 6, 7, 5], pa.int64()),
    "title": ["Alpha", "Beta", "Gamma", "Alpha II", "Delta", "Beta", "Eps", "Zeta", "Eta", "Eps"],
    "status": ["DEV", "PHOT", "POST", "PHOT", "REL", "PHOT", "DEV", "PHOT", "PRE", "DEV"],
    "genre": ["Drama", "Comedy", "Drama", "Drama", None, "Comedy", "Horror", "Comedy", "Drama", "Horror"],
    "runtime_seconds": pa.array([5430, 6000, 7200, 5460, None, 6000, 4000, 5999, 6100, 4000], pa.int32()),
    "launch_date": pa.array([dt.date(2026, 5, 1), dt.date(2025, 12, 24), dt.date(2026, 1, 9),
                             dt.date(2026, 6, 1), dt.date(2024, 2, 29), dt.date(2025, 12, 24), None,
                             dt.date(2027, 3, 3), dt.date(2026, 7, 4), None], pa.date32()),
    "budget_usd": pa.array([D("1000000.00"), D("250000.50"), D("9999999.99"), D("1200000.00"), D("5.25"),
                            D("260000.75"), None, D("42.42"), D("700000.00"), None], pa.decimal128(18, 2)),
    "op": ["c", "c", "c", "u", "c", "u", "c", "c", "c", "d"],
    "op_ts": pa.array([dt.datetime(2024, 1, 1, 9), dt.datetime(2024, 1, 1, 9, 5), dt.datetime(2024, 1, 2),
                       dt.datetime(2024, 3, 1, 12, 0, 0, 123456), dt.datetime(2024, 1, 3),
                       dt.datetime(2024, 2, 1), dt.datetime(2024, 1, 4), dt.datetime(2024, 1, 5),
                       dt.datetime(2024, 1, 6), dt.datetime(2024, 4, 1)], pa.timestamp("us")),
    "legacy_code": ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"],  # no field uses it
})
MOVIE_TALENT = pa.table({
    "movie_id": pa.array([1, 1, 1, 2, 2, 3, 6, 6, 7], pa.int64()),
    "talent_id": pa.array([10, 11, 12, 10, 13, 11, 14, 12, 13], pa.int64()),
    "role": ["Director", "Actor", "Actor", "Actor", "Director", "Writer", "Actor", "Producer", "Actor"],
    "fee_usd": pa.array([D("100.00"), D("200.50"), None, D("300.00"), D("50.25"), D("75.00"), D("10.00"),
                         D("20.00"), D("30.00")], pa.decimal128(18, 2)),
})
TALENT = pa.table({
    "talent_id": pa.array([10, 11, 12, 13, 14], pa.int64()),
    "talent_name": ["Ana Ruiz", "Bo Chen", "Cé Dupont", "Dee O'Neil", "Eli Kim"],
    "born": pa.array([dt.date(1970, 1, 1), dt.date(1985, 5, 5), None, dt.date(1990, 9, 9),
                      dt.date(2000, 2, 29)], pa.date32()),
})
PRODUCTION = pa.table({
    "production_id": pa.array([500, 501, 502, 503], pa.int64()),
    "movie_id": pa.array([1, 2, 3, 6], pa.int64()),
    "country": ["US", "CA", "GB", "US"],
    "shoot_start": pa.array([dt.date(2025, 3, 1), dt.date(2025, 1, 15), dt.date(2024, 6, 1), None], pa.date32()),
    "budget_usd": pa.array([D("400000.00"), D("90000.10"), D("123.45"), D("1.00")], pa.decimal128(18, 2)),
    "wrapped": pa.array([False, True, True, None], pa.bool_()),
    "updated_at": pa.array([dt.datetime(2024, 5, 1, 12, 30, tzinfo=UTC), dt.datetime(2024, 5, 2, tzinfo=UTC),
                            None, dt.datetime(2024, 5, 3, 23, 59, 59, 999999, tzinfo=UTC)],
                           pa.timestamp("us", tz="UTC")),
})
TABLES = {
    "iceberg.studio.movie_cdc": MOVIE_CDC,
    "iceberg.studio.movie_talent": MOVIE_TALENT,
    "iceberg.studio.talent": TALENT,
    "iceberg.studio.production": PRODUCTION,
}

# ----------------------------------------------------------------------------- the studio project

FILES = {
    "datasources/movie.yaml": """
        name: movie
        table: iceberg.studio.movie_cdc
        primary_key: [movie_id]
        latest:
          order_by: op_ts
          deleted: "op = 'd'"
        fields:
          movie_id: {type: bigint}
          title: {type: varchar}
          status:
            type: varchar
            labels: {DEV: Development, PRE: Pre-production, PHOT: In photography, POST: Post-production, REL: Released}
          genre: {type: varchar}
          runtime_seconds: {type: integer}
          runtime_min: {type: integer, sql: "runtime_seconds / 60"}
          launch_date: {type: date}
          launch_year: {type: integer, sql: "year(launch_date)"}
          budget_usd: {type: "decimal(18,2)"}
          is_released: {type: boolean, sql: "status = 'REL'"}
          op_ts: {type: timestamp}
        measures:
          movie_count: {agg: count}
          total_budget: {agg: sum, sql: budget_usd, type: "decimal(18,2)"}
          avg_runtime_min: {agg: avg, sql: "runtime_seconds / 60.0", type: double}
        joins:
          production: {datasource: production, on: {movie_id: movie_id}, relationship: one_to_one}
          cast: {datasource: movie_talent, on: {movie_id: movie_id}, relationship: one_to_many}
        """,
    "datasources/movie_talent.yaml": """
        name: movie_talent
        table: iceberg.studio.movie_talent
        primary_key: [movie_id, talent_id, role]
        fields:
          movie_id: {type: bigint}
          talent_id: {type: bigint}
          role: {type: varchar}
          fee_usd: {type: "decimal(18,2)"}
        measures:
          credit_count: {agg: count}
          total_fee: {agg: sum, sql: fee_usd, type: "decimal(18,2)"}
        joins:
          talent: {datasource: talent, on: {talent_id: talent_id}, relationship: many_to_one}
        """,
    "datasources/talent.yaml": """
        name: talent
        table: iceberg.studio.talent
        primary_key: [talent_id]
        fields:
          talent_id: {type: bigint}
          talent_name: {type: varchar}
          born: {type: date}
        """,
    "datasources/production.yaml": """
        name: production
        table: iceberg.studio.production
        primary_key: [production_id]
        fields:
          production_id: {type: bigint}
          movie_id: {type: bigint}
          country: {type: varchar}
          shoot_start: {type: date}
          budget_usd: {type: "decimal(18,2)"}
          wrapped: {type: boolean}
          updated_at: {type: timestamp with time zone}
        measures:
          production_count: {agg: count}
          total_budget: {agg: sum, sql: budget_usd, type: "decimal(18,2)"}
        joins:
          movie: {datasource: movie, on: {movie_id: movie_id}, relationship: one_to_one}
        """,
    "inputs/movie_listing.yaml": """
        name: movie_listing
        from: movie
        fields:
          - movie.movie_id
          - field: movie.title
            label: Title
          - field: movie.status
            label: Status
          - movie.runtime_min
          - movie.launch_year
          - movie.is_released
          - movie.op_ts
          - field: production.country
            label: Country
          - production.shoot_start
          - production.updated_at
          - field: cast.talent.talent_name
            label: Cast
            agg: list
          - field: cast.fee_usd
            label: Fees
            agg: sum
          - name: days_to_launch
            sql: "date_diff('day', {{ as_of }}, movie.launch_date)"
            type: integer
        filters:
          - "movie.status IN ({{ statuses }})"
        parameters:
          statuses: {type: "array(varchar)", default: [DEV, PHOT, POST, PRE, REL]}
          as_of: {type: date, default: "2025-01-01"}
        sort: [movie.movie_id]
        """,
    "inputs/genre_budget.yaml": """
        name: genre_budget
        from: movie
        fields:
          - field: movie.genre
            label: Genre
          - movie.movie_count
          - movie.total_budget
          - field: cast.credit_count
            label: Credits
          - field: cast.total_fee
            label: Fees
          - movie.avg_runtime_min
          - name: fee_share
            sql: "sum(movie_talent.fee_usd) / sum(movie.budget_usd)"
            type: double
        filters:
          - "movie.launch_date >= {{ since }}"
        parameters:
          since: {type: date, default: "2025-01-01"}
        sort: [Genre]
        """,
    "inputs/country_budget.yaml": """
        name: country_budget
        from: production
        fields:
          - production.country
          - production.production_count
          - production.total_budget
          - field: movie.total_budget
            label: Title budget
          - field: movie.title
            agg: max
        sort: [production.country]
        """,
    "trackers/movies.yaml": """
        name: movies
        input: movie_listing
        destination: {type: file, path: out/movies.csv}
        key: [movie.movie_id]
        checks: {min_rows: 1, unique: [movie.movie_id]}
        """,
    "trackers/genres.yaml": """
        name: genres
        input: genre_budget
        parameters: {since: "2024-01-01"}
        destination: {type: file, path: out/genres.json}
        """,
    "trackers/countries.yaml": """
        name: countries
        input: country_budget
        destination: {type: file, path: out/countries.csv}
        """,
}

CONFIG = """
    name: studio-test
    default_target: local
    targets:
      local:
        engine: duckdb
        warehouse: .genesis/warehouse
        destinations: local
      trino:
        engine: trino
        trino:
          host: 127.0.0.1
          port: {port}
          http_scheme: http
          user: {user}
          auth: {{type: basic, user: {user}, password: "{{{{ env.TRINO_PASSWORD }}}}"}}
          catalog: iceberg
          schema: studio
          request_timeout: 5
          max_attempts: 3
        destinations: local
"""


def write_project(root: Path, port: int = 8080, files: dict[str, str] | None = None) -> Path:
    """The studio project under `root`, its local warehouse holding TABLES."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "genesis.yaml").write_text(textwrap.dedent(CONFIG).format(port=port, user=USER))
    for name, text in {**FILES, **(files or {})}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return root


def write_warehouse(root: Path, tables: dict[str, pa.Table] = TABLES) -> Path:
    wh = root / ".genesis" / "warehouse"
    for name, table in tables.items():
        warehouse.write_table(wh, name, table)
    return wh
