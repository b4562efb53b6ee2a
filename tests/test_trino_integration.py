"""Genesis on Trino under faults: a local server that speaks Trino's client protocol
(tests/servers/trino_server.py) answers 503s, drops connections, serves slow pages and rejects
credentials; refreshes through a `trino` target must retry, cancel or fail cleanly. Results,
Trino's own errors and catalog drift on a real server are in tests/trino_real/.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import textwrap
import warnings
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
from click.testing import CliRunner

from genesis.api import execute
from genesis.cli import main as cli
from genesis.compiler import compile_tracker
from genesis.engines import warehouse
from genesis.engines.base import EngineError
from genesis.engines.trino import TrinoEngine
from genesis.errors import ValidationError
from genesis.project.load import load_project
from genesis.run.refresh import refresh
from genesis.validate.catalog_drift import check_catalog
from tests.servers.trino_server import Faults, TrinoProtocolServer

warnings.filterwarnings("ignore", module="pyiceberg")

PASSWORD = "Tr1no-pw-Sup3rSecret"
USER = "genesis-ci"

# ----------------------------------------------------------------------------- the studio data

UTC = dt.UTC
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
        warehouse: {warehouse}
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


def write_project(root: Path, port: int = 8080, files: dict[str, str] | None = None,
                  warehouse_dir: Path | None = None) -> Path:
    """The studio project under `root` (`files` add or replace definitions); its local target
    reads `warehouse_dir`, by default `.genesis/warehouse` inside the project."""
    root.mkdir(parents=True, exist_ok=True)
    config = textwrap.dedent(CONFIG).format(port=port, user=USER, warehouse=warehouse_dir or ".genesis/warehouse")
    (root / "genesis.yaml").write_text(config)
    for name, text in {**FILES, **(files or {})}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return root


def write_warehouse(wh: Path, tables: dict[str, pa.Table] = TABLES) -> Path:
    for name, table in tables.items():
        warehouse.write_table(wh, name, table)
    return wh


# Definitions that fail on the engine, each at a known YAML line.
BROKEN = {
    "inputs/stems.yaml": """
        name: stems
        from: movie
        fields:
          - movie.movie_id
          - field: movie.title
            label: Title
          - name: stem
            sql: "word_stem(lower(movie.title))"
            type: varchar
        sort: [movie.movie_id]
        """,
    "trackers/stems.yaml": """
        name: stems
        input: stems
        destination: {type: file, path: out/stems.csv}
        """,
    "inputs/by_region.yaml": """
        name: by_region
        from: movie
        fields:
          - movie.movie_id
          - production.country
        filters:
          - "movie.status <> 'DEV'"
          - "production.region = 'EMEA'"
        """,
    "trackers/by_region.yaml": """
        name: by-region
        input: by_region
        destination: {type: file, path: out/by_region.csv}
        """,
    "inputs/title_stems.yaml": """
        name: title_stems
        from: movie
        fields:
          - movie.movie_id
          - movie.title_stem
        """,
    # `region` is declared but the table has no such column; `title_stem` calls a function
    # the engine lacks: both only fail when the query runs.
    "datasources/production.yaml": FILES["datasources/production.yaml"].replace(
        "country: {type: varchar}\n", "country: {type: varchar}\n          region: {type: varchar}\n"),
    "datasources/movie.yaml": FILES["datasources/movie.yaml"].replace(
        "title: {type: varchar}\n",
        "title: {type: varchar}\n          title_stem: {type: varchar, sql: \"word_stem(title)\"}\n"),
}


def line_of(path: Path, text: str) -> int:
    """1-based line of the first line of `path` that contains `text`."""
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if text in line:
            return number
    raise AssertionError(f"{text!r} not in {path}")


def item_loc(path: Path, text: str) -> str:
    """`path:line:col` of the YAML list item (`- ...`) whose first line contains `text`: the
    column where the item's value starts, after the dash."""
    number = line_of(path, text)
    line = path.read_text().splitlines()[number - 1]
    return f"{path}:{number}:{line.index('- ') + 3}"


def same_rows(local: pa.Table, remote: pa.Table) -> None:
    assert remote.schema.equals(local.schema), f"{remote.schema}\n!=\n{local.schema}"
    assert remote.to_pylist() == local.to_pylist()


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def studio_warehouse(tmp_path_factory) -> Path:
    return write_warehouse(tmp_path_factory.mktemp("studio") / "warehouse")


@pytest.fixture(scope="module")
def module_server():
    with TrinoProtocolServer(page_size=2, basic_auth=(USER, PASSWORD)) as server:
        for name, table in TABLES.items():
            server.load_table(name, table)
        yield server


@pytest.fixture
def server(module_server, monkeypatch) -> TrinoProtocolServer:
    """The shared server with no faults and an empty request log; the target's password set."""
    module_server.faults = Faults()
    module_server.clear_log()
    monkeypatch.setenv("TRINO_PASSWORD", PASSWORD)
    # Restarting a query after a broken result waits ~1 s by default; tests need not.
    monkeypatch.setattr("genesis.engines.trino.DEFAULT_RETRY_BACKOFF", 0.02)
    return module_server


@pytest.fixture
def project_dir(tmp_path, server, studio_warehouse) -> Path:
    return write_project(tmp_path / "project", server.port, BROKEN, studio_warehouse)


def trino_engine(server: TrinoProtocolServer, schema: str = "studio") -> TrinoEngine:
    return TrinoEngine({"host": "127.0.0.1", "port": server.port, "http_scheme": "http", "user": USER,
                        "auth": {"type": "basic", "password": PASSWORD}, "catalog": "iceberg",
                        "schema": schema, "request_timeout": 5})


# (a) Same rows on both engines: tests/trino_real/test_studio_results.py runs this project on a
# real Trino; the protocol server below plays only what a real server cannot do on demand.


# ----------------------------------------------------------------------------- (b) refresh


def file_state(root: Path) -> dict[str, bytes]:
    out = root / "out"
    return {p.name: p.read_bytes() for p in sorted(out.glob("*"))} if out.exists() else {}


def good_trackers(project):
    return [project.trackers[n] for n in ("countries", "genres", "movies")]


def test_refresh_on_trino_writes_what_the_local_engine_writes(project_dir, server):
    project = load_project(project_dir)
    local = refresh(project, good_trackers(project), target="local")
    assert [t.status for t in local.trackers] == ["ok", "ok", "ok"], local.to_json()
    written = file_state(project_dir)
    assert set(written) == {"countries.csv", "genres.json", "movies.csv"}

    remote = refresh(project, good_trackers(project), target="trino")
    # Same typed rows -> same bytes: the file destination sees nothing to change.
    assert [t.status for t in remote.trackers] == ["unchanged"] * 3, remote.to_json()
    assert file_state(project_dir) == written
    assert {p.headers["X-Trino-Client-Tags"] for p in server.posts} == {"countries", "genres", "movies"}
    assert all(p.auth_scheme == "Basic" for p in server.posts)


def test_503s_on_the_first_requests_are_retried_and_the_tracker_written(project_dir, server):
    project = load_project(project_dir)
    refresh(project, [project.trackers["movies"]], target="local")
    expected = file_state(project_dir)
    (project_dir / "out" / "movies.csv").unlink()

    server.faults = Faults(fail_first=2)
    report = refresh(project, [project.trackers["movies"]], target="trino")
    assert report.trackers[0].status == "ok", report.to_json()
    assert file_state(project_dir) == expected
    assert [p.status for p in server.posts] == [503, 503, 200]

    # The same through the CLI: retried, and the (identical) file left alone.
    (project_dir / "out" / "movies.csv").write_bytes(b"stale")
    server.faults = Faults(fail_first=2)
    result = CliRunner().invoke(cli, ["refresh", "movies", "--project", str(project_dir), "--target", "trino",
                                      "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["trackers"][0]["status"] == "ok"
    assert file_state(project_dir) == expected


def test_a_query_slower_than_the_tracker_timeout_is_cancelled_and_writes_nothing(tmp_path, server, studio_warehouse):
    slow = {"trackers/movies.yaml": FILES["trackers/movies.yaml"].rstrip() + "\n        timeout: 0.5\n"}
    root = write_project(tmp_path / "project", server.port, slow, studio_warehouse)
    project = load_project(root)
    assert refresh(project, [project.trackers["movies"]], target="trino").trackers[0].status == "ok"
    before = file_state(root)
    stamp = (root / "out" / "movies.csv").stat().st_mtime_ns

    server.clear_log()
    server.faults = Faults(slow_seconds=3)
    report = refresh(project, [project.trackers["movies"]], target="trino")
    tracker = report.trackers[0]
    assert (tracker.status, tracker.stage) == ("failed", "query")
    assert "timed out after 0.5 s" in tracker.error
    assert tracker.seconds < 2.5
    assert file_state(root) == before and (root / "out" / "movies.csv").stat().st_mtime_ns == stamp
    assert [d.query_id for d in server.deletes] == [server.posts[-1].query_id]
    assert len(server.posts) == 1  # a timeout is not retried


def test_a_connection_dropped_mid_result_gives_complete_rows_or_nothing(project_dir, server):
    project = load_project(project_dir)
    movies = [project.trackers["movies"]]
    refresh(project, movies, target="local")
    expected = file_state(project_dir)
    (project_dir / "out" / "movies.csv").unlink()

    # Once: the query is restarted and every row arrives exactly once.
    server.faults = Faults(drop_page=1, drop_mode="truncate", drop_times=1)
    assert refresh(project, movies, target="trino").trackers[0].status == "ok"
    assert file_state(project_dir) == expected
    assert len(server.posts) == 2 and server.faults.dropped == 1

    # Every time: the tracker fails and keeps its last good file.
    server.faults = Faults(drop_page=1, drop_mode="truncate", drop_times=None)
    tracker = refresh(project, movies, target="trino").trackers[0]
    assert (tracker.status, tracker.stage) == ("failed", "query")
    assert "lost the connection to Trino" in tracker.error
    assert file_state(project_dir) == expected


def test_rejected_credentials_are_one_line_write_nothing_and_never_show_the_password(project_dir, server, caplog):
    caplog.set_level(logging.DEBUG)  # the client's own debug logs must not leak it either
    wrong = "Wr0ng-" + PASSWORD
    env = {"TRINO_PASSWORD": wrong}
    runner = CliRunner()
    texts = []
    result = runner.invoke(cli, ["refresh", "--all", "--project", str(project_dir), "--target", "trino",
                                 "--format", "json"], env=env)
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    by_name = {t["tracker"]: t for t in report["trackers"]}
    for name in ("countries", "genres", "movies", "stems", "by-region"):
        assert by_name[name]["status"] == "failed"
        assert by_name[name]["error"] == f"error: Trino rejected the credentials for user {USER}"
    texts += [result.stdout, result.stderr]

    result = runner.invoke(cli, ["run", "movies", "--project", str(project_dir), "--target", "trino"], env=env)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == f"error: Trino rejected the credentials for user {USER}\n"
    texts += [result.stdout, result.stderr]

    result = runner.invoke(cli, ["refresh", "movies", "--project", str(project_dir), "--target", "trino"], env=env)
    assert result.exit_code == 1
    assert f"error: Trino rejected the credentials for user {USER}" in result.stderr
    texts += [result.stdout, result.stderr]

    assert file_state(project_dir) == {}
    assert {p.status for p in server.posts} == {401}
    assert len(server.posts) == 7  # a 401 is not retried: one request per tracker and run
    for text in texts + [caplog.text]:
        assert wrong not in text and PASSWORD not in text


# ----------------------------------------------------------------------------- located errors


@pytest.mark.parametrize("target", ["local"])  # Trino's own errors: tests/trino_real/test_errors_drift_timeout.py
def test_query_errors_point_at_the_yaml_that_produced_them(project_dir, server, target):
    project = load_project(project_dir)
    engine = "Trino" if target == "trino" else "DuckDB"
    stems, by_region = project_dir / "inputs/stems.yaml", project_dir / "inputs/by_region.yaml"
    movie_yaml = project_dir / "datasources/movie.yaml"
    trackers = [project.trackers["stems"], project.trackers["by-region"]]
    report = refresh(project, trackers, target=target)
    errors = {t.tracker: t.error for t in report.trackers}
    assert all(t.stage == "query" for t in report.trackers)
    # A computed column calling a function the engine lacks: the column's item.
    assert errors["stems"].startswith(
        f"{item_loc(stems, '- name: stem')}: error: tracker 'stems' (input 'stems') failed on {engine}: ")
    assert "word_stem" in errors["stems"]
    # A filter on a column the table does not have: the filter's line.
    assert errors["by-region"].startswith(
        f"{item_loc(by_region, 'production.region')}: error: tracker 'by-region' (input 'by_region') "
        f"failed on {engine}: ")
    assert "region" in errors["by-region"]
    assert all("\n" not in e for e in errors.values())
    assert file_state(project_dir) == {}

    # An input (`genesis run`) whose failing SQL comes from a data source field: the field's
    # `sql:`, and the message names the input file.
    result = CliRunner().invoke(cli, ["run", "title_stems", "--project", str(project_dir), "--target", target])
    assert result.exit_code == 1
    line = line_of(movie_yaml, "title_stem:")
    col = movie_yaml.read_text().splitlines()[line - 1].index('"word_stem') + 1
    assert result.stderr.startswith(
        f"{movie_yaml}:{line}:{col}: error: input 'title_stems' ({project_dir / 'inputs/title_stems.yaml'}) "
        f"failed on {engine}: ")
    assert result.stderr.count("\n") == 1


def test_engine_errors_keep_their_kind_after_being_located(project_dir, server):
    project = load_project(project_dir)
    compiled = compile_tracker(project, "stems")
    with pytest.raises(EngineError) as info:
        execute(compiled, trino_engine(server))
    assert info.value.error_name == "FUNCTION_NOT_FOUND" and not info.value.transient
    assert info.value.location.path == str(project_dir / "inputs/stems.yaml")
    assert len(server.posts) == 1  # a user error is not retried


# ----------------------------------------------------------------------------- (c) catalog check

# Upstream changes to movie_cdc: `title` renamed, `runtime_seconds` now text, `budget_usd` and
# the CDC `op` column gone; `movie_id` narrowed to integer and the unused `legacy_code`
# retyped, which break nothing.
DRIFTED_MOVIE_CDC = (MOVIE_CDC
                     .rename_columns(["movie_title" if n == "title" else n for n in MOVIE_CDC.column_names])
                     .drop(["budget_usd", "op"])
                     .set_column(MOVIE_CDC.column_names.index("movie_id"), "movie_id",
                                 MOVIE_CDC.column("movie_id").cast(pa.int32()))
                     .set_column(MOVIE_CDC.column_names.index("runtime_seconds"), "runtime_seconds",
                                 MOVIE_CDC.column("runtime_seconds").cast(pa.string())))
DRIFTED_MOVIE_CDC = DRIFTED_MOVIE_CDC.set_column(
    DRIFTED_MOVIE_CDC.column_names.index("legacy_code"), "legacy_code",
    pa.array(range(len(MOVIE_CDC)), pa.int64()))


def expected_drift(root: Path, table_missing: bool = True) -> list[tuple[str, str, list[str]]]:
    """(location, message, trackers) of every problem DRIFTED_MOVIE_CDC (and a dropped talent
    table) cause in the studio project."""
    movie = root / "datasources/movie.yaml"
    talent = root / "datasources/talent.yaml"

    def at(path: Path, text: str, col_of: str) -> str:
        line = line_of(path, text)
        return f"{path}:{line}:{path.read_text().splitlines()[line - 1].index(col_of) + 1}"

    table = "iceberg.studio.movie_cdc"
    found = [
        (at(movie, "  title:", "title"),
         f"column 'title' no longer exists in {table} (did you mean 'movie_title'?)", ["countries", "movies"]),
        (at(movie, "  runtime_seconds:", "runtime_seconds"),
         f"column 'runtime_seconds' of {table} is now varchar, but field 'movie.runtime_seconds' declares integer",
         ["genres", "movies"]),  # through runtime_min and avg_runtime_min, which read it
        (at(movie, "  budget_usd:", "budget_usd"),
         f"column 'budget_usd' no longer exists in {table}", ["countries", "genres"]),
        (at(movie, "order_by:", "order_by"),  # the `latest:` block
         f"column 'op' no longer exists in {table}, used by latest.deleted", ["countries", "genres", "movies"]),
    ]
    if table_missing:
        found.append((at(talent, "table:", "iceberg"),
                      "table iceberg.studio.talent of data source 'talent' does not exist", ["movies"]))
    return sorted(found)


def drift_report(errors) -> list[tuple[str, str, list[str]]]:
    return sorted((str(e.location), e.message.split(" (target")[0], e.trackers) for e in errors)


def test_catalog_check_passes_on_an_unchanged_warehouse(tmp_path, studio_warehouse):
    root = write_project(tmp_path / "project", warehouse_dir=studio_warehouse)
    check_catalog(load_project(root), "local")
    result = CliRunner().invoke(cli, ["validate", "--project", str(root), "--target", "local", "--catalog-check"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("ok: 4 data sources, 3 inputs, 3 trackers")


def test_catalog_check_reports_drift_in_the_local_warehouse(tmp_path):
    root = write_project(tmp_path / "project")
    wh = write_warehouse(root / ".genesis" / "warehouse")
    project = load_project(root)
    warehouse.write_table(wh, "iceberg.studio.movie_cdc", DRIFTED_MOVIE_CDC)
    warehouse.open_catalog(wh, "iceberg").drop_table(("studio", "talent"))

    with pytest.raises(ValidationError) as info:
        check_catalog(project, "local")
    assert drift_report(info.value.errors) == expected_drift(root)
    by_column = {e.column: e for e in info.value.errors}
    assert by_column["title"].hint == "breaks trackers: countries, movies"
    assert "declare type: varchar" in by_column["runtime_seconds"].hint
    assert by_column[None].message.endswith("(target 'local')")

    # The same through the CLI, as text and as JSON for CI.
    runner = CliRunner()
    args = ["validate", "--project", str(root), "--target", "local", "--catalog-check"]
    text = runner.invoke(cli, args)
    assert text.exit_code == 1
    lines = text.stderr.splitlines()
    assert lines[-1] == "5 errors"
    movie_yaml = root / "datasources/movie.yaml"
    assert (f"{movie_yaml}:{line_of(movie_yaml, '  title:')}:3: error: column 'title' no longer exists in "
            f"iceberg.studio.movie_cdc (did you mean 'movie_title'?) (breaks trackers: countries, movies)") in lines
    report = json.loads(runner.invoke(cli, args + ["--format", "json"]).stdout)
    assert report["valid"] is False
    title = next(e for e in report["errors"] if e["column"] == "title")
    assert title["path"] == str(root / "datasources/movie.yaml")
    assert (title["line"], title["trackers"], title["table"]) == (
        line_of(root / "datasources/movie.yaml", "  title:"), ["countries", "movies"], "iceberg.studio.movie_cdc")

    # Back to the original shape, plus a new column no field reads: nothing to report.
    write_warehouse(wh, {**TABLES, "iceberg.studio.movie_cdc": MOVIE_CDC.append_column("extra", pa.array([1.5] * 10))})
    check_catalog(project, "local")


def test_catalog_check_reads_information_schema_on_trino(tmp_path, monkeypatch):
    monkeypatch.setenv("TRINO_PASSWORD", PASSWORD)
    with TrinoProtocolServer(basic_auth=(USER, PASSWORD)) as server:
        for name, table in TABLES.items():
            server.load_table(name, table)
        root = write_project(tmp_path / "project", server.port)
        project = load_project(root)
        check_catalog(project, "trino")

        server.load_table("iceberg.studio.movie_cdc", DRIFTED_MOVIE_CDC)
        server.duckdb('DROP TABLE iceberg.studio.talent')
        with pytest.raises(ValidationError) as info:
            check_catalog(project, "trino")
        assert drift_report(info.value.errors) == expected_drift(root)
        assert all("information_schema.columns" in p.sql for p in server.posts)

        # A catalog that cannot be read is one clear error, without the password.
        monkeypatch.setenv("TRINO_PASSWORD", "nope-" + PASSWORD)
        result = CliRunner().invoke(cli, ["validate", "--project", str(root), "--target", "trino",
                                          "--catalog-check"])
        assert result.exit_code == 1
        assert result.stderr == (f"error: Trino rejected the credentials for user {USER}\n")  # one error: no count line


def test_type_compatibility_rules():
    from genesis.validate.catalog_drift import compatible

    allowed = [("bigint", "integer"), ("bigint", "smallint"), ("integer", "tinyint"), ("double", "real"),
               ("double", "bigint"), ("double", "decimal(18,2)"), ("decimal(18,2)", "decimal(10,2)"),
               ("decimal(18,4)", "decimal(12,2)"), ("decimal(38,2)", "bigint"), ("decimal(12,2)", "integer"),
               ("array(bigint)", "array(integer)"), ("varchar", "varchar")]
    refused = [("integer", "bigint"), ("varchar", "integer"), ("integer", "varchar"), ("date", "timestamp"),
               ("timestamp", "timestamp with time zone"), ("decimal(18,2)", "decimal(18,4)"),
               ("decimal(10,2)", "decimal(18,2)"), ("decimal(18,2)", "bigint"), ("bigint", "double"),
               ("real", "double"), ("array(integer)", "array(bigint)"), ("boolean", "varchar")]
    assert [pair for pair in allowed if not compatible(*pair)] == []
    assert [pair for pair in refused if compatible(*pair)] == []
