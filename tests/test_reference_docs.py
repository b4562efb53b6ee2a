"""The reference in docs/ is complete, generated where it can be, and its examples work.

- The key-by-key tables and the command reference are generated (genesis.authoring.docgen): a
  committed page that differs from what the schemas and --help give fails here.
- Every YAML example of the reference pages and the README is loaded, validated, compiled
  and run against a demo warehouse; every `genesis ...` command shown in the README, the
  docs and the commands' own --help examples is run and must succeed.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from genesis.authoring import docgen
from genesis.authoring.demo import build_demo
from genesis.cli import COMMAND_ORDER, main
from genesis.project.shape_check import load_schema
from tests.test_refresh_e2e import copy_example

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
KIND_PAGES = {"datasource": "datasources.md", "input": "inputs.md", "tracker": "trackers.md",
              "config": "genesis-yaml.md"}

# Commands shown in the docs that cannot run here, and why.
NOT_RUN = {
    "--target prod": "needs a Trino cluster and live credentials",
    "--scale 10": "a ten times larger warehouse: slow, and covered by the demo's own tests",
}


# --------------------------------------------------------------------------- generated parts


def test_generated_reference_is_up_to_date():
    stale = docgen.stale_pages(DOCS)
    assert stale == [], f"docs out of date: {stale}; run `python -m genesis.authoring.docgen`"


def test_docgen_notices_a_stale_page_and_rewrites_it(tmp_path):
    docs = tmp_path / "docs"
    shutil.copytree(DOCS, docs)
    page = docs / "trackers.md"
    page.write_text(page.read_text().replace("| `checks.min_rows` | whole number (≥ 0) |",
                                             "| `checks.min_rows` | text |"))
    assert docgen.stale_pages(docs) == ["trackers.md"]
    assert docgen.main(["--check", "--docs", str(docs)]) == 1
    assert "| `checks.min_rows` | text |" in page.read_text()  # --check writes nothing
    assert docgen.main(["--docs", str(docs)]) == 0
    assert docgen.stale_pages(docs) == []
    assert "| `checks.min_rows` | whole number (≥ 0) |" in page.read_text()


def schema_keys(schema: dict, path: str = "") -> list[tuple[str, dict]]:
    out = []
    for key, sub in schema.get("properties", {}).items():
        out.append((f"{path}.{key}" if path else key, sub))
        out += schema_keys(sub, f"{path}.{key}" if path else key)
    if isinstance(schema.get("additionalProperties"), dict):
        out += schema_keys(schema["additionalProperties"], f"{path}.*")
    if isinstance(schema.get("items"), dict):
        out += schema_keys(schema["items"], f"{path}[]")
    for branch in schema.get("oneOf", ()):
        out += schema_keys(branch, path)
    return out


@pytest.mark.parametrize("kind", sorted(KIND_PAGES))
def test_every_key_is_described_and_in_the_reference(kind):
    schema = load_schema(kind)
    page = (DOCS / KIND_PAGES[kind]).read_text()
    for path, sub in schema_keys(schema):
        if path.endswith("$schema"):
            continue
        assert sub.get("description"), f"{kind} schema: '{path}' has no description"
    for key in schema["properties"]:
        if key != "$schema":
            assert f"| `{key}` |" in page, f"docs/{KIND_PAGES[kind]} does not list '{key}'"


def test_every_command_is_documented():
    page = (DOCS / "cli.md").read_text()
    for name in COMMAND_ORDER:
        assert f"\n## genesis {name}\n" in page
        assert f"| `genesis {name}" in page, f"the command table of docs/cli.md misses {name}"


def test_readme_links_only_files_that_exist():
    for source in [REPO / "README.md", *DOCS.glob("*.md")]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", source.read_text()):
            if target.startswith(("http://", "https://")):
                continue
            assert (source.parent / target).exists(), f"{source.name} links to missing {target}"
            assert "shared" not in Path(target).parts, f"{source.name} links outside the repository"


# --------------------------------------------------------------------------- the examples work


def yaml_blocks(path: Path) -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", path.read_text(), re.S)


def sh_lines(path: Path) -> list[str]:
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", path.read_text(), re.S):
        lines += [line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return lines


def help_examples() -> list[str]:
    lines = []
    for name in COMMAND_ORDER:
        text = CliRunner().invoke(main, [name, "--help"], terminal_width=200).output
        if "Examples:" in text:
            block = text.split("Examples:")[1].split("\n\n")[0]
            lines += [line.strip() for line in block.splitlines() if line.strip()]
    return lines


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("docs-warehouse") / "warehouse"
    build_demo(path)
    return path


def project_from_examples(root: Path, warehouse: Path, source: Path, kinds_from_doc: dict[str, list[str]]) -> Path:
    """The example project's data sources, plus the documented definitions (replacing the
    data source of the same name); only the documented inputs and trackers."""
    copy_example(root)
    for folder in ("inputs", "trackers"):
        shutil.rmtree(root / folder)
        (root / folder).mkdir()
    config = yaml.safe_load((root / "genesis.yaml").read_text())
    for kind, texts in kinds_from_doc.items():
        for text in texts:
            document = yaml.safe_load(text)
            if kind == "config":
                config = document
                continue
            folder = {"datasource": "datasources", "input": "inputs", "tracker": "trackers"}[kind]
            (root / folder / f"{document['name']}.yaml").write_text(text)
    config["targets"]["local"]["warehouse"] = str(warehouse)
    (root / "genesis.yaml").write_text(yaml.safe_dump(config))
    return root


def kind_of(document: dict) -> str:
    if "targets" in document:
        return "config"
    if "table" in document:
        return "datasource"
    if "from" in document:
        return "input"
    return "tracker"


@pytest.mark.parametrize("source", ["docs", "README.md"])
def test_yaml_examples_validate_compile_and_run(source, warehouse, tmp_path):
    pages = [DOCS / page for page in KIND_PAGES.values()] if source == "docs" else [REPO / source]
    found: dict[str, list[str]] = {}
    for page in pages:
        for text in yaml_blocks(page):
            document = yaml.safe_load(text)
            if isinstance(document, dict) and "name" in document and len(document) > 1:
                found.setdefault(kind_of(document), []).append(text)
    assert set(found) >= {"datasource", "input", "tracker"}, found.keys()
    project = project_from_examples(tmp_path / "p", warehouse, REPO / source, found)
    runner = CliRunner()
    validate = runner.invoke(main, ["validate", "--project", str(project)])
    assert validate.exit_code == 0, validate.output
    for text in found["input"] + found["tracker"]:
        name = yaml.safe_load(text)["name"]
        compiled = runner.invoke(main, ["compile", name, "--project", str(project), "--dialect", "trino"])
        assert compiled.exit_code == 0 and "SELECT" in compiled.stdout, compiled.output
    refreshed = runner.invoke(main, ["refresh", "--all", "--dry-run", "--format", "json", "--project", str(project)])
    report = json.loads(refreshed.stdout)
    assert refreshed.exit_code == 0, refreshed.output
    assert [t["status"] for t in report["trackers"]] == ["checked"] * len(found["tracker"])


def test_json_editor_settings_example_names_the_shipped_schemas():
    block = re.findall(r"```json\n(.*?)```", (DOCS / "project.md").read_text(), re.S)[0]
    mapping = json.loads(block)["yaml.schemas"]
    assert sorted(Path(p).name for p in mapping) == sorted(f"{k}.schema.json" for k in KIND_PAGES)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, warehouse) -> Path:
    """The example project as a git repository with an origin/main, demo built and refreshed."""
    project = copy_example(tmp_path_factory.mktemp("docs-commands") / "example")
    shutil.copytree(warehouse, project / ".genesis" / "warehouse")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=project, check=True)
    subprocess.run([*git, "add", "genesis.yaml", "datasources", "inputs", "trackers"], cwd=project, check=True)
    subprocess.run([*git, "commit", "-qm", "one"], cwd=project, check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "two"], cwd=project, check=True)
    subprocess.run(["git", "update-ref", "refs/remotes/origin/main", "HEAD~1"], cwd=project, check=True)
    result = CliRunner().invoke(main, ["refresh", "--all", "--project", str(project)])
    assert result.exit_code == 0, result.output
    return project


def documented_commands() -> list[str]:
    lines = []
    for page in [REPO / "README.md", *sorted(DOCS.glob("*.md"))]:
        lines += sh_lines(page)
    lines += help_examples()
    out = []
    for line in lines:
        command = re.split(r"\s{2,}#|\s#\s", line)[0].strip()
        if "genesis " in command and command not in out:
            out.append(command)
    return out


@pytest.mark.parametrize("line", documented_commands())
def test_documented_commands_work(line, workspace, monkeypatch, tmp_path):
    skip = next((why for marker, why in NOT_RUN.items() if marker in line), None)
    if skip:
        pytest.skip(skip)
    monkeypatch.chdir(workspace)
    for part in line.split(" && "):
        words = shlex.split(part)
        if words[0] == "cd":
            target = Path(words[1]).expanduser()
            if target == Path.home():
                target = tmp_path
            monkeypatch.chdir(target)
            continue
        if words[0] == "pip":
            continue
        assert words[0] == "genesis", line
        args = words[1:words.index(">")] if ">" in words else words[1:]
        result = CliRunner().invoke(main, args, prog_name="genesis")
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        assert result.exit_code == 0, f"{part}\n{result.output}"
