"""What a Google Sheets tab holds and where: the owned columns, the header, the rows.

The result side: each output column becomes a `Column` that knows how its values are
written (typed, or as formatted text) and its number format; `sheet_rows` turns the result
into the diff's rows. The tab side: `read_tab` reads the grid once, `layout_of` finds the
owned columns by their header wherever people moved them (columns people added are
theirs: never written), and reads every row as the diff sees it (annotated when a cell
Genesis does not own holds a value or a note). `check_result_fits` / `check_limits` refuse
what Google's size limits would reject, before a payload is built. The stamp note's
format (`stamp_of_note`) lives here too: it is read back from the header row.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa
from gspread.utils import absolute_range_name, rowcol_to_a1

from ..clock import parse_stamp_time
from ..errors import GenesisError
from ..project.types import is_array
from ..result import OutputColumn, QueryResult
from . import sheets_lease as lease
from .formatting import format_value, result_type, spreadsheet_number_format
from .report import check_key, result_rows
from .sheets_client import SheetsApi
from .sync import STATUS_COLUMN, STATUS_REMOVED, Bool, ExistingRow, ResultRow, normalize

MAX_CELLS = 10_000_000  # per spreadsheet
MAX_COLUMNS = 18_278  # per sheet
MAX_CELL_CHARS = 50_000
READ_FIELDS = (f"{lease.METADATA_FIELDS},sheets(properties(sheetId,title,gridProperties),"
               "data(rowData(values(userEnteredValue,userEnteredFormat/numberFormat,note))))")
STAMP_RE = re.compile(r"Refreshed by Genesis at (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC")


def stamp_of_note(note: str | None) -> datetime | None:
    """The time in a Genesis stamp note, or None when the note is not one."""
    match = STAMP_RE.search(note or "")
    return parse_stamp_time(match.group(1)) if match else None


# --------------------------------------------------------------------------- result side

@dataclass(frozen=True)
class Column:
    """An owned column: how its values are written and its number format, if any."""

    name: str
    type: str
    number_format: Mapping[str, str] | None
    convert: Callable[[Any], Any]

    def value(self, raw: Any) -> Any:
        """What the diff compares: the cell value, with the number format when there is one."""
        cell = self.convert(raw)
        if self.number_format is None:
            return cell
        return (cell, self.number_format["type"], self.number_format["pattern"])


def columns_of(result: QueryResult, key: Sequence[str]) -> list[Column]:
    """The owned columns of `result` with their written values; the key checked first."""
    check_key(result, key, "Google Sheets")
    return [column_of(c) for c in result.columns]


def column_of(column: OutputColumn) -> Column:
    """How one output column is written: typed, or as its formatted text (arrays, links,
    booleans with a `bool` format), with its number format when it has one."""
    fmt = column.format or {}
    column_type = result_type(column)
    number_format = spreadsheet_number_format(column_type, fmt)
    if is_array(column_type) or "link" in fmt or (column_type == "boolean" and "bool" in fmt):
        convert = _texter(column_type, fmt)
    else:
        convert = _plain
    return Column(column.name, column_type, number_format, convert)


def _plain(raw: Any) -> Any:
    """The written value of a typed value: float, str, bool or None (dates as serials)."""
    value = normalize(raw)
    return value.value if isinstance(value, Bool) else value


def _texter(column_type: str, fmt: Mapping) -> Callable[[Any], Any]:
    def convert(raw: Any) -> Any:
        return None if raw is None else (format_value(raw, column_type, fmt) or None)

    return convert


def sheet_rows(result: QueryResult, columns: list[Column], key: Sequence[str]) -> list[ResultRow]:
    """The result as the diff's rows; refuses a value longer than a cell holds."""
    # keys are matched as typed values (messages show 7, not 7.0), or as the text written
    texted = {c.name for c in columns if c.convert is not _plain}
    out = result_rows(result, {c.name: c.value for c in columns}, key,
                      lambda name, raw, cell: cell_of(cell) if name in texted else raw)
    _check_cell_sizes(out, columns, key)
    return out


def _check_cell_sizes(rows: list[ResultRow], columns: list[Column], key: Sequence[str]) -> None:
    for row in rows:
        for c in columns:
            text = cell_of(row.values[c.name])
            if isinstance(text, str) and len(text) > MAX_CELL_CHARS:
                raise _too_long(c.name, zip(key, row.key), len(text))


def _too_long(column: str, key: Iterable[tuple[str, Any]], length: int) -> GenesisError:
    shown = ", ".join(f"{k}={v!r}" for k, v in key)
    return GenesisError(f"column '{column}' of the row {shown} holds {length:,} characters; "
                        f"a Google Sheets cell holds at most {MAX_CELL_CHARS:,}",
                        hint="shorten the value in the input (e.g. substr(...)); nothing was written")


def cell_of(value: Any) -> Any:
    """The cell value of a compared value (a formatted one is (value, type, pattern))."""
    return value[0] if isinstance(value, tuple) else value


# --------------------------------------------------------------------------- the tab

@dataclass
class Tab:
    """The tab as read: its grid properties and every cell the read returned."""

    sheet_id: int
    title: str
    row_count: int
    col_count: int
    frozen_rows: int
    rows: list[list[dict]]  # rowData values; rows[0] is the header
    exists: bool = True
    other_cells: int | None = None  # cells of the other tabs, when known
    lease: str | None = None  # the tab's writer lease as read (see sheets_lease)

    def cell(self, r: int, c: int) -> dict:
        """CellData at 0-based row r, column c ({} when the read returned none)."""
        row = self.rows[r] if r < len(self.rows) else []
        return (row[c] or {}) if c < len(row) else {}

    @property
    def width(self) -> int:
        """Columns used by any row read."""
        return max((len(r) for r in self.rows), default=0)


def _entered(cell: dict) -> Any:
    value = cell.get("userEnteredValue")
    if not value:
        return None
    if "numberValue" in value:
        return float(value["numberValue"])  # JSON may carry 7 for 7.0; compare floats with floats
    for kind in ("stringValue", "boolValue"):
        if kind in value:
            return value[kind]
    return ("formula", value.get("formulaValue")) if "formulaValue" in value else ("error", str(value))


def read_tab(api: SheetsApi) -> Tab | None:
    """The tab's whole grid in one read (values, number formats, notes, its lease), or
    None when the spreadsheet has no such tab."""
    params: dict[str, Any] = {"ranges": absolute_range_name(api.worksheet), "fields": READ_FIELDS}
    doc = api.read_tab(lambda: api.http.spreadsheets_get(api.spreadsheet_id, params=params))
    if doc is None:
        return None
    sheet = (doc.get("sheets") or [{}])[0]
    props = sheet.get("properties") or {}
    grid = props.get("gridProperties") or {}
    data = (sheet.get("data") or [{}])[0]
    rows = [r.get("values") or [] for r in data.get("rowData") or []]
    return Tab(props.get("sheetId", 0), props.get("title", api.worksheet), grid.get("rowCount", 0),
               grid.get("columnCount", 0), grid.get("frozenRowCount", 0), rows,
               lease=lease.find(doc.get("developerMetadata"), api.worksheet))


def new_tab(api: SheetsApi) -> Tab:
    """The tab to add: an unused sheet id, and what the other tabs use (for the cell limit)."""
    doc = api.read(lambda: api.http.fetch_sheet_metadata(
        api.spreadsheet_id, params={"fields": f"{lease.METADATA_FIELDS},sheets.properties"}))
    props = [s.get("properties") or {} for s in doc.get("sheets") or []]
    used = {p.get("sheetId") for p in props}
    sheet_id = next(i for i in iter(lambda: secrets.randbelow(2**31 - 1) + 1, None) if i not in used)
    other = sum((p.get("gridProperties") or {}).get("rowCount", 0) * (p.get("gridProperties") or {}).get("columnCount", 0)
                for p in props)
    return Tab(sheet_id, api.worksheet, 0, 0, 0, [], exists=False, other_cells=other,
               lease=lease.find(doc.get("developerMetadata"), api.worksheet))


@dataclass
class Layout:
    """Where the owned columns are, and the destination's rows as the diff sees them."""

    positions: dict[str, int]  # owned column -> 0-based column index (existing or to add)
    new_columns: list[str]  # owned columns to add to the header, in order
    status: int | None  # status column index, if it exists
    existing: list[ExistingRow] = field(default_factory=list)
    next_column: int = 0  # first column right of everything used


def layout_of(tab: Tab, columns: list[Column], key: list[str]) -> Layout:
    """Find the owned columns by header wherever people moved them (new ones go right of
    everything used) and read the rows as the diff sees them; refuses a header that names
    an owned column twice, or rows whose key column lost its header."""
    header: dict[str, list[int]] = {}
    for c, cell in enumerate(tab.rows[0] if tab.rows else []):
        value = _entered(cell or {})
        if isinstance(value, str) and value.strip():
            header.setdefault(value.strip(), []).append(c)
    owned = [c.name for c in columns] + [STATUS_COLUMN]
    for name in owned:
        if len(header.get(name, [])) > 1:
            where = ", ".join(rowcol_to_a1(1, c + 1) for c in header[name])
            raise GenesisError(f"column '{name}' appears more than once in the header of tab '{tab.title}' ({where})",
                               hint="rename or delete the extra column; nothing was written")
    positions = {name: header[name][0] for name in owned[:-1] if name in header}
    status = header[STATUS_COLUMN][0] if STATUS_COLUMN in header else None
    layout = Layout(positions, [c.name for c in columns if c.name not in positions], status,
                    next_column=tab.width)
    missing_keys = [k for k in key if k not in positions]
    existing = _existing_rows(tab, columns, key, positions, status, bool(missing_keys))
    if missing_keys and any(_has_owned_value(r) for r in existing):
        raise GenesisError(
            f"key column(s) {', '.join(missing_keys)} missing from the header of tab '{tab.title}', "
            "so its rows cannot be matched",
            hint="restore the key column's header, or clear the tab to start over; nothing was written")
    layout.existing = _inside_block(existing)
    for i, name in enumerate(layout.new_columns):
        layout.positions[name] = layout.next_column + i
    return layout


def _has_owned_value(row: ExistingRow) -> bool:
    return any(cell_of(v) is not None for v in row.values.values())


def _existing_rows(tab: Tab, columns: list[Column], key: list[str], positions: dict[str, int],
                   status: int | None, keyless: bool) -> list[ExistingRow]:
    owned = set(positions.values()) | ({status} if status is not None else set())
    formatted = {c.name for c in columns if c.number_format is not None}
    rows = []
    for r in range(1, len(tab.rows)):
        cells = tab.rows[r]
        values = {}
        for name, c in positions.items():
            cell = tab.cell(r, c)
            value = _entered(cell)
            if name in formatted:
                nf = (cell.get("userEnteredFormat") or {}).get("numberFormat") or {}
                value = (value, nf.get("type"), nf.get("pattern"))
            values[name] = value
        annotated = any(cell and ("note" in cell or (i not in owned and "userEnteredValue" in cell))
                        for i, cell in enumerate(cells))
        marked = status is not None and _entered(tab.cell(r, status)) == STATUS_REMOVED
        row_key = tuple(None if keyless else values[k] if k not in formatted else values[k][0] for k in key)
        rows.append(ExistingRow(r + 1, row_key, values, annotated, marked))  # row ids as people see them
    return rows


def _inside_block(rows: list[ExistingRow]) -> list[ExistingRow]:
    """Drop keyless rows below the last keyed row: they are not part of the block."""
    last = max((i for i, r in enumerate(rows) if any(v is not None for v in r.key)), default=-1)
    return rows[:last + 1]


# --------------------------------------------------------------------------- limits

def check_result_fits(result: QueryResult, worksheet: str, key: Sequence[str]) -> None:
    """Google's limits checked from the result's shape alone: a result too large for a
    spreadsheet is refused in milliseconds, before building a payload for it."""
    rows, columns = result.table.num_rows + 1, len(result.columns)  # + the header row
    check_limits(Tab(0, worksheet, 0, 0, 0, [], other_cells=0), rows, columns)
    import pyarrow.compute as pc

    for column in result.columns:
        values = result.table.column(column.name)
        if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)) or not len(values):
            continue
        lengths = pc.utf8_length(values)
        longest = pc.max(lengths).as_py()
        if longest is not None and longest > MAX_CELL_CHARS:
            i = pc.index(lengths, longest).as_py()
            raise _too_long(column.name, ((k, result.table.column(k)[i].as_py()) for k in key), longest)


def check_limits(tab: Tab, rows: int, columns: int) -> None:
    """Refuse a grid wider or (with the other tabs) larger than a spreadsheet allows."""
    if columns > MAX_COLUMNS:
        raise GenesisError(f"tab '{tab.title}' would need {columns:,} columns; Google Sheets allows {MAX_COLUMNS:,}",
                           hint="remove columns from the input; nothing was written")
    cells = rows * columns + (tab.other_cells or 0)
    if cells > MAX_CELLS:
        raise GenesisError(
            f"tab '{tab.title}' would need {rows:,} rows x {columns:,} columns = {cells:,} cells; "
            f"a spreadsheet holds at most {MAX_CELLS:,}",
            hint="filter the input, drop columns, or use a spreadsheet of its own; nothing was written")
