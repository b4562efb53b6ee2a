"""Git-aware reviews: what a change does to every tracker (`diff`) and who uses what (`impact`).

    report = diff_against(".", "origin/main")          # DiffReport: one TrackerChange per tracker
    print(render_diff(report, "markdown"))
    impact = find_impact(project, "movie.title")         # ImpactReport: inputs and trackers

The base ref's project is read from git objects into a temporary directory (the working
tree is never touched), loaded with `load_project` and compiled like the working tree's.
A tracker is unchanged when its SQL is; "because" lists the definition changes among what
the tracker depends on: its own definition, its input and the data sources it reads.
"""

from __future__ import annotations

import difflib
import json
import re
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator, Mapping

from .compiler import CompiledQuery, compile_input, compile_tracker, graph_of
from .errors import GenesisError, ValidationError, did_you_mean
from .model import DataSource, Input, Project
from .project import CONFIG_FILE, KIND_DIRS, load_project
from .text import plural

STATUSES = ("changed", "added", "removed", "error", "unchanged")
# Keys that describe a definition without changing what it computes.
_IGNORED_KEYS = frozenset({"loc", "locs", "path", "sql_loc", "description"})
# What load_project reads: the config and the YAML files directly in each kind's folder.
_DEFINITION_FILE = re.compile(rf"^({re.escape(CONFIG_FILE)}|({'|'.join(KIND_DIRS.values())})/[^/]+\.y[^/]*ml)$")
WORKING_TREE = "working tree"


# ---------------------------------------------------------------- git


def _git(args: list[str], cwd: Path, stdin: bytes | None = None) -> bytes:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, input=stdin, capture_output=True, check=False)
    except FileNotFoundError:
        raise GenesisError("git is not installed (genesis diff reads the base ref from git)") from None
    if done.returncode != 0:
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        fatal = [line for line in lines if line.startswith(("fatal:", "error:"))]
        raise GenesisError(f"git {args[0]} failed: {(fatal or lines or [done.returncode])[0]}")
    return done.stdout


def _repo_prefix(project_dir: Path) -> str:
    """The project's path inside its git repository ('' at the top, else 'a/b/')."""
    try:
        return _git(["rev-parse", "--show-prefix"], project_dir).decode().strip()
    except GenesisError as exc:
        raise GenesisError(f"{project_dir} is not inside a git repository (or git cannot read it)",
                           hint=exc.message) from None


def _check_ref(ref: str, project_dir: Path) -> None:
    try:
        _git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], project_dir)
    except GenesisError:
        raise GenesisError(f"unknown git ref '{ref}'",
                           hint="fetch it first, e.g. `git fetch origin main` (in CI: checkout with "
                                "fetch-depth: 0)") from None


def extract_definitions(ref: str, project_dir: str | Path, dest: Path) -> bool:
    """Write the project's definition files as of `ref` under `dest`; False if it had none.

    Only genesis.yaml and the three definition folders are read, straight from git's
    object store (ls-tree + one cat-file batch), so the working tree stays untouched.
    """
    project_dir = Path(project_dir).resolve()
    prefix = _repo_prefix(project_dir)
    _check_ref(ref, project_dir)
    listing = _git(["ls-tree", "-r", "-z", "--full-tree", ref, "--", prefix or "."], project_dir)
    wanted: list[tuple[str, str]] = []
    for entry in filter(None, listing.decode().split("\0")):
        meta, path = entry.split("\t", 1)
        mode, kind, oid = meta.split()
        relative = path[len(prefix):]
        if kind == "blob" and mode != "120000" and _DEFINITION_FILE.match(relative):
            wanted.append((oid, relative))
    if not any(rel == CONFIG_FILE for _, rel in wanted):
        return False
    blobs = _git(["cat-file", "--batch"], project_dir, "\n".join(oid for oid, _ in wanted).encode() + b"\n")
    for (_, relative), content in zip(wanted, _split_batch(blobs)):
        target = dest / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    return True


def _split_batch(data: bytes) -> Iterator[bytes]:
    """The contents out of `git cat-file --batch` output ('<oid> <type> <size>\\n<data>\\n')."""
    position = 0
    while position < len(data):
        header_end = data.index(b"\n", position)
        size = int(data[position:header_end].split()[2])
        start = header_end + 1
        yield data[start:start + size]
        position = start + size + 1


class BaseLoadError(GenesisError):
    """The project does not load at the base ref (the diff still shows the working tree)."""


@contextmanager
def project_at(ref: str, project_dir: str | Path = ".") -> Iterator[Project | None]:
    """The project as of git `ref` (None when the ref has no genesis.yaml there)."""
    with tempfile.TemporaryDirectory(prefix="genesis-base-") as tmp:
        root = Path(tmp)
        if not extract_definitions(ref, project_dir, root):
            yield None
            return
        try:
            project = load_project(root)
        except GenesisError as exc:
            prefix = _repo_prefix(Path(project_dir).resolve())
            text = exc.render().replace(str(root.resolve()) + "/", f"{ref}:{prefix}")
            raise BaseLoadError(f"the project does not load at {ref}:\n{text}") from None
        yield project


# ---------------------------------------------------------------- definitions


def definition(value: Any) -> Any:
    """A plain, comparable copy of a model object without locations and descriptions."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: definition(getattr(value, f.name)) for f in fields(value) if f.name not in _IGNORED_KEYS}
    if isinstance(value, Mapping):
        return {str(k): definition(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [definition(v) for v in value]
    return value


def _graph_definition(project: Project) -> dict:
    # Shortest-path resolution depends on every join, not only the ones a tracker uses.
    return {name: definition(ds.joins) for name, ds in project.datasources.items()}


def datasource_changes(old: DataSource, new: DataSource) -> list[tuple[str | None, str]]:
    """(reference key or None, description) per difference between two data source versions."""
    changes: list[tuple[str | None, str]] = []
    a, b = definition(old), definition(new)
    for key in sorted(set(a) | set(b)):
        if key in ("fields", "measures", "joins", "segments", "name") or a.get(key) == b.get(key):
            continue
        changes.append((None, f"data source '{new.name}': {key.replace('_', ' ')} changed"))
    for collection, noun in (("fields", "field"), ("measures", "measure"), ("joins", "join"),
                             ("segments", "segment")):
        for member, what in _member_changes(a[collection], b[collection]):
            key = f"{new.name}.join:{member}" if collection == "joins" else f"{new.name}.{member}"
            changes.append((key, f"data source '{new.name}': {noun} '{member}' {what}"))
    return changes


def _member_changes(old: Mapping, new: Mapping) -> list[tuple[str, str]]:
    out = []
    for name in list(old) + [n for n in new if n not in old]:
        if name not in new:
            out.append((name, "removed"))
        elif name not in old:
            out.append((name, "added"))
        elif old[name] != new[name]:
            out.append((name, "changed"))
    return out


def input_changes(old: Input, new: Input) -> list[str]:
    a, b = definition(old), definition(new)
    out = []
    for key in sorted(set(a) | set(b)):
        if key == "fields" or a.get(key) == b.get(key):
            continue
        out.append(f"input '{new.name}': {'from' if key == 'root' else key} changed")
    old_cols = {c["name"]: c for c in a["fields"]}
    new_cols = {c["name"]: c for c in b["fields"]}
    for name, what in _member_changes(old_cols, new_cols):
        out.append(f"input '{new.name}': column '{name}' {what}")
    if not out and a != b:
        out.append(f"input '{new.name}' changed")
    return out


def tracker_setting_changes(old, new) -> list[str]:
    """The tracker's own keys that differ (destination, schedule, parameters...)."""
    a, b = definition(old), definition(new)
    return [key for key in a if key != "name" and a[key] != b.get(key)]


# ---------------------------------------------------------------- diff


@dataclass
class TrackerChange:
    name: str
    status: str  # one of STATUSES
    input: str | None = None
    because: list[str] = field(default_factory=list)  # the definition changes that explain it
    notes: list[str] = field(default_factory=list)  # changes that leave the SQL as it was
    sql_diff: str = ""  # unified diff of the pretty-printed SQL
    lines_added: int = 0
    lines_removed: int = 0
    error: str | None = None
    data: dict | None = None  # with --data: the row diff at both refs

    def to_json(self) -> dict:
        return {"name": self.name, "status": self.status, "input": self.input, "because": self.because,
                "notes": self.notes, "sql_diff": self.sql_diff, "lines_added": self.lines_added,
                "lines_removed": self.lines_removed, "error": self.error, "data": self.data}


@dataclass
class DiffReport:
    base: str
    dialect: str
    trackers: list[TrackerChange]
    base_error: str | None = None
    base_missing: bool = False  # the base ref has no project here: everything is new
    target: str | None = None

    def counts(self) -> dict[str, int]:
        return {status: sum(1 for t in self.trackers if t.status == status) for status in STATUSES}

    def by_status(self, *statuses: str) -> list[TrackerChange]:
        return [t for t in self.trackers if t.status in statuses]

    def to_json(self) -> dict:
        return {"base": self.base, "dialect": self.dialect, "summary": self.counts(),
                "base_error": self.base_error, "base_missing": self.base_missing, "target": self.target,
                "trackers": [t.to_json() for t in self.trackers]}


def diff_against(project_dir: str | Path, base: str, *, dialect: str | None = None,
                 data_target: str | None = None, run_data: bool = False) -> DiffReport:
    """Compare every tracker of the working tree's project with the one at git ref `base`."""
    from .config import get_target

    head = load_project(project_dir)
    # The SQL is shown as the target under review runs it: `data_target` (--target) or the
    # default target; --dialect overrides only the printing.
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
    same_graph = base is not None and _graph_definition(base) == _graph_definition(head)
    names = sorted(set(head.trackers) | set(base.trackers if base else ()))
    changes = [_compare_tracker(base, head, name, base_name, dialect, same_graph) for name in names]
    changes.sort(key=lambda c: (STATUSES.index(c.status), c.name))
    return DiffReport(base_name, dialect, changes)


def _compile(project: Project, name: str) -> tuple[CompiledQuery | None, str | None]:
    try:
        return compile_tracker(project, name), None
    except ValidationError as exc:
        return None, exc.render()
    except GenesisError as exc:
        return None, exc.render()


def _compare_tracker(base: Project | None, head: Project, name: str, base_name: str,
                     dialect: str, same_graph: bool) -> TrackerChange:
    old_tracker = base.trackers.get(name) if base else None
    new_tracker = head.trackers.get(name)
    if new_tracker is None:
        return TrackerChange(name, "removed", old_tracker.input, [f"tracker '{name}' was deleted"])
    new, new_error = _compile(head, name)
    if new is None:
        return TrackerChange(name, "error", new_tracker.input, error=f"does not compile: {new_error}")
    if old_tracker is None:
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


def _same_dependencies(base: Project, head: Project, compiled: CompiledQuery, old_tracker, new_tracker) -> bool:
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
    """The definition changes, among what the tracker reads, that explain a new SQL."""
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
    refs = expand_references(head, new.references) | (expand_references(base, old.references) if old else set())
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
    old, new = _graph_definition(base), _graph_definition(head)
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
        formats = [c.name for c, o in _paired_columns(old_input, new_input) if c.format != o.format]
        if formats:
            notes.append(f"input '{new_input.name}': format of {', '.join(repr(n) for n in formats)} changed")
    return notes


def _paired_columns(old: Input, new: Input):
    by_name = {c.name: c for c in old.fields}
    return [(c, by_name[c.name]) for c in new.fields if c.name in by_name]


def _set_sql_diff(change: TrackerChange, old_sql: str, new_sql: str, base_name: str, name: str) -> None:
    lines = list(difflib.unified_diff(
        old_sql.splitlines(), new_sql.splitlines(),
        f"{base_name}:{name}.sql" if old_sql else "/dev/null",
        f"{WORKING_TREE}:{name}.sql" if new_sql else "/dev/null", lineterm="", n=3))
    change.sql_diff = "\n".join(lines)
    change.lines_added = sum(1 for line in lines[2:] if line.startswith("+"))
    change.lines_removed = sum(1 for line in lines[2:] if line.startswith("-"))


# ---------------------------------------------------------------- data


def add_row_diffs(report: DiffReport, base: Project, head: Project, target: str | None) -> None:
    """Run each changed tracker at both refs on `target` and attach the row diff."""
    from .config import get_target
    from .engines import open_engine

    report.target = get_target(head, target).name
    changed = report.by_status("changed")
    if not changed:
        return
    engine = open_engine(head, target)  # the base's SQL runs where the head's does
    try:
        for change in changed:
            change.data = _row_diff_for(base, head, change.name, engine)
    finally:
        engine.close()


def _row_diff_for(base: Project, head: Project, name: str, engine) -> dict:
    from .api import execute

    results = []
    for side, project in (("base", base), ("head", head)):
        try:
            compiled = compile_tracker(project, name)
            results.append((compiled, execute(compiled, engine, label=f"diff:{name}")))
        except GenesisError as exc:
            return {"error": f"{side}: {exc.render()}"}
    (old_q, old_r), (new_q, new_r) = results
    keys = [_key_column(old_q, new_q, ref) for ref in head.trackers[name].key]
    return diff_rows(old_r.table.to_pylist(), new_r.table.to_pylist(),
                     keys if keys and all(keys) else [])


def _key_column(old: CompiledQuery, new: CompiledQuery, reference: str) -> tuple[str, str] | None:
    a, b = old.column_for(reference), new.column_for(reference)
    return (a.name, b.name) if a and b else None


def diff_rows(old_rows: list[dict], new_rows: list[dict], keys: list[tuple[str, str]],
              examples: int = 5) -> dict:
    """Rows added, removed and changed by key (a key is (base column, head column) names).

    Without a key, rows are compared whole, as multisets. Values are compared in the
    columns both sides have.
    """
    old_cols, new_cols = list(old_rows[0]) if old_rows else [], list(new_rows[0]) if new_rows else []
    common = [c for c in new_cols if c in old_cols] if old_rows and new_rows else []
    out: dict[str, Any] = {
        "base_rows": len(old_rows), "head_rows": len(new_rows),
        "columns_added": [c for c in new_cols if old_rows and c not in old_cols],
        "columns_removed": [c for c in old_cols if new_rows and c not in new_cols],
        "key": [k[1] for k in keys],
    }
    if keys:
        out.update(_diff_by_key(old_rows, new_rows, keys, common, examples))
    else:
        out.update(_diff_whole(old_rows, new_rows, common, examples))
    return out


def _diff_by_key(old_rows, new_rows, keys, common, examples) -> dict:
    old_by = {tuple(_plain(r[k[0]]) for k in keys): r for r in old_rows}
    new_by = {tuple(_plain(r[k[1]]) for k in keys): r for r in new_rows}
    added = [k for k in new_by if k not in old_by]
    removed = [k for k in old_by if k not in new_by]
    changed, per_column = [], {}
    for key in new_by.keys() & old_by.keys():
        cells = {c: [_plain(old_by[key][c]), _plain(new_by[key][c])] for c in common
                 if _plain(old_by[key][c]) != _plain(new_by[key][c])}
        if cells:
            changed.append({"key": _key_value(key), "changes": cells})
            for column in cells:
                per_column[column] = per_column.get(column, 0) + 1
    changed.sort(key=lambda c: json.dumps(c["key"], default=str))
    return {
        "added": len(added), "removed": len(removed), "changed": len(changed),
        "changed_columns": dict(sorted(per_column.items())),
        "duplicate_keys": (len(old_rows) - len(old_by)) + (len(new_rows) - len(new_by)),
        "examples": {"added": [_key_value(k) for k in sorted(added, key=str)[:examples]],
                     "removed": [_key_value(k) for k in sorted(removed, key=str)[:examples]],
                     "changed": changed[:examples]},
    }


def _diff_whole(old_rows, new_rows, common, examples) -> dict:
    from collections import Counter

    def rows(items):
        return Counter(json.dumps([_plain(r[c]) for c in common] if common else
                                  [_plain(v) for v in r.values()], default=str) for r in items)

    old_c, new_c = rows(old_rows), rows(new_rows)
    added, removed = new_c - old_c, old_c - new_c
    return {"added": sum(added.values()), "removed": sum(removed.values()), "changed": None,
            "examples": {"added": [json.loads(r) for r in list(added)[:examples]],
                         "removed": [json.loads(r) for r in list(removed)[:examples]], "changed": []}}


def _key_value(key: tuple) -> Any:
    return key[0] if len(key) == 1 else list(key)


def _plain(value: Any) -> Any:
    """A JSON-friendly, comparable copy of a cell value."""
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value.normalize()) if value == value else None
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


# ---------------------------------------------------------------- references and impact


def implied_references(project: Project) -> dict[str, set[str]]:
    """References that using another one implies but the compiler does not list.

    A measure whose `sql` names a field reads that field; a join reads its `on` fields on
    both sides. Changing either changes every query that uses the measure or join.
    """
    implied: dict[str, set[str]] = {}
    for ds in project.datasources.values():
        for m in ds.measures.values():
            if m.sql is not None and m.sql in ds.fields:
                implied.setdefault(f"{ds.name}.{m.name}", set()).add(f"{ds.name}.{m.sql}")
        for join in ds.joins.values():
            keys = implied.setdefault(f"{ds.name}.join:{join.name}", set())
            for left, right in join.on:
                keys.add(f"{ds.name}.{left}")
                keys.add(f"{join.datasource}.{right}")
    return implied


def expand_references(project: Project, references) -> set[str]:
    implied = project.derived("_implied", lambda: implied_references(project))
    out = set(references)
    for ref in references:
        out |= implied.get(ref, set())
    return out


def reference_candidates(project: Project) -> dict[str, str]:
    """Every name `impact` accepts -> its kind (datasource, field, measure, join)."""
    out = {}
    for ds in project.datasources.values():
        out[ds.name] = "datasource"
        out.update({f"{ds.name}.{f}": "field" for f in ds.fields})
        out.update({f"{ds.name}.{m}": "measure" for m in ds.measures})
        out.update({f"{ds.name}.{j}": "join" for j in ds.joins})
        out.update({f"{ds.name}.{s}": "segment" for s in ds.segments})
    return out


def parse_impact_ref(project: Project, ref: str) -> tuple[str, str, str]:
    """(kind, datasource, reference key) for `movie`, `movie.title` or `movie.cast`."""
    text = ref.strip().replace(".join:", ".")
    candidates = reference_candidates(project)
    kind = candidates.get(text)
    if kind is None:
        hint = did_you_mean(text, candidates)
        if hint is None and "." in text and text.split(".")[0] not in project.datasources:
            hint = did_you_mean(text.split(".")[0], project.datasources)
        raise GenesisError(f"'{ref}' is not a data source, field, measure or join",
                           hint=hint or "write a data source (movie), a field (movie.title) or a join (movie.cast)")
    ds = text.split(".")[0]
    if kind == "join":
        return kind, ds, f"{ds}.join:{text.split('.', 1)[1]}"
    return kind, ds, text


@dataclass
class ImpactReport:
    ref: str
    kind: str
    inputs: list[dict]  # {"name", "uses": [...], "via": [...]}
    trackers: list[dict]  # {"name", "input", "owner", "schedule", "destination"}
    errors: list[str] = field(default_factory=list)  # inputs that did not compile

    def to_json(self) -> dict:
        return {"ref": self.ref, "kind": self.kind, "inputs": self.inputs, "trackers": self.trackers,
                "errors": self.errors}


def find_impact(project: Project, ref: str) -> ImpactReport:
    """The inputs and trackers that use a data source, a field/measure or a join."""
    kind, ds, key = parse_impact_ref(project, ref)
    inputs, errors = [], []
    for name in sorted(project.inputs):
        try:
            compiled = compile_input(project, name)  # remembered per project
        except GenesisError as exc:
            errors.append(f"input '{name}': {exc.render()}")
            continue
        uses = _matching(project, compiled, kind, ds, key)
        if uses:
            inputs.append({"name": name, "uses": sorted(public_reference(u) for u in uses),
                           "via": _via(project, compiled.input, uses)})
    # Parameter values are literals: a tracker uses exactly the references of its input.
    used_inputs = {i["name"] for i in inputs}
    trackers = [_tracker_summary(t) for t in sorted(project.trackers.values(), key=lambda t: t.name)
                if t.input in used_inputs]
    return ImpactReport(ref, kind, inputs, trackers, errors)


def _matching(project: Project, compiled: CompiledQuery, kind: str, ds: str, key: str) -> set[str]:
    refs = expand_references(project, compiled.references)
    if kind == "datasource":
        return {r for r in refs if r.split(".", 1)[0] == ds} or ({ds} if ds in compiled.datasources else set())
    return {key} & refs


def public_reference(key: str) -> str:
    """The name people write for an internal reference key: `movie.join:cast` -> `movie.cast`."""
    return key.replace(".join:", ".", 1)


def _tracker_summary(tracker) -> dict:
    return {"name": tracker.name, "input": tracker.input, "owner": tracker.owner,
            "schedule": tracker.schedule, "destination": describe_destination(tracker.destination)}


def describe_destination(destination: Mapping[str, Any]) -> str:
    kind = destination.get("type", "?")
    if kind == "file":
        return f"file {destination.get('path', '')}"
    if kind == "google_sheets":
        return f"Google Sheets {destination.get('spreadsheet_id', '')} / {destination.get('worksheet', '')}"
    if kind == "airtable":
        return f"Airtable {destination.get('base_id', '')} / {destination.get('table', '')}"
    return str(kind)


def _via(project: Project, inp: Input, uses: set[str]) -> list[str]:
    """Where in the input each used reference appears: a column, a filter, the sort."""
    usage = input_usage(project, inp)
    found = sorted({where for ref in uses for where in usage.get(ref, ())})
    return found or ["the query plan (keys and grain)"]


def input_usage(project: Project, inp: Input) -> dict[str, set[str]]:
    """reference key -> the places of `inp` that use it ("column 'Title'", "filter 1", ...).

    Join keys (`ds.join:name`) are credited to the places whose path goes through them.
    Best effort: a part that does not resolve is skipped (validation reports it).
    """
    from .compiler import expressions as ex

    cache = project.derived("_usage", dict)
    if inp.name in cache:
        return cache[inp.name]
    graph = graph_of(project)
    usage: dict[str, set[str]] = {}
    literals = _default_literals(inp)

    def add(text: str, where: str) -> None:
        try:
            resolved = graph.resolve(inp.root, text)
        except GenesisError:
            return
        usage.setdefault(resolved.key, set()).add(where)
        current = inp.root
        for join in resolved.instance.joins:
            usage.setdefault(f"{current}.join:{join.name}", set()).add(f"join path of {where}")
            current = join.datasource

    def add_sql(sql: str, where: str) -> None:
        try:
            tree = ex.parse_expression(ex.render_parameters(sql, literals, None, where), None, where)
        except (GenesisError, ValueError):
            return
        for node in ex.reference_nodes(tree):
            text = ex.reference_text(node)
            if text:
                add(text, where)

    for column in inp.fields:
        where = f"column '{column.name}'" if column.field else f"computed column '{column.name}'"
        add(column.field, where) if column.field else add_sql(column.sql or "", where)
    for index, item in enumerate(inp.filters, 1):
        add_sql(item.sql, f"filter {index}")
    names = {c.name for c in inp.fields}
    for item in inp.sort:
        if item.expression not in names:
            add_sql(item.expression, "sort")
    implied = project.derived("_implied", lambda: implied_references(project))
    for ref, places in list(usage.items()):
        for extra in implied.get(ref, ()):
            usage.setdefault(extra, set()).update(places)
    cache[inp.name] = usage
    return usage


def _default_literals(inp: Input) -> dict[str, str]:
    # Only where references appear matters here, not what a parameter's value is.
    return {name: "NULL" for name in inp.parameters}


# ---------------------------------------------------------------- rendering


def render_diff(report: DiffReport, fmt: str = "text", max_chars: int = 60000) -> str:
    if fmt == "json":
        return json.dumps(report.to_json(), indent=2, default=str)
    if fmt == "markdown":
        return _markdown(report, max_chars)
    return _text(report)


def summary_line(report: DiffReport) -> str:
    counts = report.counts()
    parts = [f"{counts[s]} {s}" for s in STATUSES if counts[s] or s in ("changed", "unchanged")]
    return f"{len(report.trackers)} trackers against {report.base}: " + ", ".join(parts)


def _text(report: DiffReport) -> str:
    out = [f"genesis diff: {summary_line(report)}", dialect_line(report)]
    out += _preamble(report)
    for change in report.trackers:
        if change.status == "unchanged" and not change.notes:
            continue
        out.append("")
        out.append(f"{change.status:<9} {change.name}" + (f"  (input {change.input})" if change.input else ""))
        out += [f"  because: {b}" for b in change.because]
        out += [f"  note: {n}" for n in change.notes]
        if change.error:
            out.append(f"  error: {change.error}")
        if change.data:
            out += ["  " + line for line in _data_lines(change.data)]
        if change.sql_diff and change.status in ("changed", "added"):
            out += ["    " + line for line in change.sql_diff.splitlines()]
    unchanged = [c.name for c in report.by_status("unchanged") if not c.notes]
    if unchanged:
        out += ["", "unchanged: " + ", ".join(unchanged)]
    return "\n".join(out)


def dialect_line(report: DiffReport) -> str:
    """Which SQL the diff shows: the reviewed target's dialect, said so in every format."""
    engine = DIALECT_NAMES.get(report.dialect, report.dialect)
    if report.target is None:
        return f"SQL shown in the {engine} dialect"
    return f"SQL shown as target '{report.target}' runs it ({engine})"


DIALECT_NAMES = {"trino": "Trino", "duckdb": "DuckDB"}


def _preamble(report: DiffReport) -> list[str]:
    if report.base_error:
        return [f"warning: every tracker is shown as added because {report.base_error}"]
    if report.base_missing:
        return [f"note: {report.base} has no Genesis project here; every tracker is new"]
    return []


def _data_lines(data: dict) -> list[str]:
    if "error" in data:
        return [f"rows: could not run: {data['error']}"]
    changed = "" if data.get("changed") is None else f", {data['changed']} changed"
    lines = [f"rows: {data['base_rows']} -> {data['head_rows']}: {data['added']} added, "
             f"{data['removed']} removed{changed}" + (f" (by {', '.join(data['key'])})" if data["key"] else "")]
    if data.get("changed_columns"):
        lines.append("  changed columns: " + ", ".join(f"{c} ({n})" for c, n in data["changed_columns"].items()))
    for what in ("columns_added", "columns_removed"):
        if data.get(what):
            lines.append(f"  {what.replace('_', ' ')}: {', '.join(data[what])}")
    examples = data.get("examples", {})
    for what in ("added", "removed"):
        if examples.get(what):
            lines.append(f"  e.g. {what}: " + ", ".join(json.dumps(v, default=str) for v in examples[what]))
    for item in examples.get("changed", []):
        cells = "; ".join(f"{c}: {json.dumps(a, default=str)} -> {json.dumps(b, default=str)}"
                          for c, (a, b) in item["changes"].items())
        lines.append(f"  e.g. changed {json.dumps(item['key'], default=str)}: {cells}")
    return lines


_STATUS_LABEL = {"changed": "SQL changed", "added": "added", "removed": "removed", "error": "does not compile",
                 "unchanged": "unchanged"}
MARKDOWN_MARKER = "<!-- genesis-diff -->"


def _markdown(report: DiffReport, max_chars: int, max_rows: int = 100) -> str:
    """A summary line, a table of what changed, then each SQL diff folded, within max_chars."""
    counts = report.counts()
    bold = [f"**{counts[s]} {s}**" if counts[s] and s != "unchanged" else f"{counts[s]} {s}"
            for s in STATUSES if counts[s] or s in ("changed", "unchanged")]
    out = [f"**Genesis diff** against `{_md(report.base)}`: " + ", ".join(bold), "",
           f"_{_md(dialect_line(report))}_", ""]
    out += [f"> {_md(line)}" for line in _preamble(report)]
    listed = [c for c in report.trackers if c.status != "unchanged" or c.notes]
    if listed:
        out += ["| tracker | change | because |", "|---|---|---|"]
        for c in listed[:max_rows]:
            why = "<br>".join(_md(b) for b in (c.because + c.notes + ([c.error] if c.error else [])))
            label = _STATUS_LABEL[c.status]
            if c.status == "changed":
                label += f" (+{c.lines_added} −{c.lines_removed})"
            out.append(f"| `{c.name}` | {label}{_md_rows(c.data)} | {why} |")
        if len(listed) > max_rows:
            out.append(f"| … | {len(listed) - max_rows} more | run `genesis diff` locally for all |")
        out.append("")
    tail = _unchanged_section(report, max_rows * 2)
    budget = max_chars - sum(len(line) + 1 for line in out) - len(tail) - 200
    for c in report.trackers:
        if c.status not in ("changed", "added") or not c.sql_diff:
            continue
        section = _markdown_section(c, budget)
        if section is None:
            out.append("_More SQL diffs were left out to fit a comment; run `genesis diff` locally._")
            break
        budget -= len(section) + 1
        out.append(section)
    if tail:
        out.append(tail)
    out.append("")
    out.append(MARKDOWN_MARKER)
    return "\n".join(out)


def _unchanged_section(report: DiffReport, limit: int) -> str:
    unchanged = [c.name for c in report.by_status("unchanged") if not c.notes]
    if not unchanged:
        return ""
    names = ", ".join(f"`{n}`" for n in unchanged[:limit])
    names += f" and {len(unchanged) - limit} more" if len(unchanged) > limit else ""
    return f"<details><summary>{len(unchanged)} unchanged</summary>\n\n{names}\n\n</details>"


def _markdown_section(change: TrackerChange, budget: int, max_lines: int = 200) -> str | None:
    lines = change.sql_diff.splitlines()
    if len(lines) > max_lines:
        lines = lines[:max_lines] + [f"... {len(lines) - max_lines} more lines"]
    body = "\n".join(lines)
    data = ""
    if change.data:
        data = "\n\n" + "\n".join(f"    {line}" for line in _data_lines(change.data))
    fence = "`" * max(3, _longest_backtick_run(body) + 1)
    section = (f"<details><summary><code>{_html(change.name)}</code>: {_STATUS_LABEL[change.status]} "
               f"(+{change.lines_added} −{change.lines_removed})</summary>{data}\n\n"
               f"{fence}diff\n{body}\n{fence}\n\n</details>")
    if len(section) > budget:
        return None
    return section


def _md_rows(data: dict | None) -> str:
    if not data:
        return ""
    if "error" in data:
        return "<br>rows: could not run"
    changed = "" if data.get("changed") is None else f" ~{data['changed']}"
    return f"<br>rows +{data['added']} −{data['removed']}{changed}"


def _longest_backtick_run(text: str) -> int:
    return max((len(m) for m in re.findall(r"`+", text)), default=0)


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _md(text: str) -> str:
    return _html(text).replace("|", "\\|").replace("\n", " ")


def render_impact(report: ImpactReport, fmt: str = "text") -> str:
    if fmt == "json":
        return json.dumps(report.to_json(), indent=2)
    out = [f"{report.kind} {report.ref}: used by {plural(len(report.inputs), 'input')} and "
           f"{plural(len(report.trackers), 'tracker')}"]
    if report.inputs:
        out += ["", "inputs:"]
        for item in report.inputs:
            out.append(f"  {item['name']}")
            out.append(f"    uses: {', '.join(item['uses'])}")
            out.append(f"    via:  {', '.join(item['via'])}")
    if report.trackers:
        out += ["", "trackers:"]
        for t in report.trackers:
            extra = ", ".join(x for x in (f"input {t['input']}", t["owner"] and f"owner {t['owner']}",
                                          t["schedule"] and f"schedule {t['schedule']}", t["destination"]) if x)
            out.append(f"  {t['name']}  ({extra})")
    for error in report.errors:
        out.append(f"warning: {error}")
    return "\n".join(out)


__all__ = [
    "DiffReport", "TrackerChange", "ImpactReport", "diff_against", "diff_projects", "diff_rows",
    "find_impact", "render_diff", "render_impact", "project_at", "extract_definitions", "input_usage",
    "expand_references", "describe_destination",
]
