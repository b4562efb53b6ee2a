"""`genesis init`: a newcomer's own project works at once, end to end, through the real CLI.

Also the package around it: the LICENSE matches the metadata, and what the README suggests
writing is git-ignored.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
MODELINE = re.compile(r"^# yaml-language-server: \$schema=(\S+)$")


def genesis(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """`genesis ARGS` as a real process in `cwd`, as a user types it."""
    env = {k: v for k, v in os.environ.items() if k not in ("GENESIS_DEBUG", "COLUMNS")}
    return subprocess.run([sys.executable, "-m", "genesis", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=timeout)


@pytest.fixture(scope="module")
def started(tmp_path_factory) -> dict:
    """`genesis init my-trackers && cd my-trackers && genesis demo && genesis refresh --all`."""
    home = tmp_path_factory.mktemp("newcomer")
    init = genesis("init", "my-trackers", cwd=home)
    project = home / "my-trackers"
    demo = genesis("demo", cwd=project)
    refresh = genesis("refresh", "--all", cwd=project)
    return {"home": home, "project": project, "init": init, "demo": demo, "refresh": refresh}


def test_init_demo_refresh_works_end_to_end(started):
    for step in ("init", "demo", "refresh"):
        result = started[step]
        assert result.returncode == 0, f"{step}: {result.stdout}{result.stderr}"
        assert "Traceback" not in result.stderr
    assert "cd my-trackers && genesis demo && genesis refresh --all" in started["init"].stdout
    assert "upcoming-titles" in started["refresh"].stdout and "1 ok, 0 failed" in started["refresh"].stdout
    with open(started["project"] / "out" / "upcoming-titles.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert rows and set(rows[0]) == {"movie_id", "Title", "Status", "Genre", "Launch date", "Budget",
                                     "Days to launch"}
    assert all(int(r["Days to launch"]) >= 0 for r in rows)
    assert {r["Status"] for r in rows} <= {"Pre-production", "In photography", "Post-production"}
    days = [int(r["Days to launch"]) for r in rows]
    assert days == sorted(days)  # sorted by launch date


def test_init_writes_the_expected_files(started):
    project = started["project"]
    written = sorted(str(p.relative_to(project)) for p in project.rglob("*")
                     if p.is_file() and not str(p.relative_to(project)).startswith((".genesis", "out")))
    assert written == [
        ".github/workflows/docs.yml", ".github/workflows/pr.yml", ".github/workflows/refresh.yml", ".gitignore",
        "datasources/movie.yaml", "genesis.yaml", "inputs/upcoming_titles.yaml",
        "schemas/config.schema.json", "schemas/datasource.schema.json", "schemas/input.schema.json",
        "schemas/tracker.schema.json", "trackers/upcoming-titles.yaml"]
    config = yaml.safe_load((project / "genesis.yaml").read_text())
    assert config["name"] == "my-trackers" and config["default_target"] == "local"
    assert config["targets"] == {"local": {"engine": "duckdb", "warehouse": ".genesis/warehouse",
                                           "destinations": "local"}}
    validate = genesis("validate", cwd=project)
    assert validate.returncode == 0 and validate.stdout == "ok: 1 data source, 1 input, 1 tracker\n"


def test_yaml_files_point_editors_at_the_shipped_schemas(started):
    project = started["project"]
    shipped = REPO / "genesis" / "schemas"
    for path in [project / "genesis.yaml", *project.glob("*/*.yaml")]:
        first = path.read_text().splitlines()[0]
        match = MODELINE.match(first)
        assert match, f"{path.name} does not start with a yaml-language-server line: {first!r}"
        schema_path = (path.parent / match.group(1)).resolve()
        assert schema_path.is_file(), schema_path
        assert schema_path.read_text() == (shipped / schema_path.name).read_text()
        schema = json.loads(schema_path.read_text())
        jsonschema.validate(yaml.safe_load(path.read_text()), schema)  # what the editor checks
    # a mistake the editor would underline is one the schema rejects
    bad = yaml.safe_load((project / "trackers" / "upcoming-titles.yaml").read_text())
    bad["mode"] = "upsrt"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, json.loads((project / "schemas" / "tracker.schema.json").read_text()))


def test_the_project_ignores_what_genesis_writes(started):
    project = started["project"]
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    for path in (".genesis/engines/warehouse/catalog.db", "out/upcoming-titles.csv", "site/index.html",
                 "build/sql/x.sql"):
        ignored = subprocess.run(["git", "check-ignore", "-q", path], cwd=project)
        assert ignored.returncode == 0, f"{path} is not ignored"
    kept = subprocess.run(["git", "check-ignore", "-q", "trackers/upcoming-titles.yaml"], cwd=project)
    assert kept.returncode == 1


def test_init_workflows_are_valid_and_need_no_test_suite(started):
    workflows = started["project"] / ".github" / "workflows"
    for name in ("pr.yml", "refresh.yml", "docs.yml"):
        data = yaml.safe_load((workflows / name).read_text())
        runs = "\n".join(step.get("run", "") for job in data["jobs"].values() for step in job["steps"])
        assert "genesis-trackers==" in runs and "__GENESIS_VERSION__" not in runs
        assert "pytest" not in runs
    refresh = yaml.safe_load((workflows / "refresh.yml").read_text())
    # a new project has no production target yet: the schedule waits until one is added
    assert refresh[True] == {"workflow_dispatch": None}
    assert '#   - cron: "*/15 * * * *"' in (workflows / "refresh.yml").read_text()
    assert "genesis refresh --due --target prod" in (workflows / "refresh.yml").read_text()
    from tests.test_workflows import actionlint

    problems = actionlint(sorted(workflows.glob("*.yml")))
    assert problems == [], problems


def test_init_never_overwrites(started, tmp_path):
    project = tmp_path / "p"
    assert genesis("init", str(project), cwd=tmp_path).returncode == 0
    (project / "genesis.yaml").write_text("name: mine\ntargets: {local: {engine: duckdb}}\n")
    (project / "schemas" / "input.schema.json").unlink()
    again = genesis("init", str(project), cwd=tmp_path)
    assert again.returncode == 0
    assert "wrote schemas/input.schema.json" in again.stderr and "kept  genesis.yaml" in again.stderr
    assert (project / "genesis.yaml").read_text().startswith("name: mine")
    nothing = genesis("init", str(project), cwd=tmp_path)
    assert nothing.returncode == 1 and "nothing written" in nothing.stderr
    file_in_the_way = tmp_path / "a-file"
    file_in_the_way.write_text("x")
    blocked = genesis("init", str(file_in_the_way), cwd=tmp_path)
    assert blocked.returncode != 0 and "Traceback" not in blocked.stderr


def test_demo_outside_a_project_says_what_to_do(tmp_path):
    result = genesis("demo", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == ("error: this folder is not a Genesis project (no genesis.yaml) "
                                     "(run `genesis init my-trackers && cd my-trackers && genesis demo`, "
                                     "or run it from a project folder or with --project DIR)")
    assert not (tmp_path / ".genesis").exists()


# --------------------------------------------------------------------------- the package


def test_license_matches_the_package_metadata():
    tomllib = pytest.importorskip("tomllib", reason="Python 3.11+ reads TOML in the standard library")
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert meta["license"] == {"text": "Apache-2.0"}
    text = (REPO / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "License :: OSI Approved :: Apache Software License" in meta["classifiers"]
    assert {"Homepage", "Documentation", "Source", "Issues"} <= set(meta["urls"])
    assert any(c.startswith("Programming Language :: Python :: 3.1") for c in meta["classifiers"])


def test_outputs_the_readme_suggests_are_ignored():
    text = (REPO / "README.md").read_text() + (REPO / "docs" / "cli.md").read_text()
    found = set(re.findall(r"--out(?:put)? ([\w./<>-]+)", text))
    suggested = {path for path in found if not re.fullmatch(r"[A-Z<>/._-]+", path) and "<" not in path}
    suggested |= {".genesis/warehouse", "out/x.csv"}
    assert {"site/", "build/sql", "out/late.json"} <= suggested, suggested
    for path in sorted(suggested):
        probe = path.rstrip("/") + ("/index.html" if path.endswith("/") else "")
        ignored = subprocess.run(["git", "check-ignore", "-q", "--no-index", probe], cwd=REPO)
        assert ignored.returncode == 0, f"{probe} (suggested in the docs) is not git-ignored"
