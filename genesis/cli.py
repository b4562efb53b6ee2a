"""The `genesis` command: parse arguments, call the library, print.

Every user-facing problem is a GenesisError printed as `path:line:col: error: ...`
with exit code 1; anything else is reported as an internal error in one line (set
GENESIS_DEBUG=1 for the traceback).

Each command's docstring is its `--help`: a one-line summary (shown whole in `genesis
--help`), what it does, and examples. Commands are listed in the order of the workflow
(COMMAND_ORDER), not alphabetically.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path

import click

from . import __version__
from .commands.completion import complete_names, complete_targets
from .errors import GenesisError, ValidationError, redact
from .text import plural


def echo(message=None, **kwargs) -> None:
    """click.echo with every registered secret masked (see errors.redact)."""
    click.echo(redact(message), **kwargs)


def _fail(message: str) -> None:
    echo(message, err=True)
    sys.exit(1)


def handle_errors(command):
    """Turn every exception into a clear message and an exit code, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except GenesisError as exc:
            _fail(exc.render())
        except KeyboardInterrupt:
            _fail("interrupted")
        except click.exceptions.Exit:
            raise
        except Exception as exc:  # noqa: BLE001 - the last line of defence for users
            if os.environ.get("GENESIS_DEBUG"):
                import traceback

                _fail(redact(traceback.format_exc()).rstrip())  # the traceback, secrets masked
            _fail(redact(f"internal error: {type(exc).__name__}: {exc} (set GENESIS_DEBUG=1 for details)"))

    return wrapper


project_option = click.option(
    "--project", "project_dir", default=".", show_default=True,
    type=click.Path(file_okay=False), help="The Genesis project directory (the folder of genesis.yaml).")


def target_option(help_text: str = "The target (from genesis.yaml) to use. Default: default_target."):
    """--target NAME, completed from genesis.yaml; `help_text` says what the target is used for by this command."""
    return click.option("--target", default=None, metavar="NAME", help=help_text,
                        shell_complete=complete_targets)


def param_option(command):
    """--param NAME=VALUE (repeatable), passed to the command as the tuple `params`; see parse_params."""
    return click.option("--param", "params", multiple=True, metavar="NAME=VALUE",
                        help="A parameter value (repeatable; wins over the tracker's); lists as a,b,c or JSON."
                        )(command)


def as_of_option(command):
    """--as-of TIMESTAMP: the command runs as of that moment (genesis/project/load/business_time.py)."""

    @functools.wraps(command)
    def wrapper(*args, as_of=None, **kwargs):
        from .project.business_time import as_of as fixed_as_of

        with fixed_as_of(as_of):
            return command(*args, **kwargs)

    return click.option("--as-of", "as_of", default=None, metavar="TIMESTAMP",
                        help="Evaluate relative dates and CDC latest views as of this ISO time (no offset: "
                             "the project time_zone).")(wrapper)


def selection_options(command):
    """--select and --exclude, as dbt's: the selector syntax is in genesis/run/selection.py."""
    command = click.option("--exclude", "exclude", multiple=True, metavar="SELECTOR",
                           shell_complete=complete_names(("tracker", "input", "datasource"), selectors=True),
                           help="Leave out what this selector matches (repeatable).")(command)
    return click.option("--select", "-s", "select", multiple=True, metavar="SELECTOR",
                        shell_complete=complete_names(("tracker", "input", "datasource"), selectors=True),
                        help="Select by name or glob, tracker:, input:, datasource:, owner: or "
                             "destination: (repeatable; A,B = both).")(command)


def parse_params(items) -> dict:
    """The --param NAME=VALUE items as {NAME: VALUE} (a repeated NAME: the last wins); GenesisError without `=`.

    Values stay text here: compiler.expressions.coerce converts them to each parameter's declared type."""
    params = {}
    for item in items:
        if "=" not in item:
            raise GenesisError(f"--param '{item}' must be NAME=VALUE")
        name, value = item.split("=", 1)
        params[name.strip()] = value
    return params


def note_overrides(project, names, params: dict) -> None:
    """Say on stderr which --param replaces a value a tracker sets (the command line wins),
    and which of a tracker and an input sharing a NAME was taken."""
    from .compiler import name_notes

    for name in names:
        for note in name_notes(project, name, params):
            echo(note, err=True)


def load(project_dir: str):
    """The project in `project_dir`, loaded and shape-checked but not cross-checked (load_valid does that)."""
    from .project.load import load_project

    return load_project(project_dir)


def load_valid(project_dir: str):
    """The project in `project_dir`, also cross-checked (validate_project): for docs and compile --all, which use
    every definition."""
    from .validate import validate_project

    project = load(project_dir)
    validate_project(project)
    return project


# The order of the workflow: start a project, build sample data, check, look, run, ship, review.
COMMAND_ORDER = ["init", "demo", "validate", "ls", "compile", "run", "refresh", "status", "audit", "impact", "diff", "docs",
                 "completion"]


class WorkflowGroup(click.Group):
    """Lists commands in the order of the workflow rather than alphabetically."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """The command names in COMMAND_ORDER, then any others alphabetically (for `genesis --help`)."""
        known = [c for c in COMMAND_ORDER if c in self.commands]
        return known + sorted(c for c in self.commands if c not in known)


@click.group(cls=WorkflowGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="genesis")
def main() -> None:
    """Genesis: YAML definitions compiled to SQL, refreshed into trackers.

    \b
    Start:  genesis init my-trackers && cd my-trackers
            genesis demo && genesis refresh --all
    Help:   genesis COMMAND --help; the reference is docs/ in the repository.
    """
    from .errors import install_log_redaction

    install_log_redaction(bool(os.environ.get("GENESIS_DEBUG")))


@main.command()
@project_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text: one `path:line:col: error: ...` line a problem; json: one document, for CI.")
@target_option("With --catalog-check: the target whose catalog is read.")
@click.option("--catalog-check", is_flag=True, help="Also compare the data sources with the live catalog.")
@handle_errors
def validate(project_dir: str, fmt: str, target: str | None, catalog_check: bool) -> None:
    """Check every file of the project and report every problem.

    Loads genesis.yaml, datasources/, inputs/ and trackers/, checks them against the JSON
    Schemas and against each other (references, joins, types, SQL), and prints every problem
    at its file, line and column. Exit code 0 when valid, 1 otherwise.

    \b
    Examples:
      genesis validate
      genesis validate --format json
      genesis validate --target prod --catalog-check
    """
    from .errors import ErrorCollector
    from .project.load import load_project
    from .validate import validate_project

    errors: list[GenesisError] = []
    counts = {}
    try:
        collected = ErrorCollector()
        project = load_project(project_dir, collect=collected)
        validate_project(project, collected)
        counts = {"datasources": len(project.datasources), "inputs": len(project.inputs),
                  "trackers": len(project.trackers)}
        if catalog_check:
            from .validate.catalog_drift import check_catalog

            check_catalog(project, target)
    except ValidationError as exc:
        errors = exc.errors
    except GenesisError as exc:
        errors = [exc]
    if fmt == "json":
        echo(json.dumps({"valid": not errors, "errors": [e.to_json() for e in errors], **counts}, indent=2))
    elif errors:
        for error in errors:
            echo(error.render(), err=True)
        if len(errors) > 1:
            echo(plural(len(errors), "error"), err=True)
    else:
        echo(f"ok: {plural(counts['datasources'], 'data source')}, {plural(counts['inputs'], 'input')}, "
                   f"{plural(counts['trackers'], 'tracker')}")
    sys.exit(1 if errors else 0)


@main.command()
@click.argument("name", required=False, shell_complete=complete_names(("tracker", "input")))
@project_option
@click.option("--dialect", type=click.Choice(["trino", "duckdb"]), default=None,
              help="SQL dialect to print. Default: the engine of the target.")
@click.option("--all", "all_", is_flag=True, help="Compile every tracker and input (needs --out).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="With --all: write DIR/trackers/<name>.sql and DIR/inputs/<name>.sql.")
@target_option("Whose engine decides the default dialect. Default: default_target.")
@param_option
@handle_errors
@as_of_option
def compile(name, project_dir, dialect, all_, out_dir, target, params) -> None:  # noqa: A001
    """Print the SQL of an input or tracker.

    NAME is an input (with its parameters' defaults) or a tracker (with the tracker's
    parameters). The SQL is what `run` and `refresh` send to the engine.

    \b
    Examples:
      genesis compile movies_in_photography
      genesis compile movies-in-photography --dialect trino
      genesis compile movies_in_photography --param countries=US,CA
      genesis compile --all --out build/sql
    """
    from .compiler import compile_input, compile_name, compile_tracker
    from .project.config import get_target

    project = load_valid(project_dir) if all_ else load(project_dir)
    dialect = dialect or get_target(project, target).engine
    if all_:
        if not out_dir:
            raise GenesisError("--all needs --out DIR")
        out = Path(out_dir)
        written = 0
        # DIR/trackers/NAME.sql and DIR/inputs/NAME.sql, as the YAML is laid out: a tracker
        # and an input of the same name cannot overwrite each other.
        for kind, names, compile_one in (("trackers", project.trackers, compile_tracker),
                                         ("inputs", project.inputs, compile_input)):
            (out / kind).mkdir(parents=True, exist_ok=True)
            for each in sorted(names):
                (out / kind / f"{each}.sql").write_text(compile_one(project, each).sql(dialect) + "\n")
                written += 1
        echo(f"wrote {written} SQL files to {out}/trackers and {out}/inputs", err=True)
        return
    if not name:
        raise GenesisError("name an input or tracker, or use --all --out DIR")
    values = parse_params(params)
    sql = compile_name(project, name, values).sql(dialect)
    note_overrides(project, [name], values)
    echo(sql)


@main.command()
@click.argument("name", shell_complete=complete_names(("tracker", "input")))
@project_option
@target_option("Where the query runs. Default: default_target.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True,
              help="table: formatted for people; csv / json: every row, raw typed values.")
@click.option("--output", type=click.Path(dir_okay=False), help="Write to FILE instead of standard output.")
@click.option("--limit", "max_rows", type=click.IntRange(min=0), default=50, show_default=True,
              help="Rows shown by --format table (csv and json carry every row).")
@click.option("--wide", is_flag=True,
              help="--format table: show long text whole instead of fitting the terminal's width.")
@param_option
@handle_errors
@as_of_option
def run(name, project_dir, target, fmt, output, max_rows, wide, params) -> None:
    """Run an input or tracker and print its rows.

    The table fits the terminal's width (long text is cut with …; --wide shows it whole)
    and shows the first --limit rows. csv and json carry every row with raw typed values
    (ISO dates, plain numbers) under the output column names. Nothing is written to the
    tracker's destination.

    \b
    Examples:
      genesis run movies-in-photography
      genesis run movies_in_photography --limit 10 --wide
      genesis run late_purchase_orders --param grace_days=7 --format csv
      genesis run late-purchase-orders --format json --output out/late.json
    """
    from .api import run_query

    project = load(project_dir)
    values = parse_params(params)
    result = run_query(project, name, target=target, params=values)
    note_overrides(project, [name], values)
    if fmt == "table":
        from .commands.preview import render_table

        width = None if wide or output else terminal_width()
        text = render_table(result, max_rows=max_rows, width=width, cut=not wide)
    else:
        import io

        from .destinations.file import write_csv_stream, write_json_stream

        buffer = io.StringIO()
        (write_csv_stream if fmt == "csv" else write_json_stream)(result, buffer)
        text = buffer.getvalue()
    if output:
        try:  # as file destinations do: the folder is created
            Path(output).parent.mkdir(parents=True, exist_ok=True)
            Path(output).write_text(text, encoding="utf-8", newline="")
        except OSError as exc:
            raise GenesisError(f"cannot write {output}: {(exc.strerror or str(exc)).lower()}") from None
        echo(f"{result.table.num_rows} rows written to {output}", err=True)
    else:
        echo(text, nl=False)


@main.command()
@project_option
@target_option("Whose warehouse to build (a duckdb target). Default: default_target.")
@click.option("--scale", type=click.IntRange(min=1), default=1, show_default=True,
              help="Multiply the sample's size (about 100k rows at 1).")
@click.option("--seed", type=int, default=42, show_default=True, help="The same seed gives the same rows.")
@handle_errors
def demo(project_dir, target, scale, seed) -> None:
    """Build the local sample studio warehouse.

    Writes Iceberg tables (a pyiceberg SQL catalog) into the warehouse folder of a local
    (duckdb) target, by default .genesis/warehouse. Rerunnable: every table is rewritten.

    \b
    Examples:
      genesis demo
      genesis demo --scale 10 --seed 7
    """
    import time

    from .authoring.demo import build_demo
    from .project.config import get_target, render_settings, warehouse_location

    require_project(project_dir, "genesis demo")
    project = load(project_dir)
    chosen = get_target(project, target)
    if chosen.engine != "duckdb":
        raise GenesisError(f"target '{chosen.name}' is not a local (duckdb) target; demo builds a local warehouse")
    path = warehouse_location(project, render_settings(chosen))
    started = time.perf_counter()
    counts = build_demo(path, scale=scale, seed=seed, progress=lambda line: echo(line, err=True))
    from .monitoring.history import history_enabled, open_history

    if history_enabled(project, chosen):  # the run history exists before the first refresh reads it
        open_history(project, chosen, render_settings(chosen)).ensure()
    total = sum(counts.values())
    echo(f"demo warehouse: {len(counts)} tables, {total:,} rows in {path} "
               f"({time.perf_counter() - started:.1f} s)")


@main.command()
@click.argument("trackers", nargs=-1, metavar="[TRACKER|SELECTOR]...",
                shell_complete=complete_names(("tracker",), selectors=True))
@project_option
@click.option("--all", "all_", is_flag=True, help="Refresh every tracker.")
@selection_options
@click.option("--due", is_flag=True,
              help="Only trackers whose schedule fired since their last successful refresh (catch-up).")
@click.option("--window", type=float, default=15, show_default=True,
              help="Minutes, for --due: a destination without a refresh stamp is due when its schedule fired this recently.")
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="Trackers refreshed at once (default 8; 1 = one after another).")
@click.option("--shard", default=None, metavar="K/N",
              help="Only the K-th of N stable shares of the trackers (one per runner; same spreadsheet/base, same shard).")
@target_option("Where queries run and results go. Default: default_target.")
@click.option("--dry-run", is_flag=True, help="Compile, run and check, but write nothing.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text: progress on stderr and a summary; json: one report document.")
@param_option
@handle_errors
@as_of_option
def refresh(trackers, project_dir, all_, select, exclude, due, window, jobs, shard, target, dry_run, fmt,
            params) -> None:
    """Run trackers and write their destinations.

    Each tracker is compiled, run, checked and written; a failed query or check writes
    nothing and keeps the last good data, and never stops the other trackers. Trackers are
    chosen by name or glob, --select / --exclude (as dbt's), --all or --due. Up to --jobs
    trackers run at once, one writer per spreadsheet, base or file. The summary names each
    tracker's destination and every distinct error once. Exit code 1 if any tracker failed,
    130 if the run was stopped (Ctrl-C, SIGTERM).

    \b
    Examples:
      genesis refresh --all
      genesis refresh 'late-*' --dry-run
      genesis refresh --select owner:finance --exclude destination:airtable
      genesis refresh --select input:late_purchase_orders --format json
      genesis refresh --due --jobs 8 --shard 1/4 --target prod
      genesis refresh movies-in-photography --param countries=US,CA
    """
    from .commands.refresh_summary import Progress, summary_table
    from .run.pool import DEFAULT_JOBS, stop_on_signals
    from .run.refresh import refresh as run_refresh
    from .run.refresh import select_trackers
    from .run.scheduler import parse_shard
    from .run.selection import split_selectors

    project = load(project_dir)
    jobs = jobs or DEFAULT_JOBS
    chosen = select_trackers(project, trackers, all_, due, window, target=target,
                             shard=parse_shard(shard) if shard else None, jobs=jobs,
                             select=split_selectors(select), exclude=split_selectors(exclude))
    if not chosen:
        message = "no tracker is due" if due else "no trackers to refresh"
        # Nothing is due, yet a tracker may have missed its schedule: the run history notices it.
        warnings = run_refresh(project, [], target=target, dry_run=dry_run).warnings if due else []
        if fmt == "json":
            echo(json.dumps({"ok": True, "trackers": [], "message": message, "warnings": warnings}, indent=2))
        else:
            echo(message, err=True)
            for warning in warnings:
                echo(f"warning: {warning}", err=True)
        return
    values = parse_params(params)
    note_overrides(project, [f"tracker:{t.name}" for t in chosen], values)  # stderr, in every format
    progress = None if fmt == "json" else Progress(len(chosen), functools.partial(echo, err=True),
                                                   live=sys.stderr.isatty())
    with stop_on_signals() as stop:  # Ctrl-C / SIGTERM: finish the writes under way, then report
        result = run_refresh(project, chosen, target=target, dry_run=dry_run, progress=progress,
                             jobs=jobs, stop=stop, params=values)  # capped by refresh()
    if fmt == "json":
        echo(json.dumps(result.to_json(), indent=2, default=str))
    else:
        echo(summary_table(result))
    sys.exit(130 if result.cancelled else 0 if result.ok else 1)


@main.command()
@click.option("--base", required=True, metavar="REF", help="The git ref to compare with, e.g. origin/main.")
@project_option
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text", show_default=True,
              help="markdown is sized for a pull-request comment; json is for tools.")
@click.option("--dialect", type=click.Choice(["trino", "duckdb"]), default=None,
              help="SQL dialect of the diff. Default: the engine of --target.")
@click.option("--data", "run_data", is_flag=True, help="Also run the changed trackers at both refs and diff their rows.")
@target_option("The target under review: its SQL dialect is shown, and --data runs there. "
               "Default: default_target.")
@handle_errors
@as_of_option
def diff(base, project_dir, fmt, dialect, run_data, target) -> None:
    """What a change does to every tracker, against a git ref.

    Compiles every tracker at REF (read from git; the working tree is not touched) and in
    the working tree, and reports each as added, removed, changed (with a diff of its SQL
    and the definitions that caused it) or unchanged.

    \b
    Examples:
      genesis diff --base origin/main
      genesis diff --base origin/main --format markdown
      genesis diff --base HEAD~1 --data --target local
    """
    from .review import diff_against, render_diff

    report = diff_against(project_dir, base, dialect=dialect, data_target=target, run_data=run_data)
    echo(render_diff(report, fmt))


@main.command()
@click.argument("ref", shell_complete=complete_names(("datasource",)))
@project_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text for people; json for tools.")
@handle_errors
def impact(ref, project_dir, fmt) -> None:
    """Which inputs and trackers use a data source, field or join.

    REF is a data source (movie), a field, measure or segment (movie.title) or a join (movie.cast).
    Each input is listed with where it uses REF (a column, a filter, the sort, a join path),
    each tracker with its owner, schedule and destination.

    \b
    Examples:
      genesis impact movie.status
      genesis impact movie.cast --format json
    """
    from .review import find_impact, render_impact

    echo(render_impact(find_impact(load(project_dir), ref), fmt))


@main.command()
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="The folder to write.")
@project_option
@click.option("--dialect", type=click.Choice(["trino", "duckdb"]), default=None,
              help="SQL dialect shown. Default: the engine of --target.")
@target_option("The target whose SQL is shown. Default: default_target.")
@handle_errors
def docs(out_dir, project_dir, dialect, target) -> None:
    """Write a searchable HTML catalog of the project.

    One self-contained folder (DIR/index.html): data sources, fields, inputs and trackers
    with descriptions, which trackers use each field, and their SQL as --target runs it.

    \b
    Examples:
      genesis docs --out site/
      genesis docs --out site/ --target prod
    """
    from .review.catalog import build_docs

    index = build_docs(load_valid(project_dir), out_dir, dialect=dialect, target=target)
    echo(f"catalog written to {index}", err=True)


# --------------------------------------------------------------------------- init, ls, completion


def require_project(project_dir: str, command: str) -> None:
    """A clear next step instead of 'genesis.yaml not found' for a newcomer in an empty folder."""
    if not (Path(project_dir) / "genesis.yaml").is_file():
        where = "this folder" if project_dir == "." else f"'{project_dir}'"
        raise GenesisError(f"{where} is not a Genesis project (no genesis.yaml)",
                           hint=f"run `genesis init my-trackers && cd my-trackers && {command}`, "
                                f"or run it from a project folder or with --project DIR")


def terminal_width() -> int | None:
    """The width `run` tables fit: $COLUMNS, else the terminal's; None when piped (no limit)."""
    import shutil

    if os.environ.get("COLUMNS", "").isdigit():
        return int(os.environ["COLUMNS"])
    return shutil.get_terminal_size().columns if sys.stdout.isatty() else None


@main.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False))
@handle_errors
def init(directory) -> None:
    """Start a new project in DIRECTORY (default: here).

    Writes genesis.yaml (a local target over the sample warehouse), one data source, one
    input and one tracker, a .gitignore, the JSON Schemas for editors (schemas/) and the
    GitHub workflows (pull requests, scheduled refresh, catalog). Existing files are kept,
    never overwritten.

    \b
    Examples:
      genesis init my-trackers && cd my-trackers && genesis demo
      genesis init .
    """
    from .authoring.scaffold import scaffold

    written, kept = scaffold(Path(directory))
    if not written:
        raise GenesisError(f"nothing written: '{directory}' already has every file `genesis init` writes")
    for path in written:
        echo(f"  wrote {path}", err=True)
    for path in kept:
        echo(f"  kept  {path} (it exists)", err=True)
    step = "" if directory == "." else f"cd {directory} && "
    echo(f"Genesis project in {directory}: {plural(len(written), 'file')} written. Next:\n"
               f"  {step}genesis demo && genesis refresh --all")


@main.command(name="ls")
@click.argument("selectors", nargs=-1, metavar="[SELECTOR]...",
                shell_complete=complete_names(("tracker", "input", "datasource"), selectors=True))
@project_option
@click.option("--kind", "kinds", multiple=True, type=click.Choice(["datasource", "input", "tracker"]),
              help="Only definitions of this kind (repeatable). Default: all three.")
@selection_options
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text for people; json for tools.")
@handle_errors
def ls(selectors, project_dir, kinds, select, exclude, fmt) -> None:
    """List data sources, inputs and trackers.

    Trackers are shown with their input, owner, schedule and destination. Selectors are
    the ones `refresh` takes: a name or glob, tracker:, input:, datasource:, owner:,
    destination:, and A,B for both.

    \b
    Examples:
      genesis ls
      genesis ls 'late-*'
      genesis ls --select owner:finance --kind tracker
      genesis ls --select datasource:vendor --format json
    """
    from .commands.listing import list_project, render_listing
    from .run.selection import KINDS, split_selectors

    project = load(project_dir)
    rows = list_project(project, [*selectors, *split_selectors(select)], split_selectors(exclude),
                        kinds or KINDS)
    echo(render_listing(rows, fmt))


@main.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell) -> None:
    """Print the shell completion script for bash, zsh or fish.

    Completes commands, options, tracker and input names and selectors, read from the
    project in the current folder (or --project).

    \b
    Examples:
      genesis completion bash > ~/.genesis-complete.bash   # then in ~/.bashrc:
      . ~/.genesis-complete.bash
      genesis completion zsh > "${fpath[1]}/_genesis"
      genesis completion fish > ~/.config/fish/completions/genesis.fish
    """
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    echo(cls(main, {}, "genesis", "_GENESIS_COMPLETE").source())


@main.command()
@click.argument("trackers", nargs=-1, metavar="[TRACKER]...", shell_complete=complete_names(("tracker",)))
@project_option
@target_option("Whose run history to read. Default: default_target.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text for people; json for tools.")
@handle_errors
def status(trackers, project_dir, target, fmt) -> None:
    """Show each tracker's last success, last failure and lateness.

    Read from the run history that every refresh records (docs/monitoring.md).

    \b
    Examples:
      genesis status
      genesis status late-purchase-orders --format json
    """
    from .commands.monitoring import status_command

    echo(status_command(load(project_dir), trackers, target, fmt))


@main.command()
@click.argument("trackers", nargs=-1, metavar="[TRACKER|SELECTOR]...",
                shell_complete=complete_names(("tracker",), selectors=True))
@project_option
@target_option("Where queries run and destinations are read. Default: default_target.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text for people; json for tools.")
@handle_errors
def audit(trackers, project_dir, target, fmt) -> None:
    """Compare destinations with their query results; write nothing.

    Reports keys missing or extra and Genesis-owned cells that differ; columns people own
    are left alone. Default: every tracker.

    \b
    Examples:
      genesis audit
      genesis audit 'late-*' --target prod --format json
    """
    from .monitoring.audit import audit as run_audit
    from .monitoring.audit import render
    from .run.refresh import select_trackers

    project = load(project_dir)
    results = run_audit(project, select_trackers(project, trackers, not trackers, False), target)
    echo(render(results, fmt))
    sys.exit(1 if any(a.drift or a.error for a in results) else 0)


# Commands that only read the project and write their output: no connection, thread or
# temporary file outlives them (`validate --catalog-check` connects, so it is left out).
QUICK_EXIT_COMMANDS = ("validate", "compile")


def entry_point() -> None:
    """The `genesis` program: `main`, with the garbage collector tuned for a short run, and a
    quick exit after a read-only command.

    Why: `compile --all` of 300 inputs builds a few hundred thousand small sqlglot nodes,
    linked both ways. With the default thresholds the collector ran 800 times and took a
    quarter of the run; freeing every node one by one at interpreter exit took 0.3 s more
    (bench/compile.py). mypy does both, for the same reasons. Tests call `main` in their own
    process, so none of this applies there.
    """
    import gc

    gc.freeze()  # what the imports made is never garbage: collections skip it
    gc.set_threshold(50_000, 20, 20)  # collect young objects every 50,000 allocations, not 700
    args = sys.argv[1:]
    if not args or args[0] not in QUICK_EXIT_COMMANDS or "--catalog-check" in args:
        main(prog_name="genesis")
        return
    code = 0
    try:
        main(prog_name="genesis")
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:  # `genesis compile x | head`: the reader has gone, as with a normal exit
        code = code or 1
    os._exit(code)  # the output is flushed and the files written are closed: skip the teardown


if __name__ == "__main__":
    entry_point()
