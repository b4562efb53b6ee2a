"""A plain-text table of a query result for people (`genesis run --format table`)."""

from __future__ import annotations

import unicodedata

from ..destinations.formatting import format_value
from ..project.types import is_array, is_numeric
from ..result import QueryResult

MAX_CELL = 60  # a long text is cut so one value cannot make the table unreadable
MIN_CELL = 6  # a column is never narrowed below this to fit the terminal
SEPARATOR = " | "


def render_table(result: QueryResult, max_rows: int = 50, width: int | None = None, cut: bool = True) -> str:
    """Columns formatted with their `format`, numbers right-aligned, a row-count footer.

    With `cut`, a text longer than MAX_CELL is cut with "…"; with `width`, the widest
    columns are narrowed (never below MIN_CELL) until a line fits in `width` characters.
    `cut=False` shows every value whole (`genesis run --wide`).
    """
    total = result.table.num_rows
    shown = result.table.slice(0, max(max_rows, 0))
    limit = MAX_CELL if cut else None
    header = [_clean(c.name, limit) for c in result.columns]
    # api.execute fills in the engine's type for a column the compiler could not type, so
    # None is not expected here; a result built otherwise shows such a column as text.
    column_types = [c.type or "varchar" for c in result.columns]
    rows = [[_clean(format_value(v, t, c.format), limit) for v in values.to_pylist()]
            for c, t, values in zip(result.columns, column_types, shown.columns)]
    rows = [list(r) for r in zip(*rows)] if rows else []
    right = [is_numeric(t) and not is_array(t) and "link" not in (c.format or {})
             for c, t in zip(result.columns, column_types)]
    widths = [max([_width(h)] + [_width(r[i]) for r in rows]) for i, h in enumerate(header)]
    if cut and width:
        # Text and links may be cut to MIN_CELL; a number or a date never is (cut short, it
        # would read as another value): only its header may be cut, down to its values' width.
        text = [t == "varchar" or is_array(t) or "link" in (c.format or {}) for c, t in zip(result.columns, column_types)]
        least = [MIN_CELL if t else max([MIN_CELL] + [_width(r[i]) for r in rows]) for i, t in enumerate(text)]
        widths = _fit(widths, width, least)
    narrowed = any(_width(c) > w for r in [header, *rows] for c, w in zip(r, widths))
    lines = []
    if header:
        lines.append(_line(header, widths, right))
        lines.append("-+-".join("-" * w for w in widths))
        lines.extend(_line(r, widths, right) for r in rows)
    footer = _footer(total, shown.num_rows)
    if narrowed or (cut and any(c.endswith("…") for r in rows for c in r)):
        footer += "; long text cut (--wide shows it whole, --format csv every value)"
    lines.append(footer)
    return "\n".join(lines) + "\n"


def _fit(widths: list[int], width: int, least: list[int]) -> list[int]:
    """Narrow the widest column that can give, one character at a time, until the line fits
    (or no column can give more): column i never goes below least[i]."""
    widths = list(widths)
    while sum(widths) + len(SEPARATOR) * (len(widths) - 1) > width:
        shrinkable = [i for i, w in enumerate(widths) if w > least[i]]
        if not shrinkable:
            break
        widest = max(shrinkable, key=lambda i: widths[i])
        widths[widest] -= 1
    return widths


def _footer(total: int, shown: int) -> str:
    text = f"{total} row" + ("" if total == 1 else "s")
    return text + (f" (showing first {shown})" if shown < total else "")


def _line(cells: list[str], widths: list[int], right: list[bool]) -> str:
    padded = [_pad(_truncate(c, w), w, r) for c, w, r in zip(cells, widths, right)]
    return SEPARATOR.join(padded).rstrip()


def _truncate(text: str, width: int) -> str:
    """Cut a cell to `width` terminal columns, ending in "…" when anything was cut."""
    if _width(text) <= width:
        return text
    out, used = "", 0
    for char in text:
        step = _width(char)
        if used + step > width - 1:
            break
        out, used = out + char, used + step
    return out + "…"


def _pad(text: str, width: int, right: bool) -> str:
    gap = " " * (width - _width(text))
    return gap + text if right else text + gap


def _clean(text: str, limit: int | None = MAX_CELL) -> str:
    """One line (newlines and tabs shown as spaces), cut to `limit` characters if given."""
    text = " ".join(text.replace("\t", " ").splitlines()) if text else ""
    return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"


def _width(text: str) -> int:
    """Terminal columns: wide East Asian characters take two, combining marks none."""
    width = 0
    for char in text:
        if unicodedata.combining(char):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width
