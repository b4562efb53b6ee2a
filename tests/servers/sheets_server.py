"""A local Google Sheets API v4 server for tests: real HTTP, real rules, no Google account.

It serves what gspread 6.2 and genesis.destinations.sheets call:

- the OAuth2 token endpoint a service account uses (`POST /token`, JWT-bearer grant; the
  assertion's shape is checked, its signature is not);
- `GET /v4/spreadsheets/{id}` (ranges, includeGridData, fields masks with `.`, `/`, `()`);
- `POST /v4/spreadsheets/{id}:batchUpdate`, atomic (all requests or none): updateCells,
  appendCells, insertDimension, deleteDimension, appendDimension, repeatCell,
  updateSheetProperties, addSheet, deleteSheet, updateDimensionProperties, sortRange,
  moveDimension, createDeveloperMetadata, updateDeveloperMetadata, deleteDeveloperMetadata;
- developer metadata at the spreadsheet and sheet level: `developerMetadata` of the
  spreadsheet and of each sheet in `spreadsheets.get`, `GET .../developerMetadata/{id}`;
  a `metadataId` is unique in the spreadsheet, so creating one that exists fails (and with
  it the whole batchUpdate); a `DeveloperMetadataLookup` matches when every field it sets
  matches, and deleting or updating what matches nothing changes nothing;
- values.get / batchGet (valueRenderOption FORMATTED_VALUE / UNFORMATTED_VALUE / FORMULA,
  dateTimeRenderOption SERIAL_NUMBER / FORMATTED_STRING), values.update / batchUpdate /
  append / clear / batchClear (valueInputOption RAW keeps text as text, USER_ENTERED parses
  it as a person typing would: `=1+1` becomes a formula, `007` becomes 7).

Rules enforced with Google's error format: 10,000,000 cells per spreadsheet, 18,278
columns per sheet, 50,000 characters per cell, writes inside the grid, unknown sheets and
ranges. Quotas: per-user write and read requests per window (60 s by default) -> 429
RESOURCE_EXHAUSTED for the rest of the window (the penalty). Fault injection: the next N
requests fail (429/5xx), the k-th write fails (optionally after being applied, so the
client cannot know), the k-th write is held until released (to kill a client between two
writes), slow responses.

Every cell is stored as the API shapes it: `userEnteredValue` (numberValue / stringValue /
boolValue / formulaValue), `userEnteredFormat` (numberFormat, textFormat...) and `note`.

Test API: `start()`, `stop()`, `url`, `create_spreadsheet()`, `write_service_account()`,
`grid()`, `cell()`, `notes()`, `formats()`, `sheet_properties()`, `log` / `calls()`, and
the fault methods `fail_next()`, `fail_write()`, `hold_write()`, `slow()`, `gather_reads()`
(reads held until n writers have read, so that they race).
"""

from __future__ import annotations

import ast
import base64
import copy
import itertools
import json
import operator
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

MAX_CELLS = 10_000_000
MAX_COLUMNS = 18_278
MAX_CELL_CHARS = 50_000
CELL_FIELDS = ("userEnteredValue", "userEnteredFormat", "note", "textFormatRuns", "dataValidation")
VALUE_KINDS = ("numberValue", "stringValue", "boolValue", "formulaValue", "errorValue")
_EPOCH = datetime(1899, 12, 30)
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"  # google-auth always signs for this


class ApiError(Exception):
    """An error answered in Google's JSON error format."""

    STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
              429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 502: "BAD_GATEWAY", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}

    def __init__(self, code: int, message: str, status: str | None = None):
        super().__init__(message)
        self.code, self.message = code, message
        self.status = status or self.STATUS.get(code, "UNKNOWN")

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, "status": self.status}}


def bad(message: str) -> ApiError:
    return ApiError(400, message)


# --------------------------------------------------------------------------- field masks

def parse_fields(text: str | None) -> dict | None:
    """A field mask as a tree {name: subtree or None (= everything)}; None = no mask."""
    text = (text or "").replace(" ", "")
    if not text or text == "*":
        return None
    tree: dict = {}
    end = _mask_items(text, 0, tree)
    if end != len(text):
        raise bad(f"Invalid field selection {text}")
    return tree


def _mask_items(s: str, i: int, tree: dict) -> int:
    while True:
        i = _mask_item(s, i, tree)
        if i < len(s) and s[i] == ",":
            i += 1
            continue
        return i


def _mask_item(s: str, i: int, tree: dict) -> int:
    j = i
    while j < len(s) and s[j] not in ",()./":
        j += 1
    name = s[i:j]
    if not name:
        raise bad(f"Invalid field selection {s}")
    if j < len(s) and s[j] in "./(":
        sub: dict = {}
        if s[j] == "(":
            j = _mask_items(s, j + 1, sub)
            if j >= len(s) or s[j] != ")":
                raise bad(f"Invalid field selection {s}")
            j += 1
        else:
            j = _mask_item(s, j + 1, sub)
        _merge_mask(tree, name, sub)
    else:
        tree[name] = None
    return j


def _merge_mask(tree: dict, name: str, sub: dict | None) -> None:
    if name in tree and (tree[name] is None or sub is None):
        tree[name] = None
    elif name in tree:
        for k, v in sub.items():
            _merge_mask(tree[name], k, v)
    else:
        tree[name] = sub


def apply_fields(obj: Any, tree: dict | None) -> Any:
    if tree is None or "*" in tree:
        return obj
    if isinstance(obj, list):
        return [apply_fields(x, tree) for x in obj]
    if isinstance(obj, dict):
        return {k: apply_fields(obj[k], sub) for k, sub in tree.items() if k in obj}
    return obj


def mask_paths(tree: dict | None, prefix: tuple = ()) -> list[tuple[str, ...]] | None:
    """The leaf paths of a mask: userEnteredFormat(numberFormat,textFormat.bold) -> 2 paths."""
    if tree is None:
        return None
    out = []
    for k, sub in tree.items():
        out.extend([prefix + (k,)] if sub is None else mask_paths(sub, prefix + (k,)))
    return out


# --------------------------------------------------------------------------- A1 notation

_CELL_RE = re.compile(r"^([A-Za-z]*)(\d*)$")


def col_letters(index: int) -> str:
    out = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        out = chr(65 + rem) + out
    return out


def col_index(letters: str) -> int:
    n = 0
    for ch in letters.upper():
        n = n * 26 + ord(ch) - 64
    return n - 1


def quote_title(title: str) -> str:
    return title if re.fullmatch(r"[A-Za-z0-9_]+", title) else "'" + title.replace("'", "''") + "'"


def split_sheet(text: str) -> tuple[str | None, str | None]:
    """('Tab', 'A1:B2') from "'Tab'!A1:B2"; (None, 'A1') when no sheet is named."""
    if text.startswith("'"):
        i, name = 1, []
        while i < len(text):
            if text[i] == "'":
                if text[i + 1:i + 2] == "'":
                    name.append("'")
                    i += 2
                    continue
                break
            name.append(text[i])
            i += 1
        rest = text[i + 1:]
        if rest and not rest.startswith("!"):
            raise bad(f"Unable to parse range: {text}")
        return "".join(name), rest[1:] or None
    if "!" in text:
        title, rng = text.rsplit("!", 1)
        return title, rng or None
    return None, text


def parse_cells(rng: str | None, original: str) -> tuple[int, int | None, int, int | None]:
    """(row0, row1, col0, col1), half-open, None = unbounded."""
    if not rng:
        return 0, None, 0, None
    parts = rng.split(":")
    if len(parts) > 2:
        raise bad(f"Unable to parse range: {original}")
    cells = []
    for part in parts:
        m = _CELL_RE.match(part)
        if not m or not (m.group(1) or m.group(2)):
            raise bad(f"Unable to parse range: {original}")
        cells.append((m.group(1), m.group(2)))
    (c0, r0), (c1, r1) = cells[0], cells[-1]
    row0 = int(r0) - 1 if r0 else 0
    col0 = col_index(c0) if c0 else 0
    if len(parts) == 1:
        return row0, (row0 + 1 if r0 else None), col0, (col0 + 1 if c0 else None)
    return row0, (int(r1) if r1 else None), col0, (col_index(c1) + 1 if c1 else None)


# --------------------------------------------------------------------------- cell values

def serial_of(d: date | datetime) -> float:
    if isinstance(d, datetime):
        return (d - _EPOCH).total_seconds() / 86400
    return float((d - _EPOCH.date()).days)


def date_of(serial: float) -> datetime:
    return _EPOCH + timedelta(days=serial)


_NUMBER_RE = re.compile(r"^[+-]?\$?(\d{1,3}(,\d{3})+|\d+)?(\.\d*)?([eE][+-]?\d+)?%?$")
_ISO_DATE_RE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_US_DATE_RE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")


def user_entered(value: Any, parse: bool) -> tuple[dict | None, dict | None]:
    """(userEnteredValue, numberFormat to apply if the cell has none) of a values-API value."""
    if isinstance(value, bool):
        return {"boolValue": value}, None
    if isinstance(value, (int, float)):
        return {"numberValue": float(value)}, None
    text = str(value)
    if text == "":
        return None, None
    if not parse:
        return {"stringValue": text}, None
    if text.startswith("="):
        return {"formulaValue": text}, None
    if text.startswith("'"):
        return {"stringValue": text[1:]}, None
    if text.upper() in ("TRUE", "FALSE"):
        return {"boolValue": text.upper() == "TRUE"}, None
    stripped = text.strip()
    if any(ch.isdigit() for ch in stripped) and _NUMBER_RE.match(stripped):
        number = float(stripped.replace("$", "").replace(",", "").rstrip("%"))
        if stripped.endswith("%"):
            return {"numberValue": number / 100}, {"type": "PERCENT", "pattern": "0.00%"}
        return {"numberValue": number}, None
    for regex, order in ((_ISO_DATE_RE, "ymd"), (_US_DATE_RE, "mdy")):
        m = regex.match(stripped)
        if m:
            parts = dict(zip(order, map(int, m.groups())))
            try:
                d = date(parts["y"], parts["m"], parts["d"])
            except ValueError:
                break
            return {"numberValue": serial_of(d)}, {"type": "DATE", "pattern": "yyyy-mm-dd"}
    return {"stringValue": text}, None


_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.Pow: operator.pow}


def evaluate_formula(formula: str) -> dict:
    """The effective value of a formula: arithmetic only; anything else is an error value."""
    try:
        tree = ast.parse(formula[1:].replace("^", "**"), mode="eval")
        return {"numberValue": float(_eval(tree.body))}
    except ZeroDivisionError:
        return {"errorValue": {"type": "DIVIDE_BY_ZERO", "message": "Function DIVIDE parameter 2 cannot be zero."}}
    except Exception:
        return {"errorValue": {"type": "NAME", "message": "Unknown function or range."}}


def _eval(node: ast.AST) -> float:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        return _BINOPS[type(node.op)](_eval(node.left), _eval(node.right))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _eval(node.operand)
        return -v if isinstance(node.op, ast.USub) else v
    raise ValueError("unsupported formula")


def effective_value(cell: dict | None) -> dict | None:
    entered = (cell or {}).get("userEnteredValue")
    if entered and "formulaValue" in entered:
        return evaluate_formula(entered["formulaValue"])
    return entered


_DATE_TOKENS = re.compile(r'"[^"]*"|\\.|yyyy|yy|mmmm|mmm|mm|m|dddd|ddd|dd|d|hh|h|ss|s|am/pm|AM/PM|.', re.S)


def format_date(serial: float, pattern: str) -> str:
    dt = date_of(serial)
    tokens = _DATE_TOKENS.findall(pattern)
    out, after_hour = [], False
    for i, tok in enumerate(tokens):
        if tok.startswith('"') or tok.startswith("\\"):  # quoted or escaped literal text
            out.append(tok[1:-1] if tok.startswith('"') else tok[1:])
            continue
        low = tok.lower()
        nxt = tokens[i + 1].lower() if i + 1 < len(tokens) else ""
        minute = low in ("mm", "m") and (after_hour or nxt == ":" and tokens[i + 2:i + 3] in (["ss"], ["s"]))
        if low in ("hh", "h"):
            after_hour = True
        text = {
            "yyyy": f"{dt.year:04d}", "yy": f"{dt.year % 100:02d}", "mmmm": dt.strftime("%B"),
            "mmm": dt.strftime("%b"), "dddd": dt.strftime("%A"), "ddd": dt.strftime("%a"),
            "dd": f"{dt.day:02d}", "d": str(dt.day), "hh": f"{dt.hour:02d}", "h": str(dt.hour),
            "ss": f"{dt.second:02d}", "s": str(dt.second), "am/pm": "AM" if dt.hour < 12 else "PM",
        }.get(low)
        if minute:
            text = f"{dt.minute:02d}" if low == "mm" else str(dt.minute)
        elif low == "mm":
            text = f"{dt.month:02d}"
        elif low == "m":
            text = str(dt.month)
        out.append(tok if text is None else text)
    return "".join(out)


def format_number(x: float) -> str:
    if x == int(x) and abs(x) < 1e15:
        return str(int(x))
    return f"{x:.10g}"


def formatted_value(cell: dict | None) -> str | None:
    ev = effective_value(cell)
    if not ev:
        return None
    if "stringValue" in ev:
        return ev["stringValue"]
    if "boolValue" in ev:
        return "TRUE" if ev["boolValue"] else "FALSE"
    if "errorValue" in ev:
        return "#DIV/0!" if ev["errorValue"]["type"] == "DIVIDE_BY_ZERO" else "#NAME?"
    number = ev["numberValue"]
    fmt = ((cell or {}).get("userEnteredFormat") or {}).get("numberFormat") or {}
    if fmt.get("type") in ("DATE", "DATE_TIME", "TIME"):
        default = {"DATE": "yyyy-mm-dd", "DATE_TIME": "yyyy-mm-dd hh:mm:ss", "TIME": "hh:mm:ss"}[fmt["type"]]
        return format_date(number, fmt.get("pattern") or default)
    if fmt.get("type") == "PERCENT":
        return format_number(round(number * 100, 10)) + "%"
    return format_number(number)


def python_value(ev: dict | None) -> Any:
    if not ev:
        return None
    for kind in ("numberValue", "stringValue", "boolValue"):
        if kind in ev:
            return ev[kind]
    if "formulaValue" in ev:
        return {"formula": ev["formulaValue"]}
    return {"error": ev["errorValue"]["type"]}


def check_entered(value: dict, where: str) -> None:
    kinds = [k for k in value if k in VALUE_KINDS]
    if len(kinds) != 1 or len(value) != 1:
        raise bad(f"Invalid value at '{where}' (type.googleapis.com/google.apps.sheets.v4.ExtendedValue), {json.dumps(value)}")
    text = value.get("stringValue") or value.get("formulaValue")
    if isinstance(text, str) and len(text) > MAX_CELL_CHARS:
        raise bad(f"Your input contains more than the maximum of {MAX_CELL_CHARS} characters in a single cell.")


# --------------------------------------------------------------------------- the model

class Sheet:
    """One tab. `data` rows are lists of cell dicts (or None); cells are never mutated in
    place, rows are copied on first write in a transaction (see Book.clone)."""

    def __init__(self, sheet_id: int, title: str, index: int, rows: int = 1000, cols: int = 26):
        self.props: dict = {"sheetId": sheet_id, "title": title, "index": index, "sheetType": "GRID",
                            "gridProperties": {"rowCount": rows, "columnCount": cols}}
        self.data: list[list] = []
        self.row_meta: dict[int, dict] = {}
        self.col_meta: dict[int, dict] = {}
        self._fresh: set[int] = set()

    @property
    def id(self) -> int:
        return self.props["sheetId"]

    @property
    def title(self) -> str:
        return self.props["title"]

    @property
    def grid(self) -> dict:
        return self.props["gridProperties"]

    @property
    def rows(self) -> int:
        return self.grid["rowCount"]

    @property
    def cols(self) -> int:
        return self.grid["columnCount"]

    def clone(self) -> Sheet:
        other = Sheet.__new__(Sheet)
        other.props = copy.deepcopy(self.props)
        other.data = list(self.data)
        other.row_meta, other.col_meta = dict(self.row_meta), dict(self.col_meta)
        other._fresh = set()
        return other

    def cell(self, r: int, c: int) -> dict | None:
        if r < len(self.data) and c < len(self.data[r]):
            return self.data[r][c]
        return None

    def row_for_write(self, r: int) -> list:
        while len(self.data) <= r:
            row: list = []
            self._fresh.add(id(row))
            self.data.append(row)
        row = self.data[r]
        if id(row) not in self._fresh:
            row = list(row)
            self._fresh.add(id(row))
            self.data[r] = row
        return row

    def set_cell(self, r: int, c: int, cell: dict | None) -> None:
        if cell is None and self.cell(r, c) is None:
            return
        row = self.row_for_write(r)
        if len(row) <= c:
            row.extend([None] * (c + 1 - len(row)))
        row[c] = cell or None

    def last_data_row(self) -> int:
        for r in range(len(self.data) - 1, -1, -1):
            if any(cell and ("userEnteredValue" in cell or "note" in cell) for cell in self.data[r]):
                return r
        return -1

    def check_inside(self, r: int, c: int, what: str) -> None:
        if r >= self.rows or c >= self.cols or r < 0 or c < 0:
            raise bad(f"{what}: Range ({quote_title(self.title)}!{col_letters(max(c, 0))}{r + 1}) exceeds grid limits. "
                      f"Max rows: {self.rows}, max columns: {self.cols}")


class Book:
    def __init__(self, spreadsheet_id: str, title: str):
        self.id, self.title = spreadsheet_id, title
        self.sheets: list[Sheet] = []
        self.shared_with: set[str] | None = None  # None: every account may use it
        self.metadata: dict[int, dict] = {}  # metadataId -> DeveloperMetadata (never mutated in place)

    def clone(self) -> Book:
        other = Book(self.id, self.title)
        other.sheets = [s.clone() for s in self.sheets]
        other.shared_with = self.shared_with
        other.metadata = dict(self.metadata)
        return other

    def metadata_at(self, sheet_id: int | None) -> list[dict]:
        """Developer metadata of the spreadsheet (None) or of one sheet, by id."""
        want = {"locationType": "SPREADSHEET", "spreadsheet": True} if sheet_id is None else \
            {"locationType": "SHEET", "sheetId": sheet_id}
        return [copy.deepcopy(m) for _, m in sorted(self.metadata.items()) if m["location"] == want]

    def by_id(self, sheet_id: Any, where: str = "") -> Sheet:
        for s in self.sheets:
            if s.id == sheet_id:
                return s
        raise bad(f"{where}No grid with id: {sheet_id}")

    def by_title(self, title: str) -> Sheet | None:
        return next((s for s in self.sheets if s.title == title), None)

    def resolve(self, a1: str) -> tuple[Sheet, int, int | None, int, int | None]:
        title, rng = split_sheet(a1)
        if title is None:
            sheet = self.by_title(a1)
            if sheet is not None:
                return sheet, 0, None, 0, None
            sheet = self.sheets[0]
        else:
            sheet = self.by_title(title)
            if sheet is None:
                raise bad(f"Unable to parse range: {a1}")
        return (sheet, *parse_cells(rng, a1))

    def total_cells(self) -> int:
        return sum(s.rows * s.cols for s in self.sheets)

    def check_limits(self) -> None:
        for s in self.sheets:
            if s.cols > MAX_COLUMNS:
                raise bad(f"This action would increase the number of columns in sheet '{s.title}' above the limit of {MAX_COLUMNS}.")
        if self.total_cells() > MAX_CELLS:
            raise bad(f"This action would increase the number of cells in the workbook above the limit of {MAX_CELLS} cells.")

    def reindex(self) -> None:
        for i, s in enumerate(sorted(self.sheets, key=lambda s: s.props["index"])):
            s.props["index"] = i
        self.sheets.sort(key=lambda s: s.props["index"])


# --------------------------------------------------------------------------- cell writes

def _get_path(obj: dict | None, path: tuple) -> Any:
    for p in path:
        if not isinstance(obj, dict) or p not in obj:
            return None
        obj = obj[p]
    return obj


def _set_path(obj: dict, path: tuple, value: Any) -> dict:
    """A copy of obj with path set (value None: removed), copying only along the path."""
    out = dict(obj)
    head = path[0]
    if len(path) == 1:
        if value is None:
            out.pop(head, None)
        else:
            out[head] = copy.deepcopy(value)
        return out
    child = _set_path(out.get(head) or {}, path[1:], value)
    if child:
        out[head] = child
    else:
        out.pop(head, None)
    return out


def write_cell(old: dict | None, new: dict, paths: list[tuple] | None, where: str) -> dict | None:
    """`old` with the masked fields taken from `new` (absent in new = cleared).

    Parsed request JSON is shared, not copied: stored cells are never changed in place."""
    if paths is None:
        paths = [(f,) for f in CELL_FIELDS]
    out = dict(old or {})
    for path in paths:
        if path[0] not in CELL_FIELDS:
            raise bad(f"{where}Invalid field mask: {'.'.join(path)} is not a writable cell field")
        if len(path) == 1:
            value = new.get(path[0])
            if value is None or value == {}:
                out.pop(path[0], None)
            else:
                out[path[0]] = value
        else:
            out = _set_path(out, path, _get_path(new, path))
    if "userEnteredValue" in out:
        check_entered(out["userEnteredValue"], where + "userEnteredValue")
    return out or None


def _mask(fields: Any, where: str) -> list[tuple] | None:
    if not fields:
        raise bad(f"{where}At least one field must be updated, but none were specified.")
    return mask_paths(parse_fields(fields))


# --------------------------------------------------------------------------- batchUpdate

def _grid_range(book: Book, rng: dict, where: str) -> tuple[Sheet, int, int, int, int]:
    sheet = book.by_id(rng.get("sheetId", 0), where)
    r0, c0 = rng.get("startRowIndex", 0), rng.get("startColumnIndex", 0)
    r1, c1 = rng.get("endRowIndex", sheet.rows), rng.get("endColumnIndex", sheet.cols)
    if r1 > sheet.rows or c1 > sheet.cols or r0 < 0 or c0 < 0 or r0 > r1 or c0 > c1:
        raise bad(f"{where}Range ({quote_title(sheet.title)}!R{r0 + 1}C{c0 + 1}:R{r1}C{c1}) exceeds grid limits. "
                  f"Max rows: {sheet.rows}, max columns: {sheet.cols}")
    return sheet, r0, r1, c0, c1


def _write_rows(sheet: Sheet, r0: int, c0: int, rows: list, paths, where: str, clear_to: tuple | None = None) -> None:
    for i, row in enumerate(rows):
        values = (row or {}).get("values") or []
        if values:
            sheet.check_inside(r0 + i, c0 + len(values) - 1, where)
        for j, new in enumerate(values):
            r, c = r0 + i, c0 + j
            sheet.set_cell(r, c, write_cell(sheet.cell(r, c), new or {}, paths, where))
    if clear_to:  # a range wider than the rows given: the masked fields of the rest are cleared
        r1, c1 = clear_to
        for r in range(r0, r1):
            given = len(((rows[r - r0] if r - r0 < len(rows) else None) or {}).get("values") or [])
            for c in range(c0 + given, c1):
                if sheet.cell(r, c) is not None:
                    sheet.set_cell(r, c, write_cell(sheet.cell(r, c), {}, paths, where))


def op_update_cells(book: Book, req: dict, where: str) -> dict:
    paths = _mask(req.get("fields"), where)
    rows = req.get("rows") or []
    if "start" in req:
        start = req["start"]
        sheet = book.by_id(start.get("sheetId", 0), where)
        _write_rows(sheet, start.get("rowIndex", 0), start.get("columnIndex", 0), rows, paths, where)
    elif "range" in req:
        sheet, r0, r1, c0, c1 = _grid_range(book, req["range"], where)
        if len(rows) > r1 - r0 or any(len((row or {}).get("values") or []) > c1 - c0 for row in rows):
            raise bad(f"{where}The rows given do not fit the range.")
        _write_rows(sheet, r0, c0, rows, paths, where, clear_to=(r1, c1))
    else:
        raise bad(f"{where}Must specify at least one of start or range.")
    return {}


def op_append_cells(book: Book, req: dict, where: str) -> dict:
    sheet = book.by_id(req.get("sheetId", 0), where)
    paths = _mask(req.get("fields"), where)
    rows = req.get("rows") or []
    start = sheet.last_data_row() + 1
    if start + len(rows) > sheet.rows:
        sheet.grid["rowCount"] = start + len(rows)
    _write_rows(sheet, start, 0, rows, paths, where)
    return {}


def _dimension(book: Book, rng: dict, where: str) -> tuple[Sheet, str, int, int]:
    sheet = book.by_id(rng.get("sheetId", 0), where)
    dim = rng.get("dimension")
    if dim not in ("ROWS", "COLUMNS"):
        raise bad(f"{where}dimension must be ROWS or COLUMNS")
    return sheet, dim, rng.get("startIndex", 0), rng.get("endIndex", sheet.rows if dim == "ROWS" else sheet.cols)


def _shift_meta(meta: dict, start: int, delta: int) -> dict:
    return {(i + delta if i >= start else i): v for i, v in meta.items()}


def op_insert_dimension(book: Book, req: dict, where: str) -> dict:
    sheet, dim, s, e = _dimension(book, req.get("range") or {}, where)
    count = sheet.rows if dim == "ROWS" else sheet.cols
    if not 0 <= s < e or s > count:
        raise bad(f"{where}Invalid dimension range [{s}, {e}) for a grid of {count}")
    n = e - s
    if dim == "ROWS":
        if s < len(sheet.data):
            fresh = [[] for _ in range(n)]
            sheet._fresh.update(id(r) for r in fresh)
            sheet.data[s:s] = fresh
        sheet.grid["rowCount"] += n
        sheet.row_meta = _shift_meta(sheet.row_meta, s, n)
    else:
        for r in range(len(sheet.data)):
            if len(sheet.data[r]) > s:
                sheet.row_for_write(r)[s:s] = [None] * n
        sheet.grid["columnCount"] += n
        sheet.col_meta = _shift_meta(sheet.col_meta, s, n)
    return {}


def op_delete_dimension(book: Book, req: dict, where: str) -> dict:
    sheet, dim, s, e = _dimension(book, req.get("range") or {}, where)
    count = sheet.rows if dim == "ROWS" else sheet.cols
    if not 0 <= s < e or e > count:
        raise bad(f"{where}Invalid dimension range [{s}, {e}) for a grid of {count}")
    if e - s >= count:
        raise bad(f"{where}You can't delete all the {'rows' if dim == 'ROWS' else 'columns'} on the sheet.")
    n = e - s
    if dim == "ROWS":
        del sheet.data[s:e]
        sheet.grid["rowCount"] -= n
        sheet.row_meta = {i: v for i, v in sheet.row_meta.items() if i < s} | {
            i - n: v for i, v in sheet.row_meta.items() if i >= e}
        key = "frozenRowCount"
    else:
        for r in range(len(sheet.data)):
            if len(sheet.data[r]) > s:
                del sheet.row_for_write(r)[s:e]
        sheet.grid["columnCount"] -= n
        sheet.col_meta = {i: v for i, v in sheet.col_meta.items() if i < s} | {
            i - n: v for i, v in sheet.col_meta.items() if i >= e}
        key = "frozenColumnCount"
    if sheet.grid.get(key, 0) > s:
        sheet.grid[key] = max(s, sheet.grid[key] - n)
    return {}


def op_append_dimension(book: Book, req: dict, where: str) -> dict:
    sheet = book.by_id(req.get("sheetId", 0), where)
    length = req.get("length", 0)
    if length <= 0:
        raise bad(f"{where}length must be positive")
    key = {"ROWS": "rowCount", "COLUMNS": "columnCount"}.get(req.get("dimension"))
    if key is None:
        raise bad(f"{where}dimension must be ROWS or COLUMNS")
    sheet.grid[key] += length
    return {}


def op_repeat_cell(book: Book, req: dict, where: str) -> dict:
    sheet, r0, r1, c0, c1 = _grid_range(book, req.get("range") or {}, where)
    paths = _mask(req.get("fields"), where)
    new = req.get("cell") or {}
    for r in range(r0, r1):
        for c in range(c0, c1):
            sheet.set_cell(r, c, write_cell(sheet.cell(r, c), new, paths, where))
    return {}


def op_update_sheet_properties(book: Book, req: dict, where: str) -> dict:
    props = req.get("properties") or {}
    sheet = book.by_id(props.get("sheetId", 0), where)
    paths = _mask(req.get("fields"), where)
    if paths is None:
        paths = [(k,) for k in props if k != "sheetId"]
    for path in paths:
        value = _get_path(props, path)
        if path == ("title",) and value != sheet.title and book.by_title(value):
            raise bad(f'{where}A sheet with the name "{value}" already exists. Please enter another name.')
        sheet.props = _set_path(sheet.props, path, value)
    _conform_grid(sheet, where)
    book.reindex()
    return {}


def _conform_grid(sheet: Sheet, where: str) -> None:
    g = sheet.props.setdefault("gridProperties", {"rowCount": 1000, "columnCount": 26})
    g.setdefault("rowCount", 1000)
    g.setdefault("columnCount", 26)
    if g["rowCount"] < 1 or g["columnCount"] < 1:
        raise bad(f"{where}A sheet needs at least one row and one column.")
    if g.get("frozenRowCount", 0) >= g["rowCount"] or g.get("frozenColumnCount", 0) >= g["columnCount"]:
        raise bad(f"{where}You can't freeze all visible rows on the sheet.")
    del sheet.data[g["rowCount"]:]
    for r, row in enumerate(sheet.data):
        if len(row) > g["columnCount"]:
            del sheet.row_for_write(r)[g["columnCount"]:]


def op_add_sheet(book: Book, req: dict, where: str) -> dict:
    props = copy.deepcopy(req.get("properties") or {})
    title = props.get("title") or f"Sheet{len(book.sheets) + 1}"
    if book.by_title(title):
        raise bad(f'{where}A sheet with the name "{title}" already exists. Please enter another name.')
    sheet_id = props.get("sheetId")
    if sheet_id is None:
        sheet_id = max([s.id for s in book.sheets] + [0]) + 1
    if any(s.id == sheet_id for s in book.sheets):
        raise bad(f"{where}A sheet with the id {sheet_id} already exists.")
    grid = props.get("gridProperties") or {}
    sheet = Sheet(sheet_id, title, props.get("index", len(book.sheets)), grid.get("rowCount", 1000),
                  grid.get("columnCount", 26))
    sheet.grid.update({k: v for k, v in grid.items() if k not in ("rowCount", "columnCount")})
    for k in ("hidden", "tabColor", "tabColorStyle", "rightToLeft"):
        if k in props:
            sheet.props[k] = props[k]
    _conform_grid(sheet, where)
    for s in book.sheets:
        if s.props["index"] >= sheet.props["index"]:
            s.props["index"] += 1
    book.sheets.append(sheet)
    book.reindex()
    return {"addSheet": {"properties": copy.deepcopy(sheet.props)}}


def op_delete_sheet(book: Book, req: dict, where: str) -> dict:
    sheet = book.by_id(req.get("sheetId"), where)
    if len(book.sheets) == 1:
        raise bad(f"{where}You can't remove all the sheets in a document.")
    book.sheets.remove(sheet)
    book.reindex()
    book.metadata = {i: m for i, m in book.metadata.items() if m["location"].get("sheetId") != sheet.id}
    return {}


def op_update_dimension_properties(book: Book, req: dict, where: str) -> dict:
    sheet, dim, s, e = _dimension(book, req.get("range") or {}, where)
    paths = _mask(req.get("fields"), where) or [(k,) for k in req.get("properties") or {}]
    meta = sheet.row_meta if dim == "ROWS" else sheet.col_meta
    for i in range(s, e):
        entry = meta.get(i, {})
        for path in paths:
            entry = _set_path(entry, path, _get_path(req.get("properties") or {}, path))
        meta[i] = entry
    return {}


def _sort_key(cell: dict | None, descending: bool):
    ev = effective_value(cell)
    if not ev or "errorValue" in ev:
        return (1, 0, 0)  # empty cells sort last in both orders
    if "numberValue" in ev:
        rank, value = 0, ev["numberValue"]
    elif "stringValue" in ev:
        rank, value = 1, ev["stringValue"].lower()
    else:
        rank, value = 2, ev["boolValue"]
    return (0, rank, value)


def op_move_dimension(book: Book, req: dict, where: str) -> dict:
    sheet, dim, s, e = _dimension(book, req.get("source") or {}, where)
    dest = req.get("destinationIndex", 0)
    count = sheet.rows if dim == "ROWS" else sheet.cols
    if not 0 <= s < e <= count or not 0 <= dest <= count:
        raise bad(f"{where}Invalid move of [{s}, {e}) to {dest} in a grid of {count}")
    at = dest if dest < s else dest - (e - s)  # the index is given before the source is removed

    def move(seq: list) -> None:
        block = seq[s:e]
        del seq[s:e]
        seq[at:at] = block

    if dim == "ROWS":
        if len(sheet.data) < count:
            sheet.row_for_write(count - 1)
        move(sheet.data)
    else:
        for r in range(len(sheet.data)):
            row = sheet.row_for_write(r)
            row.extend([None] * (count - len(row)))
            move(row)
    return {}


def op_sort_range(book: Book, req: dict, where: str) -> dict:
    sheet, r0, r1, c0, c1 = _grid_range(book, req.get("range") or {}, where)
    r1 = min(r1, len(sheet.data))
    block = [[sheet.cell(r, c) for c in range(c0, c1)] for r in range(r0, r1)]
    for spec in reversed(req.get("sortSpecs") or []):
        col = spec.get("dimensionIndex", 0) - c0
        desc = spec.get("sortOrder") == "DESCENDING"
        filled = [row for row in block if _sort_key(row[col], desc)[0] == 0]
        empty = [row for row in block if _sort_key(row[col], desc)[0] == 1]
        filled.sort(key=lambda row: _sort_key(row[col], desc)[1:], reverse=desc)
        block = filled + empty
    for i, row in enumerate(block):
        for j, cell in enumerate(row):
            sheet.set_cell(r0 + i, c0 + j, cell)
    return {}


# --------------------------------------------------------------------------- developer metadata

_VISIBILITIES = ("DOCUMENT", "PROJECT")


def _metadata_location(book: Book, location: Any, where: str) -> dict:
    if not isinstance(location, dict):
        raise bad(f"{where}Developer metadata must have a location.")
    if location.get("spreadsheet") is True:
        return {"locationType": "SPREADSHEET", "spreadsheet": True}
    if "sheetId" in location:
        return {"locationType": "SHEET", "sheetId": book.by_id(location["sheetId"], where).id}
    if "dimensionRange" in location:
        raise bad(f"{where}Row and column metadata are not supported by this test server.")
    raise bad(f"{where}Developer metadata must have a location.")


def _metadata_matches(book: Book, meta: dict, data_filter: Any, where: str) -> bool:
    lookup = (data_filter or {}).get("developerMetadataLookup") if isinstance(data_filter, dict) else None
    if not isinstance(lookup, dict) or not lookup:
        raise bad(f"{where}A data filter must set developerMetadataLookup (a1Range and gridRange filters "
                  "are not supported by this test server).")
    for name in ("metadataId", "metadataKey", "metadataValue", "visibility"):
        if name in lookup and meta.get(name) != lookup[name]:
            return False
    if "locationType" in lookup and meta["location"]["locationType"] != lookup["locationType"]:
        return False
    if "metadataLocation" in lookup:
        return meta["location"] == _metadata_location(book, lookup["metadataLocation"], where)
    return True


def op_create_developer_metadata(book: Book, req: dict, where: str) -> dict:
    given = req.get("developerMetadata")
    if not isinstance(given, dict) or not given.get("metadataKey"):
        raise bad(f"{where}Developer metadata must have a key.")
    if given.get("visibility") not in _VISIBILITIES:
        raise bad(f"{where}Developer metadata must have a visibility specified.")
    metadata_id = given.get("metadataId")
    if metadata_id is None:
        metadata_id = next(i for i in iter(lambda: secrets.randbelow(2**31 - 1) + 1, None) if i not in book.metadata)
    if not isinstance(metadata_id, int) or isinstance(metadata_id, bool) or metadata_id <= 0:
        raise bad(f"{where}Developer metadata ID must be positive.")
    if metadata_id in book.metadata:
        raise bad(f"{where}Developer metadata with ID {metadata_id} already exists.")
    meta = {"metadataId": metadata_id, "metadataKey": str(given["metadataKey"]),
            "location": _metadata_location(book, given.get("location"), where), "visibility": given["visibility"]}
    if given.get("metadataValue") is not None:
        meta["metadataValue"] = str(given["metadataValue"])
    book.metadata[metadata_id] = meta
    return {"createDeveloperMetadata": {"developerMetadata": copy.deepcopy(meta)}}


def op_update_developer_metadata(book: Book, req: dict, where: str) -> dict:
    fields = [f.strip() for f in str(req.get("fields") or "").split(",") if f.strip()]
    if not fields:
        raise bad(f"{where}'fields' is required.")
    unknown = [f for f in fields if f not in ("metadataKey", "metadataValue", "visibility", "location")]
    if unknown:
        raise bad(f"{where}Invalid field mask: {unknown[0]}.")
    given = req.get("developerMetadata") or {}
    changed = []
    for metadata_id, meta in sorted(book.metadata.items()):
        if not any(_metadata_matches(book, meta, f, where) for f in req.get("dataFilters") or []):
            continue
        meta = dict(meta)
        for name in fields:
            if name == "location":
                meta["location"] = _metadata_location(book, given.get("location"), where)
            elif given.get(name) is None:
                meta.pop(name, None)
            else:
                meta[name] = str(given[name])
        book.metadata[metadata_id] = meta
        changed.append(copy.deepcopy(meta))
    return {"updateDeveloperMetadata": {"developerMetadata": changed}}


def op_delete_developer_metadata(book: Book, req: dict, where: str) -> dict:
    data_filter = req.get("dataFilter")
    gone = [m for m in book.metadata.values() if _metadata_matches(book, m, data_filter, where)]
    for meta in gone:
        del book.metadata[meta["metadataId"]]
    return {"deleteDeveloperMetadata": {"deletedDeveloperMetadata": copy.deepcopy(gone)}}


REQUESTS = {
    "createDeveloperMetadata": op_create_developer_metadata,
    "updateDeveloperMetadata": op_update_developer_metadata,
    "deleteDeveloperMetadata": op_delete_developer_metadata,
    "updateCells": op_update_cells,
    "appendCells": op_append_cells,
    "insertDimension": op_insert_dimension,
    "deleteDimension": op_delete_dimension,
    "appendDimension": op_append_dimension,
    "repeatCell": op_repeat_cell,
    "updateSheetProperties": op_update_sheet_properties,
    "addSheet": op_add_sheet,
    "deleteSheet": op_delete_sheet,
    "updateDimensionProperties": op_update_dimension_properties,
    "sortRange": op_sort_range,
    "moveDimension": op_move_dimension,
}


# --------------------------------------------------------------------------- reads

_STORED = ("userEnteredValue", "userEnteredFormat", "note", "textFormatRuns", "dataValidation")


def cell_json(cell: dict | None, wanted: dict | None) -> dict:
    """The CellData of a stored cell, computing only the fields the mask asks for."""
    if not cell:
        return {}
    if wanted is not None and all(name in _STORED for name in wanted):  # the common, cheap case
        out = {}
        for name, sub in wanted.items():
            value = cell.get(name)
            if value is not None:
                value = value if sub is None else apply_fields(value, sub)
                if value != {}:
                    out[name] = value
        return out
    names = CELL_READ_FIELDS if wanted is None else wanted.keys()
    out = {}
    for name in names:
        if name in ("userEnteredValue", "userEnteredFormat", "note", "textFormatRuns", "dataValidation"):
            value = cell.get(name)
        elif name == "effectiveValue":
            value = effective_value(cell)
        elif name == "formattedValue":
            value = formatted_value(cell)
        elif name == "effectiveFormat":
            value = cell.get("userEnteredFormat")
        else:
            value = None
        if value is not None and value != {}:
            out[name] = apply_fields(value, None if wanted is None else wanted[name])
    return {k: v for k, v in out.items() if v != {}}


CELL_READ_FIELDS = ("userEnteredValue", "effectiveValue", "formattedValue", "userEnteredFormat", "note")


def grid_data(sheet: Sheet, r0: int, r1: int | None, c0: int, c1: int | None, mask: dict | None) -> dict:
    """GridData of a range; `mask` is the field mask under `data` (None = everything)."""
    r1 = min(sheet.rows if r1 is None else r1, sheet.rows)
    c1 = min(sheet.cols if c1 is None else c1, sheet.cols)
    wanted, want_rows = None, True
    if mask is not None:
        want_rows = "rowData" in mask
        row_mask = mask.get("rowData")
        wanted = None if row_mask is None else row_mask.get("values", {})
    rows = []
    if want_rows:
        for r in range(r0, min(r1, len(sheet.data))):
            width = min(c1, len(sheet.data[r]))
            cells = [cell_json(sheet.cell(r, c), wanted) for c in range(c0, width)]
            while cells and not cells[-1]:
                cells.pop()
            rows.append({"values": cells} if cells else {})
        while rows and not rows[-1]:
            rows.pop()
    out: dict = {"rowData": rows} if rows else {}
    if r0 and (mask is None or "startRow" in mask):
        out["startRow"] = r0
    if c0 and (mask is None or "startColumn" in mask):
        out["startColumn"] = c0
    if mask is None or "rowMetadata" in mask:
        out["rowMetadata"] = [sheet.row_meta.get(r, {"pixelSize": 21}) for r in range(r0, r1)]
    if mask is None or "columnMetadata" in mask:
        out["columnMetadata"] = [sheet.col_meta.get(c, {"pixelSize": 100}) for c in range(c0, c1)]
    return out


def render_values(sheet: Sheet, r0, r1, c0, c1, render: str, dates: str, major: str) -> list:
    r1 = min(sheet.rows if r1 is None else r1, sheet.rows, len(sheet.data))
    c1 = min(sheet.cols if c1 is None else c1, sheet.cols)
    rows = []
    for r in range(r0, r1):
        row = [_render(sheet.cell(r, c), render, dates) for c in range(c0, min(c1, c0 + len(sheet.data[r])))]
        while row and row[-1] == "":
            row.pop()
        rows.append(row)
    while rows and not rows[-1]:
        rows.pop()
    if major == "COLUMNS":
        width = max((len(r) for r in rows), default=0)
        cols = [[row[c] if c < len(row) else "" for row in rows] for c in range(width)]
        for col in cols:
            while col and col[-1] == "":
                col.pop()
        return cols
    return rows


def _render(cell: dict | None, render: str, dates: str) -> Any:
    if not cell or "userEnteredValue" not in cell:
        return ""
    entered = cell["userEnteredValue"]
    if render == "FORMULA" and "formulaValue" in entered:
        return entered["formulaValue"]
    if render == "FORMATTED_VALUE":
        return formatted_value(cell)
    ev = effective_value(cell)
    if "errorValue" in ev:
        return formatted_value(cell)
    fmt = (cell.get("userEnteredFormat") or {}).get("numberFormat") or {}
    if "numberValue" in ev and dates == "FORMATTED_STRING" and fmt.get("type") in ("DATE", "DATE_TIME", "TIME"):
        return formatted_value(cell)
    value = python_value(ev)
    if isinstance(value, float) and value == int(value) and abs(value) < 2**53:
        return int(value)
    return value


# --------------------------------------------------------------------------- the server

@dataclass
class LogEntry:
    method: str
    path: str
    query: dict
    kind: str  # read | write | token | other
    user: str | None = None
    status: int = 0
    request_bytes: int = 0
    response_bytes: int = 0
    requests: list = field(default_factory=list)  # batchUpdate request types
    started: float = 0.0
    seconds: float = 0.0


@dataclass
class Fault:
    status: int
    kind: str = "any"  # any | read | write
    apply: bool = False  # a write is applied before the error is answered


class Hold:
    """A write that waits at the door until released (or the server stops)."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self._released = threading.Event()
        self.apply = False

    def release(self, apply: bool = False) -> None:
        self.apply = apply
        self._released.set()

    def wait(self) -> None:
        self.arrived.set()
        self._released.wait()


class Gather:
    """Reads held until n have arrived: see SheetsServer.gather_reads."""

    def __init__(self, n: int, timeout: float):
        self.n, self.timeout = n, timeout
        self.arrived = 0
        self._cond = threading.Condition()

    def join(self) -> bool:
        """Wait for the others; True for the read that completed the group."""
        with self._cond:
            self.arrived += 1
            last = self.arrived >= self.n
            if last:
                self._cond.notify_all()
            else:
                self._cond.wait_for(lambda: self.arrived >= self.n, timeout=self.timeout)
            return last


class SheetsServer:
    """See the module docstring. Quotas and faults are attributes tests may set."""

    def __init__(self, *, write_quota: int = 60, read_quota: int = 300, window_seconds: float = 60.0,
                 retry_after: float | None = None, host: str = "127.0.0.1"):
        self.write_quota, self.read_quota = write_quota, read_quota
        self.window_seconds, self.retry_after = window_seconds, retry_after
        self.books: dict[str, Book] = {}
        self.tokens: dict[str, str] = {}  # access token -> service account email
        self.token_error: str | None = None  # set to make the token endpoint refuse (e.g. "invalid_grant")
        self._lock = threading.RLock()  # the spreadsheets
        self._flock = threading.Lock()  # faults, quotas, log
        self._log: list[LogEntry] = []
        self._faults: list[Fault] = []
        self._write_faults: dict[int, Fault] = {}
        self._holds: dict[int, Hold] = {}
        self._slow: list[tuple[float, str]] = []
        self._slow_all = 0.0
        self._gathers: dict[str, Gather] = {}
        self._writes_seen = 0
        self._windows: dict[tuple[str, str], list] = {}
        self._httpd = ThreadingHTTPServer((host, 0), _handler(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    # lifecycle ------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def token_uri(self) -> str:
        return self.url + "/token"

    def start(self) -> SheetsServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="sheets-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._flock:
            holds = list(self._holds.values())
        for hold in holds:
            hold.release(False)
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> SheetsServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # setup ----------------------------------------------------------------------
    def create_spreadsheet(self, spreadsheet_id: str | None = None, *, title: str = "Tracker",
                           sheets: tuple[str, ...] = ("Sheet1",), rows: int = 1000, cols: int = 26,
                           shared_with: set[str] | None = None) -> str:
        spreadsheet_id = spreadsheet_id or "ss" + secrets.token_hex(8)
        book = Book(spreadsheet_id, title)
        for i, name in enumerate(sheets):
            book.sheets.append(Sheet(0 if i == 0 else 1000 + i, name, i, rows, cols))
        book.shared_with = shared_with
        with self._lock:
            self.books[spreadsheet_id] = book
        return spreadsheet_id

    def write_service_account(self, path, email: str = "genesis@genesis-test.iam.gserviceaccount.com",
                              private_key_pem: str | None = None) -> str:
        """A service-account JSON file whose token_uri is this server; returns the path."""
        pem = private_key_pem or new_private_key()
        info = {"type": "service_account", "project_id": "genesis-test", "private_key_id": secrets.token_hex(8),
                "private_key": pem, "client_email": email, "client_id": "1000",
                "auth_uri": self.url + "/auth", "token_uri": self.token_uri, "universe_domain": "googleapis.com"}
        with open(path, "w") as fh:
            json.dump(info, fh)
        return str(path)

    # faults ---------------------------------------------------------------------
    def fail_next(self, n: int, status: int = 503, kind: str = "any", apply: bool = False) -> None:
        """The next n requests of `kind` (any|read|write) answer `status`."""
        with self._flock:
            self._faults.extend(Fault(status, kind, apply) for _ in range(n))

    def fail_write(self, k: int, status: int = 503, apply: bool = False) -> None:
        """The k-th write from now (1-based) answers `status`; with apply=True it is applied first."""
        with self._flock:
            self._write_faults[self._writes_seen + k] = Fault(status, "write", apply)

    def hold_write(self, k: int) -> Hold:
        """The k-th write from now waits until `hold.release(apply)`; `hold.arrived` is set on arrival."""
        hold = Hold()
        with self._flock:
            self._holds[self._writes_seen + k] = hold
        return hold

    def slow(self, seconds: float, n: int | None = None, kind: str = "any") -> None:
        """Delay the next n responses (every response when n is None) by `seconds`."""
        with self._flock:
            if n is None:
                self._slow_all = seconds
            else:
                self._slow.extend((seconds, kind) for _ in range(n))

    def gather_reads(self, spreadsheet_id: str, n: int, timeout: float = 5.0) -> Gather:
        """The next reads of `spreadsheet_id` wait until n of them have arrived (or `timeout`
        passed), then go on together: n writers that read the same state, to race."""
        gather = Gather(n, timeout)
        with self._flock:
            self._gathers[spreadsheet_id] = gather
        return gather

    def _gather(self, spreadsheet_id: str) -> None:
        with self._flock:
            gather = self._gathers.get(spreadsheet_id)
        if gather is not None and gather.join():
            with self._flock:
                if self._gathers.get(spreadsheet_id) is gather:
                    del self._gathers[spreadsheet_id]

    def reset_quota(self) -> None:
        with self._flock:
            self._windows.clear()

    # inspection -----------------------------------------------------------------
    @property
    def log(self) -> list[LogEntry]:
        with self._flock:
            return list(self._log)

    def clear_log(self) -> None:
        with self._flock:
            self._log.clear()

    def calls(self, *, user: str | None = None, kind: str | None = None, status: int | None = None) -> list[LogEntry]:
        return [e for e in self.log if (user is None or e.user == user) and (kind is None or e.kind == kind)
                and (status is None or e.status == status)]

    def _sheet(self, spreadsheet_id: str, tab: str) -> Sheet:
        sheet = self.books[spreadsheet_id].by_title(tab)
        if sheet is None:
            raise KeyError(tab)
        return sheet

    def has_sheet(self, spreadsheet_id: str, tab: str) -> bool:
        with self._lock:
            return self.books[spreadsheet_id].by_title(tab) is not None

    def grid(self, spreadsheet_id: str, tab: str) -> list[list[Any]]:
        """Entered values as Python values (float/str/bool/{'formula': ...}), trailing empties trimmed."""
        with self._lock:
            sheet = self._sheet(spreadsheet_id, tab)
            rows = [[python_value((c or {}).get("userEnteredValue")) for c in row] for row in sheet.data]
        for row in rows:
            while row and row[-1] is None:
                row.pop()
        while rows and not rows[-1]:
            rows.pop()
        return rows

    def cell(self, spreadsheet_id: str, tab: str, row: int, col: int) -> dict:
        """The stored cell (0-based row/col) as CellData, effective and formatted values included."""
        with self._lock:
            return cell_json(self._sheet(spreadsheet_id, tab).cell(row, col), None)

    def notes(self, spreadsheet_id: str, tab: str) -> dict[tuple[int, int], str]:
        with self._lock:
            sheet = self._sheet(spreadsheet_id, tab)
            return {(r, c): cell["note"] for r, row in enumerate(sheet.data) for c, cell in enumerate(row)
                    if cell and "note" in cell}

    def formats(self, spreadsheet_id: str, tab: str) -> dict[tuple[int, int], dict]:
        with self._lock:
            sheet = self._sheet(spreadsheet_id, tab)
            return {(r, c): cell["userEnteredFormat"] for r, row in enumerate(sheet.data)
                    for c, cell in enumerate(row) if cell and "userEnteredFormat" in cell}

    def developer_metadata(self, spreadsheet_id: str) -> list[dict]:
        """Every developer metadata entry of the spreadsheet, by id."""
        with self._lock:
            return [copy.deepcopy(m) for _, m in sorted(self.books[spreadsheet_id].metadata.items())]

    def sheet_properties(self, spreadsheet_id: str, tab: str) -> dict:
        with self._lock:
            return copy.deepcopy(self._sheet(spreadsheet_id, tab).props)

    def frozen_rows(self, spreadsheet_id: str, tab: str) -> int:
        return self.sheet_properties(spreadsheet_id, tab)["gridProperties"].get("frozenRowCount", 0)

    # request handling -------------------------------------------------------------
    def handle(self, method: str, raw_path: str, headers, body: bytes) -> tuple[int, dict, dict, LogEntry]:
        split = urlsplit(raw_path)
        query = parse_qs(split.query, keep_blank_values=True)
        route = self._route(method, split.path)
        entry = LogEntry(method, unquote(split.path), query, route[0] if route else "other",
                         request_bytes=len(body), started=time.time())
        extra_headers: dict = {}
        try:
            if route is None:
                raise ApiError(404, "Requested entity was not found.")
            kind, action, args = route
            if kind == "token":
                return 200, self._token(body), {}, entry
            entry.user = self._authenticate(headers)
            self._delay(kind)
            if kind == "read" and action == "get":
                self._gather(args[0])
            fault, hold = self._inject(kind)
            self._check_quota(entry.user, kind)
            if hold is not None:
                hold.wait()
                if not hold.apply:
                    raise ApiError(503, "The service is currently unavailable.")
            payload = json.loads(body or b"{}") if method in ("POST", "PUT") else {}
            if kind == "write" and action == "batch_update":
                entry.requests = [next(iter(r), "?") for r in payload.get("requests") or []]
            if fault is not None and not fault.apply:
                raise ApiError(fault.status, _fault_message(fault.status))
            result = getattr(self, "_do_" + action)(entry.user, query, payload, *args)
            if fault is not None:
                raise ApiError(fault.status, _fault_message(fault.status))
            return 200, result, {}, entry
        except ApiError as err:
            if err.code == 429 and self.retry_after is not None:
                extra_headers["Retry-After"] = str(self.retry_after)
            entry.status = err.code
            return err.code, err.body(), extra_headers, entry
        except json.JSONDecodeError as err:
            entry.status = 400
            return 400, ApiError(400, f"Invalid JSON payload received. {err}").body(), {}, entry
        finally:
            entry.seconds = time.time() - entry.started
            entry.status = entry.status or 200
            with self._flock:
                self._log.append(entry)

    def _route(self, method: str, path: str):
        parts = path.split("/")
        if path == "/token" and method == "POST":
            return "token", "token", ()
        if len(parts) < 4 or parts[1] != "v4" or parts[2] != "spreadsheets":
            return None
        if len(parts) == 4:
            sid, _, verb = parts[3].partition(":")
            sid = unquote(sid)
            if method == "GET" and not verb:
                return "read", "get", (sid,)
            if method == "POST" and verb == "batchUpdate":
                return "write", "batch_update", (sid,)
            return None
        sid = unquote(parts[3])
        if parts[4] == "developerMetadata" and len(parts) == 6 and method == "GET":
            return "read", "metadata_get", (sid, parts[5])
        if parts[4] == "values:batchGet" and method == "GET":
            return "read", "values_batch_get", (sid,)
        if parts[4] == "values:batchUpdate" and method == "POST":
            return "write", "values_batch_update", (sid,)
        if parts[4] == "values:batchClear" and method == "POST":
            return "write", "values_batch_clear", (sid,)
        if parts[4] == "values" and len(parts) == 6:
            raw, _, verb = parts[5].rpartition(":") if ":" in parts[5] else (parts[5], "", "")
            rng = unquote(raw)
            if method == "GET" and not verb:
                return "read", "values_get", (sid, rng)
            if method == "PUT" and not verb:
                return "write", "values_update", (sid, rng)
            if method == "POST" and verb == "append":
                return "write", "values_append", (sid, rng)
            if method == "POST" and verb == "clear":
                return "write", "values_clear", (sid, rng)
        return None

    def _token(self, body: bytes) -> dict:
        form = parse_qs(body.decode())
        if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"]:
            raise ApiError(400, "Invalid grant_type", "invalid_grant")
        assertion = (form.get("assertion") or [""])[0]
        claims = _jwt_claims(assertion, self.token_uri)
        if self.token_error:
            raise ApiError(400, "Invalid JWT Signature.", self.token_error)
        token = "ya29.test-" + secrets.token_urlsafe(24)
        with self._flock:
            self.tokens[token] = claims["iss"]
        return {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}

    def _authenticate(self, headers) -> str:
        auth = headers.get("Authorization") or ""
        token = auth[len("Bearer "):] if auth.startswith("Bearer ") else ""
        with self._flock:
            user = self.tokens.get(token)
        if user is None:
            raise ApiError(401, "Request had invalid authentication credentials. Expected OAuth 2 access token, "
                                "login cookie or other valid authentication credential.")
        return user

    def _delay(self, kind: str) -> None:
        with self._flock:
            seconds = self._slow_all
            for i, (s, k) in enumerate(self._slow):
                if k in ("any", kind):
                    seconds += s
                    del self._slow[i]
                    break
        if seconds:
            time.sleep(seconds)

    def _inject(self, kind: str) -> tuple[Fault | None, Hold | None]:
        with self._flock:
            hold = None
            fault = None
            if kind == "write":
                self._writes_seen += 1
                fault = self._write_faults.pop(self._writes_seen, None)
                hold = self._holds.pop(self._writes_seen, None)
            for i, f in enumerate(self._faults):
                if f.kind in ("any", kind):
                    fault = self._faults.pop(i)
                    break
            return fault, hold

    def _check_quota(self, user: str, kind: str) -> None:
        limit = {"write": self.write_quota, "read": self.read_quota}.get(kind)
        if limit is None:
            return
        now = time.monotonic()
        with self._flock:
            window = self._windows.setdefault((user, kind), [now, 0])
            if now - window[0] >= self.window_seconds:
                window[:] = [now, 0]
            window[1] += 1
            over = window[1] > limit
        if over:
            metric = "Write requests" if kind == "write" else "Read requests"
            raise ApiError(429, f"Quota exceeded for quota metric '{metric}' and limit '{metric} per minute per user' "
                                f"of service 'sheets.googleapis.com' for consumer 'project_number:1000'.")

    def _book(self, user: str, spreadsheet_id: str) -> Book:
        book = self.books.get(spreadsheet_id)
        if book is None:
            raise ApiError(404, "Requested entity was not found.")
        if book.shared_with is not None and user not in book.shared_with:
            raise ApiError(403, "The caller does not have permission")
        return book

    def _transaction(self, user: str, spreadsheet_id: str, work):
        """Run `work(book)` on a copy and keep it only if every step succeeded (atomic)."""
        with self._lock:
            book = self._book(user, spreadsheet_id)
            draft = book.clone()
            result = work(draft)
            draft.check_limits()
            self.books[spreadsheet_id] = draft
            return result

    # spreadsheets ------------------------------------------------------------------
    def _do_get(self, user, query, payload, sid):
        mask = parse_fields((query.get("fields") or [""])[0])
        include = (query.get("includeGridData") or ["false"])[0].lower() == "true"
        want_data, data_mask = include, None
        if mask is not None:  # a field mask decides; includeGridData is ignored
            sheets_mask = mask.get("sheets", {}) if "sheets" in mask else {}
            want_data = "sheets" in mask and (sheets_mask is None or "data" in sheets_mask)
            data_mask = None if sheets_mask is None else sheets_mask.get("data")
        with self._lock:
            book = self._book(user, sid)
            ranges = [book.resolve(text) for text in query.get("ranges") or []]
            sheets = []
            for sheet in book.sheets:
                mine = [r for r in ranges if r[0] is sheet]
                if ranges and not mine:  # only the sheets the ranges touch
                    continue
                entry: dict = {"properties": copy.deepcopy(sheet.props)}
                if book.metadata_at(sheet.id):  # Google leaves out empty repeated fields
                    entry["developerMetadata"] = book.metadata_at(sheet.id)
                if want_data:
                    spans = [r[1:] for r in mine] or [(0, None, 0, None)]
                    entry["data"] = [grid_data(sheet, *span, data_mask) for span in spans]
                sheets.append(entry)
            doc = {"spreadsheetId": book.id,
                   "properties": {"title": book.title, "locale": "en_US", "autoRecalc": "ON_CHANGE",
                                  "timeZone": "Etc/GMT"},
                   "sheets": sheets, "spreadsheetUrl": f"{self.url}/spreadsheets/d/{book.id}/edit"}
            if book.metadata_at(None):
                doc["developerMetadata"] = book.metadata_at(None)
        if mask is None:
            return doc
        if isinstance(mask.get("sheets"), dict) and "data" in mask["sheets"]:
            mask = {**mask, "sheets": {**mask["sheets"], "data": None}}  # data is already masked
        return apply_fields(doc, mask)

    def _do_batch_update(self, user, query, payload, sid):
        requests = payload.get("requests") or []

        def work(book: Book):
            replies = []
            for i, req in enumerate(requests):
                if not isinstance(req, dict) or len(req) != 1:
                    raise bad(f"Invalid requests[{i}]: exactly one kind of request must be set.")
                (kind, body), = req.items()
                op = REQUESTS.get(kind)
                if op is None:
                    raise bad(f"Invalid JSON payload received. Unknown name \"{kind}\" at 'requests[{i}]': Cannot find field.")
                replies.append(op(book, body or {}, f"Invalid requests[{i}].{kind}: "))
                book.check_limits()
            return replies

        replies = self._transaction(user, sid, work)
        out = {"spreadsheetId": sid, "replies": replies}
        if payload.get("includeSpreadsheetInResponse"):
            out["updatedSpreadsheet"] = self._do_get(user, {}, {}, sid)
        return out

    def _do_metadata_get(self, user, query, payload, sid, metadata_id):
        with self._lock:
            book = self._book(user, sid)
            meta = book.metadata.get(int(metadata_id)) if metadata_id.isdigit() else None
            if meta is None:
                raise ApiError(404, f"No developer metadata with ID: {metadata_id}", "NOT_FOUND")
            return copy.deepcopy(meta)

    # values --------------------------------------------------------------------------
    def _do_values_get(self, user, query, payload, sid, rng):
        with self._lock:
            book = self._book(user, sid)
            return self._values_range(book, rng, query)

    def _values_range(self, book: Book, rng: str, query: dict) -> dict:
        sheet, r0, r1, c0, c1 = book.resolve(rng)
        render = (query.get("valueRenderOption") or ["FORMATTED_VALUE"])[0]
        dates = (query.get("dateTimeRenderOption") or ["SERIAL_NUMBER"])[0]
        major = (query.get("majorDimension") or ["ROWS"])[0]
        values = render_values(sheet, r0, r1, c0, c1, render, dates, major)
        out = {"range": _a1(sheet, r0, r1, c0, c1), "majorDimension": major}
        if values:
            out["values"] = values
        return out

    def _do_values_batch_get(self, user, query, payload, sid):
        with self._lock:
            book = self._book(user, sid)
            return {"spreadsheetId": sid,
                    "valueRanges": [self._values_range(book, rng, query) for rng in query.get("ranges") or []]}

    def _input_option(self, value: str | None) -> bool:
        if value not in ("RAW", "USER_ENTERED"):
            raise bad("'valueInputOption' is required but not specified" if not value
                      else f"Invalid value at 'value_input_option' ({value})")
        return value == "USER_ENTERED"

    def _write_values(self, book: Book, rng: str, values: list, major: str, parse: bool, grow: bool = False) -> dict:
        sheet, r0, r1, c0, c1 = book.resolve(rng)
        if ":" not in (split_sheet(rng)[1] or ":"):  # one cell names where the values start
            r1 = c1 = None
        rows = values if major != "COLUMNS" else [list(x) for x in itertools.zip_longest(*values, fillvalue=None)]
        height, width = len(rows), max((len(r) for r in rows), default=0)
        if r1 is not None and r0 + height > r1 or c1 is not None and c0 + width > c1:
            raise bad(f"Requested writing within range [{rng}], but tried writing to row [{r0 + height}]")
        if grow and r0 + height > sheet.rows:
            sheet.grid["rowCount"] = r0 + height
        if height and width:
            sheet.check_inside(r0 + height - 1, c0 + width - 1, "")
        for i, row in enumerate(rows):
            for j, value in enumerate(row):
                if value is None:
                    continue
                entered, number_format = user_entered(value, parse)
                old = sheet.cell(r0 + i, c0 + j)
                new = dict(old or {})
                new.pop("userEnteredValue", None)
                if entered is not None:
                    check_entered(entered, "values")
                    new["userEnteredValue"] = entered
                if number_format and not (new.get("userEnteredFormat") or {}).get("numberFormat"):
                    new = _set_path(new, ("userEnteredFormat", "numberFormat"), number_format)
                sheet.set_cell(r0 + i, c0 + j, new or None)
        return {"spreadsheetId": book.id, "updatedRange": _a1(sheet, r0, r0 + height, c0, c0 + width),
                "updatedRows": height, "updatedColumns": width, "updatedCells": sum(len(r) for r in rows)}

    def _do_values_update(self, user, query, payload, sid, rng):
        parse = self._input_option((query.get("valueInputOption") or [None])[0])
        major = payload.get("majorDimension") or "ROWS"
        return self._transaction(user, sid, lambda book: self._write_values(book, rng, payload.get("values") or [], major, parse))

    def _do_values_batch_update(self, user, query, payload, sid):
        parse = self._input_option(payload.get("valueInputOption"))

        def work(book):
            return [self._write_values(book, d.get("range", ""), d.get("values") or [], d.get("majorDimension") or "ROWS", parse)
                    for d in payload.get("data") or []]

        responses = self._transaction(user, sid, work)
        return {"spreadsheetId": sid, "totalUpdatedRows": sum(r["updatedRows"] for r in responses),
                "totalUpdatedCells": sum(r["updatedCells"] for r in responses), "responses": responses}

    def _do_values_append(self, user, query, payload, sid, rng):
        parse = self._input_option((query.get("valueInputOption") or [None])[0])
        insert = (query.get("insertDataOption") or ["OVERWRITE"])[0] == "INSERT_ROWS"
        values = payload.get("values") or []
        if payload.get("majorDimension") == "COLUMNS":
            values = [list(x) for x in itertools.zip_longest(*values, fillvalue=None)]

        def work(book: Book):
            sheet, r0, r1, c0, c1 = book.resolve(rng)
            width = max((len(r) for r in values), default=1)
            target = r0
            while any(sheet.cell(target, c) and "userEnteredValue" in sheet.cell(target, c) for c in range(c0, c0 + width)):
                target += 1
            if insert and target < sheet.rows:
                op_insert_dimension(book, {"range": {"sheetId": sheet.id, "dimension": "ROWS", "startIndex": target,
                                                     "endIndex": target + len(values)}}, "")
            a1 = f"{quote_title(sheet.title)}!{col_letters(c0)}{target + 1}"
            updates = self._write_values(book, a1, values, "ROWS", parse, grow=True)
            return {"spreadsheetId": sid, "tableRange": _a1(sheet, r0, max(target, r0 + 1), c0, c0 + width),
                    "updates": updates}

        return self._transaction(user, sid, work)

    def _do_values_clear(self, user, query, payload, sid, rng):
        def work(book):
            return self._clear(book, rng)

        return {"spreadsheetId": sid, "clearedRange": self._transaction(user, sid, work)}

    def _do_values_batch_clear(self, user, query, payload, sid):
        def work(book):
            return [self._clear(book, rng) for rng in payload.get("ranges") or []]

        return {"spreadsheetId": sid, "clearedRanges": self._transaction(user, sid, work)}

    def _clear(self, book: Book, rng: str) -> str:
        sheet, r0, r1, c0, c1 = book.resolve(rng)
        r1 = min(sheet.rows if r1 is None else r1, len(sheet.data))
        c1 = sheet.cols if c1 is None else c1
        for r in range(r0, r1):
            for c in range(c0, min(c1, len(sheet.data[r]))):
                cell = sheet.cell(r, c)
                if cell and "userEnteredValue" in cell:
                    sheet.set_cell(r, c, {k: v for k, v in cell.items() if k != "userEnteredValue"} or None)
        return _a1(sheet, r0, r1, c0, c1)


def _a1(sheet: Sheet, r0: int, r1: int | None, c0: int, c1: int | None) -> str:
    r1 = sheet.rows if r1 is None else r1
    c1 = sheet.cols if c1 is None else c1
    return f"{quote_title(sheet.title)}!{col_letters(c0)}{r0 + 1}:{col_letters(max(c1 - 1, c0))}{max(r1, r0 + 1)}"


def _fault_message(status: int) -> str:
    if status == 429:
        return "Quota exceeded for quota metric 'Write requests' and limit 'Write requests per minute per user'."
    if status >= 500:
        return "The service is currently unavailable."
    return "Injected fault."


def new_private_key() -> str:
    """A fresh RSA key in PEM, as a service-account file holds it (tests reuse one per session)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _b64json(segment: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def _jwt_claims(assertion: str, audience: str) -> dict:
    """The claims of a service-account JWT, after checking its shape (not its signature)."""
    parts = assertion.split(".")
    try:
        if len(parts) != 3 or not parts[2]:
            raise ValueError("not a signed JWT")
        header, claims = _b64json(parts[0]), _b64json(parts[1])
        if header.get("alg") != "RS256" or header.get("typ", "JWT") != "JWT":
            raise ValueError("alg must be RS256")
        for claim in ("iss", "aud", "scope", "iat", "exp"):
            if claim not in claims:
                raise ValueError(f"missing claim {claim}")
        if claims["aud"] not in (audience, GOOGLE_TOKEN_AUDIENCE):
            raise ValueError("wrong audience")
        if not 0 < claims["exp"] - claims["iat"] <= 3600:
            raise ValueError("bad lifetime")
    except (ValueError, json.JSONDecodeError) as err:
        raise ApiError(400, f"Invalid JWT: {err}", "invalid_grant") from None
    return claims


def _handler(server: SheetsServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body leave at once: no 40 ms delayed-ACK stalls

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            status, payload, headers, entry = server.handle(method, self.path, self.headers, body)
            if self.path == "/token" and status != 200:  # OAuth errors have their own shape
                payload = {"error": payload["error"]["status"], "error_description": payload["error"]["message"]}
            data = json.dumps(payload, separators=(",", ":")).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass
            entry.response_bytes = len(data)

        def do_GET(self):
            self._serve("GET")

        def do_POST(self):
            self._serve("POST")

        def do_PUT(self):
            self._serve("PUT")

        def log_message(self, *args) -> None:  # keep test output quiet
            pass

    return Handler
