"""Compare the data sources with the live catalog (`genesis validate --catalog-check`).

An upstream rename or retype would otherwise show up as a failed refresh, or worse as a
tracker quietly written with an empty column. This check reads the live schema of every
table the data sources name (`information_schema.columns` on Trino, the Iceberg schema
on the local warehouse) and reports, at the YAML line that relies on it:

- a table that does not exist (at the data source's `table:`);
- a column a plain field reads that no longer exists (with a did-you-mean over the live
  columns no field claims, which is where a renamed column usually went);
- a plain field whose live type no longer matches its declared type (see `compatible`);
- a column named in a field's, measure's or `latest:` SQL that no longer exists.

Each problem lists the trackers that would break. Columns no field or SQL reads may change
freely. Fields with `sql:` are checked for the columns they use, not for their type:
their value is cast to the declared type by the compiled SQL.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path

from sqlglot import exp

from ..compiler import compile_tracker
from ..compiler.expressions import read_expression
from ..engines import Engine, open_engine
from ..errors import GenesisError, Location, ValidationError, did_you_mean
from ..project import types
from ..project.config import get_target
from ..project.model import DataSource, Project

ANY_USE = "*"  # a dependency on the data source as a whole (its key, its `latest:` columns)
_INTEGER_DIGITS = {"tinyint": 3, "smallint": 5, "integer": 10, "bigint": 19}
_INTEGER_RANK = {"tinyint": 1, "smallint": 2, "integer": 3, "bigint": 4}


class CatalogError(GenesisError):
    """One drift problem, with what it affects (carried into `--format json`)."""

    def __init__(self, message: str, location: Location | None, hint: str | None, *,
                 datasource: str, table: str, column: str | None, trackers: Iterable[str]):
        super().__init__(message, location, hint)
        self.datasource, self.table, self.column = datasource, table, column
        self.trackers = sorted(trackers)

    def to_json(self) -> dict:
        """GenesisError's JSON, plus the data source, table, column and trackers the problem affects."""
        return {**super().to_json(), "datasource": self.datasource, "table": self.table,
                "column": self.column, "trackers": self.trackers}


def check_catalog(project: Project, target_name: str | None = None) -> None:
    """Raise ValidationError with one located error per drift problem; quiet when none."""
    target = get_target(project, target_name)
    engine = open_engine(project, target.name)
    try:
        _require_warehouse(engine)
        errors = catalog_problems(project, engine, target.name)
    finally:
        engine.close()
    if errors:
        raise ValidationError(errors)


def catalog_problems(project: Project, engine: Engine, target_name: str = "") -> list[CatalogError]:
    """Every drift problem of the data sources against `engine`'s live tables (each table read once)."""
    users = tracker_users(project)
    live_tables: dict[str, dict[str, str] | None] = {}
    errors: list[CatalogError] = []
    for ds in sorted(project.datasources.values(), key=lambda d: d.name):
        table = ds.table.lower()
        if table not in live_tables:
            live_tables[table] = engine.table_columns(ds.table)
        errors.extend(_datasource_problems(project, ds, live_tables[table], users, engine, target_name))
    return errors


def tracker_users(project: Project) -> dict[str, set[str]]:
    """Reference (`movie.title`, `movie.join:cast`, `movie.*`) -> trackers that use it."""
    users: dict[str, set[str]] = defaultdict(set)
    for name in sorted(project.trackers):
        try:
            compiled = compile_tracker(project, name)
        except GenesisError:
            continue  # `genesis validate` reports it; it cannot break any further
        for reference in compiled.references:
            users[reference].add(name)
        for ds_name in compiled.datasources:
            users[f"{ds_name}.{ANY_USE}"].add(name)
    return users


# ----------------------------------------------------------------------------- one data source


def _datasource_problems(project: Project, ds: DataSource, live: Mapping[str, str] | None,
                         users: Mapping[str, set[str]], engine: Engine, target_name: str) -> list[CatalogError]:
    def error(message, loc, column, trackers, hint=None):
        return CatalogError(message, loc, _join_hints(hint, _breaks(trackers)), datasource=ds.name,
                            table=ds.table, column=column, trackers=trackers)

    if live is None:
        where = f" (target '{target_name}')" if target_name else ""
        return [error(f"table {ds.table} of data source '{ds.name}' does not exist{where}",
                      ds.locs.get("table", ds.loc), None, _affected(users, [f"{ds.name}.{ANY_USE}"]),
                      did_you_mean(ds.table.lower(), _unused_tables(project, engine)))]
    columns = {name.lower(): (name, t) for name, t in live.items()}
    readers = _readers(project, ds)
    unclaimed = [name for name in live if name.lower() not in readers]
    problems = []
    for f in ds.fields.values():
        if f.sql is None:  # everything that reads the column breaks, not only the field
            trackers = _affected(users, readers.get(f.name.lower(), ()))
            problems.extend(_plain_field(f, columns, unclaimed, ds, trackers, error))
            continue
        trackers = _affected(users, _member_keys(project, ds, f.name))
        problems.extend(_missing_in_sql(f.sql, f.sql_loc or f.loc, f"field '{ds.name}.{f.name}'",
                                        columns, unclaimed, ds, trackers, error))
    for m in ds.measures.values():
        if m.sql is not None and m.sql not in ds.fields and not m.derived:  # a field's own check covers `sql: field`
            trackers = _affected(users, [f"{ds.name}.{m.name}"])
            problems.extend(_missing_in_sql(m.sql, m.sql_loc or m.loc, f"measure '{ds.name}.{m.name}'",
                                            columns, unclaimed, ds, trackers, error))
    if ds.latest is not None:
        trackers = _affected(users, [f"{ds.name}.{ANY_USE}"])  # every query reads the latest view
        for what, text in (("latest.order_by", ds.latest.order_by), ("latest.deleted", ds.latest.deleted)):
            if text:
                problems.extend(_missing_in_sql(text, ds.latest.loc, what, columns, unclaimed, ds, trackers, error))
    return problems


def _plain_field(f, columns, unclaimed, ds, trackers, error) -> list[CatalogError]:
    found = columns.get(f.name.lower())
    if found is None:
        return [error(_gone(f.name, ds.table, unclaimed), f.loc, f.name, trackers)]
    live_name, live_type = found
    if compatible(f.type, live_type):
        return []
    return [error(f"column '{live_name}' of {ds.table} is now {live_type}, but field '{ds.name}.{f.name}' "
                  f"declares {f.type}", f.loc, f.name, trackers,
                  f"declare type: {live_type}, or read it with sql: \"cast({f.name} AS {f.type})\"")]


def _missing_in_sql(text, loc, what, columns, unclaimed, ds, trackers, error) -> list[CatalogError]:
    problems, seen = [], set()
    for name in _columns_in(text):
        if name.lower() in columns or name.lower() in seen:
            continue
        seen.add(name.lower())
        problems.append(error(f"{_gone(name, ds.table, unclaimed)}, used by {what}", loc, name, trackers))
    return problems


def _gone(name: str, table: str, unclaimed: list[str]) -> str:
    # The hint goes into the message: a rename is the common case and the fix is obvious.
    guess = did_you_mean(name, unclaimed)
    return f"column '{name}' no longer exists in {table}" + (f" ({guess})" if guess else "")


# ----------------------------------------------------------------------------- who breaks


def _member_keys(project: Project, ds: DataSource, field_name: str) -> list[str]:
    """The references through which a field is read: itself, measures and joins over it,
    and the whole data source when it is part of the key (key sub-queries, `latest:`)."""
    keys = [f"{ds.name}.{field_name}"]
    keys += [f"{ds.name}.{m.name}" for m in ds.measures.values() if m.sql == field_name]
    keys += [f"{ds.name}.join:{j.name}" for j in ds.joins.values() if any(a == field_name for a, _ in j.on)]
    for other in project.datasources.values():
        keys += [f"{other.name}.join:{j.name}" for j in other.joins.values()
                 if j.datasource == ds.name and any(b == field_name for _, b in j.on)]
    if field_name in ds.primary_key:
        keys.append(f"{ds.name}.{ANY_USE}")
    return keys


def _affected(users: Mapping[str, set[str]], keys: Iterable[str]) -> set[str]:
    found: set[str] = set()
    for key in keys:
        found |= users.get(key, set())
    return found


def _breaks(trackers: Iterable[str]) -> str:
    names = sorted(trackers)
    if not names:
        return "no tracker uses it"
    return f"breaks tracker{'s' if len(names) > 1 else ''}: {', '.join(names)}"


def _join_hints(*hints: str | None) -> str | None:
    return "; ".join(h for h in hints if h) or None


def _readers(project: Project, ds: DataSource) -> dict[str, list[str]]:
    """Column (lowercase) -> the references through which some definition of `ds` reads it.
    Its keys are also the columns a rename cannot have moved to (for did-you-mean)."""
    readers: dict[str, list[str]] = defaultdict(list)
    for f in ds.fields.values():
        for column in [f.name] if f.sql is None else _columns_in(f.sql):
            readers[column.lower()] += _member_keys(project, ds, f.name)
    for m in ds.measures.values():
        if m.sql is not None and m.sql not in ds.fields and not m.derived:
            for column in _columns_in(m.sql):
                readers[column.lower()].append(f"{ds.name}.{m.name}")
    if ds.latest is not None:
        for text in (ds.latest.order_by, ds.latest.deleted):
            for column in _columns_in(text):
                readers[column.lower()].append(f"{ds.name}.{ANY_USE}")
    return readers


def _columns_in(text: str | None) -> list[str]:
    if not text:
        return []
    try:
        return [c.name for c in read_expression(text, None, "sql").find_all(exp.Column)]
    except GenesisError:
        return []  # `genesis validate` reports unparsable SQL


# ----------------------------------------------------------------------------- types


def compatible(declared: str, live: str) -> bool:
    """Can every value of the live type be read losslessly as the declared type?

    Allowed besides equality: a narrower integer into a wider one (declared bigint, live
    integer); integers and decimals into a decimal with room for their digits; any number
    into double (Trino coerces them implicitly); and the same rules inside array(T).
    A wider live type (an int promoted to bigint upstream) is drift: values may no longer fit.
    """
    if declared == live:
        return True
    if types.is_array(declared) and types.is_array(live):
        return compatible(types.array_element(declared), types.array_element(live))
    if declared in _INTEGER_RANK and live in _INTEGER_RANK:
        return _INTEGER_RANK[live] <= _INTEGER_RANK[declared]
    if declared == "double":
        return live in types.NUMERIC_TYPES or types.is_decimal(live)
    if types.is_decimal(declared):
        precision, scale = _decimal(declared)
        if types.is_decimal(live):
            live_precision, live_scale = _decimal(live)
            return live_scale <= scale and live_precision - live_scale <= precision - scale
        if live in _INTEGER_DIGITS:
            return _INTEGER_DIGITS[live] <= precision - scale
    return False


def _decimal(t: str) -> tuple[int, int]:
    precision, scale = t[len("decimal("):-1].split(",")
    return int(precision), int(scale)


# ----------------------------------------------------------------------------- engines


def _require_warehouse(engine: Engine) -> None:
    """A local target without a warehouse is one error, not one per data source."""
    directory = getattr(engine, "warehouse_dir", None)
    if directory is not None:
        from ..engines import warehouse

        if not (Path(directory) / warehouse.CATALOG_FILE).is_file():
            warehouse.open_catalog(directory, "iceberg")  # raises the warehouse's own error


def _unused_tables(project: Project, engine: Engine) -> list[str]:
    """Local tables no data source reads: where a renamed table may have gone."""
    directory = getattr(engine, "warehouse_dir", None)
    if directory is None:
        return []  # listing a Trino catalog's tables is not worth a query per missing table
    from ..engines import warehouse

    used = {ds.table.lower() for ds in project.datasources.values()}
    return [t for t in warehouse.list_tables(directory) if t.lower() not in used]
