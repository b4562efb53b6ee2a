"""The `genesis` command: parse arguments, call the library, print.

Every user-facing problem is a GenesisError printed as `path:line:col: error: ...`
with exit code 1; anything else is reported as an internal error in one line (set
GENESIS_DEBUG=1 for the traceback).
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path

import click

from . import __version__
from .errors import GenesisError, ValidationError, redact


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
    type=click.Path(file_okay=False), help="The Genesis project directory.")


def param_option(command):
    return click.option("--param", "params", multiple=True, metavar="NAME=VALUE",
                        help="A parameter value (repeatable); lists as a,b,c or JSON.")(command)


def parse_params(items) -> dict:
    params = {}
    for item in items:
        if "=" not in item:
            raise GenesisError(f"--param '{item}' must be NAME=VALUE")
        name, value = item.split("=", 1)
        params[name.strip()] = value
    return params


def load(project_dir: str):
    from .project import load_project

    return load_project(project_dir)


def load_valid(project_dir: str):
    from .validate import validate_project

    project = load(project_dir)
    validate_project(project)
    return project


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="genesis")
def main() -> None:
    """Genesis: a semantic data layer for operational trackers."""
    from .errors import install_log_redaction

    install_log_redaction(bool(os.environ.get("GENESIS_DEBUG")))


@main.command()
@project_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--target", default=None, help="With --catalog-check: the target whose catalog is read.")
@click.option("--catalog-check", is_flag=True, help="Also compare the data sources with the live catalog.")
@handle_errors
def validate(project_dir: str, fmt: str, target: str | None, catalog_check: bool) -> None:
    """Load and check every file of the project."""
    from .errors import ErrorCollector
    from .project import load_project
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
            from .catalog_check import check_catalog

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
        echo(f"{len(errors)} error(s)", err=True)
    else:
        echo(f"ok: {counts['datasources']} data sources, {counts['inputs']} inputs, "
                   f"{counts['trackers']} trackers")
    sys.exit(1 if errors else 0)


@main.command()
@click.argument("name", required=False)
@project_option
@click.option("--dialect", type=click.Choice(["trino", "duckdb"]), default=None,
              help="Default: the engine of the default target.")
@click.option("--all", "all_", is_flag=True, help="Compile every tracker and input.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="With --all: write DIR/<name>.sql.")
@click.option("--target", default=None, help="Whose engine decides the default dialect.")
@param_option
@handle_errors
def compile(name, project_dir, dialect, all_, out_dir, target, params) -> None:  # noqa: A001
    """Print the SQL of an input or tracker."""
    from .compiler import compile_input, compile_name, compile_tracker
    from .config import get_target

    project = load_valid(project_dir) if all_ else load(project_dir)
    dialect = dialect or get_target(project, target).engine
    if all_:
        if not out_dir:
            raise GenesisError("--all needs --out DIR")
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        written = 0
        for tracker in sorted(project.trackers):
            (out / f"{tracker}.sql").write_text(compile_tracker(project, tracker).sql(dialect) + "\n")
            written += 1
        for inp in sorted(project.inputs):
            if inp not in project.trackers:
                (out / f"{inp}.sql").write_text(compile_input(project, inp).sql(dialect) + "\n")
                written += 1
        echo(f"wrote {written} SQL files to {out}", err=True)
        return
    if not name:
        raise GenesisError("name an input or tracker, or use --all --out DIR")
    echo(compile_name(project, name, parse_params(params)).sql(dialect))


@main.command()
@click.argument("name")
@project_option
@click.option("--target", default=None)
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False), help="Write to FILE instead of standard output.")
@click.option("--limit", "max_rows", type=int, default=50, show_default=True, help="Rows shown by --format table.")
@param_option
@handle_errors
def run(name, project_dir, target, fmt, output, max_rows, params) -> None:
    """Run an input or tracker and print its rows."""
    from .api import run_query

    project = load(project_dir)
    result = run_query(project, name, target=target, params=parse_params(params))
    if fmt == "table":
        from .preview import render_table

        text = render_table(result, max_rows=max_rows) + "\n"
    else:
        import io

        from .destinations.file import write_csv_stream, write_json_stream

        buffer = io.StringIO()
        (write_csv_stream if fmt == "csv" else write_json_stream)(result, buffer)
        text = buffer.getvalue()
    if output:
        Path(output).write_text(text, encoding="utf-8")
        echo(f"{result.table.num_rows} rows written to {output}", err=True)
    else:
        echo(text, nl=False)


@main.command()
@project_option
@click.option("--target", default=None, help="Whose warehouse to build (a duckdb target).")
@click.option("--scale", type=int, default=1, show_default=True, help="Multiply the sample's size.")
@click.option("--seed", type=int, default=42, show_default=True)
@handle_errors
def demo(project_dir, target, scale, seed) -> None:
    """Build the local sample studio warehouse."""
    import time

    from .config import get_target, render_settings, warehouse_dir
    from .demo import build_demo

    project = load(project_dir)
    chosen = get_target(project, target)
    if chosen.engine != "duckdb":
        raise GenesisError(f"target '{chosen.name}' is not a local (duckdb) target; demo builds a local warehouse")
    path = warehouse_dir(project, render_settings(chosen))
    started = time.perf_counter()
    counts = build_demo(path, scale=scale, seed=seed)
    total = sum(counts.values())
    echo(f"demo warehouse: {len(counts)} tables, {total:,} rows in {path} "
               f"({time.perf_counter() - started:.1f} s)")


@main.command()
@click.argument("trackers", nargs=-1)
@project_option
@click.option("--all", "all_", is_flag=True, help="Refresh every tracker.")
@click.option("--due", is_flag=True, help="Only trackers whose schedule fired within --window.")
@click.option("--window", type=float, default=15, show_default=True, help="Minutes, for --due.")
@click.option("--target", default=None)
@click.option("--dry-run", is_flag=True, help="Compile, run and check, but write nothing.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@handle_errors
def refresh(trackers, project_dir, all_, due, window, target, dry_run, fmt) -> None:
    """Run trackers and write their destinations."""
    from .refresh import refresh as run_refresh
    from .refresh import select_trackers

    project = load(project_dir)
    chosen = select_trackers(project, trackers, all_, due, window)
    if not chosen:
        message = "no tracker is due" if due else "no trackers to refresh"
        if fmt == "json":
            echo(json.dumps({"ok": True, "trackers": [], "message": message}, indent=2))
        else:
            echo(message, err=True)
        return
    total = len(chosen)
    position = {"n": 0}
    # On a terminal a tracker shows "... running" while it runs, then its result on the same
    # line; in a log (not a terminal) each tracker is exactly one line: its result and, when
    # it failed, why -- so one failing tracker is one line on stderr.
    live = sys.stderr.isatty()

    def progress(event, report):
        if fmt == "json":
            return
        prefix = f"[{position['n'] + (event == 'start')}/{total}] {report.tracker}"
        if event == "start":
            position["n"] += 1
            if live:
                echo(f"{prefix} -> {report.destination} ...", err=True, nl=False)
            return
        rows = "" if report.rows is None else f"{report.rows:,} rows, "
        status = f"FAILED at {report.stage}" if report.failed else report.status
        line = f"{prefix}: {status} ({rows}{report.seconds:.2f} s)" + (f": {report.error}" if report.error else "")
        echo(("\r\x1b[K" if live else "") + line, err=True)

    result = run_refresh(project, chosen, target=target, dry_run=dry_run, progress=progress)
    if fmt == "json":
        echo(json.dumps(result.to_json(), indent=2, default=str))
    else:
        echo(summary_table(result))
    sys.exit(0 if result.ok else 1)


def summary_table(result) -> str:
    rows = [("tracker", "rows", "seconds", "result")]
    for t in result.trackers:
        rows.append((t.tracker, "" if t.rows is None else f"{t.rows:,}", f"{t.seconds:.2f}",
                     t.status if not t.failed else f"FAILED at {t.stage}"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) if i in (0, 3) else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    failed = sum(t.failed for t in result.trackers)
    lines.append(f"{len(result.trackers) - failed} ok, {failed} failed in {result.seconds:.1f} s"
                 + (" (dry run: nothing written)" if result.dry_run else ""))
    return "\n".join(lines)


@main.command()
@click.option("--base", required=True, metavar="REF", help="The git ref to compare with, e.g. origin/main.")
@project_option
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text", show_default=True)
@click.option("--dialect", type=click.Choice(["trino", "duckdb"]), default=None,
              help="SQL dialect of the diff. Default: the engine of the default target.")
@click.option("--data", "run_data", is_flag=True, help="Also run the changed trackers at both refs and diff their rows.")
@click.option("--target", default=None, help="With --data: where the queries run (default: the default target).")
@handle_errors
def diff(base, project_dir, fmt, dialect, run_data, target) -> None:
    """Per tracker: added, removed, SQL changed or unchanged since git REF, and why."""
    from .gitops import diff_against, render_diff

    report = diff_against(project_dir, base, dialect=dialect, data_target=target, run_data=run_data)
    echo(render_diff(report, fmt))


@main.command()
@click.argument("ref")
@project_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@handle_errors
def impact(ref, project_dir, fmt) -> None:
    """The inputs and trackers that use a data source (movie), field (movie.title) or join (movie.cast)."""
    from .gitops import find_impact, render_impact

    echo(render_impact(find_impact(load(project_dir), ref), fmt))


@main.command()
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="The folder to write.")
@project_option
@click.option("--dialect", type=click.Choice(["trino", "duckdb"]), default=None,
              help="SQL dialect shown. Default: the engine of the default target.")
@handle_errors
def docs(out_dir, project_dir, dialect) -> None:
    """Write a static HTML catalog of the project (one self-contained folder)."""
    from .docs import build_docs

    index = build_docs(load_valid(project_dir), out_dir, dialect=dialect)
    echo(f"catalog written to {index}", err=True)


if __name__ == "__main__":
    main()
