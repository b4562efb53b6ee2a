"""A refresh of `for_each` trackers: expand each into its parts, report what vanished.

Before the run pool starts, every chosen `for_each` tracker is replaced by its parts
(genesis.run.fan_out), which run, check, write and report like any tracker, `--jobs` at a time.
A tracker whose values cannot be read (the values query fails, too many values, two values
writing the same place) is one failed report under its own name; nothing of it is written.

"Last time" is the run history: the parts of a tracker are the `tracker[value]` names in it
on this target whose newest row is not `vanished`. A part among them that this refresh does
not have is *vanished*: it gets a report and a history row with status `vanished` and a
warning, and its destination is left exactly as it was (never deleted). It is reported once;
`genesis status` keeps showing it as vanished until the value comes back. Without a run
history (a Trino target without `history.table`) vanished values cannot be known, and the
refresh says so. `--param PARAMETER=VALUE` for the for_each parameter refreshes that one
part (the value must be one of the tracker's values) and judges nothing as vanished.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import GenesisError
from ..project.model import Project, Target, Tracker
from .fan_out import make_part, part_values, parts_of
from .refresh import RefreshReport, TrackerReport, destination_on_target


@dataclass
class Expansion:
    """The chosen trackers with each for_each tracker replaced by its parts (what `expand` returns): what the
    pool runs, plus the reports of failed expansions and vanished parts that `merge` puts in the run's report."""

    project: Project  # with every part (run or vanished) among its trackers
    trackers: list[Tracker]  # what the run pool runs
    order: list[str]  # report order: tracker and part names as chosen
    failed: dict[str, TrackerReport] = field(default_factory=dict)
    vanished: list[TrackerReport] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def expand(project: Project, trackers: list[Tracker], target: Target, settings: Mapping[str, Any],
           params: Mapping[str, Any] | None = None, *, judge_vanished: bool = True) -> Expansion:
    """Replace each for_each tracker by its parts; see the module docstring. Without
    `judge_vanished` (a dry run, `audit`) the run history is not read."""
    if not any(t.for_each is not None for t in trackers):
        return Expansion(project, trackers, [t.name for t in trackers])
    known, known_warning = _known_parts(project, target, settings) if judge_vanished else (None, None)
    run: list[Tracker] = []
    extra: dict[str, Tracker] = {}
    order: list[str] = []
    failed: dict[str, TrackerReport] = {}
    vanished: list[TrackerReport] = []
    warnings: list[str] = [known_warning] if known_warning else []
    engine = None
    try:
        for tracker in trackers:
            if tracker.for_each is None:
                run.append(tracker)
                order.append(tracker.name)
                continue
            try:
                if tracker.for_each.values_from is not None and engine is None:
                    from ..engines import open_engine

                    engine = open_engine(project, target.name)
                parts = _parts(project, tracker, engine, params, settings)
            except GenesisError as exc:
                failed[tracker.name] = _failed(project, tracker, target, exc)
                order.append(tracker.name)
                continue
            run += parts
            order += [p.name for p in parts]
            extra.update({p.name: p for p in parts})
            if known is not None and not _restricted(tracker, params):
                for gone in sorted(known.get(tracker.name, set()) - {p.name for p in parts}):
                    part = _vanished_part(project, tracker, gone)
                    extra[gone] = part
                    report = _vanished(project, tracker, part, target)
                    vanished.append(report)
                    order.append(gone)
                    warnings.append(report.details["warning"])
    finally:
        if engine is not None:
            engine.close()
    expanded = dataclasses.replace(project, trackers={**project.trackers, **extra})
    return Expansion(expanded, run, order, failed, vanished, warnings)


def _restricted(tracker: Tracker, params: Mapping[str, Any] | None) -> bool:
    return tracker.for_each is not None and tracker.for_each.parameter in (params or {})


def _parts(project: Project, tracker: Tracker, engine, params, settings) -> list[Tracker]:
    pairs = part_values(project, tracker, engine, params, tracker.timeout_seconds or settings.get("timeout"))
    fe = tracker.for_each
    if fe is not None and _restricted(tracker, params):  # (_restricted implies a for_each)
        from ..compiler.expressions import coerce

        wanted = coerce(params[fe.parameter], project.inputs[tracker.input].parameters[fe.parameter], "--param")
        pairs = [(v, label) for v, label in pairs if v == wanted]
        if not pairs:
            raise GenesisError(f"--param {fe.parameter}={params[fe.parameter]}: not one of the for_each values "
                               f"of tracker '{tracker.name}'", fe.loc)
    return parts_of(project, tracker, pairs)


def _failed(project: Project, tracker: Tracker, target: Target, exc: GenesisError) -> TrackerReport:
    first = (getattr(exc, "errors", None) or [exc])[0]
    now = dt.datetime.now(dt.UTC)
    return TrackerReport(tracker.name, status="failed", stage="query", error=exc.render(),
                         location=str(first.location) if first.location else None,
                         destination=destination_on_target(project, tracker, target), started_at=now, ended_at=now)


def _vanished_part(project: Project, tracker: Tracker, name: str) -> Tracker:
    """The part a history name stands for (its value as the name shows it)."""
    text = name[len(tracker.name) + 1:-1]
    try:
        part = make_part(project, tracker, text)
    except GenesisError:
        part = dataclasses.replace(tracker, for_each=None, part_of=tracker.name, part_value=text)
    return dataclasses.replace(part, name=name, schedule=None)  # never late: nothing refreshes it


def _vanished(project: Project, tracker: Tracker, part: Tracker, target: Target) -> TrackerReport:
    where = destination_on_target(project, part, target)
    value = part.part_value
    warning = (f"tracker '{tracker.name}': value '{value}' is no longer among its for_each values; its "
               f"destination {where} was left as it was (not deleted, no longer refreshed)")
    now = dt.datetime.now(dt.UTC)
    return TrackerReport(part.name, status="vanished", destination=where, started_at=now, ended_at=now,
                         details={"value": str(value), "warning": warning})


def _known_parts(project: Project, target: Target, settings) -> tuple[dict[str, set[str]] | None, str | None]:
    """for_each tracker -> its parts in the run history whose newest row is not `vanished`."""
    from ..monitoring.history import history_enabled, open_history
    from ..monitoring.status import rows_by_tracker

    if not history_enabled(project, target):
        return None, ("vanished for_each values cannot be detected: this target keeps no run history "
                      "(set history.table in genesis.yaml)")
    try:
        rows = rows_by_tracker(open_history(project, target, settings).read(
            ["tracker", "target", "status", "started_at", "ended_at"]))
    except Exception as exc:  # noqa: BLE001 - the refresh goes on; it says what it cannot know
        return None, f"vanished for_each values not checked: the run history cannot be read ({type(exc).__name__})"
    return history_parts(project, rows, target.name), None


def history_parts(project: Project, rows: Mapping[str, list[dict]], target: str | None = None,
                  include_vanished: bool = False) -> dict[str, set[str]]:
    """for_each tracker -> the names of its parts in the history rows (on `target`, when given)."""
    out: dict[str, set[str]] = {}
    for name, tracker_rows in rows.items():
        parent = part_parent(project, name)
        if parent is None:
            continue
        mine = [r for r in tracker_rows if target is None or r["target"] == target]
        if mine and (include_vanished or mine[-1]["status"] != "vanished"):
            out.setdefault(parent, set()).add(name)
    return out


def part_parent(project: Project, name: str) -> str | None:
    """The for_each tracker a `tracker[value]` name belongs to, if any."""
    if not name.endswith("]") or "[" not in name:
        return None
    parent = name[:name.index("[")]
    tracker = project.trackers.get(parent)
    return parent if tracker is not None and tracker.for_each is not None else None


def with_history_parts(project: Project, rows: Mapping[str, list[dict]]) -> Project:
    """The project with a Tracker for every part the history names (for `genesis status`);
    a vanished part has no schedule, so it is never late."""
    extra = {}
    for parent, names in history_parts(project, rows, include_vanished=True).items():
        tracker = project.trackers[parent]
        for name in names:
            vanished = rows[name][-1]["status"] == "vanished"
            extra[name] = dataclasses.replace(tracker, name=name, for_each=None, part_of=parent,
                                              part_value=name[len(parent) + 1:-1],
                                              schedule=None if vanished else tracker.schedule)
    return dataclasses.replace(project, trackers={**project.trackers, **extra}) if extra else project


def merge(expansion: Expansion, result: RefreshReport) -> RefreshReport:
    """The run's report in the chosen order, with the failed expansions and vanished parts."""
    by_name = {r.tracker: r for r in result.trackers}
    by_name.update(expansion.failed)
    by_name.update({r.tracker: r for r in expansion.vanished})
    result.trackers = [by_name[name] for name in expansion.order if name in by_name]
    result.warnings.extend(expansion.warnings)
    return result


# ------------------------------------------------------------------------------ diff --data

def part_row_diffs(base: Project, head: Project, name: str, engine) -> dict:
    """`genesis diff --data` of a for_each tracker: a row diff per part, `tracker[value]`, over
    the values at either ref (a part only one side has is diffed against no rows)."""
    from ..api import execute
    from ..compiler import compile_tracker
    from ..review.row_diff import diff_rows, row_diff_for

    sides = []
    for side, project in (("base", base), ("head", head)):
        tracker = project.trackers.get(name)
        try:
            if tracker is None or tracker.for_each is None:  # not fanned out on this side
                parts = [tracker] if tracker is not None else []
            else:
                parts = parts_of(project, tracker, part_values(project, tracker, engine))
        except GenesisError as exc:
            return {"error": f"{side}: {exc.render()}"}
        sides.append((dataclasses.replace(project, trackers={**project.trackers, **{p.name: p for p in parts}}),
                      [p.name for p in parts]))
    (base_x, base_parts), (head_x, head_parts) = sides
    out: dict[str, dict] = {}
    for part in dict.fromkeys(head_parts + base_parts):
        if part in base_parts and part in head_parts:
            out[part] = row_diff_for(base_x, head_x, part, engine)
            continue
        project = head_x if part in head_parts else base_x
        try:
            rows = execute(compile_tracker(project, part), engine, label=f"diff:{part}").table.to_pylist()
        except GenesisError as exc:
            out[part] = {"error": exc.render()}
            continue
        out[part] = {"part": "added" if part in head_parts else "removed",
                     **diff_rows([] if part in head_parts else rows, rows if part in head_parts else [], [])}
    return {"parts": out}
