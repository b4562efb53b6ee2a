"""Around a refresh: make sure the history table exists; afterwards record one row per
tracker, notice trackers that missed their schedule, and alert owners on a change of state.

`genesis.run.refresh.refresh` calls `before_refresh` and `after_refresh` once each (not for dry
runs). Nothing here can fail the refresh: a history or alert problem becomes a warning in
its summary.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import GenesisError, redact, register_secret
from ..project.model import Project, Target
from .alerts import Change, configured, send
from .history import git_commit, history_enabled, history_table, open_history, run_url, sql_hash
from .status import due_since, is_late, late_after_seconds, rows_by_tracker, state_of

STATE_COLUMNS = ("tracker", "target", "status", "started_at", "ended_at")  # what the state needs


def before_refresh(project: Project, target: Target, settings: Mapping[str, Any]) -> list[str]:
    """Create the history table before the trackers run when a data source reads it (an
    existing warehouse that predates it, a cluster's first run); returns warnings."""
    if not history_enabled(project, target):
        return []
    table = history_table(project)
    if not any(ds.table == table for ds in project.datasources.values()):
        return []
    try:
        open_history(project, target, settings).ensure()
    except Exception as exc:  # noqa: BLE001 - the refresh goes on; the tracker reading it fails alone
        return [f"run history table not created: {_describe(exc)}"]
    return []


def after_refresh(project: Project, target: Target, settings: Mapping[str, Any], report,
                  now: dt.datetime | None = None) -> list[str]:
    """Record the refresh, alert owners whose tracker changed state; returns warnings."""
    if not history_enabled(project, target):
        return []
    now = now or dt.datetime.now(dt.UTC)
    run_id = uuid.uuid4().hex
    url = run_url()
    records = [record_of(project, target, t, run_id, url) for t in report.trackers
               if t.status != "checked"]
    warnings: list[str] = []
    try:
        store = open_history(project, target, settings)
        past = rows_by_tracker(store.read(STATE_COLUMNS))
        from ..run.fan_out_refresh import with_history_parts  # every for_each part can be late, run or not

        records += late_records(with_history_parts(project, past), target, past, {r["tracker"] for r in records},
                                now, run_id, url)
        store.append(records)
    except Exception as exc:  # noqa: BLE001 - the refresh itself is done; say why nothing was recorded
        return [f"run history not recorded: {_describe(exc)}"]
    if configured(project):
        try:
            changes = state_changes(project, target, past, records)
            _, alert_warnings, urls = send(project, changes)
        except Exception as exc:  # noqa: BLE001 - an alert problem never fails the refresh
            return [f"alerts not sent: {type(exc).__name__}"]
        for channel_url in urls:  # a webhook URL carries its token: never shown
            register_secret(channel_url)
        warnings += [redact(w) for w in alert_warnings]
    return warnings


def record_of(project: Project, target: Target, t, run_id: str, url: str | None) -> dict:
    """The history row of one TrackerReport."""
    tracker = project.trackers.get(t.tracker)
    written, unit = _written(t)
    return {
        "run_id": run_id, "tracker": t.tracker, "target": target.name,
        "owner": tracker.owner if tracker else None, "status": t.status,
        "stage": t.stage if t.failed else None,
        "error": redact(t.error) if t.error else None,  # the target's secrets were registered by render_settings
        "error_location": t.location,
        "started_at": t.started_at, "ended_at": t.ended_at, "seconds": round(t.seconds, 3),
        "rows": t.rows, "written": written, "written_unit": unit,
        "sql_hash": _hash_of(project, t.tracker, target.engine),
        "git_commit": git_commit(project.root),
        "data_age_seconds": t.details.get("data_age_seconds"), "run_url": url,
    }


def _written(t) -> tuple[int | None, str | None]:
    d = t.details
    if t.status not in ("ok", "unchanged"):
        return None, None
    if "cells_written" in d:
        return int(d["cells_written"]), "cells"
    if "base_id" in d:
        return sum(int(d.get(k, 0)) for k in ("inserted", "updated", "deleted", "marked", "unmarked")), "records"
    if "path" in d:
        return (t.rows or 0) if t.status == "ok" else 0, "rows"
    return None, None


def _hash_of(project: Project, name: str, dialect: str) -> str | None:
    from ..compiler import compile_tracker

    try:
        return sql_hash(compile_tracker(project, name).sql(dialect))
    except Exception:  # noqa: BLE001 - a tracker that does not compile has no SQL
        return None


def late_records(project: Project, target: Target, past: Mapping[str, list[dict]], ran: set[str],
                 now: dt.datetime, run_id: str, url: str | None) -> list[dict]:
    """A `late` row for each scheduled tracker that was ok and has missed its schedule.

    Only trackers with history on this target are judged (a new tracker is not late
    before it ever ran), and only once: the `late` row makes the state late.
    """
    grace = late_after_seconds(project)
    out = []
    for name, tracker in sorted(project.trackers.items()):
        rows = [r for r in past.get(name, []) if r["target"] == target.name]
        if name in ran or not rows or state_of(rows[-1]["status"]) != "ok" or not tracker.schedule:
            continue
        success = [r for r in rows if state_of(r["status"]) == "ok" and r["status"] != "late"]
        last = success[-1]["started_at"] if success else None
        if is_late(tracker, last, now, grace):
            expected = due_since(tracker, now, grace)
            out.append({
                "run_id": run_id, "tracker": name, "target": target.name, "owner": tracker.owner,
                "status": "late", "error": f"no successful refresh since its scheduled time "
                f"{expected:%Y-%m-%d %H:%M} UTC (schedule '{tracker.schedule}')",
                "error_location": str(tracker.locs.get("schedule", tracker.loc)),
                "started_at": now, "ended_at": now, "seconds": 0.0, "git_commit": git_commit(project.root),
                "run_url": url,
            })
    return out


def state_changes(project: Project, target: Target, past: Mapping[str, list[dict]],
                  records: Iterable[dict]) -> list[Change]:
    """One Change per tracker whose state differs from its newest earlier row on this target.

    A first run that is ok is no change; a first run that fails is.
    """
    current = {}
    for name, rows in past.items():
        mine = [r for r in rows if r["target"] == target.name]
        if mine:
            current[name] = state_of(mine[-1]["status"])
    changes = []
    for record in records:
        state, previous = state_of(record["status"]), current.get(record["tracker"])
        current[record["tracker"]] = state
        if state == previous or (previous is None and state == "ok"):
            continue
        changes.append(Change(record["tracker"], record.get("owner"), previous, state, target.name,
                              record.get("stage"), record.get("error"), record.get("error_location"),
                              record.get("run_url")))
    return changes


def _describe(exc: Exception) -> str:
    text = exc.render() if isinstance(exc, GenesisError) else f"{type(exc).__name__}: {exc}"
    return redact(text)
