"""Schemas and inputs as plain data: what the differential test generates, the evaluator
reads, and `project.py` writes out as a Genesis project."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .expr import Expr, Ref


@dataclass
class FieldSpec:
    name: str
    type: str
    sql: Expr | None = None  # over the table's own columns (Col)
    labels: dict[str, str] | None = None


@dataclass
class MeasureSpec:
    name: str
    agg: str | None  # None: a derived measure, `arg` over Refs to measures relative to its source
    arg: Expr | None = None  # Col(field name) names a field; other trees read table columns
    type: str | None = None


@dataclass
class JoinSpec:
    name: str
    target: str
    on: tuple[tuple[str, str], ...]  # (this source's field, target's field)
    relationship: str
    inner: bool = False


@dataclass
class SourceSpec:
    name: str
    table: str  # the Iceberg table name (namespace `t`)
    columns: dict[str, str]  # table columns and their types
    pk: list[str]
    fields: dict[str, FieldSpec]
    measures: dict[str, MeasureSpec] = field(default_factory=dict)
    joins: dict[str, JoinSpec] = field(default_factory=dict)
    latest: tuple[str, Expr | None] | None = None  # (order_by column, deleted condition)
    segments: dict[str, Expr] = field(default_factory=dict)  # conditions over its fields (Col)


@dataclass
class Item:
    """One input field: a reference (with optional agg:) or a computed column (`sql`)."""
    name: str  # the output column name (written as `label:` / `name:`)
    ref: Ref | None = None
    agg: str | None = None
    sql: Expr | None = None


@dataclass
class InputSpec:
    name: str
    root: str
    items: list[Item]
    filters: list[Expr] = field(default_factory=list)
    params: dict[str, tuple[str, Any]] = field(default_factory=dict)  # name -> (type, value)
    sort: list[tuple[Any, bool]] = field(default_factory=list)  # (output name | Ref, descending)
    limit: int | None = None


Schema = dict[str, SourceSpec]
Rows = dict[str, list[dict[str, Any]]]  # table name -> rows (as stored, CDC log included)
