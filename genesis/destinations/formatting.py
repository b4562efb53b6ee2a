"""Presentation of typed values: the `format` mapping of an input's field.

`format` is applied at the destination and never changes the typed value. This module
is the one place that knows the format keys, so the text a person reads in a table, a
spreadsheet cell's number format and an Excel file all agree:

- `validate_format`        problems with a format mapping for a column type
- `format_value`           display text of one value
- `raw_text`               the unformatted text of a value (ISO dates, plain numbers)
- `spreadsheet_number_format` / `excel_number_format`  the cell number format

Dates are rendered by our own strftime subset (English names, no locale), so the text
does not depend on the machine, and every directive has a spreadsheet equivalent.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

from ..errors import GenesisError, did_you_mean
from ..project.types import INTEGER_TYPES, array_element, decimal_scale, is_array, is_decimal, is_numeric
from ..result import OutputColumn

FORMAT_KEYS = ("date", "number", "prefix", "suffix", "percent", "bool", "link")
DATE_TYPES = {"date", "timestamp", "timestamp with time zone"}
MAX_PERCENT_DIGITS = 10
# Room for decimal(38, s) values and their percent; rounding as spreadsheets show it.
_CTX = Context(prec=120, rounding=ROUND_HALF_UP)

# `#,##0.00`: optional grouping, at least one integer 0, optional decimals.
_NUMBER_PATTERN = re.compile(r"^(?P<group>#,##)?(?P<int>0+)(?:\.(?P<dec>0+))?$")
_DIRECTIVE = re.compile(r"%(-?)(.)", re.S)

_MONTHS = ["January", "February", "March", "April", "May", "June", "July",
           "August", "September", "October", "November", "December"]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]

# strftime directive -> spreadsheet token; "-" (no padding) variants listed separately.
_SHEET_TOKENS = {
    "Y": "yyyy", "y": "yy", "m": "mm", "d": "dd", "b": "mmm", "B": "mmmm",
    "a": "ddd", "A": "dddd", "H": "hh", "I": "hh", "M": "mm", "S": "ss", "p": "AM/PM",
}
_SHEET_TOKENS_UNPADDED = {"m": "m", "d": "d", "H": "h", "I": "h", "M": "m", "S": "s"}
SUPPORTED_DIRECTIVES = "".join(_SHEET_TOKENS) + "%"
_UNPADDED_OK = set(_SHEET_TOKENS_UNPADDED)
# Literal characters a spreadsheet pattern shows as they are; everything else is quoted.
_SAFE_LITERALS = set(" -/:")
_CURRENCY_SYMBOLS = {"$", "€", "£", "¥", "₹", "US$", "CHF", "USD", "EUR", "GBP"}


# --------------------------------------------------------------------------- validation


def validate_format(fmt: Mapping, column_type: str) -> list[str]:
    """Problems with a `format` mapping for a column of canonical type `column_type`."""
    if not isinstance(fmt, Mapping):
        return [f"format must be a mapping of {', '.join(FORMAT_KEYS)}, got {_kind(fmt)}"]
    if not fmt:
        return ["format is empty; give one of " + ", ".join(FORMAT_KEYS)]
    element_type = array_element(column_type) if is_array(column_type) else column_type
    problems: list[str] = []
    for key in fmt:
        if key not in FORMAT_KEYS:
            hint = did_you_mean(str(key), FORMAT_KEYS)
            problems.append(f"unknown format key '{key}'; allowed: {', '.join(FORMAT_KEYS)}"
                            + (f" ({hint})" if hint else ""))
    checks = {"date": _check_date, "number": _check_number, "percent": _check_percent,
              "bool": _check_bool, "link": _check_link, "prefix": _check_affix,
              "suffix": _check_affix}
    for key, check in checks.items():
        if key in fmt:
            problems.extend(check(key, fmt[key], element_type))
    problems.extend(_check_combination(fmt))
    return problems


def _kind(value: Any) -> str:
    return type(value).__name__ if value is not None else "nothing"


def _check_date(key: str, value: Any, element_type: str) -> list[str]:
    problems = []
    if element_type not in DATE_TYPES:
        problems.append(f"format 'date' needs a date or timestamp column, not {element_type}")
    if not isinstance(value, str) or not value:
        return problems + [f"format 'date' must be a strftime string such as \"%Y-%m-%d\", got {value!r}"]
    text = value
    for match in _DIRECTIVE.finditer(text):
        flag, code = match.groups()
        if code not in SUPPORTED_DIRECTIVES or (flag and code not in _UNPADDED_OK):
            problems.append(f"format 'date' {value!r}: unsupported directive %{flag}{code}; "
                            f"supported: " + " ".join("%" + c for c in SUPPORTED_DIRECTIVES)
                            + " and %-m %-d %-H %-I %-M %-S")
    if "%" in _DIRECTIVE.sub("", text):
        problems.append(f"format 'date' {value!r} has a lone %; write %% for a percent sign")
    if not _DIRECTIVE.search(text):
        problems.append(f"format 'date' {value!r} has no % directive")
    return problems


def _check_number(key: str, value: Any, element_type: str) -> list[str]:
    problems = []
    if not is_numeric(element_type):
        problems.append(f"format 'number' needs a numeric column, not {element_type}")
    if not isinstance(value, str) or not _NUMBER_PATTERN.match(value):
        problems.append(f"format 'number' must be a pattern such as \"#,##0\", \"#,##0.00\" "
                        f"or \"0.0\", got {value!r}")
    return problems


def _check_percent(key: str, value: Any, element_type: str) -> list[str]:
    problems = []
    if not is_numeric(element_type):
        problems.append(f"format 'percent' needs a numeric column, not {element_type}")
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_PERCENT_DIGITS:
        problems.append(f"format 'percent' must be a number of decimal digits "
                        f"(0 to {MAX_PERCENT_DIGITS}), got {value!r}")
    return problems


def _check_bool(key: str, value: Any, element_type: str) -> list[str]:
    problems = []
    if element_type != "boolean":
        problems.append(f"format 'bool' needs a boolean column, not {element_type}")
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or not all(isinstance(v, (str, bool)) for v in value)):
        problems.append(f"format 'bool' must be two texts [true_text, false_text], "
                        f"e.g. [\"Yes\", \"No\"], got {value!r}")
    return problems


def _check_link(key: str, value: Any, element_type: str) -> list[str]:
    if not isinstance(value, str) or "{value}" not in value:
        return [f"format 'link' must be a URL template containing {{value}}, got {value!r}"]
    return []


def _check_affix(key: str, value: Any, element_type: str) -> list[str]:
    if not isinstance(value, str):
        return [f"format '{key}' must be a text, got {value!r}"]
    return []


def _check_combination(fmt: Mapping) -> list[str]:
    problems = []
    if "number" in fmt and "percent" in fmt:
        problems.append("format 'number' and 'percent' cannot be combined; choose one")
    if "link" in fmt:
        others = [k for k in fmt if k != "link" and k in FORMAT_KEYS]
        if others:
            problems.append(f"format 'link' cannot be combined with {', '.join(others)}")
    return problems


# --------------------------------------------------------------------------- display text


def result_type(column: OutputColumn) -> str:
    """The Trino type of a column of a QueryResult.

    OutputColumn.type is None when the compiler cannot tell a type; genesis.api.execute
    then fills in the engine's, so every column a destination is given has one. A None
    here means a result was built some other way: say so plainly rather than fail later.
    """
    if column.type is None:
        raise GenesisError(f"column '{column.name}' has no type; a query result's columns always carry one")
    return column.type


def format_value(value: Any, column_type: str, fmt: Mapping | None) -> str:
    """Display text of `value` (a to_pylist() value of `column_type`); None -> ""."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        element_type = array_element(column_type) if is_array(column_type) else "varchar"
        return ", ".join(format_value(v, element_type, fmt) for v in value)
    try:
        return _format_scalar(value, column_type, fmt or {})
    except Exception:  # a format that does not fit the value must not stop a refresh
        return raw_text(value, column_type)


def _format_scalar(value: Any, column_type: str, fmt: Mapping) -> str:
    if "link" in fmt:
        return str(fmt["link"]).replace("{value}", quote(raw_text(value, column_type), safe=""))
    if isinstance(value, bool):
        text = _bool_text(value, fmt.get("bool"))
    elif "date" in fmt and isinstance(value, (_dt.date, _dt.datetime)):
        text = strftime(value, fmt["date"])
    elif "percent" in fmt and _is_number(value):
        text = _percent_text(value, fmt["percent"])
    elif "number" in fmt and _is_number(value):
        text = _pattern_text(value, fmt["number"])
    else:
        text = display_text(value, column_type)
    return _affix(text, fmt, numeric=_is_number(value))


def _affix(text: str, fmt: Mapping, numeric: bool) -> str:
    prefix, suffix = str(fmt.get("prefix") or ""), str(fmt.get("suffix") or "")
    # "-$1,234", as spreadsheets show a negative number under "$"#,##0
    if numeric and prefix and text.startswith("-") and text[1:2].isdigit():
        return "-" + prefix + text[1:] + suffix
    return prefix + text + suffix


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def _bool_text(value: bool, texts: Any) -> str:
    if isinstance(texts, (list, tuple)) and len(texts) == 2:
        chosen = texts[0] if value else texts[1]
        # Unquoted Yes/No in YAML 1.1 arrive as booleans; show them as written.
        if isinstance(chosen, bool):
            return "Yes" if chosen else "No"
        return str(chosen)
    return "true" if value else "false"


def _to_decimal(value: Any) -> Decimal | None:
    """An exact Decimal for a finite number; None for NaN and infinities."""
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return Decimal(repr(value))  # the shortest text that reads back as this float
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    return Decimal(int(value))


def _non_finite(value: Any) -> str:
    value = float(value)
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def _pattern_text(value: Any, pattern: str) -> str:
    match = _NUMBER_PATTERN.match(pattern)
    if not match:
        return display_text(value, "double")
    number = _to_decimal(value)
    if number is None:
        return _non_finite(value)
    decimals = len(match.group("dec") or "")
    return group_number(number, decimals, bool(match.group("group")), len(match.group("int")))


def group_number(number: Decimal, decimals: int, grouping: bool, min_int_digits: int = 1) -> str:
    """`number` rounded half away from zero to `decimals` places, optionally grouped by 3."""
    rounded = number.quantize(Decimal(1).scaleb(-decimals), context=_CTX)
    negative = rounded < 0  # -0.00 shows as 0.00, like a spreadsheet
    whole, _, frac = format(rounded.copy_abs(), "f").partition(".")
    whole = whole.zfill(min_int_digits)
    if grouping:
        head = len(whole) % 3 or 3
        whole = ",".join([whole[:head]] + [whole[i:i + 3] for i in range(head, len(whole), 3)])
    return ("-" if negative else "") + whole + ("." + frac if frac else "")


def _percent_text(value: Any, digits: Any) -> str:
    number = _to_decimal(value)
    if number is None:
        return _non_finite(value)
    digits = int(digits) if isinstance(digits, int) else 0
    return group_number(_CTX.multiply(number, Decimal(100)), digits, False) + "%"


def strftime(value: _dt.date, pattern: str) -> str:
    """strftime for the supported directives, with English names whatever the locale."""
    def replace(match: re.Match) -> str:
        flag, code = match.groups()
        text = _directive_text(value, code, padded=not flag)
        return match.group(0) if text is None else text
    return _DIRECTIVE.sub(replace, pattern)


def _directive_text(value: _dt.date, code: str, padded: bool) -> str | None:
    hour = value.hour if isinstance(value, _dt.datetime) else 0
    minute = value.minute if isinstance(value, _dt.datetime) else 0
    second = value.second if isinstance(value, _dt.datetime) else 0
    numbers = {"m": value.month, "d": value.day, "H": hour, "I": (hour % 12) or 12,
               "M": minute, "S": second}
    if code in numbers:
        return f"{numbers[code]:02d}" if padded else str(numbers[code])
    names = {"Y": f"{value.year:04d}", "y": f"{value.year % 100:02d}",
             "b": _MONTHS[value.month - 1][:3], "B": _MONTHS[value.month - 1],
             "a": _DAYS[value.weekday()][:3], "A": _DAYS[value.weekday()],
             "p": "AM" if hour < 12 else "PM", "%": "%"}
    return names.get(code)


def display_text(value: Any, column_type: str) -> str:
    """Unformatted text for people: ISO dates with a space before the time, plain numbers."""
    if isinstance(value, _dt.datetime):
        return value.isoformat(sep=" ")
    return raw_text(value, column_type)


def raw_text(value: Any, column_type: str = "varchar", sep: str = " ") -> str:
    """The unformatted text of a value: ISO dates, plain numbers (never an exponent),
    decimals at their column's scale, booleans true/false; None -> ""."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, _dt.datetime):
        return value.isoformat(sep=sep)
    if isinstance(value, _dt.date):
        return value.isoformat()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        number = _to_decimal(value)
        return _non_finite(value) if number is None else format(number, "f")
    if isinstance(value, Decimal):
        return _decimal_text(value, column_type)
    if isinstance(value, (list, tuple)):
        element_type = array_element(column_type) if is_array(column_type) else "varchar"
        return ", ".join(raw_text(v, element_type, sep) for v in value)
    return str(value)


def _decimal_text(value: Decimal, column_type: str) -> str:
    if not value.is_finite():
        return _non_finite(value)
    if is_decimal(column_type):
        try:
            value = value.quantize(Decimal(1).scaleb(-decimal_scale(column_type)), context=_CTX)
        except InvalidOperation:
            pass  # keep a value that does not fit its declared scale as it came
    return format(value, "f")


# --------------------------------------------------------------------------- spreadsheets


def spreadsheet_number_format(column_type: str, fmt: Mapping | None) -> dict | None:
    """{"type": ..., "pattern": ...} for a spreadsheet cell of this column, or None.

    Patterns use the syntax Excel and Google Sheets share. Booleans, links and arrays
    have none: no number format can relabel them, so destinations write their text.
    """
    fmt = fmt or {}
    if is_array(column_type) or "link" in fmt or column_type == "boolean":
        return None
    if column_type in DATE_TYPES:
        return _date_format(column_type, fmt)
    if is_numeric(column_type):
        return _number_format(column_type, fmt)
    if fmt.get("prefix") or fmt.get("suffix"):
        return {"type": "TEXT", "pattern": _quoted_affixes("@", fmt)}
    return None


def excel_number_format(column_type: str, fmt: Mapping | None) -> str | None:
    """The number format string for an openpyxl cell, or None for the default."""
    spec = spreadsheet_number_format(column_type, fmt)
    return spec["pattern"] if spec else None


def _date_format(column_type: str, fmt: Mapping) -> dict:
    kind = "DATE" if column_type == "date" else "DATE_TIME"
    if isinstance(fmt.get("date"), str):
        pattern = strftime_to_spreadsheet(fmt["date"])
        codes = {code for _, code in _DIRECTIVE.findall(fmt["date"])}
        if kind == "DATE_TIME" and not codes & set("HIMSp"):
            kind = "DATE"  # a timestamp shown as a day
    else:
        pattern = "yyyy-mm-dd" if kind == "DATE" else "yyyy-mm-dd hh:mm:ss"
    return {"type": kind, "pattern": _quoted_affixes(pattern, fmt)}


def _number_format(column_type: str, fmt: Mapping) -> dict | None:
    if isinstance(fmt.get("percent"), int) and not isinstance(fmt.get("percent"), bool):
        digits = fmt["percent"]
        body = "0" + ("." + "0" * digits if digits else "") + "%"
        return {"type": "PERCENT", "pattern": _quoted_affixes(body, fmt)}
    if isinstance(fmt.get("number"), str) and _NUMBER_PATTERN.match(fmt["number"]):
        body = fmt["number"]
    elif is_decimal(column_type):
        scale = decimal_scale(column_type)
        body = "0" + ("." + "0" * scale if scale else "")
    elif fmt.get("prefix") or fmt.get("suffix"):
        body = "0" if column_type in INTEGER_TYPES else "General"
    else:
        return None
    affixes = {str(fmt.get("prefix") or "").strip(), str(fmt.get("suffix") or "").strip()}
    kind = "CURRENCY" if affixes & _CURRENCY_SYMBOLS else "NUMBER"
    return {"type": kind, "pattern": _quoted_affixes(body, fmt)}


def _quoted_affixes(body: str, fmt: Mapping) -> str:
    prefix, suffix = str(fmt.get("prefix") or ""), str(fmt.get("suffix") or "")
    return quote_literal(prefix) + body + quote_literal(suffix)


def quote_literal(text: str) -> str:
    """Text as a literal in a number format pattern: "..." with `"` escaped as \\"."""
    if not text:
        return ""
    parts = text.split('"')
    return '\\"'.join(f'"{p}"' if p else "" for p in parts)


def strftime_to_spreadsheet(pattern: str) -> str:
    """A strftime pattern as a spreadsheet date pattern; literal text is quoted."""
    out: list[str] = []
    literal: list[str] = []

    def flush() -> None:
        if literal:
            text = "".join(literal)
            out.append(text if set(text) <= _SAFE_LITERALS else quote_literal(text))
            literal.clear()

    position = 0
    for match in _DIRECTIVE.finditer(pattern):
        literal.extend(pattern[position:match.start()])
        position = match.end()
        flag, code = match.groups()
        token = (_SHEET_TOKENS_UNPADDED if flag else _SHEET_TOKENS).get(code)
        if code == "%" or token is None:
            literal.append("%" if code == "%" else match.group(0))
            continue
        flush()
        out.append(token)
    literal.extend(pattern[position:])
    flush()
    return "".join(out)
