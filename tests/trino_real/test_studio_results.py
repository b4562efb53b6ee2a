"""The studio project of tests/test_trino_integration.py (nulls, microsecond and UTC
timestamps, 9999999.99 budgets, CDC deletes) on the real Trino: the same typed rows as DuckDB,
and a refresh writes the same bytes. The protocol server there now only plays faults."""

from __future__ import annotations

import pytest

from tests.test_trino_integration import TABLES, write_project
from tests.trino_real.conftest import assert_same_table, make_project, run_both

CASES = [
    ("movie_listing", {}),
    ("movie_listing", {"statuses": ["PHOT", "REL"], "as_of": "2026-01-01"}),
    ("genre_budget", {}),
    ("genre_budget", {"since": "2000-01-01"}),
    ("country_budget", {}),
    ("movies", {}),
    ("genres", {}),
    ("countries", {}),
]


@pytest.fixture(scope="module")
def studio(trino_server, tmp_path_factory):
    source = write_project(tmp_path_factory.mktemp("studio-source") / "project")
    made = make_project(trino_server, source, "studio", tmp_path_factory.mktemp("studio-trino"),
                        lambda: {name.split(".", 1)[1]: t for name, t in TABLES.items()})
    return made, made.load()


@pytest.mark.parametrize("name,params", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_studio_inputs_give_identical_typed_rows_on_trino(studio, name, params):
    _, project = studio
    duck, trino = run_both(project, name, **params)
    assert duck.table.num_rows > 0
    assert_same_table(duck.table, trino.table, name)


def test_refresh_on_trino_writes_what_duckdb_writes(studio):
    from genesis.run.refresh import refresh

    made, project = studio
    trackers = [project.trackers[n] for n in ("countries", "genres", "movies")]
    local = refresh(project, trackers, target="local")
    assert [t.status for t in local.trackers] == ["ok", "ok", "ok"], local.to_json()
    written = {p.name: p.read_bytes() for p in sorted((made.root / "out").glob("*"))}
    assert set(written) == {"countries.csv", "genres.json", "movies.csv"}
    for path in (made.root / "out").glob("*"):
        path.unlink()
    remote = refresh(project, trackers, target="trino")
    assert [t.status for t in remote.trackers] == ["ok", "ok", "ok"], remote.to_json()
    assert {p.name: p.read_bytes() for p in sorted((made.root / "out").glob("*"))} == written
