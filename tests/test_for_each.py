"""`for_each` trackers: one part per value, each written, reported and recorded on its own.

Real parts throughout: the mini warehouse on DuckDB, files on disk, and the real gspread and
pyairtable clients over HTTP to the local Sheets and Airtable servers. Each part's rows are
compared with a run of the input with that parameter value.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from genesis.api import run_query
from genesis.cli import main
from genesis.project.load import load_project
from tests.mini_data import build_warehouse, copy_project
from tests.test_live_refresh import LIVE_TARGET, live_servers  # the live target over the local servers

INPUT = """name: movies_by_country
from: movie
fields:
  - movie.movie_id
  - field: movie.title
    label: Title
  - field: production.country
    label: Country
filters:
  - "production.country = {{ country }}"
  - "movie.movie_id <> 999"
parameters:
  country: {type: varchar, default: US}
sort: [movie.movie_id]
"""

VENDOR_INPUT = """name: movies_by_vendor
from: movie
fields:
  - movie.movie_id
  - field: movie.title
    label: Title
filters:
  - "production.vendor_id = {{ vendor_id }}"
parameters:
  vendor_id: {type: bigint, default: 1}
sort: [movie.movie_id]
"""

FILE_TRACKER = """name: by-country
input: movies_by_country
for_each: {parameter: country, values_from: production.country}
destination: {type: file, path: "out/countries/{{ country }}.csv"}
key: [movie.movie_id]
"""



@pytest.fixture(scope="module")
def warehouse_project(tmp_path_factory):
    """The mini project with its warehouse built once; tests copy it."""
    project = copy_project(tmp_path_factory.mktemp("fe") / "base")
    build_warehouse(project)
    (project / "inputs" / "movies_by_country.yaml").write_text(INPUT)
    (project / "inputs" / "movies_by_vendor.yaml").write_text(VENDOR_INPUT)
    return project


@pytest.fixture
def project(warehouse_project, tmp_path):
    import shutil

    target = tmp_path / "p"
    shutil.copytree(warehouse_project, target)
    return target


def cli(project: Path, *args: str):
    result = CliRunner().invoke(main, [*args, "--project", str(project)])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def refresh_json(project: Path, *args: str) -> tuple[int, dict]:
    result = cli(project, "refresh", *args, "--format", "json")
    return result.exit_code, json.loads(result.stdout)


def input_rows(project: Path, input_name: str, **params) -> list[dict]:
    """The input run on its own with the parameter value: what each part must hold."""
    return run_query(load_project(project), f"input:{input_name}", params=params).table.to_pylist()


def csv_rows(path: Path) -> list[dict]:
    import csv

    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def countries(project: Path) -> list[str]:
    from genesis.engines import open_engine

    engine = open_engine(load_project(project))
    try:
        table = engine.execute("SELECT DISTINCT country FROM iceberg.studio.production WHERE country IS NOT NULL",
                               label="test")
    finally:
        engine.close()
    return sorted(table.column(0).to_pylist())


# ------------------------------------------------------------------------------ files


def test_file_parts_hold_each_values_rows(project):
    (project / "trackers" / "by-country.yaml").write_text(FILE_TRACKER)
    code, report = refresh_json(project, "by-country", "--jobs", "3")
    assert code == 0, report
    values = countries(project)
    assert len(values) >= 3
    assert [t["tracker"] for t in report["trackers"]] == [f"by-country[{v}]" for v in values]
    assert {t["status"] for t in report["trackers"]} == {"ok"}
    for value in values:
        written = csv_rows(project / "out" / "countries" / f"{value}.csv")
        expected = input_rows(project, "movies_by_country", country=value)
        assert expected, value
        assert [int(r["movie_id"]) for r in written] == [r["movie_id"] for r in expected]
        assert [r["Title"] for r in written] == [r["Title"] for r in expected]
        assert {r["Country"] for r in written} == {value}
    # the run history has one row per part, and `genesis status` shows each part
    status = json.loads(cli(project, "status", "--format", "json").stdout)
    assert [s["tracker"] for s in status["trackers"]] == [f"by-country[{v}]" for v in values]
    assert {s["state"] for s in status["trackers"]} == {"ok"}


def test_vanished_value_is_reported_once_and_its_file_kept(project):
    tracker = FILE_TRACKER.replace("values_from: production.country", "values: [US, CA, GB]")
    (project / "trackers" / "by-country.yaml").write_text(tracker)
    code, report = refresh_json(project, "by-country")
    assert code == 0 and report["warnings"] == []
    gb = project / "out" / "countries" / "GB.csv"
    before = (gb.read_bytes(), gb.stat().st_mtime_ns)

    (project / "trackers" / "by-country.yaml").write_text(tracker.replace("[US, CA, GB]", "[US, CA, FR]"))
    code, report = refresh_json(project, "by-country")
    assert code == 0, report
    statuses = {t["tracker"]: t["status"] for t in report["trackers"]}
    assert statuses == {"by-country[US]": "unchanged", "by-country[CA]": "unchanged",
                        "by-country[FR]": "ok", "by-country[GB]": "vanished"}
    assert len(report["warnings"]) == 1
    assert "'GB'" in report["warnings"][0] and "out/countries/GB.csv" in report["warnings"][0]
    assert "not deleted" in report["warnings"][0]
    assert (gb.read_bytes(), gb.stat().st_mtime_ns) == before  # untouched
    assert (project / "out" / "countries" / "FR.csv").is_file()  # a new value creates its file
    assert csv_rows(project / "out" / "countries" / "FR.csv") == []  # no French production

    text = cli(project, "status").stdout
    assert "by-country[GB]  vanished" in text

    code, report = refresh_json(project, "by-country")  # reported once, recorded as vanished
    assert report["warnings"] == []
    assert "by-country[GB]" not in {t["tracker"] for t in report["trackers"]}
    assert "by-country[GB]  vanished" in cli(project, "status").stdout

    summary = cli(project, "refresh", "by-country").output
    assert "warning" not in summary


def test_text_summary_names_the_vanished_value(project):
    tracker = FILE_TRACKER.replace("values_from: production.country", "values: [US, CA]")
    (project / "trackers" / "by-country.yaml").write_text(tracker)
    assert cli(project, "refresh", "by-country").exit_code == 0
    (project / "trackers" / "by-country.yaml").write_text(tracker.replace("[US, CA]", "[US]"))
    result = cli(project, "refresh", "by-country")
    assert result.exit_code == 0
    assert "by-country[CA]" in result.stdout and "vanished" in result.stdout
    assert "warning: tracker 'by-country': value 'CA' is no longer among its for_each values" in result.stdout


def test_param_refreshes_one_part_and_judges_nothing_vanished(project):
    (project / "trackers" / "by-country.yaml").write_text(FILE_TRACKER)
    assert refresh_json(project, "by-country")[0] == 0
    code, report = refresh_json(project, "by-country", "--param", "country=CA")
    assert code == 0
    assert [t["tracker"] for t in report["trackers"]] == ["by-country[CA]"] and report["warnings"] == []
    code, report = refresh_json(project, "by-country", "--param", "country=ZZ")
    assert code == 1
    assert "not one of the for_each values" in report["trackers"][0]["error"]


def test_values_from_applies_the_inputs_other_filters(project):
    # The filter that does not use the for_each parameter keeps Canada out of the values.
    (project / "inputs" / "movies_by_country.yaml").write_text(
        INPUT.replace("movie.movie_id <> 999", "production.country <> 'CA'"))
    (project / "trackers" / "by-country.yaml").write_text(FILE_TRACKER)
    code, report = refresh_json(project, "by-country")
    assert code == 0
    values = [v for v in countries(project) if v != "CA"]
    assert [t["tracker"] for t in report["trackers"]] == [f"by-country[{v}]" for v in values]


def test_too_many_values_fail_the_tracker_and_write_nothing(project):
    (project / "trackers" / "by-country.yaml").write_text(
        FILE_TRACKER.replace("values_from: production.country", "values_from: production.country, max_parts: 2"))
    (project / "trackers" / "plain.yaml").write_text(
        "name: plain\ninput: movies_by_country\ndestination: {type: file, path: out/plain.csv}\n")
    code, report = refresh_json(project, "--all")
    assert code == 1
    by_name = {t["tracker"]: t for t in report["trackers"]}
    assert by_name["plain"]["status"] == "ok"  # the other tracker is not stopped
    failed = by_name["by-country"]
    assert failed["status"] == "failed"
    assert "more than max_parts (2)" in failed["error"]
    assert failed["location"].endswith(os.path.join("trackers", "by-country.yaml") + ":3:76")  # max_parts
    assert not (project / "out" / "countries").exists()


def test_values_are_made_safe_in_file_names(project):
    (project / "trackers" / "by-country.yaml").write_text(
        FILE_TRACKER.replace("values_from: production.country", "values: ['../../escape', 'a/b', '.hidden']"))
    code, report = refresh_json(project, "by-country")
    assert code == 0, report
    written = sorted(p.name for p in (project / "out" / "countries").iterdir() if not p.name.startswith(".genesis"))
    assert written == ["_.._escape.csv", "a_b.csv", "hidden.csv"]
    assert not (project.parent / "escape.csv").exists()
    assert [t["tracker"] for t in report["trackers"]] == ["by-country[_.._escape]", "by-country[a_b]",
                                                          "by-country[hidden]"]


def test_label_names_the_destination(project):
    (project / "trackers" / "by-vendor.yaml").write_text(
        "name: by-vendor\ninput: movies_by_vendor\n"
        "for_each: {parameter: vendor_id, values_from: production.vendor_id, label_from: production.vendor.name}\n"
        "destination: {type: file, path: \"out/vendors/{{ production_vendor_name }} ({{ vendor_id }}).json\"}\n")
    code, report = refresh_json(project, "by-vendor")
    assert code == 0, report
    files = sorted(p.name for p in (project / "out" / "vendors").glob("*.json"))
    assert len(files) == len(report["trackers"]) >= 2
    for part in report["trackers"]:
        vendor_id = int(part["tracker"].split("[")[1].rstrip("]"))
        path = Path(part["details"]["path"])
        assert path.name.endswith(f"({vendor_id}).json")
        rows = json.loads(path.read_text())
        expected = input_rows(project, "movies_by_vendor", vendor_id=vendor_id)
        assert [r["movie_id"] for r in rows] == [r["movie_id"] for r in expected]


# ------------------------------------------------------------------------------ errors


def validate_lines(project: Path) -> list[str]:
    result = cli(project, "validate")
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    return [line for line in result.output.splitlines() if ": error: " in line]


@pytest.mark.parametrize("for_each, message, line_col", [
    ("{parameter: contry, values: [US]}", "for_each parameter 'contry' is not a parameter of input "
     "'movies_by_country' (did you mean 'country'?)", "3:23"),
    ("{parameter: country, values_from: production.contry}", "production", "3:45"),
    ("{parameter: country, values: [US], values_from: production.country}",
     "for_each needs exactly one of `values` (a list) and `values_from` (a field)", "3:11"),
    ("{parameter: country, values: [US, US]}", "for_each value 'US' is listed twice", "3:45"),
])
def test_for_each_errors_are_located(project, for_each, message, line_col):
    (project / "trackers" / "by-country.yaml").write_text(
        FILE_TRACKER.replace("{parameter: country, values_from: production.country}", for_each))
    lines = validate_lines(project)
    wanted = [line for line in lines if message in line]
    assert wanted, lines
    assert f"{os.path.join('trackers', 'by-country.yaml')}:{line_col}: error:" in wanted[0], wanted


def test_destination_that_ignores_the_value_is_an_error(project):
    (project / "trackers" / "by-country.yaml").write_text(
        FILE_TRACKER.replace('"out/countries/{{ country }}.csv"', "out/countries.csv"))
    lines = validate_lines(project)
    assert any("does not use the for_each value: every part would write to the same place" in line
               for line in lines), lines


def test_unknown_template_name_has_a_did_you_mean(project):
    (project / "trackers" / "by-country.yaml").write_text(
        FILE_TRACKER.replace("{{ country }}", "{{ contry }}"))
    lines = validate_lines(project)
    assert any("uses '{{ contry }}', which for_each does not define (did you mean 'country'?)" in line
               for line in lines), lines


def test_parameter_set_twice_and_schema_errors(project):
    (project / "trackers" / "by-country.yaml").write_text(FILE_TRACKER + "parameters: {country: US}\n")
    lines = validate_lines(project)
    assert any("parameter 'country' is set by both `parameters` and `for_each`" in line for line in lines), lines
    (project / "trackers" / "by-country.yaml").write_text(
        FILE_TRACKER.replace("values_from: production.country", "values_from: production.country, max_part: 3"))
    lines = validate_lines(project)
    assert any("max_part" in line for line in lines), lines


def test_two_values_writing_one_tab_is_an_error_at_refresh(project):
    # Labels decide the name; two vendors with one label would share a tab: refused, nothing written.
    (project / "trackers" / "by-country.yaml").write_text(
        FILE_TRACKER.replace("values_from: production.country", "values: [US, us]")
        .replace("type: file, path: \"out/countries/{{ country }}.csv\"",
                 "type: google_sheets, spreadsheet_id: s, worksheet: \"{{ country }}\""))
    code, report = refresh_json(project, "by-country")
    assert code == 1
    assert "would write to the same place" in report["trackers"][0]["error"]


# ------------------------------------------------------------------------------ diff --data


def test_diff_data_diffs_each_part(project):
    tracker = FILE_TRACKER.replace("values_from: production.country", "values: [US, CA]")
    (project / "trackers" / "by-country.yaml").write_text(tracker)
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    (project / ".gitignore").write_text(".genesis/\nout/\n")
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "base"]):
        subprocess.run(["git", *args], cwd=project, check=True, env=env)
    (project / "trackers" / "by-country.yaml").write_text(tracker.replace("[US, CA]", "[US, GB]"))
    (project / "inputs" / "movies_by_country.yaml").write_text(INPUT.replace("label: Title", "label: Name"))
    result = cli(project, "diff", "--base", "HEAD", "--data", "--format", "json")
    assert result.exit_code == 0, result.output
    change = {t["name"]: t for t in json.loads(result.stdout)["trackers"]}["by-country"]
    parts = change["data"]["parts"]
    assert list(parts) == ["by-country[US]", "by-country[GB]", "by-country[CA]"]
    us = input_rows(project, "movies_by_country", country="US")
    assert parts["by-country[US]"]["base_rows"] == parts["by-country[US]"]["head_rows"] == len(us)
    assert parts["by-country[US]"]["columns_added"] == ["Name"]
    assert parts["by-country[GB]"]["part"] == "added"
    assert parts["by-country[GB]"]["added"] == len(input_rows(project, "movies_by_country", country="GB"))
    assert parts["by-country[CA]"]["part"] == "removed"
    text = cli(project, "diff", "--base", "HEAD", "--data").stdout
    assert "by-country[GB] (added part):" in text


# ------------------------------------------------------------------------------ Sheets and Airtable


@pytest.fixture
def live(project, tmp_path, monkeypatch):
    (project / "genesis.yaml").write_text((project / "genesis.yaml").read_text() + LIVE_TARGET)
    with live_servers(project, tmp_path, monkeypatch, spreadsheet=("sheet-fe", "Per country"),
                      base="appFE") as (sheets, airtable, _):
        yield project, sheets, airtable


def test_sheets_tab_per_value(live):
    project, sheets, _ = live
    (project / "trackers" / "by-country.yaml").write_text(
        "name: by-country\ninput: movies_by_country\n"
        "for_each: {parameter: country, values_from: production.country}\n"
        "destination: {type: google_sheets, spreadsheet_id: sheet-fe, worksheet: \"Movies {{ country }}\"}\n"
        "key: [movie.movie_id]\n")
    code, report = refresh_json(project, "by-country", "--target", "live", "--jobs", "3")
    assert code == 0, report
    values = countries(project)
    assert [t["tracker"] for t in report["trackers"]] == [f"by-country[{v}]" for v in values]
    for value in values:
        grid = sheets.grid("sheet-fe", f"Movies {value}")
        assert grid[0][:3] == ["movie_id", "Title", "Country"]
        expected = input_rows(project, "movies_by_country", country=value)
        assert [int(r[0]) for r in grid[1:]] == [r["movie_id"] for r in expected]
        assert [r[1] for r in grid[1:]] == [r["Title"] for r in expected]
    code, report = refresh_json(project, "by-country", "--target", "live")
    assert {t["status"] for t in report["trackers"]} == {"unchanged"}

    # a value leaves: its tab stays as it was, and the refresh says so
    (project / "inputs" / "movies_by_country.yaml").write_text(
        INPUT.replace("movie.movie_id <> 999", f"production.country <> '{values[0]}'"))
    before = sheets.grid("sheet-fe", f"Movies {values[0]}")
    code, report = refresh_json(project, "by-country", "--target", "live")
    assert code == 0
    assert {t["tracker"]: t["status"] for t in report["trackers"]}[f"by-country[{values[0]}]"] == "vanished"
    assert any(f"tab 'Movies {values[0]}'" in w or f"Movies {values[0]}" in w for w in report["warnings"])
    assert sheets.grid("sheet-fe", f"Movies {values[0]}") == before


def test_airtable_table_per_value(live):
    project, _, airtable = live
    (project / "trackers" / "by-country.yaml").write_text(
        "name: by-country\ninput: movies_by_country\n"
        "for_each: {parameter: country, values: [US, GB]}\n"
        "destination: {type: airtable, base_id: appFE, table: \"Movies {{ country }}\"}\n"
        "key: [movie.movie_id]\n")
    code, report = refresh_json(project, "by-country", "--target", "live", "--jobs", "2")
    assert code == 0, report
    assert {t["tracker"]: t["status"] for t in report["trackers"]} == {"by-country[US]": "ok",
                                                                      "by-country[GB]": "ok"}
    for value in ("US", "GB"):
        records = airtable.rows("appFE", f"Movies {value}")
        expected = input_rows(project, "movies_by_country", country=value)
        assert sorted(int(r["movie_id"]) for r in records) == sorted(r["movie_id"] for r in expected)
        assert {r["Country"] for r in records} == {value}
    assert airtable.rows("appFE", "People's own table") == []

    # a new value creates its table
    (project / "trackers" / "by-country.yaml").write_text(
        (project / "trackers" / "by-country.yaml").read_text().replace("[US, GB]", "[US, GB, CA]"))
    code, report = refresh_json(project, "by-country", "--target", "live")
    assert code == 0
    assert {t["tracker"]: t["status"] for t in report["trackers"]}["by-country[CA]"] == "ok"
    assert len(airtable.rows("appFE", "Movies CA")) == len(input_rows(project, "movies_by_country", country="CA"))


def test_catalog_shows_the_fan_out_and_each_part(project, tmp_path):
    (project / "trackers" / "by-country.yaml").write_text(
        FILE_TRACKER.replace("values_from: production.country", "values: [US, CA]"))
    assert cli(project, "refresh", "by-country").exit_code == 0
    result = cli(project, "docs", "--out", str(tmp_path / "site"))
    assert result.exit_code == 0, result.output
    page = (tmp_path / "site" / "index.html").read_text()
    assert "one part per value of parameter country: the values US, CA (at most 200)" in page
    assert "by-country[US]: ok" in page and "by-country[CA]: ok" in page
