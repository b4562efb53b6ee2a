"""The keyed diff every annotated destination shares (Google Sheets, Airtable).

A destination is a table that people annotate. Genesis owns some of its columns (the
output columns and the status column); every other column belongs to people. Rows are
matched by key, never by position, so a person may re-sort, insert or delete rows and a
refresh still lands on the right row. This module turns "what the destination holds"
and "what the query returned" into a `Plan`; it does no I/O, so each destination reads
once, calls `plan_sync`, and writes only what the plan says.

API
---
`normalize(value)` / `same(a, b)`
    The comparable form of a cell value, equal on both sides of a round trip:
    None/""/NaN -> None; bool -> `Bool`; numbers -> float rounded to 15 significant
    digits (what a spreadsheet keeps), so 1 == 1.0 == Decimal("1.00"); integers and
    decimals of 1e15 or more -> their exact text (a spreadsheet would round them); dates
    and timestamps -> spreadsheet serial days (1899-12-30 = 0, UTC for aware values), so
    a date equals the serial a sheet returns for it; lists/tuples -> tuples of normalised
    items; anything else -> str. Destinations that store dates as text should convert
    them to `datetime.date` before calling `plan_sync`.
`ExistingRow(row_id, key, values, annotated=False, marked=False)`
    One row of the destination. `row_id` is the destination's handle (a sheet row index,
    an Airtable record id) and is only passed back. `key` is the tuple of key cell values
    (raw), `values` maps owned column name -> raw value (missing names read as empty).
    `annotated` is True when a column Genesis does not own holds something in that row
    (or a person left a note on it); `marked` is True when its status cell says
    `STATUS_REMOVED`. A row whose key cells are all empty is a person's row: it is never
    matched (see `replace` below for the one thing that touches it).
`ResultRow(key, values)`
    One row of the new result, same shapes.
`plan_sync(existing, result, *, columns, key_names, mode="upsert", on_removed="delete")`
    -> `Plan`. `columns` are the owned column names compared (in write order); `key_names`
    are the key column names, used in messages. Raises `GenesisError` before anything is
    written on: duplicate keys in the result, duplicate keys in the destination, a result
    row with an empty key, an unknown mode/policy.
`check_policy(mode, on_removed)` -> the canonical (mode, on_removed); raises on a bad one.
`apply_plan(existing, result, plan)` -> list[ExistingRow]: what the destination holds
    after the plan, with inserted rows at the end (row ids `("new", i)`). The reference
    semantics destinations implement; used by property tests and dry runs.

Modes
-----
upsert   update rows whose owned values changed, add new keys at the end, handle keys that
         left the result per `on_removed`. People's row order is kept.
replace  as upsert, and the owned block becomes exactly the result: keyless rows inside
         the block that hold only owned values (or nothing) are deleted, annotated ones
         get their owned cells cleared; `on_removed: keep` is refused (it would leave stale
         rows in the block).
append   add rows whose key is new; never update, delete or mark existing rows.

Removed-row policy (tracker field `on_removed`)
-----------------------------------------------
delete   (default) delete rows whose key left the result unless annotated; an annotated
         one is kept and marked in the status column, so no person's note is lost.
mark     keep every removed row and mark it.
keep     leave removed rows as they are, unmarked.
A marked row whose key comes back is unmarked (and updated if its values changed).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from ..errors import GenesisError

MODES = ("upsert", "replace", "append")
POLICIES = ("delete", "mark", "keep")
POLICY_ALIASES = {"delete_unannotated": "delete"}  # genesis.project.model's historical default
STATUS_COLUMN = "Genesis status"  # owned column, created the first time a row is marked
STATUS_REMOVED = "removed"  # its value on a row whose key left the result

_SERIAL_EPOCH = datetime(1899, 12, 30)
_BIG = 10**15  # a spreadsheet keeps 15 significant digits; larger integers go as text


@dataclass(frozen=True, slots=True)
class Bool:
    """A normalised boolean: never equal to the numbers 0 and 1, unlike Python's bool."""

    value: bool


def normalize(value: Any) -> Hashable:
    """The comparable form of a cell value (see the module docstring)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return Bool(value)
    if isinstance(value, str):
        return value or None
    if isinstance(value, int):
        return _number(float(value)) if -_BIG < value < _BIG else str(value)
    if isinstance(value, float):
        return _number(value) if math.isfinite(value) else None
    if isinstance(value, Decimal):
        if not value.is_finite():
            return None
        return _number(float(value)) if -_BIG < value < _BIG else _decimal_text(value)
    if isinstance(value, (datetime, date, time)):
        return _number(serial(value))
    if isinstance(value, (list, tuple)):
        return tuple(normalize(v) for v in value)
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), normalize(v)) for k, v in value.items()))
    return str(value)


def _number(x: float) -> float:
    # 15 significant digits: what survives a spreadsheet round trip; -0.0 becomes 0.0
    rounded = float(format(x, ".15g")) + 0.0
    return rounded if math.isfinite(rounded) else x  # near the float maximum rounding overflows


def _decimal_text(value: Decimal) -> str:
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def serial(value: date | datetime | time) -> float:
    """Spreadsheet serial days: 1899-12-30 is 0, the fraction is the time of day (UTC)."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return (value - _SERIAL_EPOCH).total_seconds() / 86400
    if isinstance(value, date):
        return float((value - _SERIAL_EPOCH.date()).days)
    return (value.hour * 3600 + value.minute * 60 + value.second + value.microsecond / 1e6) / 86400


@dataclass(frozen=True)
class ExistingRow:
    """One row the destination holds, as the destination read it (see the module docstring)."""

    row_id: Any
    key: tuple
    values: Mapping[str, Any]
    annotated: bool = False
    marked: bool = False


@dataclass(frozen=True)
class ResultRow:
    """One row of the new query result: its raw key cells and owned column values."""

    key: tuple
    values: Mapping[str, Any]


@dataclass(frozen=True)
class Update:
    """Write `columns` of row `row_id` with their values from `values` (the full new row)."""

    row_id: Any
    key: tuple
    columns: tuple[str, ...]
    values: Mapping[str, Any]


@dataclass(frozen=True)
class Plan:
    """What a refresh changes in the destination, by key, made by `plan_sync` before any write (no I/O);
    the destination then writes exactly this."""

    inserts: tuple[ResultRow, ...] = ()  # new keys, in result order
    updates: tuple[Update, ...] = ()  # only rows whose owned values changed
    unchanged: tuple[Any, ...] = ()  # row ids matched and equal
    deletes: tuple[Any, ...] = ()  # row ids, in destination order
    marks: tuple[Any, ...] = ()  # row ids to flag STATUS_REMOVED
    unmarks: tuple[Any, ...] = ()  # row ids whose flag is cleared (their key came back)
    kept: tuple[Any, ...] = ()  # removed rows left as they are (keep, or already marked)
    ignored: tuple[Any, ...] = ()  # keyless rows nobody asked us to touch
    mode: str = "upsert"
    on_removed: str = "delete"

    @property
    def changes(self) -> int:
        """How many rows the plan changes: inserted, updated, deleted, marked or unmarked."""
        return len(self.inserts) + len(self.updates) + len(self.deletes) + len(self.marks) + len(self.unmarks)

    @property
    def is_noop(self) -> bool:
        """The plan changes no row (unchanged, kept and ignored rows are no change)."""
        return self.changes == 0

    def counts(self) -> dict[str, int]:
        """Rows per outcome, under the names of SyncReport's counters (which SyncReport.count sets from it)."""
        return {
            "inserted": len(self.inserts),
            "updated": len(self.updates),
            "deleted": len(self.deletes),
            "marked": len(self.marks),
            "unmarked": len(self.unmarks),
            "unchanged": len(self.unchanged),
            "kept": len(self.kept),
        }


def check_policy(mode: str, on_removed: str | None) -> tuple[str, str]:
    """The canonical (mode, on_removed), or a GenesisError naming the allowed values."""
    policy = POLICY_ALIASES.get(on_removed or "delete", on_removed or "delete")
    if mode not in MODES:
        raise GenesisError(f"unknown mode '{mode}'", hint=f"use one of: {', '.join(MODES)}")
    if policy not in POLICIES:
        raise GenesisError(f"unknown on_removed policy '{on_removed}'", hint=f"use one of: {', '.join(POLICIES)}")
    if mode == "replace" and policy == "keep":
        raise GenesisError(
            "mode 'replace' cannot keep removed rows unmarked (on_removed: keep)",
            hint="use on_removed: delete or mark, or mode: upsert",
        )
    return mode, policy


def plan_sync(
    existing: Sequence[ExistingRow],
    result: Sequence[ResultRow],
    *,
    columns: Sequence[str],
    key_names: Sequence[str],
    mode: str = "upsert",
    on_removed: str | None = "delete",
) -> Plan:
    """Diff the destination against the result; see the module docstring."""
    mode, policy = check_policy(mode, on_removed)
    columns = tuple(columns)
    new_by_key = _index_result(result, key_names)
    old_by_key, keyless = _index_existing(existing, key_names)

    inserts = [row for k, row in new_by_key.items() if k not in old_by_key]
    if mode == "append":
        return Plan(inserts=tuple(inserts), unchanged=tuple(r.row_id for r in old_by_key.values()),
                    ignored=tuple(r.row_id for r in keyless), mode=mode, on_removed=policy)

    updates: list[Update] = []
    unchanged: list[Any] = []
    deletes: list[Any] = []
    marks: list[Any] = []
    unmarks: list[Any] = []
    kept: list[Any] = []
    for k, old in old_by_key.items():
        new = new_by_key.get(k)
        if new is None:
            action = _removed_action(old, policy)
            {"delete": deletes, "mark": marks, "kept": kept}[action].append(old.row_id)
            continue
        if old.marked:
            unmarks.append(old.row_id)
        changed = _changed_columns(old.values, new.values, columns)
        if changed:
            updates.append(Update(old.row_id, new.key, changed, new.values))
        elif not old.marked:
            unchanged.append(old.row_id)

    ignored = []
    for old in keyless:
        if mode != "replace":
            ignored.append(old.row_id)
        elif not old.annotated:
            deletes.append(old.row_id)
        else:
            changed = _changed_columns(old.values, {}, columns)
            if changed:
                updates.append(Update(old.row_id, old.key, changed, {}))
            else:
                ignored.append(old.row_id)

    order = {r.row_id: i for i, r in enumerate(existing)}
    deletes.sort(key=order.__getitem__)
    return Plan(tuple(inserts), tuple(updates), tuple(unchanged), tuple(deletes), tuple(marks),
                tuple(unmarks), tuple(kept), tuple(ignored), mode, policy)


def _removed_action(old: ExistingRow, policy: str) -> str:
    if policy == "keep":
        return "kept"
    if policy == "delete" and not old.annotated:
        return "delete"
    return "kept" if old.marked else "mark"


def _changed_columns(old: Mapping[str, Any], new: Mapping[str, Any], columns: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(c for c in columns if not same(old.get(c), new.get(c)))


def same(a: Any, b: Any) -> bool:
    """normalize(a) == normalize(b), without normalising values that are already equal."""
    if type(a) is type(b):
        if type(a) is tuple:  # element by element: (True, ...) must not equal (1.0, ...)
            return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
        if a == b:
            return True
    return normalize(a) == normalize(b)


def key_of(raw: Iterable[Any]) -> tuple:
    """The normalised key tuple of raw key cell values."""
    return tuple(normalize(v) for v in raw)


def _is_empty_key(key: tuple) -> bool:
    return all(part is None for part in key)


def _index_result(result: Sequence[ResultRow], key_names: Sequence[str]) -> dict[tuple, ResultRow]:
    by_key: dict[tuple, ResultRow] = {}
    empty = 0
    counts: Counter = Counter()
    for row in result:
        k = key_of(row.key)
        if _is_empty_key(k):
            empty += 1
            continue
        counts[k] += 1
        by_key.setdefault(k, row)
    if empty:
        raise GenesisError(
            f"the key ({', '.join(key_names)}) is empty in {empty} result row(s)",
            hint="a row without a key cannot be matched across refreshes; filter those rows out or change `key`",
        )
    duplicates = [(k, n) for k, n in counts.items() if n > 1]
    if duplicates:
        shown = "; ".join(f"{describe_key(key_names, by_key[k].key)} ({n} rows)" for k, n in duplicates[:5])
        more = f" and {len(duplicates) - 5} more" if len(duplicates) > 5 else ""
        raise GenesisError(
            f"duplicate key in the result: {shown}{more}",
            hint="make `key` identify one row (add a column to it) or add a `unique` check",
        )
    return by_key


def _index_existing(existing: Sequence[ExistingRow], key_names: Sequence[str]):
    by_key: dict[tuple, ExistingRow] = {}
    rows_of: dict[tuple, list] = {}
    keyless = []
    for row in existing:
        k = key_of(row.key)
        if _is_empty_key(k):
            keyless.append(row)
            continue
        rows_of.setdefault(k, []).append(row)
        by_key.setdefault(k, row)
    duplicates = [(k, rows) for k, rows in rows_of.items() if len(rows) > 1]
    if duplicates:
        shown = "; ".join(
            f"{describe_key(key_names, rows[0].key)} (rows {', '.join(str(r.row_id) for r in rows)})"
            for k, rows in duplicates[:5]
        )
        more = f" and {len(duplicates) - 5} more" if len(duplicates) > 5 else ""
        raise GenesisError(
            f"the destination holds duplicate keys: {shown}{more}",
            hint="remove or fix the duplicate rows in the destination, then refresh again; nothing was written",
        )
    return by_key, keyless


def describe_key(key_names: Sequence[str], raw: Sequence[Any]) -> str:
    """`movie_id=42, country=US` for messages."""
    names = list(key_names) or [f"key{i + 1}" for i in range(len(raw))]
    return ", ".join(f"{n}={v!r}" if isinstance(v, str) else f"{n}={v}" for n, v in zip(names, raw))


def apply_plan(existing: Sequence[ExistingRow], result: Sequence[ResultRow], plan: Plan) -> list[ExistingRow]:
    """What the destination holds after `plan` (reference semantics; no I/O)."""
    updates = {u.row_id: u for u in plan.updates}
    deletes, marks, unmarks = set(plan.deletes), set(plan.marks), set(plan.unmarks)
    out = []
    for row in existing:
        if row.row_id in deletes:
            continue
        values, key = dict(row.values), row.key
        if row.row_id in updates:
            u = updates[row.row_id]
            values.update({c: u.values.get(c) for c in u.columns})
        marked = (row.marked or row.row_id in marks) and row.row_id not in unmarks
        out.append(ExistingRow(row.row_id, key, values, row.annotated, marked))
    for i, new in enumerate(plan.inserts):
        out.append(ExistingRow(("new", i), new.key, dict(new.values)))
    return out
