"""Refresh trackers: compile -> run -> check -> write, each tracker isolated.

A tracker whose query or checks fail writes nothing and keeps its last good data;
one tracker's failure never stops the others. Every step is timed for the summary.
Running many at once (`jobs`), stopping, catch-up and shards: run_pool.py, scheduler.py.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..destinations.kinds import AirtableDestination, FileDestination, SheetsDestination
from ..destinations.report import SyncReport
from ..errors import GenesisError, did_you_mean
from ..project.config import get_target, output_dir, render_settings
from ..project.model import Project, Tracker
from ..result import QueryResult


@dataclass
class TrackerReport:
    """What became of one tracker (or for_each part) in a refresh, filled in by the pool as it runs; shown as a
    progress line and a summary row, and recorded as a run-history row (monitor.record_of)."""

    tracker: str
    status: str = "pending"  # ok | unchanged | failed | checked (dry run) | cancelled (run stopped) | vanished
    rows: int | None = None
    seconds: float = 0.0
    destination: str = ""
    error: str | None = None
    stage: str | None = None  # where it failed: compile | query | checks | write
    details: dict = field(default_factory=dict)
    location: str | None = None  # path:line:col of the error, when it has one
    started_at: dt.datetime | None = None  # wall clock, UTC (for the run history)
    ended_at: dt.datetime | None = None

    @property
    def failed(self) -> bool:
        """The tracker failed at a stage; a cancelled tracker did not fail (the run was stopped)."""
        return self.status == "failed"


@dataclass
class RefreshReport:
    """A whole refresh on one target: every tracker's report, in the order they were chosen, and the warnings."""

    target: str
    trackers: list[TrackerReport]
    seconds: float
    dry_run: bool = False
    warnings: list[str] = field(default_factory=list)  # run history and alerts: never a failure

    @property
    def ok(self) -> bool:
        """No tracker failed and the run was not stopped (`genesis refresh` then exits 0)."""
        return not any(t.failed for t in self.trackers) and not self.cancelled

    @property
    def cancelled(self) -> bool:
        """The run was stopped before every tracker was done."""
        return any(t.status == "cancelled" for t in self.trackers)

    def to_json(self) -> dict:
        """The document `genesis refresh --format json` prints (seconds rounded to milliseconds)."""
        return {
            "target": self.target, "dry_run": self.dry_run, "ok": self.ok, "cancelled": self.cancelled,
            "seconds": round(self.seconds, 3), "warnings": self.warnings,
            "trackers": [{**asdict(t), "seconds": round(t.seconds, 3)} for t in self.trackers],
        }


def select_trackers(project: Project, names: Iterable[str], all_: bool, due: bool,
                    window_minutes: float = 15, now: dt.datetime | None = None, *,
                    target: str | None = None, shard: tuple[int, int] | None = None,
                    jobs: int = 8, select: Iterable[str] = (), exclude: Iterable[str] = ()) -> list[Tracker]:
    """Trackers by name, glob or selector (genesis.run.selection), or all of them; only this
    runner's shard of them; and with `due`, those whose schedule fired since their last
    successful refresh (scheduler.py)."""
    from .selection import select as select_nodes

    selectors = [*names, *select]
    if not selectors and not all_ and not due:
        raise GenesisError("name trackers to refresh, or use --all, --due or --select",
                           hint="e.g. genesis refresh 'late-*' or genesis refresh --select owner:finance")
    chosen = [project.trackers[n.name] for n in select_nodes(project, selectors, list(exclude), kinds=("tracker",))]
    if shard is None and not due:
        return chosen
    from .. import clock
    from . import scheduler

    resolved = get_target(project, target)
    settings = render_settings(resolved)
    if shard is not None:
        chosen = scheduler.in_shard(project, chosen, resolved, settings, shard)
    if due:
        # A tracker whose schedule is not valid cron is kept: it then fails at the compile
        # stage with the located cron error, instead of silently never running (or crashing
        # the selection and with it every other due tracker).
        chosen = scheduler.select_due(project, chosen, resolved, settings, now or clock.now(),
                                      window_minutes, jobs)
    return chosen


def refresh(project: Project, trackers: list[Tracker], *, target: str | None = None, dry_run: bool = False,
            progress: Callable[[str, TrackerReport], None] | None = None, jobs: int = 1,
            stop=None, now: dt.datetime | None = None,
            params: Mapping[str, Any] | None = None) -> RefreshReport:
    """Refresh `trackers`, `jobs` at a time (run_pool.py); `stop` is a threading.Event.

    `params` (from --param) win over each tracker's own values and go to the trackers whose
    input declares them (see params_for). Around the run, the run history is prepared and
    then recorded, and owners whose tracker changed state are alerted (monitor.py); neither
    ever fails the refresh."""
    from ..monitoring.monitor import after_refresh, before_refresh
    from .pool import run_trackers

    chosen = get_target(project, target)
    check_params(project, trackers, params)  # an unknown --param fails before anything runs
    settings = render_settings(chosen)
    warnings = [] if dry_run else before_refresh(project, chosen, settings)
    from .fan_out_refresh import expand, merge  # for_each trackers -> their parts

    fanned = expand(project, trackers, chosen, settings, params, judge_vanished=not dry_run)
    project, trackers = fanned.project, fanned.trackers
    if progress is not None and hasattr(progress, "total"):  # counts parts, not for_each trackers
        progress.total = len(trackers)
    result = merge(fanned, run_trackers(project, trackers, target=target, dry_run=dry_run, progress=progress,
                                        jobs=max(1, min(jobs, len(trackers))), stop=stop, now=now, params=params))
    result.warnings[:0] = warnings
    if not dry_run:
        result.warnings.extend(after_refresh(project, chosen, settings, result))
    return result


def check_params(project: Project, trackers: list[Tracker], params: Mapping[str, Any] | None) -> None:
    """Refuse a --param that no chosen tracker's input declares (it would change nothing)."""
    declared = {name for t in trackers for name in _declared(project, t)}
    for name in params or {}:
        if name not in declared:
            raise GenesisError(f"--param '{name}': the input of no chosen tracker declares it",
                               hint=did_you_mean(name, declared) or
                               (f"declared: {', '.join(sorted(declared))}" if declared else None))


def params_for(project: Project, tracker: Tracker, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """The --param values that the input of `tracker` declares."""
    declared = _declared(project, tracker)
    return {name: value for name, value in (params or {}).items() if name in declared}


def _declared(project: Project, tracker: Tracker):
    inp = project.inputs.get(tracker.input)
    return inp.parameters if inp is not None else {}


def local_path(project: Project, tracker: Tracker, settings) -> Path:
    """Where a tracker writes on a `destinations: local` target."""
    destination = tracker.destination
    if isinstance(destination, FileDestination):
        from ..destinations import paths

        path = paths.tracker_file_path(project, tracker)
        paths.check_resolved(path, paths.output_root(project.root, project.config.output_root), destination)
        return path
    return output_dir(project, settings) / f"{tracker.name}.csv"


def destination_on_target(project: Project, tracker: Tracker, target) -> str:
    """Where this tracker writes on this target: a file path, or the live sheet or table."""
    destination = tracker.destination
    if isinstance(destination, FileDestination):
        return destination.path
    if target.destinations == "local":
        return f"out/{tracker.name}.csv"
    return destination.describe()


def write_destination(project: Project, tracker: Tracker, result: QueryResult, key: list[str], target,
                      settings, touch_before: dt.datetime | None = None) -> tuple[bool, dict]:
    """Write one tracker's result and its refresh stamp (see scheduler.py); returns
    (anything changed, details for the report). An unchanged result renews the stamp only
    when it is older than `touch_before`, the schedule's last firing."""
    from .. import clock

    destination = tracker.destination
    if target.destinations == "local" or not destination.live:
        from ..destinations.file import write_file
        from .scheduler import write_file_stamp

        written = write_file(result, local_path(project, tracker, settings))
        write_file_stamp(written.path, tracker.name, clock.now(), written.changed, touch_before)
        return written.changed, {"path": str(written.path), "bytes": written.bytes}
    report = sync_destination(project, tracker, result, key, target, settings, touch_before=touch_before)
    return report.changed, report.numbers()


def sync_destination(project: Project, tracker: Tracker, result: QueryResult, key: list[str], target,
                     settings, *, dry_run: bool = False, touch_before: dt.datetime | None = None) -> SyncReport:
    """Sync a live destination (Google Sheets, Airtable) and leave its stamp; returns its
    report (with the plan). With `dry_run` the destination is read and diffed but not
    written (`genesis audit`)."""
    destination = tracker.destination
    if not isinstance(destination, (SheetsDestination, AirtableDestination)):
        raise GenesisError(f"a {destination.kind} destination is not synced by key", tracker.locs.get("destination"))
    return destination.sync(result, key=key, mode=tracker.mode, on_removed=tracker.on_removed, target=target,
                            settings=settings, dry_run=dry_run, touch_before=touch_before)
