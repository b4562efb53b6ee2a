"""Per tracker, from the run history: last success, last failure and why, late or not.

`genesis status` prints this; the alerts derive each tracker's previous state from the
same rows (the state is the status of its newest row: ok, failed or late), so Genesis
keeps no state of its own.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, overload

import pyarrow as pa

from ..project.model import Project, Tracker
from ..run.durations import parse_duration
from .history import OK_STATUSES, as_utc

DEFAULT_LATE_AFTER = "1h"


@overload
def state_of(status: str) -> str: ...
@overload
def state_of(status: None) -> None: ...
def state_of(status: str | None) -> str | None:
    """ok | failed | late from a history row's status (dry runs are never recorded)."""
    if status is None:
        return None
    return "ok" if status in OK_STATUSES else status


def late_after_seconds(project: Project) -> float:
    """How long after a scheduled time a tracker may still succeed before it is late
    (`history.late_after`, default 1h), in seconds."""
    return parse_duration(project.config.history.get("late_after", DEFAULT_LATE_AFTER))


def due_since(tracker: Tracker, now: dt.datetime, grace_seconds: float) -> dt.datetime | None:
    """The newest scheduled time whose grace has passed: a success must have started after it."""
    from croniter import croniter

    from ..validate import cron_problem

    if not tracker.schedule or cron_problem(tracker.schedule):
        return None
    cutoff = now.astimezone(dt.UTC) - dt.timedelta(seconds=grace_seconds)
    return croniter(tracker.schedule, cutoff + dt.timedelta(microseconds=1)).get_prev(dt.datetime)


def is_late(tracker: Tracker, last_success_started: dt.datetime | None, now: dt.datetime,
            grace_seconds: float) -> bool:
    """Whether the tracker's schedule expected a run (more than `grace_seconds` ago) that
    has not succeeded since: no success at all, or the last one started before then."""
    expected = due_since(tracker, now, grace_seconds)
    if expected is None:
        return False
    return last_success_started is None or as_utc(last_success_started) < expected


def rows_by_tracker(history: pa.Table) -> dict[str, list[dict]]:
    """History rows per tracker, oldest first."""
    out: dict[str, list[dict]] = {}
    for row in sorted(history.to_pylist(), key=lambda r: (r["ended_at"] or r["started_at"] or dt.datetime.min)):
        out.setdefault(row["tracker"], []).append(row)
    return out


@dataclass
class TrackerStatus:
    """One tracker's (or for_each part's) summary of its run history, as `genesis status` shows it.

    `last_run`, `last_success` and `last_failure` are brief rows ({at, status, error, ...});
    `runs` counts refreshes, not the rows recorded only to say the tracker was late.
    """

    tracker: str
    owner: str | None
    schedule: str | None
    state: str  # ok | failed | late | never run
    late: bool
    due_since: str | None  # the scheduled time a success is awaited for, when late
    last_run: dict | None
    last_success: dict | None
    last_failure: dict | None
    runs: int

    def to_json(self) -> dict:
        """The status as `genesis status --format json` prints it."""
        return asdict(self)


def tracker_statuses(project: Project, history: pa.Table, names: Iterable[str] = (),
                     now: dt.datetime | None = None) -> list[TrackerStatus]:
    """The status of each tracker named (default: every one), for_each trackers as their parts.

    `history` holds one target's rows; `now` (default: the current time) decides what is late.
    """
    now = now or dt.datetime.now(dt.UTC)
    grace = late_after_seconds(project)
    per = rows_by_tracker(history)
    from ..run.fan_out_refresh import with_history_parts

    project = with_history_parts(project, per)  # each for_each part has its own status
    chosen = [name for top in (list(names) or sorted(n for n, t in project.trackers.items() if t.part_of is None))
              for name in parts_listed(project, top, per)]
    out = []
    for name in chosen:
        tracker = project.trackers[name]
        rows = [r for r in per.get(name, []) if r["status"] != "late"]
        successes = [r for r in rows if r["status"] in OK_STATUSES]
        failures = [r for r in rows if r["status"] == "failed"]
        success = successes[-1] if successes else None
        late = bool(rows) and is_late(tracker, success["started_at"] if success else None, now, grace)
        expected = due_since(tracker, now, grace) if late else None
        state = "never run" if not rows else ("failed" if rows[-1]["status"] == "failed" else
                                              "vanished" if rows[-1]["status"] == "vanished" else
                                              "late" if late else "ok")
        out.append(TrackerStatus(
            name, tracker.owner, tracker.schedule, state, late, _iso(expected),
            _brief(rows[-1]) if rows else None, _brief(success), _brief(failures[-1] if failures else None),
            len(rows)))
    return out


def parts_listed(project: Project, name: str, per: Mapping[str, list]) -> list[str]:
    """A tracker, or the parts of a for_each tracker (and itself while its newest row, a
    refresh whose values could not be read, is newer than every part's)."""
    parts = sorted(n for n, t in project.trackers.items() if t.part_of == name)

    def newest(rows: list) -> dt.datetime:
        return max((r["ended_at"] or r["started_at"] or dt.datetime.min) for r in rows) if rows else dt.datetime.min

    own = per.get(name) or []
    shown = not parts or (own and newest(own) >= max(newest(per.get(p) or []) for p in parts))
    return ([name] if shown else []) + parts


def _brief(row: Mapping[str, Any] | None) -> dict | None:
    if row is None:
        return None
    keys = ("run_id", "status", "stage", "error", "error_location", "rows", "written", "written_unit",
            "data_age_seconds", "git_commit", "run_url")
    return {"at": _iso(row["ended_at"]), **{k: row.get(k) for k in keys if row.get(k) is not None}}


def _iso(value: dt.datetime | None) -> str | None:
    return as_utc(value).isoformat(timespec="seconds") if value is not None else None


def render_text(statuses: list[TrackerStatus]) -> str:
    """The `genesis status` table: state, last success, last failure and why per tracker, then counts."""
    header = ("tracker", "state", "last success", "last failure", "why")
    lines = [header]
    for s in statuses:
        state = s.state + (f" (due {s.due_since})" if s.late and s.state != "late" else "")
        if s.late and s.state == "late":
            state = f"late since {s.due_since}"
        failure = s.last_failure
        why = ""
        if failure:
            why = f"{failure.get('stage') or '?'}: {failure.get('error') or ''}"
            why = why if len(why) <= 120 else why[:117] + "..."
        lines.append((s.tracker, state, (s.last_success or {}).get("at") or "-",
                      (failure or {}).get("at") or "-", why))
    widths = [max(len(str(r[i])) for r in lines) for i in range(4)]
    text = ["  ".join(str(c).ljust(w) for c, w in zip(r[:4], widths)) + ("  " + r[4] if r[4] else "")
            for r in lines]
    text.insert(1, "  ".join("-" * w for w in widths))
    counts = {k: sum(s.state == k for s in statuses) for k in ("ok", "failed", "late", "never run", "vanished")}
    text.append(", ".join(f"{v} {k}" for k, v in counts.items() if v) or "no trackers")
    return "\n".join(text)



def catalog_runs(project: Project, now: dt.datetime | None = None) -> dict[str, dict]:
    """Per tracker, its last refresh for the HTML catalog: {} when the run history of the
    default target cannot be read (no warehouse yet, a cluster out of reach, no secrets)."""
    import pyarrow.compute as pc

    from ..project.config import get_target, render_settings
    from .history import history_enabled, open_history

    try:
        target = get_target(project)
        if not history_enabled(project, target):
            return {}
        history = open_history(project, target, render_settings(target)).read()
        history = history.filter(pc.equal(history["target"], target.name))
        statuses = tracker_statuses(project, history, now=now)
    except Exception:  # noqa: BLE001 - the catalog is built without it
        return {}
    out = {}
    for s in statuses:
        if s.last_run is None:
            continue
        failure = s.last_failure if s.state == "failed" else None
        out[s.tracker] = {"state": s.state, "at": s.last_run["at"], "target": target.name,
                          "last_success": (s.last_success or {}).get("at"),
                          "stage": failure and failure.get("stage"), "error": failure and failure.get("error")}
    return out
