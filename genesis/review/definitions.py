"""Comparing two versions of a definition: which keys of a data source, input or tracker differ.

Both sides are turned into plain values without the keys that describe a definition
without changing what it computes (locations, descriptions), so a comment or a moved
line is not a change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from typing import Any

from ..project.model import DataSource, Input, Project, Tracker

# Keys that describe a definition without changing what it computes.
_IGNORED_KEYS = frozenset({"loc", "locs", "path", "sql_loc", "description"})


def definition(value: Any) -> Any:
    """A plain, comparable copy of a model object without locations and descriptions."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: definition(getattr(value, f.name)) for f in fields(value) if f.name not in _IGNORED_KEYS}
    if isinstance(value, Mapping):
        return {str(k): definition(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [definition(v) for v in value]
    return value


def graph_definition(project: Project) -> dict[str, Any]:
    """Every data source's joins: shortest-path resolution depends on all of them, not only
    the ones a tracker uses, so two projects with equal graphs resolve references alike."""
    return {name: definition(ds.joins) for name, ds in project.datasources.items()}


def datasource_changes(old: DataSource, new: DataSource) -> list[tuple[str | None, str]]:
    """(reference key or None, description) per difference between two data source versions.

    The key (`movie.title`, `movie.join:cast`) lets a diff keep the changes a tracker reads.
    """
    changes: list[tuple[str | None, str]] = []
    a, b = definition(old), definition(new)
    for key in sorted(set(a) | set(b)):
        if key in ("fields", "measures", "joins", "segments", "name") or a.get(key) == b.get(key):
            continue
        changes.append((None, f"data source '{new.name}': {key.replace('_', ' ')} changed"))
    for collection, noun in (("fields", "field"), ("measures", "measure"), ("joins", "join"),
                             ("segments", "segment")):
        for member, what in _member_changes(a[collection], b[collection]):
            key = f"{new.name}.join:{member}" if collection == "joins" else f"{new.name}.{member}"
            changes.append((key, f"data source '{new.name}': {noun} '{member}' {what}"))
    return changes


def _member_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(name, "removed" | "added" | "changed") for the members of two versions, old order first."""
    out = []
    for name in list(old) + [n for n in new if n not in old]:
        if name not in new:
            out.append((name, "removed"))
        elif name not in old:
            out.append((name, "added"))
        elif old[name] != new[name]:
            out.append((name, "changed"))
    return out


def input_changes(old: Input, new: Input) -> list[str]:
    """What differs between two versions of an input, one sentence per key or column."""
    a, b = definition(old), definition(new)
    out = []
    for key in sorted(set(a) | set(b)):
        if key == "fields" or a.get(key) == b.get(key):
            continue
        out.append(f"input '{new.name}': {'from' if key == 'root' else key} changed")
    old_cols = {c["name"]: c for c in a["fields"]}
    new_cols = {c["name"]: c for c in b["fields"]}
    for name, what in _member_changes(old_cols, new_cols):
        out.append(f"input '{new.name}': column '{name}' {what}")
    if not out and a != b:
        out.append(f"input '{new.name}' changed")
    return out


def tracker_setting_changes(old: Tracker, new: Tracker) -> list[str]:
    """The tracker's own keys that differ (destination, schedule, parameters...)."""
    a, b = definition(old), definition(new)
    return [key for key in a if key != "name" and a[key] != b.get(key)]


def format_changes(old: Input, new: Input) -> list[str]:
    """The names of the columns both versions have whose `format` differs (same SQL, new look)."""
    by_name = {c.name: c for c in old.fields}
    return [c.name for c in new.fields if c.name in by_name and c.format != by_name[c.name].format]
