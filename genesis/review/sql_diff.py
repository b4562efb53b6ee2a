"""`genesis diff`: what a change does to every tracker's SQL, and which definitions explain it.

    report = diff_against(".", "origin/main")          # DiffReport: one TrackerChange per tracker
    print(render_diff(report, "markdown"))             # review/output.py

The base ref's project is read from git (review/git.py) and compiled like the working
tree's. A tracker is unchanged when its SQL is; "because" lists the definition changes
among what the tracker depends on: its own definition, its input and the data sources it
reads (the compiler's record of the references it used). With `--data` the changed trackers
also run at both refs (review/row_diff.py).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..compiler import CompiledQuery, compile_tracker
from ..errors import GenesisError
from ..project.load import load_project
from ..project.model import Project, Tracker
from .definitions import (
    datasource_changes,
    definition,
    format_changes,
    graph_definition,
    input_changes,
    tracker_setting_changes,
)
from .git import BaseLoadError, project_at
from .row_diff import add_row_diffs

STATUSES = ("changed", "added", "removed", "error", "unchanged")
WORKING_TREE = "working tree"


@dataclass
class TrackerChange:
    """How one tracker differs between the base ref and the working tree."""

    name: str
    status: str  # one of STATUSES
    input: str | None = None
    because: list[str] = field(default_factory=list)  # the definition changes that explain it
    notes: list[str] = field(default_factory=list)  # changes that leave the SQL as it was
    sql_diff: str = ""  # unified diff of the pretty-printed SQL
    lines_added: int = 0
    lines_removed: int = 0
    error: str | None = None
    data: dict[str, Any] | None = None  # with --data: the row diff at both refs

    def to_json(self) -> dict[str, Any]:
        """The change as `genesis diff --format json` prints it."""
        return {"name": self.name, "status": self.status, "input": self.input, "because": self.because,
                "notes": self.notes, "sql_diff": self.sql_diff, "lines_added": self.lines_added,
                "lines_removed": self.lines_removed, "error": self.error, "data": self.data}


@dataclass
class DiffReport:
    """Every tracker of both projects, changes first, and how the base was read."""

    base: str
    dialect: str
    trackers: list[TrackerChange]
    base_error: str | None = None
    base_missing: bool = False  # the base ref has no project here: everything is new
    target: str | None = None

    def counts(self) -> dict[str, int]:
        """How many trackers have each status, every status present (0 included)."""
        return {status: sum(1 for t in self.trackers if t.status == status) for status in STATUSES}

    def by_status(self, *statuses: str) -> list[TrackerChange]:
        """The trackers with one of `statuses`, in report order."""
        return [t for t in self.trackers if t.status in statuses]

    def to_json(self) -> dict[str, Any]:
        """The report as `genesis diff --format json` prints it."""
        return {"base": self.base, "dialect": self.dialect, "summary": self.counts(),
                "base_error": self.base_error, "base_missing": self.base_missing, "target": self.target,
                "trackers": [t.to_json() for t in self.trackers]}


def diff_against(project_dir: str | Path, base: str, *, dialect: str | None = None,
                 data_target: str | None = None, run_data: bool = False) -> DiffReport:
    """Compare every tracker of the working tree's project with the one at git ref `base`.

    The SQL is shown as the target under review runs it: `data_target` (--target) or the
    default target; `dialect` (--dialect) overrides only the printing. With `run_data`, the
    changed trackers run at both refs on that target and carry their row diff.
    """
    from ..project.config import get_target

    head = load_project(project_dir)
    reviewed = get_target(head, data_target)
    dialect = dialect or reviewed.engine
    try:
        with project_at(base, project_dir) as base_project:
            report = diff_projects(base_project, head, base, dialect)
    except BaseLoadError as exc:
        report = diff_projects(None, head, base, dialect)
        report.target = reviewed.name
        report.base_error = exc.message
        for change in report.trackers:
            change.because = []  # "new" would be wrong: the base could not be read
        return report
    report.target = reviewed.name
    report.base_missing = base_project is None
    if run_data and base_project is not None:
        add_row_diffs(report, base_project, head, data_target)
    return report


def diff_projects(base: Project | None, head: Project, base_name: str, dialect: str) -> DiffReport:
    """A TrackerChange for every tracker in either project, changes first, then by name."""
    same_graph = base is not None and graph_definition(base) == graph_definition(head)
    names = sorted(set(head.trackers) | set(base.trackers if base else ()))
    changes = [_compare_tracker(base, head, name, base_name, dialect, same_graph) for name in names]
    changes.sort(key=lambda c: (STATUSES.index(c.status), c.name))
    return DiffReport(base_name, dialect, changes)


def _compile(project: Project, name: str) -> tuple[CompiledQuery | None, str | None]:
    """The tracker compiled (remembered per project), or the rendered reason it does not."""
    try:
        from ..run.fan_out import sample_params  # a for_each tracker compiles with a sample value

        return compile_tracker(project, name, sample_params(project, name)), None
    except GenesisError as exc:
        return None, exc.render()


def _compare_tracker(base: Project | None, head: Project, name: str, base_name: str,
                     dialect: str, same_graph: bool) -> TrackerChange:
    old_tracker = base.trackers.get(name) if base else None
    new_tracker = head.trackers.get(name)
    if new_tracker is None:
        assert old_tracker is not None  # the name comes from one of the two projects
        return TrackerChange(name, "removed", old_tracker.input, [f"tracker '{name}' was deleted"])
    new, new_error = _compile(head, name)
    if new is None:
        return TrackerChange(name, "error", new_tracker.input, error=f"does not compile: {new_error}")
    if base is None or old_tracker is None:
        change = TrackerChange(name, "added", new_tracker.input, [f"tracker '{name}' is new"])
        _set_sql_diff(change, "", new.sql(dialect), base_name, name)
        return change
    if same_graph and _same_dependencies(base, head, new, old_tracker, new_tracker):
        return TrackerChange(name, "unchanged", new_tracker.input, notes=_notes(base, head, name))
    old, old_error = _compile(base, name)
    old_sql = old.sql(dialect) if old is not None else ""
    new_sql = new.sql(dialect)
    if old_sql == new_sql:
        return TrackerChange(name, "unchanged", new_tracker.input, notes=_notes(base, head, name))
    change = TrackerChange(name, "changed", new_tracker.input, _because(base, head, name, old, new))
    if old_error:
        change.notes.append(f"did not compile at {base_name}: {old_error}")
    _set_sql_diff(change, old_sql, new_sql, base_name, name)
    return change


def _same_dependencies(base: Project, head: Project, compiled: CompiledQuery, old_tracker: Tracker,
                       new_tracker: Tracker) -> bool:
    """True when nothing the head's SQL was compiled from differs at base (no need to compile it)."""
    if definition(old_tracker.parameters) != definition(new_tracker.parameters):
        return False
    if old_tracker.input != new_tracker.input:
        return False
    old_input = base.inputs.get(new_tracker.input)
    if old_input is None or definition(old_input) != definition(compiled.input):
        return False
    for ds in compiled.datasources:
        old_ds = base.datasources.get(ds)
        if old_ds is None or definition(old_ds) != definition(head.datasources[ds]):
            return False
    return True


def _because(base: Project, head: Project, name: str, old: CompiledQuery | None,
             new: CompiledQuery) -> list[str]:
    """The definition changes, among what the tracker reads, that explain a new SQL.

    What it reads is the compiler's record (`references` already holds what a use implies:
    a join's key fields, a measure's field), at either ref.
    """
    out = []
    old_tracker, new_tracker = base.trackers[name], head.trackers[name]
    settings = tracker_setting_changes(old_tracker, new_tracker)
    if "input" in settings:
        out.append(f"tracker '{name}': input changed from '{old_tracker.input}' to '{new_tracker.input}'")
    elif "parameters" in settings:
        out.append(f"tracker '{name}': parameters changed")
    old_input = base.inputs.get(new_tracker.input)
    if old_input is not None and "input" not in settings:
        out += input_changes(old_input, head.inputs[new_tracker.input])
    used = set(new.datasources) | (set(old.datasources) if old else set())
    refs = set(new.references) | (set(old.references) if old else set())
    for ds_name in sorted(used):
        old_ds, new_ds = base.datasources.get(ds_name), head.datasources.get(ds_name)
        if old_ds is None or new_ds is None:
            out.append(f"data source '{ds_name}' was {'added' if old_ds is None else 'removed'}")
            continue
        found = datasource_changes(old_ds, new_ds)
        relevant = [text for key, text in found if key is None or key in refs]
        out += relevant or [text for _, text in found]
    if not out:
        out.append(_graph_cause(base, head))
    return out


def _graph_cause(base: Project, head: Project) -> str:
    """Why a tracker whose own definitions are equal compiles differently: another join moved."""
    old, new = graph_definition(base), graph_definition(head)
    changed = sorted(n for n in set(old) | set(new) if old.get(n) != new.get(n))
    if changed:
        return "the join graph changed (joins of " + ", ".join(f"'{n}'" for n in changed) + ")"
    return "the compiler's output changed"


def _notes(base: Project, head: Project, name: str) -> list[str]:
    """Changes that leave the SQL as it was but that a reviewer still wants to see."""
    old_tracker, new_tracker = base.trackers[name], head.trackers[name]
    notes = [f"tracker '{name}': {key} changed" for key in tracker_setting_changes(old_tracker, new_tracker)
             if key != "parameters"]
    old_input, new_input = base.inputs.get(new_tracker.input), head.inputs.get(new_tracker.input)
    if old_input is not None and new_input is not None:
        formats = format_changes(old_input, new_input)
        if formats:
            notes.append(f"input '{new_input.name}': format of {', '.join(repr(n) for n in formats)} changed")
    return notes


def _set_sql_diff(change: TrackerChange, old_sql: str, new_sql: str, base_name: str, name: str) -> None:
    """A unified diff of the pretty-printed SQL and its +/- line counts."""
    lines = list(difflib.unified_diff(
        old_sql.splitlines(), new_sql.splitlines(),
        f"{base_name}:{name}.sql" if old_sql else "/dev/null",
        f"{WORKING_TREE}:{name}.sql" if new_sql else "/dev/null", lineterm="", n=3))
    change.sql_diff = "\n".join(lines)
    change.lines_added = sum(1 for line in lines[2:] if line.startswith("+"))
    change.lines_removed = sum(1 for line in lines[2:] if line.startswith("-"))
