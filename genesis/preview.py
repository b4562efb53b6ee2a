"""A plain-text table of a query result for people (`genesis run --format table`)."""

from __future__ import annotations

import unicodedata

from .formatting import format_value
from .result import QueryResult
from .types import is_array, is_numeric

MAX_CELL = 60  # a long text is cut so one value cannot make the table unreadable


def render_table(result: QueryResult, max_rows: int = 50) -> str:
    """Columns formatted with their `format`, numbers right-aligned, a row-count footer."""
    total = result.table.num_rows
    shown = result.table.slice(0, max(max_rows, 0))
    header = [_clean(c.name) for c in result.columns]
    rows = [[_clean(format_value(v, c.type, c.format)) for v in values.to_pylist()]
            for c, values in zip(result.columns, shown.columns)]
    rows = [list(r) for r in zip(*rows)] if rows else []
    right = [is_numeric(c.type) and not is_array(c.type) and "link" not in (c.format or {})
             for c in result.columns]
    widths = [max([_width(h)] + [_width(r[i]) for r in rows]) for i, h in enumerate(header)]
    lines = []
    if header:
        lines.append(_line(header, widths, right))
        lines.append("-+-".join("-" * w for w in widths))
        lines.extend(_line(r, widths, right) for r in rows)
    lines.append(_footer(total, shown.num_rows))
    return "\n".join(lines) + "\n"


def _footer(total: int, shown: int) -> str:
    text = f"{total} row" + ("" if total == 1 else "s")
    return text + (f" (showing first {shown})" if shown < total else "")


def _line(cells: list[str], widths: list[int], right: list[bool]) -> str:
    padded = [_pad(c, w, r) for c, w, r in zip(cells, widths, right)]
    return " | ".join(padded).rstrip()


def _pad(text: str, width: int, right: bool) -> str:
    gap = " " * (width - _width(text))
    return gap + text if right else text + gap


def _clean(text: str) -> str:
    """One line, bounded length: newlines and tabs shown as spaces."""
    text = " ".join(text.replace("\t", " ").splitlines()) if text else ""
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def _width(text: str) -> int:
    """Terminal columns: wide East Asian characters take two, combining marks none."""
    width = 0
    for char in text:
        if unicodedata.combining(char):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width
