"""The command line as a newcomer meets it: --help, `ls`, dbt-like selection, the refresh
summary, `run` tables that fit the terminal, shell completion and wording.

Everything runs for real over the example project and a demo warehouse built in a temp dir.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
import yaml
from click.testing import CliRunner

from genesis.authoring.demo import build_demo
from genesis.cli import COMMAND_ORDER, main
from genesis.commands.refresh_summary import Progress, summary_table
from genesis.project.load import load_project
from genesis.run.refresh import RefreshReport, TrackerReport
from genesis.run.selection import select
from tests.test_refresh_e2e import copy_example

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def example(tmp_path_factory) -> Path:
    """The example project with a demo warehouse (no tracker refreshed yet)."""
    project = copy_example(tmp_path_factory.mktemp("usability") / "example")
    build_demo(project / ".genesis" / "warehouse")
    return project


def cli(*args: str, project: Path | None = None, env: dict | None = None, width: int = 80):
    extra = ["--project", str(project)] if project is not None else []
    result = CliRunner().invoke(main, [*args, *extra], env=env, terminal_width=width, prog_name="genesis")
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def commands() -> list[tuple[str, click.Command]]:
    with click.Context(main) as context:
        return [(name, main.get_command(context, name)) for name in main.list_commands(context)]


# --------------------------------------------------------------------------- --help


def test_commands_are_listed_in_workflow_order():
    result = cli("--help")
    assert max(len(line) for line in result.output.splitlines()) <= 80
    listed = [line.split()[0] for line in result.output.split("Commands:")[1].splitlines() if line.strip()]
    assert listed == COMMAND_ORDER
    assert listed[:4] == ["init", "demo", "validate", "ls"] and listed.index("run") < listed.index("refresh")


def test_every_summary_is_shown_whole_at_80_columns():
    listing = cli("--help", width=80).output.split("Commands:")[1]
    for name, command in commands():
        summary = command.help.strip().splitlines()[0]
        assert summary.endswith("."), name
        line = next(line for line in listing.splitlines() if line.split()[:1] == [name])
        assert line.split(None, 1)[1].strip() in (summary, summary.rstrip(".")), f"{name}: cut to {line!r}"


@pytest.mark.parametrize("name", COMMAND_ORDER)
def test_every_help_describes_every_option_and_shows_an_example(name):
    command = dict(commands())[name]
    for param in command.params:
        if isinstance(param, click.Option) and param.name != "help":
            assert param.help and len(param.help) > 10, f"genesis {name} {param.opts[0]} has no help"
    text = cli(name, "--help").output
    assert "Examples:" in text and f"  genesis {name}" in text.split("Examples:")[1], text
    assert "-h, --help" in text
    assert max(len(line) for line in text.splitlines()) <= 80, "a help line is wider than an 80-column terminal"


def test_python_dash_m_genesis_is_the_cli(tmp_path):
    result = subprocess.run([sys.executable, "-m", "genesis", "--help"], capture_output=True, text=True,
                            timeout=60, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: genesis ") and "refresh" in result.stdout
    version = subprocess.run([sys.executable, "-m", "genesis", "--version"], capture_output=True, text=True,
                             timeout=60, cwd=tmp_path)
    assert version.stdout.startswith("genesis, version ")


def test_validate_and_compile_end_quickly_with_their_whole_output(tmp_path):
    """`validate` and `compile` skip the interpreter's teardown (cli.entry_point): whatever they
    printed to a pipe, the exit code and the files they wrote must all be there."""
    def genesis(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "genesis", *args, "--project", str(REPO)],
                              capture_output=True, text=True, timeout=120, cwd=tmp_path)

    valid = genesis("validate", "--format", "json")
    assert valid.returncode == 0, valid.stderr
    assert json.loads(valid.stdout)["valid"] is True  # the whole document reached the pipe
    compiled = genesis("compile", "--all", "--out", str(tmp_path / "sql"))
    assert compiled.returncode == 0, compiled.stderr
    assert compiled.stderr.startswith("wrote ")
    written = sorted(tmp_path.glob("sql/*/*.sql"))
    assert written and all(f.read_text().startswith(("SELECT", "WITH")) for f in written)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "genesis.yaml").write_text("name: broken\ntargets: {}\nsurprise: 1\n")
    broken = subprocess.run([sys.executable, "-m", "genesis", "validate", "--project", "broken"],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert broken.returncode == 1 and "genesis.yaml:3:1: error: unknown key 'surprise'" in broken.stderr, broken.stderr


def test_validate_skips_the_interpreter_teardown_and_other_commands_do_not():
    """Freeing every syntax tree one by one at exit took 0.3 s of `compile --all`; a command
    that may hold connections, threads or temporary files still ends normally."""
    code = ("import atexit, sys; from genesis.cli import entry_point\n"
            "atexit.register(lambda: print('teardown ran', flush=True))\n"
            "sys.argv = ['genesis', *sys.argv[1:], '--project', " + repr(str(REPO)) + "]\nentry_point()")
    validate = subprocess.run([sys.executable, "-c", code, "validate"], capture_output=True, text=True, timeout=120)
    assert validate.returncode == 0 and validate.stdout.startswith("ok: "), validate.stdout + validate.stderr
    assert "teardown ran" not in validate.stdout
    listing = subprocess.run([sys.executable, "-c", code, "ls"], capture_output=True, text=True, timeout=120)
    assert listing.returncode == 0 and "teardown ran" in listing.stdout, listing.stdout + listing.stderr


def test_the_genesis_program_tunes_the_garbage_collector_for_a_short_run():
    """Collecting every 700 allocations took a quarter of `compile --all` (bench/compile.py):
    the program collects young objects every 50,000 and leaves what the imports made alone."""
    code = ("import gc, sys; from genesis.cli import entry_point; sys.argv = ['genesis', '--version']\n"
            "try:\n    entry_point()\nexcept SystemExit:\n    print(gc.get_threshold()[0], gc.get_freeze_count() > 0)")
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert shown.stdout.split()[-2:] == ["50000", "True"], shown.stdout + shown.stderr


# --------------------------------------------------------------------------- selection and ls


@functools.cache
def loaded(project_dir: Path):
    return load_project(project_dir)


def names(project_dir: Path, selectors, exclude=(), kinds=("tracker",)) -> list[str]:
    return [n.name for n in select(loaded(project_dir), list(selectors), list(exclude), kinds)]


def test_selectors_like_dbt():
    assert names(REPO, ["late-*"]) == ["late-po-escalations", "late-purchase-orders"]
    assert names(REPO, ["owner:finance"]) == ["late-po-escalations", "late-purchase-orders",
                                              "open-po-exposure-history", "po-spend-by-month"]
    assert names(REPO, ["owner:finance-ap"]) == ["late-purchase-orders", "open-po-exposure-history"]
    assert names(REPO, ["input:late_purchase_orders"]) == ["late-po-escalations", "late-purchase-orders"]
    assert names(REPO, ["owner:finance"], ["late-*"]) == ["open-po-exposure-history", "po-spend-by-month"]
    assert names(REPO, ["owner:finance,destination:file"]) == ["po-spend-by-month"]
    assert names(REPO, ["destination:airtable"]) == ["cast-without-signed-contract", "late-purchase-orders",
                                                     "upcoming-launches"]
    # a data source selects the trackers whose query reads it (through any join)
    assert "late-purchase-orders" in names(REPO, ["datasource:vendor"])
    assert "budget-by-genre-status" not in names(REPO, ["datasource:vendor"])
    assert names(REPO, ["input:late_purchase_orders"], kinds=("input", "tracker")) == [
        "late_purchase_orders", "late-po-escalations", "late-purchase-orders"]


@pytest.mark.parametrize("selector, words", [
    ("late-purchase-order", ["no tracker named 'late-purchase-order'", "did you mean 'late-purchase-orders'"]),
    ("owner:fin", ["no tracker matches 'owner:fin'", "finance-ap"]),
    ("input:late_purchase_order", ["no tracker matches", "did you mean 'late_purchase_orders'"]),
    ("own:finance", ["unknown selector method 'own:'", "did you mean 'owner'"]),
    ("'zz-*'", ["no tracker matches"]),
    ("late_purchase_orders", ["no tracker named", "is an input: --select input:late_purchase_orders"]),
])
def test_a_selector_that_selects_nothing_is_a_clear_error(selector, words):
    result = cli("refresh", selector.strip("'"), "--dry-run", project=REPO)
    assert result.exit_code == 1
    assert result.stdout == ""
    for word in words:
        assert word in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_refresh_selects_with_globs_select_and_exclude(example):
    result = cli("refresh", "late-*", "--dry-run", "--format", "json", project=example)
    assert result.exit_code == 0, result.output
    assert [t["tracker"] for t in json.loads(result.stdout)["trackers"]] == ["late-po-escalations",
                                                                            "late-purchase-orders"]
    result = cli("refresh", "--select", "owner:finance", "--exclude", "destination:google_sheets",
                 "--dry-run", "--format", "json", project=example)
    assert [t["tracker"] for t in json.loads(result.stdout)["trackers"]] == ["late-purchase-orders",
                                                                            "po-spend-by-month"]
    result = cli("refresh", "-s", "input:late_purchase_orders", "--exclude", "late-po-*", "--dry-run",
                 "--format", "json", project=example)
    assert [t["tracker"] for t in json.loads(result.stdout)["trackers"]] == ["late-purchase-orders"]
    assert not (example / "out").exists()  # dry runs wrote nothing


def test_ls_lists_everything_with_owner_schedule_and_destination():
    result = cli("ls", project=REPO)
    assert result.exit_code == 0
    text = result.stdout
    assert "data sources (10)" in text and "inputs (15)" in text and "trackers (15)" in text
    row = next(line for line in text.splitlines() if line.startswith("late-purchase-orders "))
    assert row.split()[:5] == ["late-purchase-orders", "late_purchase_orders", "finance-ap", "30", "6"]
    assert "Airtable appStudioAP01 / Late POs" in row
    assert text.rstrip().endswith("10 data sources, 15 inputs, 15 trackers")


def test_ls_filters_and_json():
    result = cli("ls", "--select", "owner:finance-ap", "--kind", "tracker", "--format", "json", project=REPO)
    rows = json.loads(result.stdout)
    assert [(r["kind"], r["name"], r["owner"]) for r in rows] == [
        ("tracker", "late-purchase-orders", "finance-ap"), ("tracker", "open-po-exposure-history", "finance-ap")]
    assert rows[0]["schedule"] == "30 6 * * 1-5" and rows[0]["destination"].startswith("Airtable")
    text = cli("ls", "input:late_purchase_orders", project=REPO).stdout
    assert "inputs (1)" in text and "trackers (2)" in text and "data sources" not in text
    assert text.rstrip().endswith("1 input, 2 trackers")


# --------------------------------------------------------------------------- the refresh summary


def test_summary_shows_destinations_and_each_error_once():
    missing = "error: target 'prod' has no google_sheets.credentials"
    report = RefreshReport("prod", [
        TrackerReport("a-sheet", "failed", None, 0.01, "Google Sheets 1Abc / Tab", missing, "write"),
        TrackerReport("b-file", "ok", 12, 0.2, "out/b.csv"),
        TrackerReport("c-sheet", "failed", None, 0.01, "Google Sheets 1Def / Tab", missing, "write"),
        TrackerReport("d-query", "failed", None, 0.01, "out/d.csv", "inputs/d.yaml:3:5: error: boom", "query"),
    ], 0.5)
    text = summary_table(report)
    lines = text.splitlines()
    assert lines[0].split() == ["tracker", "rows", "seconds", "result", "destination"]
    assert lines[2].endswith("Google Sheets 1Abc / Tab") and "FAILED at write" in lines[2]
    assert lines[3].split()[1:4] == ["12", "0.20", "ok"] and lines[3].endswith("out/b.csv")
    assert text.count(missing) == 1
    assert "2 errors:" in text
    assert f"  2 trackers (a-sheet, c-sheet): {missing}" in lines
    assert "  d-query: inputs/d.yaml:3:5: error: boom" in lines
    assert lines[-1].startswith("1 ok, 3 failed in ")

    printed = []
    progress = Progress(4, lambda text, nl=True: printed.append(text), live=False)
    for tracker in report.trackers:
        progress("start", tracker)
        progress("end", tracker)
    assert len(printed) == 4 and sum(missing in line for line in printed) == 1
    assert printed[2].endswith(": the same error as a-sheet")
    assert "(12 rows, 0.20 s)" in printed[1]


def test_a_missing_credential_is_reported_once_through_the_cli(example, tmp_path):
    config = yaml.safe_load((example / "genesis.yaml").read_text())
    config["targets"]["live_no_keys"] = {"engine": "duckdb", "warehouse": str(example / ".genesis" / "warehouse"),
                                         "destinations": "live"}
    project = copy_example(tmp_path / "p")
    (project / "genesis.yaml").write_text(yaml.safe_dump(config))
    result = cli("refresh", "--select", "destination:google_sheets", "--target", "live_no_keys", project=project)
    assert result.exit_code == 1
    error = "target 'live_no_keys' has no google_sheets.credentials"
    assert result.stdout.count(error) == 1, result.stdout
    assert "6 trackers (contracts-awaiting-signature, late-po-escalations" in result.stdout
    assert result.stderr.count(error) == 1  # the progress lines name it once too
    assert "Google Sheets 1FinanceEscalations / Over 30 days" in result.stdout


# --------------------------------------------------------------------------- run tables


def test_run_table_fits_the_terminal_and_wide_shows_long_text(example):
    narrow = cli("run", "upcoming-launches", "--limit", "5", project=example, env={"COLUMNS": "120"})
    assert narrow.exit_code == 0, narrow.output
    lines = narrow.stdout.splitlines()
    assert len(lines) == 2 + 5 + 1
    assert all(len(line) <= 120 for line in lines[:-1]), max(map(len, lines))
    assert "…" in narrow.stdout and "--wide shows it whole" in lines[-1]
    assert lines[-1].startswith("134 rows (showing first 5)") or "(showing first 5)" in lines[-1]
    # numbers are never cut: the budget column shows whole amounts
    assert all("$" in line and "…" not in line.split("$")[1].split("|")[0] for line in lines[2:7])

    wide = cli("run", "upcoming-launches", "--limit", "5", "--wide", project=example, env={"COLUMNS": "120"})
    assert "…" not in wide.stdout and max(len(line) for line in wide.stdout.splitlines()) > 120
    assert "Keystone Productions" in wide.stdout or "Productions" in wide.stdout


def test_run_limit(example):
    result = cli("run", "late_purchase_orders", "--limit", "2", project=example)
    lines = result.stdout.splitlines()
    assert len(lines) == 2 + 2 + 1 and "(showing first 2)" in lines[-1]
    assert cli("run", "late_purchase_orders", "--limit", "-1", project=example).exit_code == 2


# --------------------------------------------------------------------------- completion


def complete(project: Path, words: str) -> list[str]:
    """What bash would offer after `words` (the last word is the one being completed)."""
    parts = words.split(" ")
    env = {**os.environ, "_GENESIS_COMPLETE": "bash_complete", "COMP_WORDS": words,
           "COMP_CWORD": str(len(parts) - 1)}
    result = subprocess.run([sys.executable, "-m", "genesis"], capture_output=True, text=True, env=env,
                            cwd=project, timeout=60)
    return [line.split(",", 1)[1] for line in result.stdout.splitlines() if "," in line]


def test_completion_script_and_names():
    script = cli("completion", "bash").stdout
    assert "_GENESIS_COMPLETE" in script and "complete " in script
    assert "compdef" in cli("completion", "zsh").stdout
    assert complete(REPO, "genesis refresh late-") == ["late-po-escalations", "late-purchase-orders"]
    assert complete(REPO, "genesis run movies") == ["movies-in-photography", "movies_in_photography"]
    assert "owner:" in complete(REPO, "genesis refresh --select o")
    assert complete(REPO, "genesis refresh --target pr") == ["prod"]
    assert complete(REPO, "genesis refresh --select owner:fin") == [
        "owner:finance-accounting", "owner:finance-ap", "owner:finance-controller"]
    assert complete(REPO, "genesis ls input:late") == ["input:late_purchase_orders"]
    assert complete(REPO / "docs", "genesis refresh late-") == []  # not a project: nothing, no error


# --------------------------------------------------------------------------- wording


def test_counts_read_as_english(tmp_path):
    subprocess.run([sys.executable, "-m", "genesis", "init", "one"], cwd=tmp_path, check=True,
                   capture_output=True, timeout=60)
    ok = cli("validate", project=tmp_path / "one")
    assert ok.stdout == "ok: 1 data source, 1 input, 1 tracker\n"
    (tmp_path / "one" / "trackers" / "upcoming-titles.yaml").write_text(
        "name: upcoming-titles\ninput: upcoming_titels\ndestination: {type: file, path: out/x.csv}\n")
    one = cli("validate", project=tmp_path / "one")
    assert one.exit_code == 1 and len(one.stderr.splitlines()) == 1  # one error: no "1 error(s)" line
    assert "(s)" not in one.stderr
    two = cli("validate", project=REPO / "tests" / "fixtures" / "does-not-exist")
    assert "(s)" not in two.stderr


def test_schema_errors_count_list_items_from_one(tmp_path):
    project = tmp_path / "p"
    subprocess.run([sys.executable, "-m", "genesis", "init", str(project)], check=True, capture_output=True,
                   timeout=60)
    path = project / "inputs" / "upcoming_titles.yaml"
    path.write_text(path.read_text().replace("  - {field: movie.title, label: Title}",
                                             "  - {field: movie.title, lable: Title}"))
    result = cli("validate", project=project)
    assert "unknown key 'lable' in fields item 2" in result.stderr, result.stderr
    assert "[1]" not in result.stderr


def test_impact_json_uses_the_names_people_write():
    data = json.loads(cli("impact", "movie.cast", "--format", "json", project=REPO).stdout)
    assert data["inputs"] and all(item["uses"] == ["movie.cast"] for item in data["inputs"])
    assert ".join:" not in json.dumps(data)
    text = cli("impact", "movie.cast", project=REPO).stdout
    assert text.splitlines()[0] == "join movie.cast: used by 2 inputs and 2 trackers" and "(s)" not in text
