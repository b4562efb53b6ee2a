"""`genesis diff --data`: run each changed tracker at both refs and compare the rows.

Both sides run on the same target (the base's SQL runs where the head's does), so the
difference is the change's, not the data's. Rows are matched by the tracker's key when
both sides have its columns, else compared whole as multisets.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, datetime, time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ..compiler import CompiledQuery, compile_tracker
from ..errors import GenesisError
from ..project.model import Project

if TYPE_CHECKING:
    from ..engines import Engine
    from .sql_diff import DiffReport


def add_row_diffs(report: DiffReport, base: Project, head: Project, target: str | None) -> None:
    """Run each changed tracker at both refs on `target` and attach the row diff."""
    from ..engines import open_engine
    from ..project.config import get_target

    report.target = get_target(head, target).name
    changed = report.by_status("changed")
    if not changed:
        return
    engine = open_engine(head, target)  # the base's SQL runs where the head's does
    try:
        from ..run.fan_out_refresh import part_row_diffs

        for change in changed:
            fans_out = any(p.trackers.get(change.name) and p.trackers[change.name].for_each for p in (base, head))
            change.data = (part_row_diffs(base, head, change.name, engine) if fans_out
                           else row_diff_for(base, head, change.name, engine))
    finally:
        engine.close()


def row_diff_for(base: Project, head: Project, name: str, engine: Engine) -> dict[str, Any]:
    """Tracker `name` run on `engine` as each project defines it; {"error": ...} if a side fails."""
    from ..api import execute

    results = []
    for side, project in (("base", base), ("head", head)):
        try:
            compiled = compile_tracker(project, name)  # remembered from the SQL diff
            results.append((compiled, execute(compiled, engine, label=f"diff:{name}")))
        except GenesisError as exc:
            return {"error": f"{side}: {exc.render()}"}
    (old_q, old_r), (new_q, new_r) = results
    keys = [_key_column(old_q, new_q, ref) for ref in head.trackers[name].key]
    return diff_rows(old_r.table.to_pylist(), new_r.table.to_pylist(),
                     [k for k in keys if k] if keys and all(keys) else [])


def _key_column(old: CompiledQuery, new: CompiledQuery, reference: str) -> tuple[str, str] | None:
    """(base column, head column) names of a key reference, or None when a side lacks it."""
    a, b = old.column_for(reference), new.column_for(reference)
    return (a.name, b.name) if a and b else None


def diff_rows(old_rows: list[dict[str, Any]], new_rows: list[dict[str, Any]], keys: list[tuple[str, str]],
              examples: int = 5) -> dict[str, Any]:
    """Rows added, removed and changed by key (a key is (base column, head column) names).

    Without a key, rows are compared whole, as multisets. Values are compared in the
    columns both sides have.
    """
    old_cols, new_cols = list(old_rows[0]) if old_rows else [], list(new_rows[0]) if new_rows else []
    common = [c for c in new_cols if c in old_cols] if old_rows and new_rows else []
    out: dict[str, Any] = {
        "base_rows": len(old_rows), "head_rows": len(new_rows),
        "columns_added": [c for c in new_cols if old_rows and c not in old_cols],
        "columns_removed": [c for c in old_cols if new_rows and c not in new_cols],
        "key": [k[1] for k in keys],
    }
    if keys:
        out.update(_diff_by_key(old_rows, new_rows, keys, common, examples))
    else:
        out.update(_diff_whole(old_rows, new_rows, common, examples))
    return out


def _diff_by_key(old_rows: list[dict[str, Any]], new_rows: list[dict[str, Any]], keys: list[tuple[str, str]],
                 common: list[str], examples: int) -> dict[str, Any]:
    old_by = {tuple(_plain(r[k[0]]) for k in keys): r for r in old_rows}
    new_by = {tuple(_plain(r[k[1]]) for k in keys): r for r in new_rows}
    added = [k for k in new_by if k not in old_by]
    removed = [k for k in old_by if k not in new_by]
    changed: list[dict[str, Any]] = []
    per_column: dict[str, int] = {}
    for key in new_by.keys() & old_by.keys():
        cells = {c: [_plain(old_by[key][c]), _plain(new_by[key][c])] for c in common
                 if _plain(old_by[key][c]) != _plain(new_by[key][c])}
        if cells:
            changed.append({"key": _key_value(key), "changes": cells})
            for column in cells:
                per_column[column] = per_column.get(column, 0) + 1
    changed.sort(key=lambda c: json.dumps(c["key"], default=str))
    return {
        "added": len(added), "removed": len(removed), "changed": len(changed),
        "changed_columns": dict(sorted(per_column.items())),
        "duplicate_keys": (len(old_rows) - len(old_by)) + (len(new_rows) - len(new_by)),
        "examples": {"added": [_key_value(k) for k in sorted(added, key=str)[:examples]],
                     "removed": [_key_value(k) for k in sorted(removed, key=str)[:examples]],
                     "changed": changed[:examples]},
    }


def _diff_whole(old_rows: list[dict[str, Any]], new_rows: list[dict[str, Any]], common: list[str],
                examples: int) -> dict[str, Any]:
    def rows(items: list[dict[str, Any]]) -> Counter[str]:
        return Counter(json.dumps([_plain(r[c]) for c in common] if common else
                                  [_plain(v) for v in r.values()], default=str) for r in items)

    old_c, new_c = rows(old_rows), rows(new_rows)
    added, removed = new_c - old_c, old_c - new_c
    return {"added": sum(added.values()), "removed": sum(removed.values()), "changed": None,
            "examples": {"added": [json.loads(r) for r in list(added)[:examples]],
                         "removed": [json.loads(r) for r in list(removed)[:examples]], "changed": []}}


def _key_value(key: tuple[Any, ...]) -> Any:
    return key[0] if len(key) == 1 else list(key)


def _plain(value: Any) -> Any:
    """A JSON-friendly, comparable copy of a cell value."""
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value.normalize()) if value == value else None
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value
