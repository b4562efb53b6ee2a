"""Golden SQL per compiler pass, with the rows checked on DuckDB, and join-path resolution.

tests/fixtures/passes/<pass>/<case>.yaml is an input over the TPC-H project whose plan that
pass changes; <case>.sql is its compiled Trino SQL; <case>.check.sql is hand-written DuckDB
SQL giving the rows the input must give. Taking a pass out of PASSES changes its fixtures'
SQL, so test_golden_sql fails (test_each_pass_changes_its_fixtures says so directly).
Regenerate the golden files after a deliberate plan change with GENESIS_UPDATE_GOLDEN=1.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

from genesis.compiler import _render, compile_input, graph_of, passes
from genesis.compiler.join_graph import JoinGraph
from genesis.compiler.plan import build_plan
from genesis.compiler.render import build_query
from genesis.errors import GenesisError
from genesis.project.load import load_project
from tests.tpch import PROJECT_DIR
from tests.tpch.data import small_tpch
from tests.tpch.oracle import compare

FIXTURES = Path(__file__).parent / "fixtures" / "passes"
CASES = sorted((p.parent.name, p.stem) for p in FIXTURES.glob("*/*.yaml"))
PASS_NAMES = sorted({pass_name for pass_name, _ in CASES})


def _input_name(pass_name: str, case: str) -> str:
    return f"{pass_name}__{case}"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("passes") / "project"
    shutil.copytree(PROJECT_DIR, root)
    for pass_name, case in CASES:
        body = yaml.safe_load((FIXTURES / pass_name / f"{case}.yaml").read_text())
        body = {"name": _input_name(pass_name, case), **body}
        (root / "inputs" / f"{_input_name(pass_name, case)}.yaml").write_text(yaml.safe_dump(body, sort_keys=False))
    return load_project(root)


@pytest.fixture(scope="module")
def con(request, tmp_path_factory):
    connection = small_tpch(request, tmp_path_factory, "passes-warehouse")
    yield connection
    connection.close()


def _compile_with(project, name: str, chosen) -> str:
    """The Trino SQL of input NAME with only the `chosen` passes run."""
    plan = passes.run_passes(build_plan(graph_of(project), project.inputs[name], {}), tuple(chosen))
    return _render(build_query(plan), "trino", True)


def test_every_pass_has_fixtures():
    assert PASS_NAMES == sorted(p.__name__ for p in passes.PASSES)


@pytest.mark.parametrize("pass_name, case", CASES)
def test_golden_sql(project, pass_name, case):
    sql = compile_input(project, _input_name(pass_name, case)).sql("trino")
    golden = FIXTURES / pass_name / f"{case}.sql"
    if os.environ.get("GENESIS_UPDATE_GOLDEN"):
        golden.write_text(sql + "\n")
    assert sql + "\n" == golden.read_text()


@pytest.mark.parametrize("pass_name, case", CASES)
def test_rows_match_the_hand_written_sql(project, con, pass_name, case):
    got = con.sql(compile_input(project, _input_name(pass_name, case)).sql("duckdb")).to_arrow_table()
    expected = con.sql((FIXTURES / pass_name / f"{case}.check.sql").read_text()).to_arrow_table()
    assert expected.num_rows > 0
    compare(got, expected, ordered=True)


@pytest.mark.parametrize("pass_name, case", CASES)
def test_each_pass_changes_its_fixtures(project, pass_name, case):
    name = _input_name(pass_name, case)
    with_all = _compile_with(project, name, passes.PASSES)
    try:
        without = _compile_with(project, name, [p for p in passes.PASSES if p.__name__ != pass_name])
    except GenesisError:
        return  # the query cannot be planned without it: changed as much as can be
    assert without != with_all


def test_passes_do_not_change_the_plan_they_are_given(project):
    name = _input_name("preaggregate", "large_orders")
    plan = build_plan(graph_of(project), project.inputs[name], {})
    before = (plan.where, plan.having, dict(plan.instances), plan.calls)
    after = passes.run_passes(plan)
    assert (plan.where, plan.having, dict(plan.instances), plan.calls) == before
    assert after.pre_aggregations and not plan.pre_aggregations


# ---------------------------------------------------------------- join paths

GRAPH_DATASOURCES = {
    # a -> b -> d and a -> c -> d: two shortest paths to d (a tie); d -> a closes a cycle.
    "a": "joins: {b: {datasource: b, on: {b_id: id}, relationship: many_to_one},"
         " c: {datasource: c, on: {c_id: id}, relationship: many_to_one}}",
    "b": "joins: {d: {datasource: d, on: {d_id: id}, relationship: many_to_one}}",
    "c": "joins: {d: {datasource: d, on: {d_id: id}, relationship: many_to_one},"
         " e: {datasource: e, on: {e_id: id}, relationship: many_to_one}}",
    "d": "joins: {a: {datasource: a, on: {a_id: id}, relationship: many_to_one}}",
    "e": "",
}


@pytest.fixture(scope="module")
def graph(tmp_path_factory) -> JoinGraph:
    root = tmp_path_factory.mktemp("graph")
    (root / "genesis.yaml").write_text("name: graph\ntargets: {local: {engine: duckdb}}\n")
    (root / "datasources").mkdir()
    for name, joins in GRAPH_DATASOURCES.items():
        (root / "datasources" / f"{name}.yaml").write_text(
            f"name: {name}\ntable: iceberg.g.{name}\nprimary_key: [id]\nfields:\n  id: {{type: bigint}}\n"
            f"  a_id: {{type: bigint}}\n  b_id: {{type: bigint}}\n  c_id: {{type: bigint}}\n"
            f"  d_id: {{type: bigint}}\n  e_id: {{type: bigint}}\n{joins}\n")
    return JoinGraph(load_project(root).datasources)


def test_a_data_source_name_resolves_over_its_only_shortest_path(graph):
    resolved = graph.resolve("a", "e.id")
    assert resolved.instance.path == ("c", "e") and resolved.key == "e.id"


def test_two_shortest_paths_of_the_same_length_are_ambiguous(graph):
    with pytest.raises(GenesisError) as error:
        graph.resolve("a", "d.id")
    assert "ambiguous" in str(error.value) and "b.d.id" in error.value.hint and "c.d.id" in error.value.hint


def test_an_explicit_path_picks_one_of_the_tied_paths(graph):
    assert graph.resolve("a", "b.d.id").instance.path == ("b", "d")
    assert graph.resolve("a", "c.d.id").instance.path == ("c", "d")


def test_a_cycle_ends_the_search_and_an_explicit_path_may_go_round_it(graph):
    assert graph.shortest_paths("d", "e") and [j.name for j in graph.shortest_paths("d", "e")[0]] == ["a", "c", "e"]
    round_trip = graph.resolve("a", "b.d.a.id")
    assert round_trip.instance.path == ("b", "d", "a") and round_trip.instance.datasource.name == "a"


def test_an_unreachable_data_source_is_a_located_error(graph):
    with pytest.raises(GenesisError, match="cannot be reached"):
        graph.resolve("e", "a.id")
    with pytest.raises(GenesisError, match="has no join 'x'"):
        graph.resolve("a", "b.x.id")
