"""`genesis audit`: does each destination still hold what its query returns? Writes nothing.

Google Sheets and Airtable are read and diffed with the same code a refresh uses (the
destination's dry run through `genesis.destinations.sync.plan_sync`), so the audit sees
exactly what the next refresh would change: keys missing from the destination, keys it
holds that the result does not, and Genesis-owned cells that differ. Columns people own
are never compared. A file destination is compared byte for byte with what a refresh
would write.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from ..api import execute
from ..compiler import CompiledQuery
from ..destinations.sync import STATUS_COLUMN, STATUS_REMOVED
from ..destinations.sync import describe_key as describe
from ..engines import open_engine
from ..errors import GenesisError
from ..project.config import get_target, render_settings
from ..project.model import Project, Tracker
from ..run.refresh import destination_on_target, local_path, sync_destination
from ..text import plural
from ..validate import check_tracker

MAX_LISTED = 50  # per kind and tracker in the report; the counts are always complete


@dataclass
class TrackerAudit:
    """What the audit found for one tracker or for_each part: how its destination differs from
    its query result (up to MAX_LISTED of each kind listed, all counted), or why it could not tell."""

    tracker: str
    destination: str
    rows: int = 0  # rows the query returned
    missing: list[str] = field(default_factory=list)  # keys in the result, not in the destination
    extra: list[str] = field(default_factory=list)  # keys in the destination, not in the result
    changed: list[dict] = field(default_factory=list)  # {key, column, destination, expected}
    counts: dict = field(default_factory=dict)  # missing / extra / changed_rows / changed_cells / matching
    error: str | None = None
    note: str | None = None

    @property
    def drift(self) -> bool:
        """Whether the destination differs from the query result at all (an error is not drift)."""
        return bool(self.counts.get("missing") or self.counts.get("extra") or self.counts.get("changed_cells"))

    def to_json(self) -> dict:
        """The audit as `genesis audit --format json` prints it, `drift` included."""
        return {**asdict(self), "drift": self.drift}


def audit(project: Project, trackers: list[Tracker], target: str | None = None) -> list[TrackerAudit]:
    """Run each tracker's query on `target` (default: default_target) and compare it with the destination.

    A for_each tracker is audited part by part; a tracker that fails gets its error in its
    TrackerAudit and the others are still audited.
    """
    chosen = get_target(project, target)
    settings = render_settings(chosen)
    from ..run.fan_out_refresh import expand  # a for_each tracker is audited part by part

    fanned = expand(project, trackers, chosen, settings, judge_vanished=False)
    project, trackers = fanned.project, fanned.trackers
    engine = None
    out = [TrackerAudit(r.tracker, r.destination, error=r.error) for r in fanned.failed.values()]
    try:
        for tracker in trackers:
            result = TrackerAudit(tracker.name, destination_on_target(project, tracker, chosen))
            try:
                engine = engine or open_engine(project, chosen.name)
                compiled = check_tracker(project, tracker)
                query = execute(compiled, engine, label=tracker.name, timeout=tracker.timeout_seconds)
                result.rows = query.table.num_rows
                if chosen.destinations == "local" or not tracker.destination.live:
                    _audit_file(project, tracker, query, settings, result)
                else:
                    key = _key_names(compiled, tracker)
                    report = sync_destination(project, tracker, query, key, chosen, settings, dry_run=True)
                    _audit_plan(report.plan, report.existing, key, result)
            except GenesisError as exc:
                result.error = exc.render()
            out.append(result)
    finally:
        if engine is not None:
            engine.close()
    return out


def _key_names(compiled: CompiledQuery, tracker: Tracker) -> list[str]:
    """The output column names of the tracker's key (given by reference or name)."""
    names = []
    for item in tracker.key:
        column = compiled.column_for(item)
        if column is None:  # check_tracker refuses such a key already; never an AttributeError
            raise GenesisError(f"key '{item}' is not an output column of input '{tracker.input}'")
        names.append(column.name)
    return names


def _audit_file(project: Project, tracker: Tracker, query, settings, result: TrackerAudit) -> None:
    from ..destinations.file import file_bytes

    path = local_path(project, tracker, settings)
    expected = file_bytes(query, path)
    if not path.is_file():
        result.counts = {"missing": query.table.num_rows, "extra": 0, "changed_cells": 0, "matching": 0}
        result.note = f"{path} does not exist"
        return
    same = path.read_bytes() == expected
    result.counts = {"missing": 0, "extra": 0, "changed_cells": 0 if same else 1,
                     "matching": query.table.num_rows if same else 0}
    if not same:
        result.note = f"{path} differs from what a refresh would write"
        result.changed.append({"key": None, "column": None, "destination": path.name, "expected": "regenerated file"})


def _audit_plan(plan, existing, key: list[str], result: TrackerAudit) -> None:
    rows = {r.row_id: r for r in existing}

    def describe_key(names, raw):  # a sheet returns every number as a float: 7.0 reads as 7
        return describe(names, tuple(int(v) if isinstance(v, float) and v.is_integer() else v for v in raw))

    result.missing = [describe_key(key, r.key) for r in plan.inserts]
    removed = [rows[i] for i in (*plan.deletes, *plan.marks)]
    result.extra = [describe_key(key, r.key) if any(v is not None for v in r.key) else f"row {r.row_id} (no key)"
                    for r in removed]
    cells = 0
    for update in plan.updates:
        old = rows[update.row_id]
        for column in update.columns:
            cells += 1
            result.changed.append({"key": describe_key(key, update.key), "column": column,
                                   "destination": _shown(old.values.get(column)),
                                   "expected": _shown(update.values.get(column))})
    for row_id in plan.unmarks:  # marked removed, yet its key is in the result again
        cells += 1
        result.changed.append({"key": describe_key(key, rows[row_id].key), "column": STATUS_COLUMN,
                               "destination": STATUS_REMOVED, "expected": None})
    result.counts = {"missing": len(plan.inserts), "extra": len(removed), "changed_rows": len(plan.updates),
                     "changed_cells": cells, "matching": len(plan.unchanged)}
    result.missing, result.extra, result.changed = (result.missing[:MAX_LISTED], result.extra[:MAX_LISTED],
                                                    result.changed[:MAX_LISTED])


def _shown(value: Any) -> Any:
    """A cell as people read it: the value of a (value, number format) pair."""
    if isinstance(value, tuple) and len(value) == 3 and (value[1] is None or isinstance(value[1], str)):
        value = value[0]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def render(audits: list[TrackerAudit], fmt: str = "text") -> str:
    """The audit report as `fmt`: "text" (a line per tracker and per listed difference) or "json"."""
    if fmt == "json":
        return json.dumps({"drift": any(a.drift or a.error for a in audits),
                           "trackers": [a.to_json() for a in audits]}, indent=2, default=str)
    lines = []
    for a in audits:
        if a.error:
            lines.append(f"{a.tracker} -> {a.destination}: ERROR {a.error}")
            continue
        c = a.counts
        if not a.drift:
            lines.append(f"{a.tracker} -> {a.destination}: ok ({c.get('matching', 0)} rows match)")
            continue
        lines.append(f"{a.tracker} -> {a.destination}: DRIFT: {c.get('missing', 0)} missing, "
                     f"{c.get('extra', 0)} extra, {plural(c.get('changed_cells', 0), 'changed cell')}"
                     + (f" ({a.note})" if a.note else ""))
        lines += [f"  missing   {k}" for k in a.missing]
        lines += [f"  extra     {k}" for k in a.extra]
        lines += [f"  changed   {d['key']}: {d['column']}: destination {d['destination']!r}, query {d['expected']!r}"
                  for d in a.changed if d["key"] is not None]
    drifted = sum(a.drift for a in audits)
    errors = sum(bool(a.error) for a in audits)
    lines.append(f"{plural(len(audits), 'tracker')} audited: {drifted} drifted, {errors} could not be audited")
    return "\n".join(lines)
