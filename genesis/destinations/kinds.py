"""The typed destinations of a tracker, and the one registry of destination kinds.

A tracker's `destination:` mapping is turned into one of three frozen dataclasses when the
project loads (`destination_of`), so no later stage re-reads the YAML mapping:

- `FileDestination(path, allow_outside_project)`: a file written whole and atomically;
- `SheetsDestination(spreadsheet_id, worksheet)`: a Google Sheets tab people annotate;
- `AirtableDestination(base_id, table)`: an Airtable table people annotate.

Each satisfies the `Destination` protocol: its `kind` (the YAML `type`), `describe()` (the
one description of where it writes, used by refresh, review, listing and docs), whether it
is `live` (a service reached over HTTP), and for live kinds the `lane` one writer at a time
may write, the `group` whose refresh stamps are read together, and `sync`, which makes the
destination hold a result. `DESTINATIONS` maps each kind name to its class: refresh,
scheduler, review, docs and validate all go through it.

The classes also answer `destination["type"]` and `destination.get("path")` with the YAML
names, so code written against the old mapping keeps working while it moves to attributes.
The service clients are imported only when a live destination is synced, so loading a
project never imports gspread or pyairtable.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from ..errors import GenesisError, Location

if TYPE_CHECKING:
    from ..project.model import Target
    from ..result import QueryResult
    from .report import SyncReport


@runtime_checkable
class Destination(Protocol):
    """What every stage may ask of a tracker's destination, whatever its kind."""

    kind: ClassVar[str]
    live: ClassVar[bool]

    def describe(self) -> str:
        """Where this destination writes, for people: `Google Sheets <id> / <tab>`."""
        ...

    def to_mapping(self) -> dict[str, Any]:
        """The destination as written in YAML (`type` and its fields)."""
        ...


class _MappingView:
    """Read access by YAML name (`d["type"]`, `d.get("path")`), for code not yet typed."""

    kind: ClassVar[str]

    def to_mapping(self) -> dict[str, Any]:
        """The destination as written in YAML: `type` first, then its declared fields."""
        out: dict[str, Any] = {"type": self.kind}
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if f.name != "allow_outside_project" or value:
                out[f.name] = value
        return out

    def __getitem__(self, name: str) -> Any:
        return self.to_mapping()[name]

    def get(self, name: str, default: Any = None) -> Any:
        """The YAML field `name`, or `default` when this destination has none."""
        return self.to_mapping().get(name, default)

    def __contains__(self, name: object) -> bool:
        return name in self.to_mapping()

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_mapping())

    def keys(self) -> Any:
        """The YAML field names, as a mapping's keys."""
        return self.to_mapping().keys()

    def items(self) -> Any:
        """(YAML field, value) pairs, as a mapping's items."""
        return self.to_mapping().items()


@dataclass(frozen=True)
class FileDestination(_MappingView):
    """A file written whole and atomically; the extension picks the format (file.py)."""

    kind: ClassVar[str] = "file"
    live: ClassVar[bool] = False

    path: str
    allow_outside_project: bool = False

    def describe(self) -> str:
        """`file <path>` as the tracker declares it."""
        return f"file {self.path}"


@dataclass(frozen=True)
class SheetsDestination(_MappingView):
    """One tab of a Google Sheets spreadsheet, synced by key (sheets.py)."""

    kind: ClassVar[str] = "google_sheets"
    live: ClassVar[bool] = True
    service: ClassVar[str] = "sheets"

    spreadsheet_id: str
    worksheet: str

    def describe(self) -> str:
        """`Google Sheets <spreadsheet id> / <tab>`."""
        return f"Google Sheets {self.spreadsheet_id} / {self.worksheet}"

    @property
    def group(self) -> str:
        """The spreadsheet: its tabs' stamps are read in one call, and it is one write lane."""
        return self.spreadsheet_id

    @property
    def name_in_group(self) -> str:
        """The tab, within the spreadsheet."""
        return self.worksheet

    def sync(self, result: QueryResult, *, key: Sequence[str], mode: str, on_removed: str, target: Target,
             settings: Mapping[str, Any], dry_run: bool = False,
             touch_before: dt.datetime | None = None) -> SyncReport:
        """Make the tab hold `result` (the stamp goes in the same write); see sheets.py."""
        from ..project.config import sheets_access
        from .retry import deadline_setting
        from .sheets import sync_google_sheet

        credentials, endpoint = sheets_access(target, settings)
        return sync_google_sheet(
            result, spreadsheet_id=self.spreadsheet_id, worksheet=self.worksheet, key=key, mode=mode,
            on_removed=on_removed, credentials_file=credentials, endpoint=endpoint, touch_before=touch_before,
            dry_run=dry_run, deadline_seconds=deadline_setting(settings, "google_sheets", target.name))

    @staticmethod
    def read_stamps(group: str, names: Sequence[str], target: Target,
                    settings: Mapping[str, Any]) -> Mapping[str, dt.datetime | None]:
        """tab -> its last refresh stamp, for every tab in `names` of spreadsheet `group`."""
        from ..project.config import sheets_access
        from .sheets import read_stamps

        credentials, endpoint = sheets_access(target, settings)
        return read_stamps(group, names, credentials_file=credentials, endpoint=endpoint)


@dataclass(frozen=True)
class AirtableDestination(_MappingView):
    """One table of an Airtable base, synced by key (airtable.py)."""

    kind: ClassVar[str] = "airtable"
    live: ClassVar[bool] = True
    service: ClassVar[str] = "airtable"

    base_id: str
    table: str

    def describe(self) -> str:
        """`Airtable <base id> / <table>`."""
        return f"Airtable {self.base_id} / {self.table}"

    @property
    def group(self) -> str:
        """The base: its tables' stamps are read together, and it is one write lane
        (Airtable's rate limit is per base)."""
        return self.base_id

    @property
    def name_in_group(self) -> str:
        """The table, within the base."""
        return self.table

    def sync(self, result: QueryResult, *, key: Sequence[str], mode: str, on_removed: str, target: Target,
             settings: Mapping[str, Any], dry_run: bool = False,
             touch_before: dt.datetime | None = None) -> SyncReport:
        """Make the table hold `result`, then (unless a dry run) renew its refresh stamp,
        which Airtable keeps in the table's description (airtable_stamp.py)."""
        from ..project.config import airtable_access
        from .airtable import sync_airtable
        from .retry import deadline_setting

        token, endpoint = airtable_access(target, settings)
        report = sync_airtable(
            result, base_id=self.base_id, table=self.table, key=key, mode=mode, on_removed=on_removed,
            token=token, endpoint=endpoint, dry_run=dry_run,
            deadline_seconds=deadline_setting(settings, "airtable", target.name))
        if not dry_run:
            from .airtable_stamp import write_stamp

            write_stamp(self.base_id, self.table, token=token, endpoint=endpoint, touch_before=touch_before,
                        changed=report.changed)
        return report

    @staticmethod
    def read_stamps(group: str, names: Sequence[str], target: Target,
                    settings: Mapping[str, Any]) -> Mapping[str, dt.datetime | None]:
        """table -> its last refresh stamp, for every table in `names` of base `group`."""
        from ..project.config import airtable_access
        from .airtable_stamp import read_stamps

        token, endpoint = airtable_access(target, settings)
        return read_stamps(group, list(names), token=token, endpoint=endpoint)


LiveDestination = SheetsDestination | AirtableDestination
AnyDestination = FileDestination | SheetsDestination | AirtableDestination

# The one registry: kind name (the YAML `type`) -> its class.
DESTINATIONS: Mapping[str, type[AnyDestination]] = {
    cls.kind: cls for cls in (FileDestination, SheetsDestination, AirtableDestination)
}


def destination_of(doc: Any, where: Location | None = None) -> AnyDestination:
    """The typed destination of a tracker's `destination:` mapping (already shape-checked
    by the tracker schema); a typed destination is returned as it is."""
    if isinstance(doc, (FileDestination, SheetsDestination, AirtableDestination)):
        return doc
    kind = doc.get("type") if isinstance(doc, Mapping) else None
    cls = DESTINATIONS.get(str(kind))
    if cls is None:
        from ..errors import did_you_mean

        raise GenesisError(f"unknown destination type '{kind}'", where, did_you_mean(str(kind), DESTINATIONS))
    if cls is FileDestination:
        return FileDestination(str(doc.get("path", "")), doc.get("allow_outside_project") is True)
    if cls is SheetsDestination:
        return SheetsDestination(str(doc.get("spreadsheet_id", "")), str(doc.get("worksheet", "")))
    return AirtableDestination(str(doc.get("base_id", "")), str(doc.get("table", "")))


def describe_destination(destination: Any) -> str:
    """Where a destination writes, for people (`file out/x.csv`, `Google Sheets ID / tab`,
    `Airtable BASE / table`); accepts a typed destination or its YAML mapping."""
    try:
        return destination_of(destination).describe()
    except GenesisError:
        kind = destination.get("type", "?") if isinstance(destination, Mapping) else "?"
        return str(kind)
