"""The validation rule registry: every rule has a bad project that makes it speak.

Each case writes one or more files into a copy of the mini project, runs the rule alone
(`rule(project)`) and `genesis validate`, and expects the exact located line. A rule
added to the registry without a case here fails `test_every_rule_has_a_case`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner

from genesis.cli import main
from genesis.errors import ErrorCollector, ValidationError
from genesis.project.load import load_project
from genesis.validate import all_rules, check_tracker, validate_project
from tests.mini_data import copy_project

_SHEETS = "destination: {type: google_sheets, spreadsheet_id: s1, worksheet: tab}\n"
_AIRTABLE = "destination: {type: airtable, base_id: app1, table: t}\n"


def _without_compiler_format_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """The compiler stops checking formats (issue 12 moves that to the format rule): here
    the rule alone must find the problem. raising=False: after that change there is
    nothing left to switch off."""
    import importlib

    try:
        plan = importlib.import_module("genesis.compiler.plan")
    except ImportError:  # the compiler's modules were reorganised: nothing to switch off
        return
    monkeypatch.setattr(plan, "_check_format", lambda *args: None, raising=False)


def _few_sheet_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    """A tab that holds 3 columns, so that an 8-column input overflows it without
    compiling 18,279 columns."""
    from genesis.destinations import sheets_layout

    monkeypatch.setattr(sheets_layout, "MAX_COLUMNS", 3)


@dataclass(frozen=True)
class Case:
    files: dict[str, str]
    expected: str  # the line `genesis validate` prints (run from the project folder)
    setup: Callable[[pytest.MonkeyPatch], None] | None = None
    also: tuple[str, ...] = field(default=())  # more rules that may speak on the same project


CASES: dict[str, Case] = {
    "datasource.primary_key": Case(
        {"datasources/bad.yaml": "name: bad\ntable: iceberg.studio.bad\nprimary_key: [idd]\nfields:\n  id: {type: bigint}\n"},
        "datasources/bad.yaml:3:14: error: primary_key 'idd' is not a field of 'bad' (did you mean 'id'?)"),
    "datasource.sql": Case(
        {"datasources/bad.yaml": "name: bad\ntable: iceberg.studio.bad\nfields:\n  id: {type: bigint}\n"
                                 "  x: {type: bigint, sql: \"movie.id + 1\"}\n"},
        "datasources/bad.yaml:5:26: error: field 'bad.x' may only use the table's own columns, not 'movie.id'"),
    "datasource.joins": Case(
        {"datasources/bad.yaml": "name: bad\ntable: iceberg.studio.bad\nfields:\n  id: {type: bigint}\njoins:\n"
                                 "  m: {datasource: moovie, on: {id: movie_id}, relationship: many_to_one}\n"},
        "datasources/bad.yaml:6:3: error: join 'm' points at unknown data source 'moovie' (did you mean 'movie'?)"),
    "types.measures": Case(
        {"datasources/bad.yaml": "name: bad\ntable: iceberg.studio.bad\nfields:\n  id: {type: bigint}\n"
                                 "  label: {type: varchar}\nmeasures:\n  total: {agg: sum, field: label}\n"},
        "datasources/bad.yaml:7:28: error: measure 'bad.total' takes the sum of a varchar value; sum needs numbers "
        "(use count, count_distinct, min or max, or cast the value to a number)"),
    "types.inputs": Case(
        {"inputs/bad.yaml": "name: bad\nfrom: movie\nfields: [movie.title]\nfilters:\n  - \"movie.launch_date > 5\"\n"},
        "inputs/bad.yaml:5:5: error: filter 1 compares 'movie.launch_date' (date) with 5 (integer); Trino cannot compare "
        "date with number (compare a date with a date (DATE '2025-01-31', current_date), a number with a number, "
        "text with text, or cast(x AS type))"),
    "tracker.input": Case(
        {"trackers/bad.yaml": "name: bad\ninput: movie_listin\ndestination: {type: file, path: out/x.csv}\n"},
        "trackers/bad.yaml:2:8: error: tracker 'bad' uses unknown input 'movie_listin' (did you mean 'movie_listing'?)"),
    "tracker.schedule": Case(
        {"trackers/bad.yaml": "name: bad\ninput: movie_listing\nschedule: \"0 6 * *\"\n"
                              "destination: {type: file, path: out/x.csv}\n"},
        "trackers/bad.yaml:3:11: error: schedule '0 6 * *' is not a valid cron expression: expected 5 fields "
        "(five fields: minute hour day-of-month month day-of-week)"),
    "tracker.key_columns": Case(
        {"trackers/bad.yaml": "name: bad\ninput: movie_listing\nkey: [movie.movie_id]\n"
                              "checks: {not_null: [movie.titel]}\ndestination: {type: file, path: out/x.csv}\n"},
        "trackers/bad.yaml:4:21: error: checks.not_null 'movie.titel' is not an output column of input "
        "'movie_listing' (did you mean 'movie.title'?)"),
    "tracker.fresh": Case(
        {"trackers/bad.yaml": "name: bad\ninput: movie_listing\nchecks: {fresh: {field: movie.title, within: 1h}}\n"
                              "destination: {type: file, path: out/x.csv}\n"},
        "trackers/bad.yaml:3:25: error: checks.fresh.field 'movie.title' is varchar, not a date or timestamp "
        "(name a field such as op_ts or updated_at)"),
    "datasource.definitions": Case(
        {"datasources/loop.yaml": "name: loop\ntable: iceberg.studio.loop\nprimary_key: [id]\n"
                                  "fields: {id: {type: bigint}}\n"
                                  "measures:\n  a: {sql: b * 2}\n  b: {sql: a + 1}\n"},
        "datasources/loop.yaml:6:12: error: measure 'loop.a' refers to itself: loop.a -> loop.b -> loop.a "
        "(define it from measures that do not lead back to it)"),
    "tracker.for_each": Case(
        {"trackers/bad.yaml": "name: bad\ninput: movie_listing\nfor_each: {parameter: country, values: [US]}\n"
                              "destination: {type: file, path: \"out/{{ country }}.csv\"}\n"},
        "trackers/bad.yaml:3:23: error: for_each parameter 'country' is not a parameter of input 'movie_listing' "
        "(did you mean 'countries'?)"),
    "destination.file_extension": Case(
        {"trackers/bad.yaml": "name: bad\ninput: movie_listing\ndestination: {type: file, path: out/x.cvs}\n"},
        "trackers/bad.yaml:3:14: error: file destination 'out/x.cvs' must end in one of .csv, .json, .parquet, .xlsx "
        "(did you mean '.csv'?)"),
    "destination.file_path": Case(
        {"trackers/bad.yaml": "name: bad\ninput: movie_listing\ndestination: {type: file, path: ../x.csv}\n"},
        "trackers/bad.yaml:3:14: error: file destination '../x.csv' leaves the project ('..') (use a path relative "
        "to the project (or to output_root in genesis.yaml), or set allow_outside_project: true on the destination)"),
    "destination.file_mode": Case(
        {"trackers/bad.yaml": "name: bad\ninput: movie_listing\nmode: upsert\ndestination: {type: file, path: x.csv}\n"},
        "trackers/bad.yaml:3:7: error: mode: upsert does not apply to a file destination: a file is always written "
        "whole (remove `mode`, or write mode: replace)"),
    # Passed `validate` before the registry; refused by the Sheets writer only.
    "destination.key_required": Case(
        {"trackers/bad.yaml": "name: bad\ninput: movie_listing\nmode: append\n" + _SHEETS},
        "trackers/bad.yaml:1:1: error: tracker 'bad' writes to google_sheets in append mode and needs a `key` "
        "(key: [the reference that identifies a row, e.g. movie.movie_id])"),
    # Passed `validate` before the registry; refused by sync.check_policy at write time.
    "destination.replace_keeps_removed": Case(
        {"trackers/bad.yaml": "name: bad\ninput: movie_listing\nkey: [movie.movie_id]\nmode: replace\n"
                              "on_removed: keep\n" + _SHEETS},
        "trackers/bad.yaml:5:13: error: mode 'replace' cannot keep removed rows unmarked (on_removed: keep) "
        "(use on_removed: delete or mark, or mode: upsert)"),
    # Passed `validate` before the registry; refused by the Airtable writer only.
    "destination.airtable_key_size": Case(
        {"trackers/bad.yaml": "name: bad\ninput: movie_listing\n"
                              "key: [movie.movie_id, movie.title, movie.status, movie.runtime_min]\n" + _AIRTABLE},
        "trackers/bad.yaml:3:50: error: Airtable matches records on at most 3 key fields; this key has 4 "
        "(shorten `key`)"),
    # Passed `validate` before the registry; refused by the Sheets writer only.
    "destination.status_column": Case(
        {"inputs/bad.yaml": "name: bad\nfrom: movie\nfields:\n  - movie.movie_id\n"
                            "  - {field: movie.status, label: Genesis status}\n",
         "trackers/bad.yaml": "name: bad\ninput: bad\nkey: [movie.movie_id]\n" + _SHEETS},
        "inputs/bad.yaml:5:5: error: output column 'Genesis status' clashes with the status column Genesis keeps "
        "(rename the field with a label)"),
    "destination.sheets_columns": Case(
        {"trackers/bad.yaml": "name: bad\ninput: movie_listing\nkey: [movie.movie_id]\n" + _SHEETS},
        "trackers/bad.yaml:4:14: error: tab 'tab' would need 8 columns; Google Sheets allows 3 "
        "(remove columns from the input)", setup=_few_sheet_columns),
    "format.fits_type": Case(
        {"inputs/bad.yaml": "name: bad\nfrom: movie\nfields:\n  - {field: movie.title, format: {date: \"%Y\"}}\n"},
        "inputs/bad.yaml:4:5: error: format of 'title': format 'date' needs a date or "
        "timestamp column, not varchar", setup=_without_compiler_format_check),
    "config.alerts": Case(
        {"genesis.yaml": "name: mini\ndefault_target: local\ntargets:\n"
                         "  local: {engine: duckdb, warehouse: .genesis/warehouse, destinations: local}\n"
                         "history: {late_after: soon}\n"},
        "genesis.yaml:5:23: error: history.late_after: 'soon' is not a duration (write a number with a unit: 90s, "
        "15m, 2h, 1d, 1d12h)"),
}


def _project(tmp_path: Path, case: Case) -> Path:
    root = copy_project(tmp_path / "p")
    for path, content in case.files.items():
        (root / path).write_text(content)
    return root


def test_every_rule_has_a_case():
    names = [rule.name for rule in all_rules()]
    assert len(names) == len(set(names)), "two rules share a name"
    assert sorted(set(names) - set(CASES)) == [], "a rule without a bad-project case"
    assert sorted(set(CASES) - set(names)) == [], "a case for a rule that is not registered"


@pytest.mark.parametrize("name", sorted(CASES))
def test_rule_finds_its_problem(tmp_path, monkeypatch, name):
    case = CASES[name]
    if case.setup:
        case.setup(monkeypatch)
    root = _project(tmp_path, case)
    monkeypatch.chdir(root)
    collected = ErrorCollector()
    project = load_project(root, collect=collected)
    assert collected.errors == []
    rule = next(r for r in all_rules() if r.name == name)
    assert case.expected in [problem.render() for problem in rule(project)]
    result = CliRunner().invoke(main, ["validate", "--project", str(root)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert case.expected in result.output.splitlines()


def test_the_mini_project_breaks_no_rule(tmp_path, monkeypatch):
    root = copy_project(tmp_path / "p")
    (root / "trackers" / "ok.yaml").write_text("name: ok\ninput: movie_listing\nkey: [movie.movie_id]\n"
                                               "mode: replace\non_removed: mark\n" + _AIRTABLE)
    monkeypatch.chdir(root)
    project = load_project(root)
    assert {rule.name: rule(project) for rule in all_rules()} == {rule.name: [] for rule in all_rules()}
    validate_project(project)


def test_refresh_refuses_a_tracker_that_only_the_writer_refused_before(tmp_path, monkeypatch):
    """check_tracker (run before each refresh writes) runs the destination rules too."""
    root = _project(tmp_path, CASES["destination.replace_keeps_removed"])
    monkeypatch.chdir(root)
    project = load_project(root)
    with pytest.raises(ValidationError) as caught:
        check_tracker(project, project.trackers["bad"])
    assert [e.render() for e in caught.value.errors] == [CASES["destination.replace_keeps_removed"].expected]


@pytest.mark.parametrize("compiler_checks_formats", [True, False], ids=["compiler-checks", "rule-only"])
def test_a_format_problem_is_reported_once_with_the_trackers_it_breaks(tmp_path, monkeypatch,
                                                                        compiler_checks_formats):
    """Whether the compiler still checks formats or not, one line, naming both trackers."""
    if not compiler_checks_formats:
        _without_compiler_format_check(monkeypatch)
    root = _project(tmp_path, CASES["format.fits_type"])
    for name in ("one", "two"):
        (root / "trackers" / f"{name}.yaml").write_text(
            f"name: {name}\ninput: bad\ndestination: {{type: file, path: out/{name}.csv}}\n")
    monkeypatch.chdir(root)
    result = CliRunner().invoke(main, ["validate", "--project", str(root)])
    lines = [line for line in result.output.splitlines() if "format of" in line]
    assert lines == [CASES["format.fits_type"].expected + " (breaks trackers: one, two)"]


def test_refresh_writes_a_file_whatever_its_mode_says(tmp_path, monkeypatch):
    """`mode` on a file changes nothing written: validate refuses it, a refresh does not."""
    root = _project(tmp_path, CASES["destination.file_mode"])
    monkeypatch.chdir(root)
    project = load_project(root)
    assert check_tracker(project, project.trackers["bad"]).input.name == "movie_listing"
    with pytest.raises(ValidationError):
        validate_project(project)
