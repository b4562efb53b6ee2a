"""Behaviour that used to surprise a newcomer (issue 13): each now does what was asked, or says why not."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from genesis.cli import main
from genesis.project.load import load_project
from genesis.project.types import normalize_type
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
    ]  # one error: no count line under it
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
    assert len(lines) == 1 and "tracker 'a'" in lines[0]  # one error: no count line under it


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
        "3 errors",
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


def test_a_tracker_named_like_its_input_is_never_ambiguous(tmp_path):
    project = copy_project(tmp_path / "p")
    build_warehouse(project)
    (project / "trackers" / "movie_listing.yaml").write_text(
        LISTING_TRACKER.replace("name: listing", "name: movie_listing"))
    assert cli(project, "validate").exit_code == 0
    note = ("note: 'movie_listing' is a tracker and an input; this is the tracker "
            "(write input:movie_listing for the input)")
    bare = cli(project, "compile", "movie_listing", "--dialect", "trino")
    assert bare.stderr.splitlines() == [note] and "IN ('US')" in bare.stdout
    tracker = cli(project, "compile", "tracker:movie_listing", "--dialect", "trino")
    assert tracker.stderr == "" and tracker.stdout == bare.stdout
    inp = cli(project, "compile", "input:movie_listing", "--dialect", "trino")
    assert inp.stderr == "" and "IN ('US', 'CA')" in inp.stdout
    ran = cli(project, "run", "input:movie_listing", "--format", "csv")
    assert ran.exit_code == 0 and len(csv_rows(ran.stdout)) > len(csv_rows(cli(project, "run", "movie_listing",
                                                                                "--format", "csv").stdout))
    assert "no input named 'movie_lisitng'" in cli(project, "run", "input:movie_lisitng").stderr

    out = tmp_path / "sql"
    result = cli(project, "compile", "--all", "--out", str(out), "--dialect", "trino")
    assert result.exit_code == 0, result.output
    assert (out / "trackers" / "movie_listing.sql").read_text() == bare.stdout
    assert (out / "inputs" / "movie_listing.sql").read_text() == inp.stdout
    assert sorted(p.name for p in (out / "inputs").iterdir()) == sorted(
        f"{p.stem}.sql" for p in (project / "inputs").glob("*.yaml"))


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
    from genesis.project.types import ALIASES

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


# ---------------------------------------------------------------- what static types catch at validate


TYPE_MISTAKES = """name: bad
from: movie
fields:
  - movie.status
  - {field: movie.title, agg: sum}
  - {name: t, sql: "avg(movie.title)"}
  - {name: u, sql: "sum(movie.launch_date)"}
filters:
  - "movie.launch_date > 20240101"
  - "movie.title = {{ n }}"
  - "movie.launch_date BETWEEN DATE '2024-01-01' AND 5"
  - "movie.movie_id IN (1, 'x')"
  - "movie.launch_date < date_add('day', {{ n }}, current_date)"
  - "movie.title = 'x' AND movie.runtime_min > {{ n }}"
  - "movie.launch_date >= '2024-01-01'"
parameters:
  n: {type: integer, default: 3}
"""


def test_validate_catches_what_static_types_can(tmp_path, monkeypatch):
    project = copy_project(tmp_path / "p")
    (project / "inputs" / "bad.yaml").write_text(TYPE_MISTAKES)
    movie = project / "datasources" / "movie.yaml"
    movie.write_text(movie.read_text().replace(
        "  movie_count: {agg: count}\n", "  movie_count: {agg: count}\n  title_total: {agg: sum, sql: title}\n"))
    monkeypatch.chdir(project)
    sums = "use count, count_distinct, min or max, or cast the value to a number"
    kinds = ("compare a date with a date (DATE '2025-01-31', current_date), a number with a number, "
             "text with text, or cast(x AS type)")
    assert cli(project, "validate").stderr.splitlines() == [
        f"datasources/movie.yaml:20:32: error: measure 'movie.title_total' takes the sum of a varchar value; "
        f"sum needs numbers ({sums})",
        f"inputs/bad.yaml:5:5: error: 'movie.title' is varchar: agg: sum needs numbers ({sums})",
        f"inputs/bad.yaml:6:20: error: column 't' takes the avg of 'movie.title', which is varchar; "
        f"avg needs numbers ({sums})",
        f"inputs/bad.yaml:7:20: error: column 'u' takes the sum of 'movie.launch_date', which is date; "
        f"sum needs numbers ({sums})",
        f"inputs/bad.yaml:9:5: error: filter 1 compares 'movie.launch_date' (date) with 20240101 (integer); "
        f"Trino cannot compare date with number ({kinds})",
        f"inputs/bad.yaml:10:5: error: filter 2 compares 'movie.title' (varchar) with 3 (integer); "
        f"Trino cannot compare text with number ({kinds})",
        f"inputs/bad.yaml:11:5: error: filter 3 compares 'movie.launch_date' (date) with 5 (integer); "
        f"Trino cannot compare date with number ({kinds})",
        f"inputs/bad.yaml:12:5: error: filter 4 compares 'movie.movie_id' (bigint) with 'x' (varchar); "
        f"Trino cannot compare number with text ({kinds})",
        f"inputs/bad.yaml:15:5: error: filter 7 compares 'movie.launch_date' (date) with '2024-01-01' (varchar); "
        f"Trino cannot compare date with text ({kinds})",
        "9 errors",
    ]


@pytest.mark.parametrize("text, name", [
    ("movie.status = '{{ s }}'", "s"), ('movie.x > "{{n}}"', "n"), ("movie.t = 'it''s {{ s }}'", "s"),
    ("date_add('day', -{{ n }}, DATE '1998-12-01') > movie.d", None), ("movie.t = 'it''s' AND {{ b }}", None),
])
def test_quoted_parameter_scanner(text, name):
    from genesis.validate.typecheck import _quoted_parameter

    assert _quoted_parameter(text) == name


def test_a_quoted_parameter_is_named_instead_of_a_syntax_error(tmp_path, monkeypatch):
    project = copy_project(tmp_path / "p")
    (project / "inputs" / "bad.yaml").write_text(
        "name: bad\nfrom: movie\nfields: [movie.title]\nfilters:\n  - \"movie.status = '{{ s }}'\"\n"
        "  - \"movie.runtime_min > '{{n}}'\"\nparameters:\n  s: {type: varchar, default: PHOT}\n"
        "  n: {type: integer, default: 90}\n")
    monkeypatch.chdir(project)
    hint = "is already a SQL literal ('US', DATE '2025-01-31', 42): remove the quotes"
    assert cli(project, "validate").stderr.splitlines() == [
        f"inputs/bad.yaml:5:5: error: filter 1 puts parameter 's' inside quotes ({{{{ s }}}} {hint})",
        f"inputs/bad.yaml:6:5: error: filter 2 puts parameter 'n' inside quotes ({{{{ n }}}} {hint})",
        "2 errors",
    ]


@pytest.mark.parametrize("mode, ok", [("upsert", False), ("append", False), ("replace", True), (None, True)])
def test_mode_on_a_file_destination(tmp_path, monkeypatch, mode, ok):
    project = copy_project(tmp_path / "p")
    text = LISTING_TRACKER.replace("mode: replace\n", f"mode: {mode}\n" if mode else "")
    (project / "trackers" / "listing.yaml").write_text(text)
    monkeypatch.chdir(project)
    result = cli(project, "validate")
    if ok:
        assert result.exit_code == 0, result.output
    else:
        assert result.stderr.splitlines()[0] == (
            f"trackers/listing.yaml:6:7: error: mode: {mode} does not apply to a file destination: a file is "
            f"always written whole (remove `mode`, or write mode: replace)")


def test_the_example_project_and_the_fixture_pass_the_type_checks(monkeypatch):
    from genesis.validate import project_problems
    from genesis.validate.rules.types import RULES

    repo = Path(__file__).resolve().parent.parent
    for root in (repo, repo / "tests" / "fixtures" / "mini", repo / "tests" / "tpch" / "project"):
        monkeypatch.chdir(root)
        assert project_problems(load_project(root), RULES) == []


# ---------------------------------------------------------------- CSV: typed values unquoted, text quoted


def test_csv_quotes_text_only():
    from genesis.destinations.file import write_csv_stream
    from tests.test_file_destination import make_result

    buffer = io.StringIO(newline="")
    write_csv_stream(make_result(), buffer)
    assert buffer.getvalue() == (
        '"movie_id","Title","Budget","Big","Shoot start","Updated","Updated UTC","Active","Shooting","Cast",'
        '"Share","Score","Link"\r\n'
        '1,"=SUM(A1:A2)",1234567.50,1234567890123456789012345678.0123456789,2024-03-05,2024-03-05 14:30:00,'
        '2024-03-05 14:30:00+00:00,true,true,"[""Ana"", ""Bo""]",0.25,1.5,10\r\n'
        '2,"Quote ""and"", comma\nnew line",,0.0000000000,,2024-03-05 14:30:00.123456,,false,false,"[]",'
        '0.00001,100000000000000000000,\r\n'
        '9007199254740993,"-1 or @me +x",-0.01,,1999-12-31,,,,,,NaN,,30\r\n')


def test_csv_empty_text_and_null_stay_apart_and_readers_see_numbers():
    import pyarrow as pa

    from genesis.destinations.file import write_csv_stream
    from genesis.result import OutputColumn, QueryResult

    table = pa.table({"t": pa.array(["", None, "a"]), "n": pa.array([1, 2, None], pa.int32())})
    result = QueryResult((OutputColumn("t", "varchar"), OutputColumn("n", "integer")), table)
    buffer = io.StringIO(newline="")
    write_csv_stream(result, buffer)
    assert buffer.getvalue() == '"t","n"\r\n"",1\r\n,2\r\n"a",\r\n'
    # The standard library's reader reads unquoted fields as numbers under QUOTE_NONNUMERIC
    # (it cannot read an empty field so, hence the null number is left out here).
    text = '"t","n"\r\n"",1\r\n"a",2\r\n'
    table = pa.table({"t": pa.array(["", "a"]), "n": pa.array([1, 2], pa.int32())})
    buffer = io.StringIO(newline="")
    write_csv_stream(QueryResult(result.columns, table), buffer)
    assert buffer.getvalue() == text
    assert list(csv.reader(io.StringIO(text, newline=""), quoting=csv.QUOTE_NONNUMERIC))[1:] == [
        ["", 1.0], ["a", 2.0]]


def test_run_format_csv_is_the_file_destination_csv(mini, tmp_path):
    refreshed = cli(mini, "refresh", "listing")
    assert refreshed.exit_code == 0, refreshed.output
    ran = cli(mini, "run", "listing", "--format", "csv", "--output", str(tmp_path / "run.csv"))
    assert ran.exit_code == 0
    assert (tmp_path / "run.csv").read_bytes() == (mini / "out" / "listing.csv").read_bytes()


# ---------------------------------------------------------------- SQL of the target under review


PROD_TARGET = """  prod:
    engine: trino
    trino: {host: trino.example.invalid, port: 443, user: ci, catalog: iceberg, schema: studio}
"""
DAYS_INPUT = """name: days_to_shoot
from: movie
fields:
  - movie.movie_id
  - {name: days, sql: "date_diff('day', current_date, production.shoot_start)"}
"""


@pytest.fixture
def reviewed_repo(tmp_path):
    """The gitops test repository with a Trino `prod` target next to the default local one,
    and, in the working tree only, a tracker whose SQL differs between the dialects."""
    from tests.test_gitops import git, tracker_yaml, write_project

    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    project = write_project(root / "analytics")
    (project / "genesis.yaml").write_text((project / "genesis.yaml").read_text() + PROD_TARGET)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    (project / "inputs" / "days_to_shoot.yaml").write_text(DAYS_INPUT)
    (project / "trackers" / "days.yaml").write_text(tracker_yaml("days", "days_to_shoot"))
    return project


def test_diff_shows_the_sql_of_the_target_under_review(reviewed_repo, monkeypatch):
    monkeypatch.chdir(reviewed_repo.parent)
    compiled = {dialect: cli(reviewed_repo, "compile", "days", "--dialect", dialect).stdout.rstrip("\n")
                for dialect in ("trino", "duckdb")}
    assert compiled["trino"] != compiled["duckdb"]  # else this test could not tell them apart
    for args, dialect, line in (
            ([], "duckdb", "SQL shown as target 'local' runs it (DuckDB)"),
            (["--target", "prod"], "trino", "SQL shown as target 'prod' runs it (Trino)")):
        report = json.loads(cli(reviewed_repo, "diff", "--base", "main", "--format", "json", *args).stdout)
        days = next(t for t in report["trackers"] if t["name"] == "days")
        added = [line[1:] for line in days["sql_diff"].splitlines()[3:]]
        assert (report["dialect"], report["target"]) == (dialect, args[-1] if args else "local")
        assert "\n".join(added) == compiled[dialect]
        markdown = cli(reviewed_repo, "diff", "--base", "main", "--format", "markdown", *args).stdout
        assert f"_{line}_" in markdown.splitlines()
        text = cli(reviewed_repo, "diff", "--base", "main", *args).stdout
        assert text.splitlines()[1] == line


def test_docs_show_the_sql_of_the_target_under_review(reviewed_repo, tmp_path):
    import html

    for args, dialect, line in (([], "duckdb", "SQL shown as target &#39;local&#39; runs it (DuckDB)"),
                                (["--target", "prod"], "trino", "SQL shown as target &#39;prod&#39; runs it (Trino)")):
        out = tmp_path / (args[-1] if args else "default")
        result = cli(reviewed_repo, "docs", "--out", str(out), *args)
        assert result.exit_code == 0, result.output
        page = (out / "index.html").read_text()
        assert line in page or html.unescape(line) in html.unescape(page)
        assert "DATE_SUB" in page if dialect == "duckdb" else "DATE_SUB" not in page


# ---------------------------------------------------------------- the demo at scale 10


def test_demo_at_scale_10_passes_every_example_check_and_shows_progress(tmp_path):
    from tests.test_refresh_e2e import copy_example

    project = copy_example(tmp_path / "example")
    demo = cli(project, "demo", "--scale", "10")
    assert demo.exit_code == 0, demo.output
    progress = demo.stderr.splitlines()
    assert progress[0] == "generating the sample studio at scale 10 ..."
    assert [line.split("]")[0] for line in progress[1:]] == [f"[{i}/8" for i in range(1, 9)]
    assert all(" rows)" in line for line in progress[1:])
    refreshed = cli(project, "refresh", "--all", "--dry-run", "--format", "json")
    report = json.loads(refreshed.stdout)
    assert [(t["tracker"], t["status"], t["error"]) for t in report["trackers"] if t["status"] != "checked"] == []
    from tests.test_refresh_e2e import tracker_docs  # a for_each tracker reports each part

    assert sorted(t["tracker"] for t in report["trackers"]) == sorted(tracker_docs(project))
    assert refreshed.exit_code == 0
