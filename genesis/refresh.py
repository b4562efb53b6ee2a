"""Refresh trackers: compile -> run -> check -> write, one tracker at a time, isolated.

A tracker whose query or checks fail writes nothing and keeps its last good data;
one tracker's failure never stops the others. Every step is timed for the summary.
"""

from __future__ import annotations

import datetime as dt
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from .api import execute
from .checks import failed_checks
from .config import get_target, output_dir, render_settings
from .engines import Engine, open_engine
from .errors import GenesisError, did_you_mean, redact
from .model import Project, Tracker
from .result import QueryResult
from .validate import check_tracker, cron_problem


@dataclass
class TrackerReport:
    tracker: str
    status: str = "pending"  # ok | unchanged | failed | checked (dry run)
    rows: int | None = None
    seconds: float = 0.0
    destination: str = ""
    error: str | None = None
    stage: str | None = None  # where it failed: compile | query | checks | write
    details: dict = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.status == "failed"


@dataclass
class RefreshReport:
    target: str
    trackers: list[TrackerReport]
    seconds: float
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return not any(t.failed for t in self.trackers)

    def to_json(self) -> dict:
        return {
            "target": self.target, "dry_run": self.dry_run, "ok": self.ok,
            "seconds": round(self.seconds, 3),
            "trackers": [{**asdict(t), "seconds": round(t.seconds, 3)} for t in self.trackers],
        }


def select_trackers(project: Project, names: Iterable[str], all_: bool, due: bool,
                    window_minutes: float = 15, now: dt.datetime | None = None) -> list[Tracker]:
    """Trackers by name, all of them, or those whose schedule fired within the window."""
    names = list(names)
    unknown = [n for n in names if n not in project.trackers]
    if unknown:
        first = unknown[0]
        raise GenesisError(f"no tracker named '{first}'",
                           hint=did_you_mean(first, project.trackers) or f"trackers: {', '.join(sorted(project.trackers))}")
    if not names and not all_ and not due:
        raise GenesisError("name trackers to refresh, or use --all or --due")
    chosen = [project.trackers[n] for n in names] if names else sorted(project.trackers.values(), key=lambda t: t.name)
    if due:
        now = now or dt.datetime.now(dt.timezone.utc)
        # A tracker whose schedule is not valid cron is kept: it then fails at the compile
        # stage with the located cron error, instead of silently never running (or crashing
        # the selection and with it every other due tracker).
        chosen = [t for t in chosen if t.schedule
                  and (cron_problem(t.schedule) or fired_within(t.schedule, now, window_minutes))]
    return chosen


def fired_within(schedule: str, now: dt.datetime, window_minutes: float) -> bool:
    """Did the cron schedule (UTC) fire in (now - window, now]? Stateless, for a 15-minute job."""
    from croniter import croniter

    now = now.astimezone(dt.timezone.utc)
    previous = croniter(schedule, now + dt.timedelta(microseconds=1)).get_prev(dt.datetime)
    return now - previous < dt.timedelta(minutes=window_minutes)


def refresh(project: Project, trackers: list[Tracker], *, target: str | None = None, dry_run: bool = False,
            progress: Callable[[str, TrackerReport], None] | None = None) -> RefreshReport:
    chosen = get_target(project, target)
    started = time.perf_counter()
    reports: list[TrackerReport] = []
    engine: Engine | None = None
    # The target's settings are the same for every tracker: a missing environment variable
    # is one error for the whole run, raised before any tracker starts.
    settings: Mapping[str, Any] = render_settings(chosen)
    try:
        for tracker in trackers:
            report = TrackerReport(tracker.name, destination=describe_destination(project, tracker, chosen))
            if progress:
                progress("start", report)
            tracker_started = time.perf_counter()
            try:
                if engine is None:
                    engine = open_engine(project, chosen.name)
                _refresh_one(project, tracker, engine, chosen, settings, report, dry_run)
            except GenesisError as exc:
                report.status, report.error = "failed", exc.render()
            except Exception as exc:  # noqa: BLE001 - one tracker must never stop the others
                report.status = "failed"
                report.error = redact(f"internal error: {type(exc).__name__}: {exc}")
                report.details["traceback"] = redact(traceback.format_exc(limit=5))
            report.seconds = time.perf_counter() - tracker_started
            reports.append(report)
            if progress:
                progress("end", report)
    finally:
        if engine is not None:
            engine.close()
    return RefreshReport(chosen.name, reports, time.perf_counter() - started, dry_run)


def _refresh_one(project, tracker: Tracker, engine: Engine, target, settings, report: TrackerReport,
                 dry_run: bool) -> None:
    report.stage = "compile"
    compiled = check_tracker(project, tracker)
    report.stage = "query"
    timeout = tracker.timeout_seconds or settings.get("timeout")
    result = execute(compiled, engine, label=tracker.name, timeout=timeout)
    report.rows = result.table.num_rows
    report.stage = "checks"
    problems = failed_checks(result, tracker.checks, compiled)
    if problems:
        raise GenesisError(f"checks failed, nothing written: {'; '.join(problems)}", tracker.checks.loc)
    if dry_run:
        report.status, report.stage = "checked", None
        return
    report.stage = "write"
    key = [compiled.column_for(k).name for k in tracker.key]
    changed, details = write_destination(project, tracker, result, key, target, settings)
    report.details.update(details)
    report.status = "ok" if changed else "unchanged"
    report.stage = None


def local_path(project: Project, tracker: Tracker, settings) -> Path:
    """Where a tracker writes on a `destinations: local` target."""
    destination = tracker.destination
    if destination["type"] == "file":
        from .destinations import paths

        path = paths.tracker_file_path(project, tracker)
        paths.check_resolved(path, paths.output_root(project.root, project.config.output_root), destination)
        return path
    return output_dir(project, settings) / f"{tracker.name}.csv"


def describe_destination(project: Project, tracker: Tracker, target) -> str:
    destination = tracker.destination
    if target.destinations == "local" or destination["type"] == "file":
        if destination["type"] == "file":
            return str(destination["path"])
        return f"out/{tracker.name}.csv"
    if destination["type"] == "google_sheets":
        return f"sheets:{destination['spreadsheet_id']}/{destination['worksheet']}"
    return f"airtable:{destination['base_id']}/{destination['table']}"


def write_destination(project: Project, tracker: Tracker, result: QueryResult, key: list[str], target,
                      settings) -> tuple[bool, dict]:
    """Write one tracker's result; returns (anything changed, details for the report)."""
    destination = tracker.destination
    if target.destinations == "local" or destination["type"] == "file":
        from .destinations.file import write_file

        written = write_file(result, local_path(project, tracker, settings))
        return written.changed, {"path": str(written.path), "bytes": written.bytes}
    if destination["type"] == "google_sheets":
        from .destinations.sheets import sync_google_sheet

        sheets = settings.get("google_sheets") or {}
        if not sheets.get("credentials"):
            raise GenesisError(f"target '{target.name}' has no google_sheets.credentials")
        report = sync_google_sheet(
            result, spreadsheet_id=str(destination["spreadsheet_id"]), worksheet=str(destination["worksheet"]),
            key=key, mode=tracker.mode, on_removed=tracker.on_removed,
            credentials_file=str(sheets["credentials"]),
            endpoint=str(sheets.get("endpoint") or "https://sheets.googleapis.com"),
            deadline_seconds=_seconds(sheets, "deadline_seconds", f"google_sheets.deadline_seconds of target '{target.name}'"))
        return _sync_details(report)
    if destination["type"] == "airtable":
        from .destinations.airtable import sync_airtable

        airtable = settings.get("airtable") or {}
        if not airtable.get("token"):
            raise GenesisError(f"target '{target.name}' has no airtable.token")
        report = sync_airtable(
            result, base_id=str(destination["base_id"]), table=str(destination["table"]), key=key,
            mode=tracker.mode, on_removed=tracker.on_removed, token=str(airtable["token"]),
            endpoint=str(airtable.get("endpoint") or "https://api.airtable.com"),
            deadline_seconds=_seconds(airtable, "deadline_seconds", f"airtable.deadline_seconds of target '{target.name}'"))
        return _sync_details(report)
    raise GenesisError(f"unknown destination type '{destination['type']}'", tracker.locs.get("destination"))


def _seconds(settings: Mapping[str, Any], key: str, what: str) -> float:
    from .destinations.retry import DEFAULT_DEADLINE_SECONDS

    value = settings.get(key, DEFAULT_DEADLINE_SECONDS)
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = 0.0
    if not seconds > 0:
        raise GenesisError(f"{what} must be a number of seconds above 0, not {value!r}")
    return seconds


def _sync_details(report) -> tuple[bool, dict]:
    """(changed, details): changed when the refresh itself changed rows, not when it only
    tried (a write rejected because another refresh wrote first is re-planned)."""
    details = {k: v for k, v in vars(report).items() if isinstance(v, (int, float, str))}
    changed = any(getattr(report, name, 0) for name in ("inserted", "updated", "deleted", "marked", "unmarked",
                                                        "created_tab", "fields_created"))
    return changed, details
