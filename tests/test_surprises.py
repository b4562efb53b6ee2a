"""Behaviour that used to surprise a newcomer (issue 13): each now does what was asked, or says why not."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from genesis.cli import main
from genesis.project import load_project
from genesis.types import normalize_type
from tests.mini_data import build_warehouse, copy_project

LISTING_TRACKER = """name: listing
input: movie_listing
parameters: {countries: [US]}
destination: {type: file, path: out/listing.csv}
key: [movie.movie_id]
mode: replace
"""


def cli(project: Path, *args: str):
    result = CliRunner().invoke(main, [*args, "--project", str(project)])
    assert "Traceback" not in result.output
    return result


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    project = copy_project(tmp_path_factory.mktemp("surprises") / "p")
    (project / "trackers" / "listing.yaml").write_text(LISTING_TRACKER)
    build_warehouse(project)
    return project


def csv_rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


# ---------------------------------------------------------------- --param wins over the tracker


def test_compile_param_overrides_the_tracker_and_says_so(mini):
    result = cli(mini, "compile", "listing", "--dialect", "trino", "--param", "countries=GB,CA")
    assert result.exit_code == 0, result.output
    assert "IN ('GB', 'CA')" in result.stdout and "'US'" not in result.stdout
    assert result.stderr == ("note: --param countries overrides the value tracker 'listing' sets "
                             "(countries: [\"US\"])\n")
    plain = cli(mini, "compile", "listing", "--dialect", "trino")
    assert "IN ('US')" in plain.stdout and plain.stderr == ""


def test_run_param_overrides_the_tracker(mini):
    tracker = cli(mini, "run", "listing", "--format", "csv", "--param", "countries=GB")
    by_input = cli(mini, "run", "movie_listing", "--format", "csv", "--param", "countries=GB")
    us_only = cli(mini, "run", "listing", "--format", "csv")
    assert tracker.exit_code == by_input.exit_code == us_only.exit_code == 0
    assert "overrides the value tracker 'listing' sets" in tracker.stderr
    assert "overrides" not in by_input.stderr  # an input has no tracker value to override
    assert csv_rows(tracker.stdout) == csv_rows(by_input.stdout) != csv_rows(us_only.stdout)
    assert len(csv_rows(tracker.stdout)) > 0


def test_refresh_param_overrides_the_tracker(mini):
    result = cli(mini, "refresh", "listing", "--param", "countries=GB")
    assert result.exit_code == 0, result.output
    assert "overrides the value tracker 'listing' sets" in result.stderr
    by_input = cli(mini, "run", "movie_listing", "--format", "csv", "--param", "countries=GB")
    written = (mini / "out" / "listing.csv").read_text(encoding="utf-8")
    assert csv_rows(written) == csv_rows(by_input.stdout)
    cli(mini, "refresh", "listing")  # back to the tracker's own value
    assert csv_rows((mini / "out" / "listing.csv").read_text()) != csv_rows(by_input.stdout)


def test_refresh_refuses_a_param_no_chosen_input_declares(mini):
    result = cli(mini, "refresh", "listing", "--param", "countrys=GB")
    assert result.exit_code == 1
    assert "error: --param 'countrys': the input of no chosen tracker declares it (did you mean 'countries'?)" \
        in result.stderr


# ---------------------------------------------------------------- one error per input problem


def test_an_input_error_is_reported_once_with_its_trackers(tmp_path, monkeypatch):
    project = copy_project(tmp_path / "p")
    listing = project / "inputs" / "movie_listing.yaml"
    listing.write_text(listing.read_text().replace("  - movie.runtime_min\n", "  - movie.runtime_mn\n"))
    for name in ("one", "two", "three"):
        (project / "trackers" / f"{name}.yaml").write_text(
            LISTING_TRACKER.replace("name: listing", f"name: {name}").replace("listing.csv", f"{name}.csv"))
    monkeypatch.chdir(project)
    result = cli(project, "validate")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "inputs/movie_listing.yaml:9:5: error: data source 'movie' has no field or measure 'runtime_mn' "
        "(did you mean 'runtime_min'?; breaks trackers: one, three, two)",
        "1 error(s)",
    ]
    report = json.loads(cli(project, "validate", "--format", "json").stdout)
    assert [e["trackers"] for e in report["errors"]] == [["one", "three", "two"]]


def test_a_tracker_only_problem_stays_with_its_tracker(tmp_path, monkeypatch):
    project = copy_project(tmp_path / "p")
    (project / "trackers" / "a.yaml").write_text(LISTING_TRACKER.replace("name: listing", "name: a")
                                                 .replace("[US]", "[1, {x: 2}]"))
    (project / "trackers" / "b.yaml").write_text(LISTING_TRACKER.replace("name: listing", "name: b"))
    monkeypatch.chdir(project)
    result = cli(project, "validate")
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 2 and "tracker 'a'" in lines[0] and lines[1] == "1 error(s)"


# ---------------------------------------------------------------- check errors at their own lines


BAD_CHECKS = """name: listing
input: movie_listing
destination: {type: file, path: out/listing.csv}
key:
  - movie.movie_id
  - movie.titel
checks:
  min_rows: 1
  max_rows: 1000
  unique:
    - movie.movie_id
    - Titel
  not_null: [movie.movie_id, Stauts]
"""


def test_key_unique_and_not_null_errors_point_at_their_items(tmp_path, monkeypatch):
    project = copy_project(tmp_path / "p")
    (project / "trackers" / "listing.yaml").write_text(BAD_CHECKS)
    monkeypatch.chdir(project)
    lines = cli(project, "validate").stderr.splitlines()
    assert lines == [
        "trackers/listing.yaml:6:5: error: key 'movie.titel' is not an output column of input 'movie_listing' "
        "(did you mean 'movie.title'?)",
        "trackers/listing.yaml:12:7: error: checks.unique 'Titel' is not an output column of input "
        "'movie_listing' (did you mean 'Title'?)",
        "trackers/listing.yaml:13:30: error: checks.not_null 'Stauts' is not an output column of input "
        "'movie_listing' (did you mean 'Status'?)",
        "3 error(s)",
    ]


def test_min_rows_above_max_rows_points_at_max_rows(tmp_path, monkeypatch):
    project = copy_project(tmp_path / "p")
    (project / "trackers" / "listing.yaml").write_text(
        LISTING_TRACKER + "checks:\n  min_rows: 10\n  unique: [movie.movie_id]\n  max_rows: 5\n")
    monkeypatch.chdir(project)
    assert cli(project, "validate").stderr.splitlines()[0] == (
        "trackers/listing.yaml:10:13: error: checks.min_rows (10) is larger than checks.max_rows (5)")


@pytest.mark.parametrize("checks, line, words", [
    ("  min_rows: 1\n  not_null: [movie.movie_id]\n  max_rows: 2\n", 10, "max_rows: "),
    ("  max_rows: 100000\n  min_rows: 100000\n", 9, "min_rows: "),
    ("  min_rows: 1\n  not_null:\n    - movie.movie_id\n    - Vendor\n", 11, "not_null: "),
    ("  min_rows: 1\n  unique: [Status]\n", 9, "unique: "),
])
def test_a_failed_check_points_at_its_own_line(tmp_path, monkeypatch, checks, line, words):
    project = copy_project(tmp_path / "p")
    build_warehouse(project)
    (project / "trackers" / "listing.yaml").write_text(LISTING_TRACKER + "checks:\n" + checks)
    monkeypatch.chdir(project)
    result = cli(project, "refresh", "listing", "--format", "json")
    error = json.loads(result.stdout)["trackers"][0]["error"]
    assert error.startswith(f"trackers/listing.yaml:{line}:"), error
    assert f"checks failed, nothing written: {words}" in error


# ---------------------------------------------------------------- a tracker named like its input


def test_a_tracker_named_like_its_input_is_refused(tmp_path, monkeypatch):
    project = copy_project(tmp_path / "p")
    build_warehouse(project)
    (project / "trackers" / "movie_listing.yaml").write_text(
        LISTING_TRACKER.replace("name: listing", "name: movie_listing"))
    monkeypatch.chdir(project)
    expected = ("trackers/movie_listing.yaml:1:7: error: tracker 'movie_listing' has the same name as input "
                "'movie_listing' (inputs/movie_listing.yaml), so `genesis run movie_listing` could mean either "
                "(rename the tracker: tracker names are usually kebab-case, e.g. movie-listing)")
    assert expected in cli(project, "validate").stderr.splitlines()
    for args in (["run", "movie_listing"], ["compile", "movie_listing"],
                 ["compile", "--all", "--out", str(tmp_path / "sql")]):
        result = cli(project, *args)
        assert result.exit_code == 1 and expected in result.stderr.splitlines(), args
    assert not (tmp_path / "sql").exists()


# ---------------------------------------------------------------- one rule for type names


@pytest.mark.parametrize("alias, canonical", [
    ("int", "integer"), ("INT64", "bigint"), ("int32", "integer"), ("int16", "smallint"),
    ("float", "double"), ("float64", "double"), ("float32", "real"), ("string", "varchar"),
    ("text", "varchar"), ("bool", "boolean"), ("array(int64)", "array(bigint)"),
])
def test_type_aliases(alias, canonical):
    assert normalize_type(alias) == canonical


def test_an_unknown_type_lists_the_types_and_the_aliases(tmp_path, monkeypatch):
    project = copy_project(tmp_path / "p")
    (project / "inputs" / "bad.yaml").write_text(
        "name: bad\nfrom: movie\nfields:\n  - {name: x, sql: \"1\", type: uint64}\n")
    monkeypatch.chdir(project)
    line = cli(project, "validate").stderr.splitlines()[0]
    assert line.startswith("inputs/bad.yaml:4:31: error: unknown type 'uint64' (did you mean 'int64'? Types: varchar,")
    assert "aliases: int = integer, int16 = smallint, int32 = integer, int64 = bigint" in line


def test_the_docs_list_exactly_the_aliases():
    from genesis.types import ALIASES

    text = (Path(__file__).resolve().parent.parent / "docs" / "types.md").read_text()
    documented = dict(line.strip("| ").split(" | ")[:2] for line in text.splitlines()
                      if line.startswith("| `") and "alias" not in line)
    assert {k.strip("`"): v.strip("`") for k, v in documented.items()} == ALIASES


# ---------------------------------------------------------------- run --output into a new folder


def test_run_output_creates_its_folder(mini, tmp_path):
    target = tmp_path / "does" / "not" / "exist.csv"
    result = cli(mini, "run", "movie_listing", "--format", "csv", "--output", str(target))
    assert result.exit_code == 0, result.output
    assert target.is_file() and csv_rows(target.read_text())


def test_run_output_under_a_file_says_why(mini, tmp_path):
    (tmp_path / "plain").write_text("x")
    result = cli(mini, "run", "movie_listing", "--format", "csv", "--output", str(tmp_path / "plain" / "x.csv"))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: cannot write {tmp_path / 'plain' / 'x.csv'}: ")
    assert "internal error" not in result.stderr


# ---------------------------------------------------------------- sort items


@pytest.mark.parametrize("sort, expected", [
    ("[movie.title descending]", "inputs/movie_listing.yaml:23:8: error: sort item 'movie.title descending': "
     "only ASC or DESC may follow the column, not 'descending' (write 'movie.title DESC')"),
    ("[Status ascending]", "inputs/movie_listing.yaml:23:8: error: sort item 'Status ascending': "
     "only ASC or DESC may follow the column, not 'ascending' (write 'Status ASC')"),
    ("[movie.title NULLS LAST]", "inputs/movie_listing.yaml:23:8: error: sort item 'movie.title NULLS LAST': "
     "only ASC or DESC may follow the column, not 'LAST' (NULLS FIRST / LAST is not supported: nulls always sort last)"),
    ("[movie.movie_id, Vendr DESC]", "inputs/movie_listing.yaml:23:24: error: sort item 'Vendr' is not an output "
     "column (did you mean 'Vendor'?)"),
    ("[Cst]", "inputs/movie_listing.yaml:23:8: error: sort item 'Cst' is not an output column (did you mean 'Cast'?)"),
])
def test_sort_item_mistakes(tmp_path, monkeypatch, sort, expected):
    project = copy_project(tmp_path / "p")
    listing = project / "inputs" / "movie_listing.yaml"
    listing.write_text(listing.read_text().replace("sort: [movie.movie_id]", f"sort: {sort}"))
    monkeypatch.chdir(project)
    assert cli(project, "validate").stderr.splitlines()[0] == expected


def test_sort_output_names_match_case_insensitively(tmp_path):
    project = copy_project(tmp_path / "p")
    listing = project / "inputs" / "movie_listing.yaml"
    listing.write_text(listing.read_text().replace("sort: [movie.movie_id]", "sort: [po TOTAL desc, title]"))
    result = cli(project, "compile", "movie_listing", "--dialect", "trino")
    assert result.exit_code == 0, result.output
    assert 'ORDER BY\n  "PO total" DESC,\n  "Title" ASC,\n' in result.stdout
