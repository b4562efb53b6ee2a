"""Destinations: what a file, a Google Sheets tab or an Airtable table can hold, known
from the tracker alone, so that `validate` says it before a refresh tries to write.

Each rule reads the tracker's typed destination (genesis/destinations/kinds.py) and is small on purpose: the
write-time code keeps only what depends on the destination's live state (its rows, its
header, the service's answers).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import PurePath

from ...compiler import CompiledQuery
from ...destinations.paths import tracker_file_path
from ...destinations.sync import STATUS_COLUMN
from ...errors import GenesisError, did_you_mean
from ...project.model import Project, Tracker
from ..outcomes import attempt
from ..registry import Rule

FILE_EXTENSIONS = (".csv", ".json", ".parquet", ".xlsx")
AIRTABLE_MAX_KEY_FIELDS = 3  # Airtable's performUpsert merges on at most 3 fields


def _type(tracker: Tracker) -> str:
    return tracker.destination.kind


def _live(tracker: Tracker) -> bool:
    """Sheets and Airtable: destinations people write in, synced by key."""
    return tracker.destination.live


def _where(tracker: Tracker, key: str):
    return tracker.locs.get(key, tracker.loc)


def file_extension(project: Project, tracker: Tracker) -> Iterator[GenesisError]:
    """A file destination's path ends in an extension Genesis writes."""
    if _type(tracker) != "file":
        return
    path = getattr(tracker.destination, "path", None)
    suffix = PurePath(str(path or "")).suffix.lower()
    if suffix not in FILE_EXTENSIONS:
        yield GenesisError(f"file destination '{path}' must end in one of {', '.join(FILE_EXTENSIONS)}",
                           _where(tracker, "destination"), did_you_mean(suffix, FILE_EXTENSIONS))


def file_inside_project(project: Project, tracker: Tracker) -> list[GenesisError]:
    """A file destination stays inside the project (or output_root) unless allowed out,
    and never names a device or system path."""
    if _type(tracker) != "file":
        return []
    return attempt(lambda: tracker_file_path(project, tracker))[1]


def file_mode(project: Project, tracker: Tracker) -> Iterator[GenesisError]:
    """`mode: upsert` / `append` do not apply to a file, which is always written whole."""
    if _type(tracker) == "file" and "mode" in tracker.locs and tracker.mode != "replace":
        yield GenesisError(
            f"mode: {tracker.mode} does not apply to a file destination: a file is always written whole",
            tracker.locs["mode"], "remove `mode`, or write mode: replace")


def key_required(project: Project, tracker: Tracker) -> Iterator[GenesisError]:
    """A Google Sheets or Airtable tracker has a `key`, in every mode: rows are matched by
    key (even `append` adds only the keys that are new)."""
    if _live(tracker) and not tracker.key:
        yield GenesisError(f"tracker '{tracker.name}' writes to {_type(tracker)} in {tracker.mode} mode "
                           "and needs a `key`", tracker.loc,
                           "key: [the reference that identifies a row, e.g. movie.movie_id]")


def replace_keeps_removed(project: Project, tracker: Tracker) -> Iterator[GenesisError]:
    """`mode: replace` with `on_removed: keep` would leave stale rows inside the block it owns."""
    if _live(tracker) and tracker.mode == "replace" and tracker.on_removed == "keep":
        yield GenesisError("mode 'replace' cannot keep removed rows unmarked (on_removed: keep)",
                           _where(tracker, "on_removed"), "use on_removed: delete or mark, or mode: upsert")


def airtable_key_size(project: Project, tracker: Tracker) -> Iterator[GenesisError]:
    """An Airtable key has at most 3 fields: Airtable matches records on no more."""
    if _type(tracker) == "airtable" and len(tracker.key) > AIRTABLE_MAX_KEY_FIELDS:
        yield GenesisError(f"Airtable matches records on at most {AIRTABLE_MAX_KEY_FIELDS} key fields; "
                           f"this key has {len(tracker.key)}", tracker.key_loc(AIRTABLE_MAX_KEY_FIELDS),
                           "shorten `key`")


def status_column_free(project: Project, tracker: Tracker, compiled: CompiledQuery) -> Iterator[GenesisError]:
    """No output column of a Sheets or Airtable tracker is named like the status column
    Genesis keeps there (`Genesis status`)."""
    if not _live(tracker) or compiled.column_for(STATUS_COLUMN) is None:
        return
    item = next((f for f in compiled.input.fields if f.name == STATUS_COLUMN), None)
    yield GenesisError(f"output column '{STATUS_COLUMN}' clashes with the status column Genesis keeps",
                       item.loc if item is not None else _where(tracker, "input"), "rename the field with a label")


def sheets_column_limit(project: Project, tracker: Tracker, compiled: CompiledQuery) -> Iterator[GenesisError]:
    """A Google Sheets tab holds the input's columns (Google allows 18,278 a sheet)."""
    if _type(tracker) != "google_sheets":
        return
    from ...destinations import sheets_layout

    if len(compiled.columns) > sheets_layout.MAX_COLUMNS:
        yield GenesisError(f"tab '{getattr(tracker.destination, 'worksheet', None)}' would need {len(compiled.columns):,} "
                           f"columns; Google Sheets allows {sheets_layout.MAX_COLUMNS:,}",
                           _where(tracker, "destination"), "remove columns from the input")


RULES = (
    Rule("destination.file_extension", tracker=file_extension),
    Rule("destination.file_path", tracker=file_inside_project),
    Rule("destination.file_mode", tracker=file_mode, refresh=False),  # a file is written whole anyway
    Rule("destination.key_required", tracker=key_required),
    Rule("destination.replace_keeps_removed", tracker=replace_keeps_removed),
    Rule("destination.airtable_key_size", tracker=airtable_key_size),
    Rule("destination.status_column", compiled_tracker=status_column_free),
    Rule("destination.sheets_columns", compiled_tracker=sheets_column_limit),
)
