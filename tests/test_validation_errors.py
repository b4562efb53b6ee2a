"""Broken definitions: each gives its exact message at its exact place, never a traceback."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genesis.cli import main
from genesis.errors import GenesisError
from genesis.project.load import load_project
from genesis.project.loader import load_yaml_text
from genesis.validate import validate_project
from tests.broken_cases import CASES, EXPECTED
from tests.mini_data import copy_project


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return copy_project(tmp_path_factory.mktemp("base"))


def _validate(project_dir) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["validate", "--project", str(project_dir)])
    return result.exit_code, result.output


def test_there_are_at_least_25_cases():
    assert len(CASES) >= 25 and set(EXPECTED) == {c[0] for c in CASES}


@pytest.mark.parametrize("case_id, path, content", CASES, ids=[c[0] for c in CASES])
def test_broken_definition(tmp_path, monkeypatch, case_id, path, content):
    project = copy_project(tmp_path / "p")
    (project / path).write_text(content)
    monkeypatch.chdir(project)
    code, output = _validate(project)
    assert code == 1
    assert "Traceback" not in output
    assert EXPECTED[case_id] in output.splitlines()


def test_valid_project_passes(base, monkeypatch):
    monkeypatch.chdir(base)
    code, output = _validate(base)
    assert code == 0 and output.startswith("ok: 5 data sources")


def test_every_problem_is_reported_in_one_run(tmp_path, monkeypatch):
    project = copy_project(tmp_path / "p")
    by_id = {c[0]: c for c in CASES}
    for case_id, name in (("unknown_field", "a"), ("filter_subquery", "b"), ("bad_agg", "c")):
        _, _, content = by_id[case_id]
        (project / "inputs" / f"bad_{name}.yaml").write_text(content.replace("name: bad", f"name: bad_{name}"))
    monkeypatch.chdir(project)
    result = CliRunner().invoke(main, ["validate", "--project", str(project), "--format", "json"])
    report = json.loads(result.output)
    assert result.exit_code == 1 and report["valid"] is False
    assert sorted(e["path"] for e in report["errors"]) == [
        "inputs/bad_a.yaml", "inputs/bad_b.yaml", "inputs/bad_c.yaml"]
    assert all(e["line"] and e["col"] for e in report["errors"])


# ---------------------------------------------------------------- fuzzing the loader

_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=12))
_keys = st.sampled_from(["name", "from", "fields", "filters", "sort", "limit", "parameters", "table", "joins",
                         "type", "sql", "agg", "field", "label", "on", "datasource", "relationship", "x"])
_documents = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(_keys, inner, max_size=5)), max_leaves=20)


def _to_yaml(value, indent=0) -> str:
    import yaml

    return yaml.safe_dump(value, default_flow_style=None, allow_unicode=True)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=_documents, kind=st.sampled_from(["inputs", "datasources", "trackers"]))
def test_random_documents_give_located_errors(tmp_path_factory, document, kind):
    project = copy_project(tmp_path_factory.mktemp("fuzz"))
    (project / kind / "fuzz.yaml").write_text(_to_yaml(document))
    _assert_located_or_valid(project)


_valid_input = (CASES[7][2])  # a small input document to mutate


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(0, 60), insert=st.text(alphabet="{}[]:-,'\"\t\n #&*!|>%@`.", max_size=4))
def test_mutated_yaml_gives_located_errors(tmp_path_factory, cut, insert):
    text = open(copy_project.__globals__["FIXTURE"] / "inputs" / "movie_listing.yaml").read()
    cut = min(cut * 7, len(text))
    mutated = text[:cut] + insert + text[cut:]
    project = copy_project(tmp_path_factory.mktemp("mut"))
    (project / "inputs" / "movie_listing.yaml").write_text(mutated)
    _assert_located_or_valid(project)


def _assert_located_or_valid(project):
    try:
        validate_project(load_project(project))
    except GenesisError as exc:
        errors = getattr(exc, "errors", [exc])
        assert errors
        for error in errors:
            assert error.location is not None and error.location.path, error.render()
            assert error.location.line >= 1, error.render()


@given(st.text(max_size=200))
@settings(max_examples=300, deadline=None)
def test_loader_never_raises_anything_but_located_errors(text):
    try:
        load_yaml_text(text, "f.yaml")
    except GenesisError as exc:
        assert exc.location is not None and exc.location.path == "f.yaml"


# ---------------------------------------------------------------- hostile documents: bounded work

def _alias_bomb(width: int, levels: int, key: str) -> str:
    lines = [f"{key}:", f"  l0: &l0 [{', '.join(['lol'] * width)}]"]
    for level in range(1, levels + 1):
        lines.append(f"  l{level}: &l{level} [{', '.join([f'*l{level - 1}'] * width)}]")
    return "name: bad\n" + "\n".join(lines) + "\n"


def _deep(depth: int, flow: bool, key: str) -> str:
    if flow:
        return f"name: bad\n{key}: " + "[" * depth + "1" + "]" * depth + "\n"
    return "name: bad\n" + "".join(f"{'  ' * i}{key if i == 0 else 'k'}:\n" for i in range(depth)) + "  " * depth + "1\n"


def _bounded(run, seconds: float = 15.0, megabytes: int = 64):
    """Run `run()`, which must raise a located GenesisError within the time and memory bound."""
    import time
    import tracemalloc

    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(GenesisError) as info:
            run()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.monotonic() - started < seconds
    assert peak < megabytes * 2**20, f"peak {peak / 2**20:.0f} MiB"
    errors = getattr(info.value, "errors", [info.value])
    for error in errors:
        assert error.location is not None and error.location.line >= 1, error.render()
    return info.value


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(width=st.integers(2, 12), levels=st.integers(5, 12), key=st.sampled_from(["x_unknown", "fields", "filters"]),
       kind=st.sampled_from(["inputs", "datasources", "trackers"]))
def test_alias_bombs_are_refused_quickly(tmp_path_factory, width, levels, key, kind):
    while width ** (levels + 1) < 10**7:
        levels += 1  # every case a real bomb: expanded, far more than the bound
    project = copy_project(tmp_path_factory.mktemp("bomb"))
    (project / kind / "bomb.yaml").write_text(_alias_bomb(width, levels, key))
    error = _bounded(lambda: validate_project(load_project(project)))
    assert "expands to more than" in error.render()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(depth=st.integers(65, 3000), flow=st.booleans(), key=st.sampled_from(["x_unknown", "fields"]))
def test_deep_nesting_is_refused_with_a_location(depth, flow, key):
    depth = depth if flow else min(depth, 1000)  # block style: 2 spaces a level, under the size bound
    error = _bounded(lambda: load_yaml_text(_deep(depth, flow, key), "f.yaml"))
    assert "nests deeper than 64 levels" in error.render() or "maximum nesting depth" in error.render()
    assert "RecursionError" not in error.render()


def test_huge_document_is_refused_before_parsing(tmp_path):
    from genesis.project.loader import MAX_DOCUMENT_BYTES, load_yaml_file

    path = tmp_path / "huge.yaml"
    path.write_text("name: bad\nx: '" + "a" * MAX_DOCUMENT_BYTES + "'\n")
    error = _bounded(lambda: load_yaml_file(path, "inputs/huge.yaml"))
    assert error.render().startswith("inputs/huge.yaml:1:1: error: the file is ")


def test_a_file_that_is_not_utf8_names_line_and_column(tmp_path):
    from genesis.project.loader import load_yaml_file

    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: bad\nlabel: 'Café'\n".encode("latin-1"))
    error = _bounded(lambda: load_yaml_file(path, "inputs/latin1.yaml"))
    assert error.render().startswith("inputs/latin1.yaml:2:12: error: file is not UTF-8 text")
