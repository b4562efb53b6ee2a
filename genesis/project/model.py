"""The semantic model: frozen dataclasses built from validated YAML.

Every object remembers where it was defined (`loc`) so that later stages, from
reference resolution to a Trino error, can point the user at the right line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..destinations.kinds import AirtableDestination, AnyDestination, FileDestination, SheetsDestination, destination_of
from ..errors import Location

RELATIONSHIPS = ("many_to_one", "one_to_one", "one_to_many")
MEASURE_AGGS = ("count", "count_distinct", "sum", "avg", "min", "max")
FIELD_AGGS = ("list", "count", "count_distinct", "min", "max", "sum", "avg")
MODES = ("upsert", "replace", "append")


class Derived:
    """Values computed from a frozen object once, remembered on it (it never changes): the
    project's join graph and compiled queries, a data source's `latest` view."""

    def derived(self, name: str, build):
        """The value called `name`, built by `build()` on first use."""
        store = self.__dict__.setdefault("_derived", {})
        if name not in store:
            store[name] = build()
        return store[name]


@dataclass(frozen=True)
class Field:
    """A field of a data source: a column of its table, or (with `sql`) an expression over its columns."""

    name: str
    type: str  # canonical Trino type
    description: str = ""
    sql: str | None = None  # Trino expression over the table's own columns
    labels: Mapping[str, str] | None = None
    loc: Location = Location("")
    sql_loc: Location | None = None


@dataclass(frozen=True)
class Measure:
    """A named aggregate of a data source (`agg` of `sql`), or (no `agg`) a measure derived from other measures."""

    name: str
    agg: str | None  # None: a derived measure, `sql` over other measures (compiler/derived.py)
    sql: str | None = None  # expression over the table's own columns (or `field`)
    type: str | None = None
    description: str = ""
    loc: Location = Location("")
    sql_loc: Location | None = None

    @property
    def derived(self) -> bool:
        """A measure computed from other measures, each at its own grain, not an aggregate of rows."""
        return self.agg is None


@dataclass(frozen=True)
class Segment:
    """A named, reusable row condition of a data source (`filters: [movie.active]`).

    `sql` reads the data source's fields by name (and fields of joined data sources by
    reference); a reference to the segment means that condition at the referring instance.
    """

    name: str
    sql: str
    description: str = ""
    loc: Location = Location("")
    sql_loc: Location | None = None
    type: str = "boolean"  # a segment used as a column is a boolean


@dataclass(frozen=True)
class Join:
    """A declared join from a data source to `datasource` on (column, column) pairs; `relationship` keeps
    aggregates right when the join repeats rows."""

    name: str
    datasource: str
    on: tuple[tuple[str, str], ...]  # (this source's field, target's field) pairs
    relationship: str
    type: str = "left"  # left | inner
    description: str = ""
    loc: Location = Location("")
    required: bool = False  # every row has its parent (declared integrity): LEFT may print as INNER


@dataclass(frozen=True)
class Latest:
    """`latest:`: read the newest row per primary key (greatest `order_by`), dropping keys whose newest row
    matches `deleted` (the table is an append-only change log)."""

    order_by: str
    deleted: str | None = None
    loc: Location = Location("")


@dataclass(frozen=True)
class DataSource(Derived):
    """One data source file: a table, its fields, measures and segments, and its joins to other data sources."""

    name: str
    table: str
    fields: Mapping[str, Field]
    measures: Mapping[str, Measure] = field(default_factory=dict)
    joins: Mapping[str, Join] = field(default_factory=dict)
    primary_key: tuple[str, ...] = ()
    latest: Latest | None = None
    description: str = ""
    path: str = ""
    loc: Location = Location("")
    locs: Mapping[str, Location] = field(default_factory=dict)  # where each top-level key's value is
    segments: Mapping[str, Segment] = field(default_factory=dict)


@dataclass(frozen=True)
class InputField:
    """One output column of an input: a reference (`field`) or a computed column (`sql`)."""

    name: str  # output column name: label, else the reference's last segment or `name`
    field: str | None = None  # reference, e.g. 'production.shoot_start'
    sql: str | None = None  # computed column expression over references
    type: str | None = None
    label: str | None = None
    agg: str | None = None
    format: Mapping[str, Any] | None = None
    description: str = ""
    loc: Location = Location("")
    sql_loc: Location | None = None
    grain: str | None = None  # day | week | month | quarter | year: the period's first day (compiler/time.py)


@dataclass(frozen=True)
class Filter:
    """A SQL condition, or (with `range`) a relative date range on the reference in `sql`."""

    sql: str
    loc: Location = Location("")
    range: str | None = None  # e.g. 'next 14 days' (business_time.py); `sql` is then the field reference
    range_loc: Location | None = None

    def shown(self) -> str:
        """How the catalog and messages show the filter."""
        return f"{self.sql} in {self.range}" if self.range else self.sql


@dataclass(frozen=True)
class Parameter:
    """A declared input parameter; `has_default` tells a default of None (null) from no default at all."""

    name: str
    type: str
    default: Any = None
    has_default: bool = False
    description: str = ""
    loc: Location = Location("")


@dataclass(frozen=True)
class SortItem:
    """One `sort:` item of an input: a reference or an output column name, ascending unless `descending`."""

    expression: str  # a reference or an output column name
    descending: bool = False
    loc: Location = Location("")


@dataclass(frozen=True)
class Input:
    """One input file: a query from the `root` data source, its columns, filters, parameters, sort and limit."""

    name: str
    root: str  # the `from:` data source
    fields: tuple[InputField, ...]
    filters: tuple[Filter, ...] = ()
    parameters: Mapping[str, Parameter] = field(default_factory=dict)
    sort: tuple[SortItem, ...] = ()
    limit: int | None = None
    description: str = ""
    path: str = ""
    loc: Location = Location("")
    locs: Mapping[str, Location] = field(default_factory=dict)  # where each top-level key's value is


@dataclass(frozen=True)
class Fresh:
    """`checks.fresh`: the newest value of `field` must be at most `within_seconds` old."""

    field: str
    within_seconds: float
    within: str  # as written, for messages
    loc: Location = Location("")


@dataclass(frozen=True)
class Checks:
    """A tracker's `checks:` (row counts, unique and not-null columns, freshness); a failing result is not written."""

    min_rows: int | None = None
    max_rows: int | None = None
    unique: tuple[str, ...] = ()
    not_null: tuple[str, ...] = ()
    loc: Location = Location("")
    locs: Mapping[str, Location] = field(default_factory=dict)  # check name -> where its value is
    item_locs: Mapping[str, tuple[Location, ...]] = field(default_factory=dict)  # unique/not_null items
    fresh: Fresh | None = None

    def loc_of(self, check: str, index: int | None = None) -> Location:
        """Where a check (or one item of `unique` / `not_null`) is written; the checks block otherwise."""
        items = self.item_locs.get(check, ())
        if index is not None and 0 <= index < len(items):
            return items[index]
        return self.locs.get(check, self.loc)


@dataclass(frozen=True)
class ForEach:
    """`for_each`: one part of a tracker per value of one of its input's parameters
    (expanded at refresh time by genesis.run.fan_out)."""

    parameter: str
    values: tuple[Any, ...] | None = None  # a literal list
    values_from: str | None = None  # a reference whose distinct values are the values
    label_from: str | None = None  # a reference giving each value a display label
    max_parts: int = 200
    loc: Location = Location("")
    locs: Mapping[str, Location] = field(default_factory=dict)  # where each key's value is


@dataclass(frozen=True)
class Tracker:
    """One tracker file (or one part of a for_each tracker): the input it runs, with which parameter values,
    the destination its rows go to, and when and how they are kept there."""

    name: str
    input: str
    destination: AnyDestination  # typed when the project loads (destinations/kinds.py)
    parameters: Mapping[str, Any] = field(default_factory=dict)
    schedule: str | None = None
    owner: str | None = None
    key: tuple[str, ...] = ()
    mode: str = "upsert"
    on_removed: str = "delete"  # delete | mark | keep: rows whose key left the result
    checks: Checks = Checks()
    timeout_seconds: float | None = None
    description: str = ""
    path: str = ""
    loc: Location = Location("")
    locs: Mapping[str, Location] = field(default_factory=dict)  # where each top-level key's value is
    key_locs: tuple[Location, ...] = ()  # where each `key` item is
    for_each: ForEach | None = None  # one part per value (genesis.run.fan_out)
    part_of: str | None = None  # a part of a for_each tracker: the tracker's name
    part_value: Any = None  # ... and its value

    def __post_init__(self) -> None:
        # A tracker built from a YAML-shaped mapping (a test, a fanned-out copy) gets the
        # typed destination too, so every stage can rely on it.
        if not isinstance(self.destination, (FileDestination, SheetsDestination, AirtableDestination)):
            object.__setattr__(self, "destination", destination_of(self.destination, self.locs.get("destination")))

    def key_loc(self, index: int) -> Location:
        """Where `key` item `index` is written; the `key:` value (or the tracker) when there is no such item."""
        if 0 <= index < len(self.key_locs):
            return self.key_locs[index]
        return self.locs.get("key", self.loc)


@dataclass(frozen=True)
class Target:
    """A target of genesis.yaml: an engine and its raw settings (rendered only when used: config.render_settings)."""

    name: str
    engine: str  # duckdb | trino
    settings: Mapping[str, Any]  # the raw target mapping, `{{ env.X }}` not yet rendered
    loc: Location = Location("")

    @property
    def destinations(self) -> str:
        """`local` (every tracker writes a file) or `live` (Sheets and Airtable for real); default by engine."""
        return str(self.settings.get("destinations", "local" if self.engine == "duckdb" else "live"))


@dataclass(frozen=True)
class Config:
    """genesis.yaml: the project's name, its targets and its project-wide settings (history, alerts, business time)."""

    name: str
    default_target: str
    targets: Mapping[str, Target]
    path: str = "genesis.yaml"
    history: Mapping[str, Any] = field(default_factory=dict)  # `history:` (YamlMap: keeps locations)
    alerts: Mapping[str, Any] = field(default_factory=dict)  # `alerts:` (YamlMap: keeps locations)
    output_root: str | None = None  # where file destinations may write (default: the project)
    time_zone: str = "UTC"  # the business time zone: "today", ranges and grains (business_time.py)
    week_start: str = "monday"


@dataclass(frozen=True)
class Project(Derived):
    """A loaded project: genesis.yaml and every definition by name; `broken` names those that failed to load."""

    root: str  # directory, absolute
    config: Config
    datasources: Mapping[str, DataSource]
    inputs: Mapping[str, Input]
    trackers: Mapping[str, Tracker]
    broken: Mapping[str, frozenset[str]] = field(default_factory=dict)  # kind -> names that failed to load

