"""`genesis diff` and `genesis impact` on throwaway git repositories.

Each test commits a small project (three data sources, four inputs, four trackers), changes
the working tree the way a pull request would, and checks that exactly the affected
trackers are reported.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
from click.testing import CliRunner

from genesis.cli import main
from genesis.compiler import compile_input
from genesis.compiler.plan import ReferenceUse
from genesis.project.load import load_project
from genesis.review import diff_against, diff_rows, find_impact, render_diff

GENESIS_YAML = """\
name: lite
default_target: local
targets:
  local:
    engine: duckdb
    warehouse: .genesis/warehouse
    destinations: local
"""

FILES = {
    "datasources/movie.yaml": """\
        name: movie
        description: One row per title.
        table: iceberg.studio.movie
        primary_key: [movie_id]
        fields:
          movie_id: {type: bigint, description: Title id}
          title: {type: varchar, description: The working title}
          status:
            type: varchar
            description: Where the title is
            labels: {DEV: Development, PHOT: In photography}
          budget: {type: "decimal(18,2)"}
        measures:
          movie_count: {agg: count}
          total_budget: {agg: sum, sql: budget, type: "decimal(18,2)"}
        joins:
          production: {datasource: production, on: {movie_id: movie_id}, relationship: one_to_one}
          cast: {datasource: movie_talent, on: {movie_id: movie_id}, relationship: one_to_many}
        """,
    "datasources/production.yaml": """\
        name: production
        description: One production per title.
        table: iceberg.studio.production
        primary_key: [production_id]
        fields:
          production_id: {type: bigint}
          movie_id: {type: bigint}
          country: {type: varchar}
          shoot_start: {type: date}
        """,
    "datasources/movie_talent.yaml": """\
        name: movie_talent
        table: iceberg.studio.movie_talent
        fields:
          movie_id: {type: bigint}
          talent_name: {type: varchar, description: Who plays}
        """,
    "inputs/movie_list.yaml": """\
        name: movie_list
        description: Every title.
        from: movie
        fields:
          - movie.movie_id
          - {field: movie.title, label: Title}
          - {field: movie.status, label: Status}
        sort: [movie.movie_id]
        """,
    "inputs/movie_cast.yaml": """\
        name: movie_cast
        from: movie
        fields:
          - movie.movie_id
          - {field: movie.title, label: Title}
          - {field: cast.talent_name, label: Cast, agg: list}
        """,
    "inputs/schedule.yaml": """\
        name: schedule
        from: movie
        fields:
          - movie.movie_id
          - {field: production.shoot_start, label: Shoot start}
        filters:
          - "production.country IN ({{ countries }})"
        parameters:
          countries: {type: "array(varchar)", default: [US, CA]}
        """,
    "inputs/budgets.yaml": """\
        name: budgets
        from: movie
        fields:
          - {field: movie.status, label: Status}
          - {field: movie.total_budget, label: Budget}
        """,
}
TRACKERS = {"movies": "movie_list", "cast": "movie_cast", "schedule": "schedule", "budgets": "budgets"}


def tracker_yaml(name: str, input_name: str, key: str | None = None) -> str:
    text = (f"name: {name}\ndescription: The {name} tracker.\ninput: {input_name}\nowner: studio-ops\n"
            f"schedule: \"0 * * * *\"\ndestination: {{type: file, path: out/{name}.csv}}\n")
    return text + (f"key: [{key}]\n" if key else "")


def write_project(root: Path) -> Path:
    """The small studio project used by the gitops and docs tests."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "genesis.yaml").write_text(GENESIS_YAML)
    for path, text in FILES.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(textwrap.dedent(text))
    (root / "trackers").mkdir(exist_ok=True)
    for name, input_name in TRACKERS.items():
        (root / "trackers" / f"{name}.yaml").write_text(
            tracker_yaml(name, input_name, "movie.movie_id" if name in ("movies", "cast") else None))
    return root


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid",
                           "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false", *args],
                          cwd=repo, capture_output=True, text=True, check=True)
    return done.stdout


@pytest.fixture
def repo(tmp_path) -> Path:
    """A git repository whose `analytics/` folder holds the project, committed on main."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    write_project(root / "analytics")
    (root / "README.md").write_text("definitions\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    return root


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


def run_cli(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def diff_json(repo: Path, base: str = "main") -> dict:
    result = run_cli("diff", "--base", base, "--format", "json", "--project", str(repo / "analytics"))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def by_status(report: dict) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for tracker in report["trackers"]:
        out.setdefault(tracker["status"], set()).add(tracker["name"])
    return out


def impacted(project: Path, ref: str) -> set[str]:
    return {t["name"] for t in find_impact(load_project(project), ref).trackers}


# ---------------------------------------------------------------- diff


def test_field_sql_change_reports_exactly_the_trackers_that_use_it(repo):
    project = repo / "analytics"
    edit(project / "datasources/movie.yaml", "title: {type: varchar, description: The working title}",
         'title: {type: varchar, sql: "upper(title)"}')
    report = diff_json(repo)
    assert by_status(report) == {"changed": {"cast", "movies"}, "unchanged": {"schedule", "budgets"}}
    movies = next(t for t in report["trackers"] if t["name"] == "movies")
    assert movies["because"] == ["data source 'movie': field 'title' changed"]
    assert "-  movie.title AS \"Title\"," in movies["sql_diff"]
    assert "+  CAST(UPPER(movie.title) AS TEXT) AS \"Title\"," in movies["sql_diff"]
    assert movies["lines_added"] == 1 and movies["lines_removed"] == 1
    assert impacted(project, "movie.title") == {"cast", "movies"}


def test_join_rename_reports_only_the_tracker_on_that_join(repo):
    project = repo / "analytics"
    edit(project / "datasources/movie.yaml", "  cast: {datasource: movie_talent",
         "  talent: {datasource: movie_talent")
    edit(project / "inputs/movie_cast.yaml", "cast.talent_name", "talent.talent_name")
    report = diff_json(repo)
    assert by_status(report) == {"changed": {"cast"}, "unchanged": {"movies", "schedule", "budgets"}}
    because = report["trackers"][0]["because"]
    assert "data source 'movie': join 'cast' removed" in because
    assert "data source 'movie': join 'talent' added" in because
    assert "input 'movie_cast': fields changed" not in because  # columns are named, not the key
    assert impacted(project, "movie.talent") == {"cast"}
    result = run_cli("impact", "movie.cast", "--project", str(project))
    assert result.exit_code == 1
    assert "did you mean 'movie.cast" not in result.output  # it is gone: suggest what exists
    assert "is not a data source, field, measure or join" in result.output


def test_renaming_a_join_without_fixing_its_input_is_an_error_for_that_tracker(repo):
    project = repo / "analytics"
    edit(project / "datasources/movie.yaml", "  cast: {datasource: movie_talent", "  crew: {datasource: movie_talent")
    report = diff_json(repo)
    assert by_status(report) == {"error": {"cast"}, "unchanged": {"movies", "schedule", "budgets"}}
    assert "cast" in report["trackers"][0]["error"]


def test_added_and_deleted_trackers(repo):
    project = repo / "analytics"
    (project / "trackers/new-movies.yaml").write_text(tracker_yaml("new-movies", "movie_list"))
    (project / "trackers/budgets.yaml").unlink()
    report = diff_json(repo)
    assert by_status(report) == {"added": {"new-movies"}, "removed": {"budgets"},
                                 "unchanged": {"movies", "cast", "schedule"}}
    added = next(t for t in report["trackers"] if t["status"] == "added")
    assert added["sql_diff"].startswith("--- /dev/null")
    assert added["lines_removed"] == 0 and added["lines_added"] > 5


def test_description_only_change_affects_no_tracker(repo):
    project = repo / "analytics"
    edit(project / "datasources/movie.yaml", "description: The working title", "description: The title on the slate")
    edit(project / "datasources/movie.yaml", "description: One row per title.", "description: Titles.")
    edit(project / "inputs/movie_list.yaml", "description: Every title.", "description: All titles.")
    edit(project / "trackers/movies.yaml", "description: The movies tracker.", "description: For the office.")
    report = diff_json(repo)
    assert by_status(report) == {"unchanged": set(TRACKERS)}
    assert all(not t["notes"] and not t["because"] for t in report["trackers"])
    assert impacted(project, "movie.title") == {"cast", "movies"}  # impact is about use, not change


def test_input_filter_and_tracker_parameters_are_causes(repo):
    project = repo / "analytics"
    edit(project / "inputs/movie_list.yaml", "sort: [movie.movie_id]",
         "filters: [\"movie.status = 'PHOT'\"]\nsort: [movie.movie_id]")
    (project / "trackers/schedule.yaml").write_text(
        (project / "trackers/schedule.yaml").read_text() + "parameters: {countries: [US]}\n")
    edit(project / "trackers/budgets.yaml", "schedule: \"0 * * * *\"", "schedule: \"*/15 * * * *\"")
    report = diff_json(repo)
    assert by_status(report) == {"changed": {"movies", "schedule"}, "unchanged": {"cast", "budgets"}}
    why = {t["name"]: t["because"] for t in report["trackers"]}
    assert why["movies"] == ["input 'movie_list': filters changed"]
    assert why["schedule"] == ["tracker 'schedule': parameters changed"]
    budgets = next(t for t in report["trackers"] if t["name"] == "budgets")
    assert budgets["notes"] == ["tracker 'budgets': schedule changed"]  # no SQL change, still worth a look


def test_diff_leaves_the_working_tree_alone(repo):
    project = repo / "analytics"
    edit(project / "datasources/movie.yaml", "budget: {type: \"decimal(18,2)\"}",
         "budget: {type: \"decimal(18,2)\", sql: budget_usd}")
    before = git(repo, "status", "--porcelain")
    worktrees = git(repo, "worktree", "list")
    report = diff_against(project, "main")
    assert {t.name for t in report.by_status("changed")} == {"budgets"}
    assert git(repo, "status", "--porcelain") == before
    assert git(repo, "worktree", "list") == worktrees
    assert "sql: budget_usd}" in (project / "datasources/movie.yaml").read_text()


def test_diff_from_inside_the_project_with_a_relative_ref(repo, monkeypatch):
    project = repo / "analytics"
    edit(project / "datasources/production.yaml", "country: {type: varchar}",
         "country: {type: varchar, sql: \"upper(country)\"}")
    git(repo, "commit", "-qam", "upper-case countries")
    monkeypatch.chdir(project)
    result = run_cli("diff", "--base", "HEAD~1")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("genesis diff: 4 trackers against HEAD~1: 1 changed, 3 unchanged")
    assert "changed   schedule" in result.stdout
    assert "because: data source 'production': field 'country' changed" in result.stdout


def test_unknown_ref_is_an_error(repo):
    result = run_cli("diff", "--base", "no-such-branch", "--project", str(repo / "analytics"))
    assert result.exit_code == 1
    assert "unknown git ref 'no-such-branch'" in result.output


def test_outside_a_git_repository_is_an_error(tmp_path):
    project = write_project(tmp_path / "plain")
    result = run_cli("diff", "--base", "main", "--project", str(project))
    assert result.exit_code == 1
    assert "not inside a git repository" in result.output


def test_a_base_that_does_not_load_is_reported(repo):
    project = repo / "analytics"
    edit(project / "datasources/movie.yaml", "primary_key: [movie_id]", "primary_key: movie_id: [")
    git(repo, "commit", "-qam", "broken")
    edit(project / "datasources/movie.yaml", "primary_key: movie_id: [", "primary_key: [movie_id]")
    result = run_cli("diff", "--base", "HEAD", "--project", str(project))
    assert result.exit_code == 0, result.output
    assert "warning: every tracker is shown as added because the project does not load at HEAD" in result.stdout
    assert "HEAD:analytics/datasources/movie.yaml:" in result.stdout  # in the base ref, not a temp dir
    report = diff_json(repo, "HEAD")
    assert report["base_error"] and by_status(report) == {"added": set(TRACKERS)}


def test_a_project_new_in_the_working_tree(repo):
    write_project(repo / "second")
    result = run_cli("diff", "--base", "main", "--format", "json", "--project", str(repo / "second"))
    report = json.loads(result.stdout)
    assert report["base_missing"] and by_status(report) == {"added": set(TRACKERS)}


def test_markdown_is_sized_for_a_pull_request_comment(repo):
    project = repo / "analytics"
    edit(project / "datasources/movie.yaml", "title: {type: varchar, description: The working title}",
         'title: {type: varchar, sql: "upper(title)"}')
    (project / "trackers/budgets.yaml").unlink()
    result = run_cli("diff", "--base", "main", "--format", "markdown", "--project", str(project))
    text = result.stdout
    first = text.splitlines()[0]
    assert first == "**Genesis diff** against `main`: **2 changed**, **1 removed**, 1 unchanged"
    assert "| `movies` | SQL changed (+1 −1) | data source 'movie': field 'title' changed |" in text
    assert "<details><summary><code>cast</code>: SQL changed" in text and "```diff" in text
    assert text.rstrip().endswith("<!-- genesis-diff -->")
    small = render_diff(diff_against(project, "main"), "markdown", max_chars=1200)
    assert len(small) < 1200 and "More SQL diffs were left out" in small


# ---------------------------------------------------------------- impact


@pytest.mark.parametrize("ref, trackers", [
    ("movie", {"movies", "cast", "schedule", "budgets"}),
    ("production", {"schedule"}),
    ("movie_talent.talent_name", {"cast"}),
    ("movie.cast", {"cast"}),
    ("movie.production", {"schedule"}),
    ("production.country", {"schedule"}),         # only in a filter
    ("movie.budget", {"budgets"}),                # only through the measure total_budget
    ("movie.movie_id", {"movies", "cast", "schedule"}),  # a column, a sort and the joins' keys
    ("movie.movie_count", set()),
])
def test_impact(repo, ref, trackers):
    assert impacted(repo / "analytics", ref) == trackers


def test_impact_explains_where_a_reference_is_used(repo):
    report = find_impact(load_project(repo / "analytics"), "production.country")
    assert report.inputs == [{"name": "schedule", "uses": ["production.country"], "via": ["filter 1"]}]
    join = find_impact(load_project(repo / "analytics"), "movie.production").inputs[0]
    assert join["uses"] == ["movie.production"]  # the name people write, not the internal key
    assert "join path of column 'Shoot start'" in join["via"]


def test_impact_reads_where_from_the_compilers_record(repo):
    """`via` comes from CompiledQuery.uses: a sort naming a column's reference reads what the
    column reads, a measure's field is read by the measure's column, a join and its key
    fields by the join path; `references` holds every one of them (nothing resolved twice)."""
    project = load_project(repo / "analytics")

    def via(ref: str, name: str) -> list[str]:
        return next(item["via"] for item in find_impact(project, ref).inputs if item["name"] == name)

    assert via("movie.movie_id", "movie_list") == ["column 'movie_id'", "sort"]
    assert via("movie.budget", "budgets") == ["column 'Budget'"]
    assert via("production.movie_id", "schedule") == ["join path of column 'Shoot start'", "join path of filter 1"]
    assert via("movie.movie_id", "schedule") == [
        "column 'movie_id'", "join path of column 'Shoot start'", "join path of filter 1"]
    assert via("movie_talent.movie_id", "movie_cast") == ["join path of column 'Cast'"]
    for name in project.inputs:
        compiled = compile_input(project, name)
        assert {use.reference for use in compiled.uses} <= compiled.references, name
    assert ReferenceUse("movie.movie_id", ("sort", 0)) in compile_input(project, "movie_list").uses


def test_impact_cli_formats_and_unknown_reference(repo):
    project = str(repo / "analytics")
    text = run_cli("impact", "movie.title", "--project", project)
    assert text.exit_code == 0
    assert text.stdout.splitlines()[0] == "field movie.title: used by 2 inputs and 2 trackers"
    data = json.loads(run_cli("impact", "movie.cast", "--format", "json", "--project", project).stdout)
    assert data["kind"] == "join" and [t["name"] for t in data["trackers"]] == ["cast"]
    assert all(".join:" not in use for item in data["inputs"] for use in item["uses"])
    assert data["trackers"][0]["destination"] == "file out/cast.csv"
    for wrong, hint in (("movie.titel", "did you mean 'movie.title'?"), ("movi", "did you mean 'movie'?"),
                        ("prodution.country", "did you mean 'production.country'?")):
        result = run_cli("impact", wrong, "--project", project)
        assert result.exit_code == 1
        assert hint in result.output, result.output


# ---------------------------------------------------------------- --data


def write_warehouse(project: Path) -> None:
    from genesis.engines.warehouse import write_table

    wh = project / ".genesis" / "warehouse"
    write_table(wh, "iceberg.studio.movie", pa.table({
        "movie_id": pa.array([1, 2, 3, 4], pa.int64()),
        "title": ["Alpha", "beta", "Gamma", "delta"],
        "status": ["PHOT", "DEV", "PHOT", "DEV"],
        "budget": pa.array([Decimal("10.00"), Decimal("20.00"), Decimal("5.50"), None], pa.decimal128(18, 2)),
    }))
    write_table(wh, "iceberg.studio.production", pa.table({
        "production_id": pa.array([10, 20], pa.int64()), "movie_id": pa.array([1, 3], pa.int64()),
        "country": ["US", "FR"], "shoot_start": pa.array([None, None], pa.date32()),
    }))
    write_table(wh, "iceberg.studio.movie_talent", pa.table({
        "movie_id": pa.array([1, 1, 3], pa.int64()), "talent_name": ["Ann", "Bo", "Cy"],
    }))


def test_diff_data_reports_rows_added_removed_and_changed_by_key(repo):
    project = repo / "analytics"
    write_warehouse(project)
    edit(project / "datasources/movie.yaml", "title: {type: varchar, description: The working title}",
         'title: {type: varchar, sql: "upper(title)"}')
    edit(project / "inputs/movie_list.yaml", "sort: [movie.movie_id]",
         "filters: [\"movie.status = 'PHOT'\"]\nsort: [movie.movie_id]")
    result = run_cli("diff", "--base", "main", "--data", "--target", "local", "--format", "json",
                     "--project", str(project))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["target"] == "local"
    data = {t["name"]: t["data"] for t in report["trackers"] if t["status"] == "changed"}
    movies = data["movies"]
    assert (movies["base_rows"], movies["head_rows"]) == (4, 2)
    assert (movies["added"], movies["removed"], movies["changed"]) == (0, 2, 2)
    assert movies["key"] == ["movie_id"] and movies["changed_columns"] == {"Title": 2}
    assert movies["examples"]["removed"] == [2, 4]
    assert movies["examples"]["changed"][0] == {"key": 1, "changes": {"Title": ["Alpha", "ALPHA"]}}
    assert data["cast"]["changed"] == 4  # every title is upper-cased; the keyless schedule is unchanged
    text = run_cli("diff", "--base", "main", "--data", "--project", str(project)).stdout
    assert "rows: 4 -> 2: 0 added, 2 removed, 2 changed (by movie_id)" in text
    assert 'e.g. changed 1: Title: "Alpha" -> "ALPHA"' in text


def test_diff_rows_without_a_key_compares_whole_rows():
    old = [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}, {"a": 2, "b": "y"}]
    new = [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}, {"a": 3, "b": "z"}, {"a": 1, "c": 0, "b": "x"}]
    out = diff_rows(old, new, [])
    assert (out["added"], out["removed"], out["changed"]) == (2, 1, None)
    keyed = diff_rows([{"id": 1, "v": 1.0}, {"id": 2, "v": 2.0}], [{"id": 1, "v": 1.5}, {"id": 3, "v": 3.0}],
                      [("id", "id")])
    assert (keyed["added"], keyed["removed"], keyed["changed"]) == (1, 1, 1)
    assert keyed["examples"]["changed"] == [{"key": 1, "changes": {"v": [1.0, 1.5]}}]


def test_a_join_on_a_data_source_the_tracker_does_not_read_can_still_change_it(repo):
    """Paths to a data source named in a reference are the shortest in the whole join graph."""
    project = repo / "analytics"
    edit(project / "datasources/production.yaml", "  shoot_start: {type: date}\n",
         "  shoot_start: {type: date}\njoins:\n"
         "  movie: {datasource: movie, on: {movie_id: movie_id}, relationship: one_to_one}\n"
         "  unit: {datasource: unit, on: {production_id: production_id}, relationship: one_to_one}\n")
    (project / "datasources/unit.yaml").write_text(
        "name: unit\ntable: iceberg.studio.unit\nfields:\n"
        "  production_id: {type: bigint}\n  movie_id: {type: bigint}\n")
    (project / "inputs/crew.yaml").write_text(
        "name: crew\nfrom: production\nfields:\n  - production.production_id\n"
        "  - {field: movie_talent.talent_name, label: Crew, agg: list}\n")
    (project / "trackers/crew.yaml").write_text(tracker_yaml("crew", "crew"))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "crew")
    # unit gets a join to movie_talent: a second two-hop path, so the reference is now ambiguous
    (project / "datasources/unit.yaml").write_text(
        (project / "datasources/unit.yaml").read_text()
        + "joins:\n  talent: {datasource: movie_talent, on: {movie_id: movie_id}, relationship: one_to_many}\n")
    report = diff_json(repo, "HEAD")
    assert by_status(report) == {"error": {"crew"}, "unchanged": set(TRACKERS)}
    assert "ambiguous" in report["trackers"][0]["error"]
