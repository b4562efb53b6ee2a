"""Airtable fields: the field type and options of each output column, and how its values
are encoded (numbers as numbers, dates as ISO text, timestamps as UTC with milliseconds,
exactly as Airtable returns them, so an unchanged value compares equal on the next read).
Text is sent as a plain string with typecast off: Airtable never evaluates it.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ..project.types import INTEGER_TYPES, array_element, decimal_scale, is_array, is_decimal
from ..result import OutputColumn, QueryResult
from .formatting import format_value, raw_text, result_type, spreadsheet_number_format

# Fields whose values Airtable computes: never a person's note.
COMPUTED_TYPES = frozenset({
    "formula", "rollup", "lookup", "multipleLookupValues", "count", "autoNumber",
    "createdTime", "lastModifiedTime", "createdBy", "lastModifiedBy", "button",
    "externalSyncSource", "aiText",
})



@dataclass(frozen=True)
class Column:
    """An owned field: its Airtable type and options, and its value encoder."""

    name: str
    type: str  # Airtable field type
    options: Mapping[str, Any] | None
    encode: Callable[[Any], Any]  # Python value -> the JSON value Airtable stores


def columns_of(result: QueryResult, key: Sequence[str]) -> list[Column]:
    """The owned fields of `result`, in output order."""
    return [column_of(c, c.name in key, result.table.column(c.name)) for c in result.columns]


def column_of(col: OutputColumn, is_key: bool, values: Any) -> Column:
    """The Airtable field for one output column: its name, field type and options, and
    how a value becomes the JSON Airtable stores; `values` (the column's Arrow values)
    tells a multi-line text field from a single-line one."""
    fmt = dict(col.format or {})
    column_type = result_type(col)
    if "link" in fmt and not is_key:
        # A link is presentation: the cell holds the URL text, in a URL field.
        return Column(col.name, "url", None, lambda v: text_value(format_value(v, column_type, fmt)))
    field_type, options = _field_type(col, fmt, values)
    return Column(col.name, field_type, options, _encoder(column_type))


def _field_type(col: OutputColumn, fmt: dict, values: Any) -> tuple[str, dict | None]:
    """The Airtable field type and options for a column's Trino type and format."""
    t = result_type(col)
    if t == "boolean":
        return "checkbox", {"color": "greenBright", "icon": "check"}
    if t == "date":
        return "date", {"dateFormat": {"name": _date_format_name(fmt)}}
    if t.startswith("timestamp"):
        return "dateTime", {
            "dateFormat": {"name": _date_format_name(fmt)},
            "timeFormat": {"name": "12hour" if "%p" in str(fmt.get("date", "")) else "24hour"},
            "timeZone": "utc",
        }
    if t in INTEGER_TYPES or t in ("real", "double") or is_decimal(t):
        return _number_field(t, fmt)
    if not is_array(t) and any("\n" in str(v) for v in values.to_pylist() if v is not None):
        return "multilineText", None
    return "singleLineText", None


def _number_field(t: str, fmt: dict) -> tuple[str, dict]:
    # formatting decides what a spreadsheet would call it: currency, percent or number.
    kind = (spreadsheet_number_format(t, fmt) or {}).get("type")
    if kind == "PERCENT":
        return "percent", {"precision": min(int(fmt.get("percent") or 0), 8)}
    precision = min(_precision(t, fmt), 8)  # Airtable shows 0 to 8 decimals
    if kind == "CURRENCY":
        symbol = str(fmt.get("prefix") or fmt.get("suffix")).strip()
        return "currency", {"precision": precision, "symbol": symbol}
    return "number", {"precision": precision}


def _precision(t: str, fmt: dict) -> int:
    pattern = fmt.get("number")
    if isinstance(pattern, str):
        return len(pattern.partition(".")[2])  # "#,##0.00" -> 2
    if t in INTEGER_TYPES:
        return 0
    if is_decimal(t):
        return decimal_scale(t)
    return 8  # a double: show what it holds


_DATE_FORMAT_NAMES = {
    "%Y-%m-%d": "iso", "%m/%d/%Y": "us", "%-m/%-d/%Y": "us", "%d/%m/%Y": "european",
    "%-d/%-m/%Y": "european", "%b %d, %Y": "friendly", "%B %d, %Y": "friendly",
    "%b %-d, %Y": "friendly", "%B %-d, %Y": "friendly",
}


def _date_format_name(fmt: Mapping[str, Any]) -> str:
    # Airtable offers five date formats; the strftime pattern picks the closest.
    pattern = str(fmt.get("date") or "").split(" %H")[0].split(" %I")[0]
    return _DATE_FORMAT_NAMES.get(pattern, "iso")


def _encoder(t: str) -> Callable[[Any], Any]:
    if t == "boolean":
        return lambda v: True if v else None  # Airtable stores an unchecked box as empty
    if t in INTEGER_TYPES:
        return lambda v: None if v is None else int(v)
    if t in ("real", "double") or is_decimal(t):
        return _number
    if t == "date":
        return lambda v: None if v is None else v.isoformat()
    if t.startswith("timestamp"):
        return _timestamp
    if is_array(t):
        element = array_element(t)
        return lambda v: text_value(", ".join(raw_text(x, element) for x in v if x is not None)) if v else None
    return lambda v: text_value(raw_text(v, t))


def text_value(value: str) -> str | None:
    """A text cell's value: the text, or None for an empty one."""
    # Sent as a plain string in a text field: Airtable never evaluates it, so "=1+1"
    # stays text; typecast stays off so nothing converts it either.
    return value or None


def _number(value: Any) -> int | float | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        if not value.is_finite():
            return None
        if value == value.to_integral_value() and abs(value) < 2**53:
            return int(value)
        return float(value)
    number = float(value)
    return number if math.isfinite(number) else None


def _timestamp(value: dt.datetime | None) -> str | None:
    """ISO UTC with milliseconds, exactly as Airtable returns a dateTime (naive = UTC)."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
