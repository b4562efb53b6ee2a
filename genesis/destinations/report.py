"""What a sync of an annotated destination (Google Sheets, Airtable) did, and the checks
and row building both share before anything is sent.

`SyncReport` is the one report of a keyed sync: the plan's counts, the calls made, and
the few facts only one service has (a created tab, created fields, a stamp-only write).
Refresh turns its numbers into the tracker's `details`; `genesis audit` reads its `plan`
and `existing` rows. `check_key` is the one check of a tracker's key against the result,
and `result_rows` the one builder of the diff's `ResultRow`s from a result.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import GenesisError, did_you_mean
from ..result import QueryResult
from .sync import STATUS_COLUMN, ExistingRow, Plan, ResultRow


@dataclass
class SyncReport:
    """One keyed sync: `destination` is the service's id of it (spreadsheet, base) and
    `place` the tab or table."""

    destination: str
    place: str
    mode: str
    on_removed: str
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    marked: int = 0
    unmarked: int = 0
    unchanged: int = 0
    kept: int = 0
    rows: int = 0
    read_calls: int = 0
    write_calls: int = 0
    meta_calls: int = 0  # Airtable: schema reads, table and field creation
    retries: int = 0  # requests sent again after a 429, 5xx or lost connection
    replans: int = 0  # Airtable: re-reads after records vanished under a write
    conflicts: int = 0  # Sheets: writes rejected because another writer changed the tab first
    payload_bytes: int = 0  # Sheets: bytes of the batchUpdate bodies sent
    cells_written: int = 0  # owned cells the plan writes (inserted rows' cells, changed cells, status)
    seconds: float = 0.0
    waited_seconds: float = 0.0  # Sheets: waiting for another refresh that held the tab
    dry_run: bool = False
    created_tab: bool = False  # Sheets: the tab was missing and was created
    stamp_only: bool = False  # Sheets: the data was unchanged; only the stamp was rewritten
    fields_created: tuple[str, ...] = ()  # Airtable: the table's fields Genesis created
    service: str = ""  # google_sheets | airtable: names the report's details (see `numbers`)
    plan: Plan | None = field(default=None, repr=False, compare=False)  # for `genesis audit`
    existing: Sequence[ExistingRow] = field(default=(), repr=False, compare=False)  # the rows the diff saw

    @property
    def calls(self) -> int:
        """Every request made: reads, writes and schema calls."""
        return self.read_calls + self.write_calls + self.meta_calls

    @property
    def changed(self) -> bool:
        """Did the sync itself change the destination (rows, the tab, its fields)? A write
        rejected because another refresh wrote first and then re-planned does not count."""
        return bool(self.inserted or self.updated or self.deleted or self.marked or self.unmarked
                    or self.created_tab or self.fields_created)

    def count(self, plan: Plan) -> None:
        """Take the plan's counts and the number of owned cells it writes."""
        for name, value in plan.counts().items():
            setattr(self, name, value)
        self.cells_written = (sum(len(r.values) for r in plan.inserts) + sum(len(u.columns) for u in plan.updates)
                              + len(plan.marks) + len(plan.unmarks))

    def summary(self) -> str:
        """`3 inserted, 1 updated, ...` for logs."""
        return (f"{self.inserted} inserted, {self.updated} updated, {self.deleted} deleted, "
                f"{self.marked} marked, {self.unchanged} unchanged")

    def numbers(self) -> dict[str, Any]:
        """The report's plain values (numbers, text, flags) for a tracker's `details`, under
        the service's own names (`spreadsheet_id`/`worksheet`, `base_id`/`table`) and
        without the figures the service does not have: the run history reads the written
        unit from them (cells for Google Sheets, records for Airtable)."""
        names, absent = _DETAILS.get(self.service, (("destination", "place"), frozenset()))
        out: dict[str, Any] = {names[0]: self.destination, names[1]: self.place}
        out.update((k, v) for k, v in vars(self).items()
                   if isinstance(v, (int, float, str)) and k not in absent and k not in _NAMED)
        return out


_NAMED = frozenset({"destination", "place", "service"})
# service -> (names of `destination` and `place` in details, figures it does not have)
_DETAILS: dict[str, tuple[tuple[str, str], frozenset[str]]] = {
    "google_sheets": (("spreadsheet_id", "worksheet"), frozenset({"meta_calls", "replans"})),
    "airtable": (("base_id", "table"), frozenset({"rows", "conflicts", "payload_bytes", "cells_written",
                                                  "waited_seconds", "created_tab", "stamp_only"})),
}


def check_key(result: QueryResult, key: Sequence[str], service: str, max_fields: int | None = None) -> None:
    """Refuse, before any call, a key a keyed destination cannot match rows by: none, a
    name that is not an output column, more fields than the service matches on; and an
    output column that would clash with the status column Genesis keeps."""
    names = result.names
    if not key:
        raise GenesisError(f"a {service} tracker needs a `key`: the column(s) that identify a row",
                           hint="rows are matched by key so that people's notes stay beside their row")
    for k in key:
        if k not in names:
            raise GenesisError(f"key column '{k}' is not an output column of the input",
                               hint=did_you_mean(k, names) or f"output columns: {', '.join(names)}")
    if max_fields is not None and len(key) > max_fields:
        raise GenesisError(f"{service} matches records on at most {max_fields} key fields", hint="shorten `key`")
    if STATUS_COLUMN in names:
        raise GenesisError(f"output column '{STATUS_COLUMN}' clashes with the status column Genesis keeps",
                           hint="rename the field with a label")


def result_rows(result: QueryResult, convert: Mapping[str, Callable[[Any], Any]], key: Sequence[str],
                key_cell: Callable[[str, Any, Any], Any] | None = None) -> list[ResultRow]:
    """The result as the diff's rows: each owned column's value through `convert[name]`
    (what the destination stores); the key is the converted key values, or
    `key_cell(name, raw, converted)` when the destination matches keys another way."""
    data = {name: result.table.column(name).to_pylist() for name in convert}
    rows = []
    for i in range(result.table.num_rows):
        values = {name: fn(data[name][i]) for name, fn in convert.items()}
        if key_cell is None:
            row_key = tuple(values[k] for k in key)
        else:
            row_key = tuple(key_cell(k, data[k][i], values[k]) for k in key)
        rows.append(ResultRow(row_key, values))
    return rows
