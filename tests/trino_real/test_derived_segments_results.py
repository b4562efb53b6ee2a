"""Derived measures and segments (issue 16) on the real Trino: the inputs of
tests/test_derived_measures_segments.py give the same typed result as on DuckDB, and the
rows of the SQL written by hand there (each measure aggregated on its own table first)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from tests.reference.project import ARROW, same_rows, write_project
from tests.test_derived_measures_segments import HAND_SQL, INPUTS, ROWS, _hand, schema
from tests.trino_real.conftest import assert_same_table, make_project, run_both


def _tables() -> dict[str, pa.Table]:
    out = {}
    for source in schema().values():
        arrow_schema = pa.schema([(c, ARROW[t]) for c, t in source.columns.items()])
        out[f"t.{source.table}"] = pa.Table.from_pylist(ROWS.get(source.table, []), schema=arrow_schema)
    return out


@pytest.fixture(scope="module")
def project(trino_server, tmp_path_factory):
    source = write_project(tmp_path_factory.mktemp("derived-src"), schema(), ROWS, list(INPUTS.values()))
    return make_project(trino_server, source, "derived", tmp_path_factory.mktemp("derived-trino"), _tables).load()


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_derived_measures_and_segments_on_trino(project, name):
    duck, trino = run_both(project, name)
    assert [c.type for c in duck.columns] == [c.type for c in trino.columns]
    assert_same_table(duck.table, trino.table, name)
    got = [tuple(row.values()) for row in trino.table.to_pylist()]
    expected = _hand(HAND_SQL[name])
    assert same_rows(got, expected), (got, expected)
