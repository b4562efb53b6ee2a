"""What only a real server shows: its own errors located at the YAML that caused them, schema
drift made with ALTER TABLE on the server, and a timed-out query cancelled on the server."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from genesis.cli import main as cli
from genesis.errors import ValidationError
from genesis.run.refresh import refresh
from genesis.validate.catalog_drift import check_catalog
from tests.mini_data import FIXTURE, tables
from tests.trino_real.conftest import make_project

BROKEN_INPUTS = {
    # DuckDB has jaro_winkler_similarity(), Trino not: FUNCTION_NOT_FOUND at the column's SQL.
    "stems": """name: stems
from: movie
fields:
  - movie.movie_id
  - name: stem
    sql: "jaro_winkler_similarity(lower(movie.title), 'title')"
""",
    # varchar > integer: DuckDB casts implicitly, Trino refuses ("Cannot apply operator").
    "typed": """name: typed
from: movie
fields: [movie.movie_id, movie.title]
filters:
  - "movie.movie_id > 0"
  - "movie.title > 5"
""",
}


def line_of(path: Path, text: str) -> int:
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if text in line:
            return number
    raise AssertionError(f"{text!r} not in {path}")


@pytest.fixture(scope="module")
def broken(trino_server, tmp_path_factory):
    made = make_project(trino_server, FIXTURE, "broken", tmp_path_factory.mktemp("broken-trino"),
                        lambda: {f"studio.{name}": t for name, t in tables().items()})
    for name, text in BROKEN_INPUTS.items():
        (made.root / "inputs" / f"{name}.yaml").write_text(text)
        (made.root / "trackers" / f"{name}.yaml").write_text(
            f"name: {name}\ninput: {name}\ndestination: {{type: file, path: out/{name}.csv}}\n")
    return made


def test_trino_errors_point_at_the_yaml_line(broken):
    project = broken.load()
    report = refresh(project, [project.trackers["stems"], project.trackers["typed"]], target="trino")
    errors = {t.tracker: t.error for t in report.trackers}
    assert all(t.status == "failed" and t.stage == "query" for t in report.trackers)
    stems, typed = broken.root / "inputs/stems.yaml", broken.root / "inputs/typed.yaml"
    assert errors["stems"].startswith(f"{stems}:{line_of(stems, '- name: stem')}:")
    assert "failed on Trino: " in errors["stems"] and "jaro_winkler_similarity" in errors["stems"]
    assert errors["typed"].startswith(f"{typed}:{line_of(typed, 'movie.title > 5')}:")
    assert "Cannot apply operator: varchar" in errors["typed"] and "integer" in errors["typed"]
    assert all("\n" not in e for e in errors.values())
    assert not (broken.root / "out").exists()  # nothing written


def test_validate_catalog_check_finds_alter_table_drift_on_trino(broken, trino_server, tmp_path):
    project = broken.load()
    check_catalog(project, "trino")  # unchanged: nothing to report
    table = f"{broken.catalog}.studio.movie_cdc"
    trino_server.rows(f"ALTER TABLE {table} RENAME COLUMN title TO movie_title")
    trino_server.rows(f"ALTER TABLE {table} DROP COLUMN launch_date")
    trino_server.rows(f"ALTER TABLE {table} ALTER COLUMN budget_usd SET DATA TYPE decimal(20,2)")
    assert ("movie_title", "varchar") in [r[:2] for r in trino_server.rows(f"SHOW COLUMNS FROM {table}")]

    movie = broken.root / "datasources/movie.yaml"
    expected = {
        ("title", line_of(movie, "  title:")): f"column 'title' no longer exists in {table} (did you mean 'movie_title'?)",
        ("launch_date", line_of(movie, "  launch_date:")): f"column 'launch_date' no longer exists in {table}",
        ("launch_date", line_of(movie, "  launch_month:")):
            f"column 'launch_date' no longer exists in {table}, used by field 'movie.launch_month'",
        ("budget_usd", line_of(movie, "  budget_usd:")):
            f"column 'budget_usd' of {table} is now decimal(20,2), but field 'movie.budget_usd' declares decimal(18,2)",
    }
    # Trino's information_schema, and pyiceberg reading what Trino committed to the same catalog.
    for target in ("trino", "local"):
        with pytest.raises(ValidationError) as info:
            check_catalog(broken.load(), target)
        found = {(e.column, e.location.line): e.message.split(" (target")[0] for e in info.value.errors}
        assert found == expected, target

    # Through the CLI, on a copy without the deliberately broken inputs: validate's static
    # types refuse `movie.title > 5` before any catalog is read.
    clean = tmp_path / "clean"
    shutil.copytree(broken.root, clean)
    for name in BROKEN_INPUTS:
        (clean / "inputs" / f"{name}.yaml").unlink()
        (clean / "trackers" / f"{name}.yaml").unlink()
    result = CliRunner().invoke(cli, ["validate", "--project", str(clean), "--target", "trino", "--catalog-check"])
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[-1] == "4 errors"
    for message in expected.values():
        assert any(message in line for line in lines), message


def test_tracker_timeout_leaves_no_running_query_on_the_server(trino_server, tmp_path):
    """A tracker over Trino's own tpch.sf1000 data (generated on the fly, minutes of work) with
    `timeout: 2`: the query is cancelled on the server, not only abandoned by the client."""
    root = tmp_path / "slow"
    (root / "datasources").mkdir(parents=True)
    (root / "inputs").mkdir()
    (root / "trackers").mkdir()
    (root / "genesis.yaml").write_text(f"""name: slow
default_target: trino
targets:
  trino:
    engine: trino
    trino: {{host: {trino_server.settings['host']}, port: {trino_server.settings['port']}, http_scheme: http, user: genesis}}
    destinations: local
""")
    (root / "datasources/lineitem.yaml").write_text("""name: lineitem
table: tpch.sf1000.lineitem
primary_key: [orderkey, linenumber]
fields:
  orderkey: {type: bigint}
  linenumber: {type: integer}
  comment: {type: varchar}
measures:
  lines: {agg: count_distinct, sql: comment}
""")
    (root / "inputs/slow_lines.yaml").write_text("name: slow_lines\nfrom: lineitem\n"
                                                 "fields: [lineitem.linenumber, lineitem.lines]\n")
    (root / "trackers/slow-lines.yaml").write_text("name: slow-lines\ninput: slow_lines\ntimeout: 2\n"
                                                  "destination: {type: file, path: out/slow.csv}\n")
    from genesis.project.load import load_project

    project = load_project(root)
    started = time.monotonic()
    report = refresh(project, [project.trackers["slow-lines"]], target="trino")
    assert report.trackers[0].status == "failed" and "timed out after 2 s" in report.trackers[0].error
    assert time.monotonic() - started < 30
    assert not (root / "out").exists()

    def ours() -> list[tuple]:
        return trino_server.rows(
            "SELECT query_id, state, error_code FROM system.runtime.queries "
            "WHERE source = 'genesis' AND query LIKE '%tpch.sf1000.lineitem%' AND query NOT LIKE '%system.runtime%'")

    deadline = time.monotonic() + 20
    while any(state not in ("FAILED", "FINISHED") for _, state, _ in ours()) and time.monotonic() < deadline:
        time.sleep(0.5)
    queries = ours()
    assert queries, "the slow query never reached the server"
    assert all(state == "FAILED" and code == "USER_CANCELED" for _, state, code in queries), queries
