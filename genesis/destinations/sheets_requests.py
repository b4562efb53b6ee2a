"""The Sheets API requests a refresh sends: built from a plan, packed into bodies.

`requests_for` turns a `sync.Plan` and the tab's `Layout` into every batchUpdate request
it needs, in an order that keeps row indices valid: grid growth, new header cells,
changed owned cells (adjacent cells and rows merged), new rows below the last used row
with their number formats, row deletions bottom-up. `stamp_request` adds the refresh
stamp. `pack` fills bodies of at most the request-size limit, splitting row requests
between bodies, and `fenced` puts the lease's compare-and-swap first in each body.
Every value is written as data (`stringValue` for text): never a formula.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterator
from datetime import datetime
from typing import Any, cast

from ..clock import now as clock_now
from ..clock import stamp_text
from .sheets_layout import Column, Layout, Tab, stamp_of_note
from .sync import STATUS_COLUMN, STATUS_REMOVED, Plan

NEW_TAB_COLUMNS = 26  # a new tab gets at least these, like one made in the Sheets UI
MASK_VALUE = "userEnteredValue"
MASK_FORMATTED = "userEnteredValue,userEnteredFormat.numberFormat"  # only where the format changes
ENVELOPE = b'{"requests":[', b"]}"


class Req:
    """One batchUpdate request, serialised once; row requests can be split between bodies."""

    def __init__(self, kind: str, body: dict, rows: list | None = None):
        self.kind, self.body = kind, body
        self.rows = [dumps(r) for r in rows] if rows is not None else None
        self._head = dumps({kind: {**body, "rows": []}})[:-3] if rows is not None else dumps({kind: body})

    @property
    def size(self) -> int:
        """Bytes of the request's JSON."""
        if self.rows is None:
            return len(self._head)
        return len(self._head) + sum(len(r) for r in self.rows) + max(len(self.rows) - 1, 0) + 3

    def bytes(self) -> bytes:
        """The request's JSON, as it goes in a body."""
        if self.rows is None:
            return self._head
        return self._head + b",".join(self.rows) + b"]}}"

    def split(self, room: int) -> tuple[Req, Req] | None:
        """A head that fits in `room` bytes and the rest, or None."""
        if self.rows is None or len(self.rows) < 2:
            return None
        used, k = len(self._head) + 3, 0
        while k < len(self.rows) - 1 and used + len(self.rows[k]) + (1 if k else 0) <= room:
            used += len(self.rows[k]) + (1 if k else 0)
            k += 1
        if k == 0:
            return None
        return self._part(0, k), self._part(k, len(self.rows))

    def _part(self, start: int, end: int) -> Req:
        body = json.loads(json.dumps(self.body))
        if "start" in body:
            body["start"]["rowIndex"] += start
        part = Req(self.kind, body, [])
        part.rows = (self.rows or [])[start:end]
        return part


def dumps(obj: Any) -> bytes:
    """Compact JSON bytes; NaN is refused (the Sheets API would reject it)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def _cell_data(value: Any, with_format: bool = True) -> dict:
    """CellData of a written value: typed, never a formula."""
    number_format = None
    if isinstance(value, tuple):
        value, kind, pattern = value
        number_format = {"type": kind, "pattern": pattern}
    cell: dict = {}
    if isinstance(value, bool):
        cell["userEnteredValue"] = {"boolValue": value}
    elif isinstance(value, float):  # whole numbers as JSON integers: shorter bodies
        cell["userEnteredValue"] = {"numberValue": int(value) if value.is_integer() and abs(value) < 2**53 else value}
    elif value is not None:
        cell["userEnteredValue"] = {"stringValue": str(value)}
    if number_format and with_format:
        cell["userEnteredFormat"] = {"numberFormat": number_format}
    return cell


def _first_free_row(tab: Tab) -> int:
    """The row after everything the read saw (values, notes, number formats); never the header."""
    last = max((r for r, row in enumerate(tab.rows) if any(row)), default=0)
    return max(last + 1, 1)


def requests_for(plan: Plan, tab: Tab, layout: Layout, columns: list[Column]) -> tuple[list[Req], int, int]:
    """Every write the plan needs, in an order that keeps row indices valid; and the grid size."""
    reqs: list[Req] = []
    status = layout.status
    if status is None and plan.marks:
        status = layout.next_column + len(layout.new_columns)
    new_headers = layout.new_columns + ([STATUS_COLUMN] if status is not None and layout.status is None else [])
    width = max([tab.col_count] + [p + 1 for p in layout.positions.values()] + ([status + 1] if status is not None else []))
    start = _first_free_row(tab)  # new rows go here, in result order
    height = max(tab.row_count, start + len(plan.inserts))
    if tab.exists and plan.is_noop and not new_headers:
        return [], width, height  # an unchanged result writes nothing
    if not tab.exists:
        # room for people's columns, as a tab made in the Sheets UI has
        width = max(width, NEW_TAB_COLUMNS)
        height = max(height, 2)
        grid = {"rowCount": height, "columnCount": width, "frozenRowCount": 1}
        reqs.append(Req("addSheet", {"properties": {"sheetId": tab.sheet_id, "title": tab.title, "gridProperties": grid}}))
    else:
        for dimension, have, need in (("COLUMNS", tab.col_count, width), ("ROWS", tab.row_count, height)):
            if need > have:
                reqs.append(Req("appendDimension", {"sheetId": tab.sheet_id, "dimension": dimension,
                                                     "length": need - have}))
        if tab.frozen_rows < 1:
            reqs.append(Req("updateSheetProperties", {"properties": {"sheetId": tab.sheet_id, "gridProperties": {
                "frozenRowCount": 1}}, "fields": "gridProperties.frozenRowCount"}))
    if new_headers:
        first = layout.positions.get(new_headers[0], status)
        cells = [{"userEnteredValue": {"stringValue": n}, "userEnteredFormat": {"textFormat": {"bold": True}}}
                 for n in new_headers]
        reqs.append(Req("updateCells", {"start": {"sheetId": tab.sheet_id, "rowIndex": 0, "columnIndex": first},
                                         "fields": "userEnteredValue,userEnteredFormat.textFormat.bold"},
                         [{"values": cells}]))
    changed = _changed_cells(plan, layout, columns, status, start)
    reqs.extend(_cell_requests(changed, tab.sheet_id))
    reqs.extend(_insert_formats(plan, tab.sheet_id, layout, columns, start))
    reqs.extend(_delete_requests(plan, tab.sheet_id))
    return reqs, width, height


def _changed_cells(plan: Plan, layout: Layout, columns: list[Column], status: int | None,
                   start: int) -> dict[int, dict[int, tuple[str, dict]]]:
    """row index -> {column index: (field mask, CellData)} of every cell to write.

    A number format goes with a value only when the sheet's differs (a changed `format`, a
    person's edit); new rows get theirs from `_insert_formats`, one request per column."""
    old = {row.row_id: row for row in layout.existing}
    formatted = {c.name for c in columns if c.number_format is not None}
    per_row: dict[int, dict[int, tuple[str, dict]]] = {}
    for u in plan.updates:
        cells = per_row.setdefault(u.row_id - 1, {})
        before = old[u.row_id].values
        for name in u.columns:
            new = u.values.get(name)
            refresh_format = name in formatted and isinstance(new, tuple) and tuple(before.get(name) or ())[1:] != new[1:]
            mask = MASK_FORMATTED if refresh_format else MASK_VALUE
            cells[layout.positions[name]] = (mask, _cell_data(new, with_format=refresh_format))
    for row_id, value in [(r, STATUS_REMOVED) for r in plan.marks] + [(r, None) for r in plan.unmarks]:
        per_row.setdefault(row_id - 1, {})[cast(int, status)] = (MASK_VALUE, _cell_data(value))  # set when marking
    order = [(layout.positions[c.name], c.name) for c in columns]
    for i, row in enumerate(plan.inserts):
        per_row[start + i] = {c: (MASK_VALUE, _cell_data(row.values.get(name), with_format=False)) for c, name in order}
    return per_row


def _cell_requests(per_row: dict[int, dict[int, tuple[str, dict]]], sheet_id: int) -> list[Req]:
    """updateCells for runs of adjacent owned cells sharing a mask, merged down adjacent rows."""
    blocks: dict[tuple, list] = {}  # (first col, width, mask) -> open block [row0, rows]
    done: list[tuple] = []
    for r in sorted(per_row):
        for (c0, mask), cells in _segments(per_row[r]):
            shape = (c0, len(cells), mask)
            block = blocks.get(shape)
            if block and block[0] + len(block[1]) == r:
                block[1].append({"values": cells})
                continue
            if block:
                done.append((shape, block))
            blocks[shape] = [r, [{"values": cells}]]
    done.extend(blocks.items())
    done.sort(key=lambda item: (item[1][0], item[0][0]))
    return [Req("updateCells", {"start": {"sheetId": sheet_id, "rowIndex": r0, "columnIndex": shape[0]},
                                 "fields": shape[2]}, rows)
            for shape, (r0, rows) in done]


def _segments(cells: dict[int, tuple[str, dict]]) -> Iterator[tuple[tuple[int, str], list[dict]]]:
    """Runs of adjacent columns sharing a field mask: ((first column, mask), [CellData])."""
    run: list[dict] = []
    start, mask = 0, ""
    for c in sorted(cells):
        kind, data = cells[c]
        if run and (c != start + len(run) or kind != mask):
            yield (start, mask), run
            run = []
        if not run:
            start, mask = c, kind
        run.append(data)
    if run:
        yield (start, mask), run


def _insert_formats(plan: Plan, sheet_id: int, layout: Layout, columns: list[Column], start: int) -> list[Req]:
    """The number format of the new rows: one repeatCell per run of adjacent same-format columns."""
    if not plan.inserts:
        return []
    spans: list[list] = []  # [first col, end col, number format]
    for c in sorted(columns, key=lambda c: layout.positions[c.name]):
        if c.number_format is None:
            continue
        col = layout.positions[c.name]
        if spans and spans[-1][1] == col and spans[-1][2] == c.number_format:
            spans[-1][1] = col + 1
        else:
            spans.append([col, col + 1, c.number_format])
    end = start + len(plan.inserts)
    return [Req("repeatCell", {"range": {"sheetId": sheet_id, "startRowIndex": start, "endRowIndex": end,
                                          "startColumnIndex": c0, "endColumnIndex": c1},
                                "cell": {"userEnteredFormat": {"numberFormat": dict(nf)}},
                                "fields": "userEnteredFormat.numberFormat"})
            for c0, c1, nf in spans]


def _delete_requests(plan: Plan, sheet_id: int) -> list[Req]:
    """deleteDimension per run of adjacent rows, bottom-up so indices stay valid."""
    runs: list[list[int]] = []
    for r in sorted((row_id - 1 for row_id in plan.deletes), reverse=True):
        if runs and runs[-1][0] == r + 1:
            runs[-1][0] = r
        else:
            runs.append([r, r + 1])
    return [Req("deleteDimension", {"range": {"sheetId": sheet_id, "dimension": "ROWS", "startIndex": s,
                                               "endIndex": e}}) for s, e in runs]


def old_stamp(tab: Tab, layout: Layout, key: list[str]) -> datetime | None:
    """The time of the stamp the tab carries now (None: no tab or no stamp)."""
    return stamp_of_note(tab.cell(0, layout.positions[key[0]]).get("note")) if tab.exists else None


def stamp_request(tab: Tab, layout: Layout, key: list[str], plan: Plan, rows: int) -> Req:
    """The stamp: a note on the first key column's header cell (frozen, so no sort moves it)."""
    now = stamp_text(clock_now())
    counts = plan.counts()
    text = (f"Refreshed by Genesis at {now} UTC: {rows} rows ({counts['inserted']} added, "
            f"{counts['updated']} updated, {counts['deleted']} deleted, {counts['marked']} marked removed). "
            "Genesis owns the columns named by the input and the status column; add your own columns freely.")
    cell = {"start": {"sheetId": tab.sheet_id, "rowIndex": 0, "columnIndex": layout.positions[key[0]]},
            "fields": "note"}
    return Req("updateCells", cell, [{"values": [{"note": text}]}])


def pack(reqs: list[Req], limit: int) -> list[bytes]:
    """Request bodies of at most `limit` bytes, in order, splitting row requests to fill each."""
    bodies: list[bytes] = []
    current: list[Req] = []
    used = len(ENVELOPE[0]) + len(ENVELOPE[1])
    pending = deque(reqs)
    while pending:
        req = pending.popleft()
        room = limit - used - (1 if current else 0)
        if req.size <= room:
            current.append(req)
            used += req.size + (1 if len(current) > 1 else 0)
            continue
        parts = req.split(room)
        if parts:
            current.append(parts[0])
            pending.appendleft(parts[1])
        elif current:
            pending.appendleft(req)
        else:
            current.append(req)  # alone and indivisible: send it as it is
        bodies.append(body_of(current))
        current, used = [], len(ENVELOPE[0]) + len(ENVELOPE[1])
    if current:
        bodies.append(body_of(current))
    return bodies


def body_of(reqs: list[Req]) -> bytes:
    """One batchUpdate body holding `reqs`."""
    return ENVELOPE[0] + b",".join(r.bytes() for r in reqs) + ENVELOPE[1]



def fenced(body: bytes, fence: list[dict]) -> bytes:
    """`body` with the lease's compare-and-swap requests first."""
    head = ENVELOPE[0]
    rest = body[len(head):]
    joined = b",".join(dumps(r) for r in fence)
    return head + joined + (b"," + rest if rest != ENVELOPE[1] else rest)
