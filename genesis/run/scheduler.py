"""Which trackers a scheduled run refreshes: catch-up on missed schedules, and shards.

Catch-up, still stateless. A tracker is due when its cron schedule (UTC) fired since its
last successful refresh. That time is read from where the tracker's data lives, so it
survives runners, caches and clones, and nothing else has to be kept:

- a Google Sheets tab: the stamp note on the header of its first key column
  ("Refreshed by Genesis at <UTC time> UTC ..."); one read per spreadsheet for all its tabs;
- an Airtable table: the stamp line in the table's description; one read per base;
- a file: a small sidecar `.<file name>.genesis-stamp.json` beside it, trusted only while
  the file still has the size it records.

Every successful refresh of a scheduled tracker leaves a stamp (an unchanged one rewrites
only the stamp, and only when its schedule fired since the old one). A late or skipped
scheduler run therefore refreshes what it missed, once. A destination with no stamp yet
(never refreshed, or the stamp was removed) falls back to `--window`: due when the schedule
fired within that many minutes. A stamp that cannot be read (no access, a network error)
makes the tracker due, so its refresh fails loudly instead of never running.

Shards. `--shard K/N` keeps the trackers whose *write lane* (the spreadsheet, the Airtable
base, or the file they write) hashes to K among N, so every runner of a matrix gets a
stable share, and trackers that share a spreadsheet or base (and so a rate limit) always
run in the same process, which paces them together.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeGuard

from ..destinations.kinds import AirtableDestination, LiveDestination, SheetsDestination
from ..errors import GenesisError
from ..project.model import Project, Tracker
from ..validate import cron_problem

STAMP_SUFFIX = ".genesis-stamp.json"


# ------------------------------------------------------------------------------ schedules

def last_fire(schedule: str, now: dt.datetime) -> dt.datetime:
    """The latest time at or before `now` at which the cron schedule (UTC) fired."""
    from croniter import croniter

    now = now.astimezone(dt.UTC)
    return croniter(schedule, now + dt.timedelta(microseconds=1)).get_prev(dt.datetime)


def touch_before(tracker: Tracker, now: dt.datetime) -> dt.datetime | None:
    """A stamp older than this must be renewed even by an unchanged refresh (None: never)."""
    if not tracker.schedule or cron_problem(tracker.schedule):
        return None
    return last_fire(tracker.schedule, now)


def is_due(tracker: Tracker, stamp: dt.datetime | None, now: dt.datetime, window_minutes: float) -> bool:
    """Whether the schedule fired after `stamp` (None: no stamp, so within the last `window_minutes`).

    Never for an unscheduled tracker; always for an invalid cron, so that it fails instead of never running."""
    if not tracker.schedule:
        return False
    if cron_problem(tracker.schedule):
        return True  # kept, so it fails with the located cron error instead of never running
    fired = last_fire(tracker.schedule, now)
    if stamp is None:
        return now - fired < dt.timedelta(minutes=window_minutes)
    return fired > stamp


# ------------------------------------------------------------------------------ write lanes

def _is_live(destination: object) -> TypeGuard[LiveDestination]:
    """Whether a destination is a live service (its kind's `live` flag): only those have a
    group (a spreadsheet, a base) whose stamps are read at once and which is one write lane.
    A TypeGuard, so that the type checker knows `group` and `name_in_group` exist."""
    return isinstance(destination, (SheetsDestination, AirtableDestination)) and destination.live


def write_lane(project: Project, tracker: Tracker, target, settings: Mapping[str, Any]) -> str:
    """What one writer at a time may write: a spreadsheet, an Airtable base or a file."""
    destination = tracker.destination
    if target.destinations == "local" or not _is_live(destination):
        from .refresh import local_path

        path = local_path(project, tracker, settings).resolve()
        try:  # relative to the project: the same lane (and shard) on every machine
            return "file:" + path.relative_to(Path(project.root).resolve()).as_posix()
        except ValueError:
            return "file:" + path.as_posix()
    return f"{destination.service}:{destination.group}"


def parse_shard(text: str) -> tuple[int, int]:
    """--shard K/N as (K, N), 1-based; GenesisError unless 1 <= K <= N."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise GenesisError(f"--shard '{text}' must be K/N with 1 <= K <= N, e.g. --shard 2/4")
    return int(match.group(1)), int(match.group(2))


def shard_of(lane: str, count: int) -> int:
    """1..count, stable across runs, machines and Python versions (not `hash()`)."""
    return int(hashlib.sha256(lane.encode()).hexdigest()[:16], 16) % count + 1


def in_shard(project: Project, trackers: list[Tracker], target, settings: Mapping[str, Any],
             shard: tuple[int, int]) -> list[Tracker]:
    """The trackers whose write lane falls in shard (K, N), in their order: trackers sharing a lane stay together."""
    k, n = shard
    return [t for t in trackers if shard_of(write_lane(project, t, target, settings), n) == k]


# ------------------------------------------------------------------------------ stamps

def read_stamps(project: Project, trackers: list[Tracker], target, settings: Mapping[str, Any],
                jobs: int = 8) -> dict[str, dt.datetime | None | GenesisError]:
    """tracker -> its last successful refresh (None: no stamp; an error: unreadable).

    One read per spreadsheet and per base, run `jobs` at a time."""
    # (the live destination's class, its group) -> each member tracker with its destination
    groups: dict[tuple[type[LiveDestination], str], list[tuple[Tracker, LiveDestination]]] = {}
    out: dict[str, Any] = {}
    for tracker in trackers:
        destination = tracker.destination
        if target.destinations == "local" or not _is_live(destination):
            out[tracker.name] = _file_stamp(project, tracker, settings)
        else:
            groups.setdefault((type(destination), destination.group), []).append((tracker, destination))

    def read(group: tuple[type[LiveDestination], str], members: list[tuple[Tracker, LiveDestination]]) -> dict:
        cls, ident = group
        try:
            names = [d.name_in_group for _, d in members]
            found = cls.read_stamps(ident, names, target, settings)
            return {t.name: found.get(d.name_in_group) for t, d in members}
        except GenesisError as err:
            return {t.name: err for t, _ in members}
        except Exception as err:  # noqa: BLE001 - an unreadable stamp makes the tracker due
            return {t.name: GenesisError(f"cannot read the refresh stamp: {type(err).__name__}: {err}")
                    for t, _ in members}

    with ThreadPoolExecutor(max(1, min(jobs, len(groups) or 1))) as pool:
        for found in pool.map(lambda item: read(*item), groups.items()):
            out.update(found)
    return out


def select_due(project: Project, trackers: list[Tracker], target, settings: Mapping[str, Any],
               now: dt.datetime, window_minutes: float, jobs: int = 8) -> list[Tracker]:
    """The trackers whose schedule fired since their stamp (or within the window, without one)."""
    scheduled = [t for t in trackers if t.schedule]
    stamps = read_stamps(project, [t for t in scheduled if t.schedule and not cron_problem(t.schedule)], target,
                         settings, jobs)
    due = []
    for tracker in scheduled:
        stamp = stamps.get(tracker.name)
        if isinstance(stamp, GenesisError) or is_due(tracker, stamp, now, window_minutes):
            due.append(tracker)
    return due


# ------------------------------------------------------------------------------ file stamps

def stamp_path(path: Path) -> Path:
    """The sidecar holding the refresh stamp of the file at `path`: `.<name>.genesis-stamp.json` beside it."""
    return path.parent / f".{path.name}{STAMP_SUFFIX}"


def _file_stamp(project: Project, tracker: Tracker, settings) -> dt.datetime | None:
    from .refresh import local_path

    return read_file_stamp(local_path(project, tracker, settings))


def read_file_stamp(path: Path) -> dt.datetime | None:
    """The sidecar's time, if the sidecar is readable and the file still has its size."""
    try:
        data = json.loads(stamp_path(path).read_text(encoding="utf-8"))
        if path.stat().st_size != data["bytes"]:
            return None
        return dt.datetime.fromisoformat(data["refreshed_at"]).astimezone(dt.UTC)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_file_stamp(path: Path, tracker: str, now: dt.datetime, changed: bool,
                     touch: dt.datetime | None) -> bool:
    """Write the sidecar atomically after a successful write of `path` (see the module doc):
    for a scheduled tracker, when the data changed or the old stamp predates `touch`."""
    if touch is None:
        return False  # not scheduled: no run will ever ask when it was refreshed
    old = read_file_stamp(path)
    if not changed and old is not None and old >= touch:
        return False
    import os
    import tempfile

    sidecar = stamp_path(path)
    body = json.dumps({"tracker": tracker, "refreshed_at": now.astimezone(dt.UTC).isoformat(),
                       "bytes": path.stat().st_size}, indent=1) + "\n"
    fd, temp = tempfile.mkstemp(prefix=".genesis-stamp-tmp-", dir=str(path.parent))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(body)
        os.replace(temp, sidecar)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return True
