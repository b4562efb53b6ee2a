"""Find and load a project: genesis.yaml plus every definition file.

Loading is all-or-nothing: every file is read and shape-checked, the model is built
from what is well-formed, and every problem found on the way is reported together.
Semantic checks across files (references, joins, filters) live in genesis.validate.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..destinations.kinds import destination_of
from ..errors import ErrorCollector, GenesisError, Location, ValidationError
from ..run.fan_out import for_each_of
from . import types
from .loader import YamlList, YamlMap, load_yaml_file
from .model import (
    Checks,
    Config,
    DataSource,
    Field,
    Filter,
    Input,
    InputField,
    Join,
    Latest,
    Measure,
    Parameter,
    Project,
    Segment,
    SortItem,
    Target,
    Tracker,
)
from .shape_check import check_shape

CONFIG_FILE = "genesis.yaml"
KIND_DIRS = {"datasource": "datasources", "input": "inputs", "tracker": "trackers"}


def load_project(directory: str | os.PathLike = ".", collect: ErrorCollector | None = None) -> Project:
    """Load and shape-check a whole project; raises ValidationError listing every problem.

    With `collect`, problems are added to it instead and the well-formed part of the
    project is returned, so that `genesis validate` can check it too. The names of
    definitions that failed to load are in `project.broken`.
    """
    root = Path(directory).resolve()
    errors = collect if collect is not None else ErrorCollector()
    if not root.is_dir():
        raise GenesisError(f"project directory '{directory}' does not exist")
    config = _load_config(root, errors)
    builders = {"datasource": _datasource, "input": _input, "tracker": _tracker}
    loaded: dict[str, dict[str, Any]] = {kind: {} for kind in KIND_DIRS}
    broken: dict[str, set[str]] = {kind: set() for kind in KIND_DIRS}
    for kind, folder in KIND_DIRS.items():
        for path in sorted((root / folder).glob("*.y*ml")):
            shown = os.path.relpath(path, Path.cwd()) if _inside_cwd(path) else str(path)
            document = _read(path, shown, kind, errors)
            obj = builders[kind](document, shown, errors) if document is not None else None
            if obj is None or document is None:  # no document: no object either (the check is for the type)
                broken[kind].add(_declared_name(document, path))
                continue
            previous = loaded[kind].get(obj.name)
            if previous is not None:
                errors.add(f"duplicate {kind} name '{obj.name}' (also defined in {previous.path})",
                           document.loc_of("name"))
                continue
            loaded[kind][obj.name] = obj
    if collect is None:
        errors.raise_if_any()
    return Project(str(root), config, loaded["datasource"], loaded["input"], loaded["tracker"],
                   {kind: frozenset(names) for kind, names in broken.items()})


def _declared_name(document, path: Path) -> str:
    if isinstance(document, dict) and isinstance(document.get("name"), str):
        return document["name"]
    return path.stem


def _inside_cwd(path: Path) -> bool:
    try:
        path.relative_to(Path.cwd())
        return True
    except ValueError:
        return False


def _read(path: Path, shown: str, kind: str, errors: ErrorCollector) -> YamlMap | None:
    try:
        document = load_yaml_file(path, shown)
    except GenesisError as exc:
        errors.extend([exc])
        return None
    problems = check_shape(document, kind, shown)
    if problems:
        errors.extend(problems)
        return None
    return document


def _load_config(root: Path, errors: ErrorCollector) -> Config:
    path = root / CONFIG_FILE
    shown = os.path.relpath(path, Path.cwd()) if _inside_cwd(path) else str(path)
    if not path.exists():
        raise GenesisError(f"no {CONFIG_FILE} in {root}: is this a Genesis project? (use --project DIR)")
    document = _read(path, shown, "config", errors)
    if document is None:  # _read has added why to `errors` (what raise_if_any would raise)
        raise ValidationError(errors.errors)
    targets = {
        name: Target(name, settings["engine"], settings, document["targets"].loc_of(name))
        for name, settings in document["targets"].items()
    }
    default = document.get("default_target", next(iter(targets)))
    if default not in targets:
        from ..errors import did_you_mean

        errors.add(f"default_target '{default}' is not a target", document.loc_of("default_target"),
                   did_you_mean(default, targets))
    zone, week_start = _time_settings(document, errors)
    return Config(document["name"], default, targets, shown, document.get("history") or {},
                  document.get("alerts") or {}, document.get("output_root"), zone, week_start)


def _time_settings(document: YamlMap, errors: ErrorCollector) -> tuple[str, str]:
    """`time_zone` (an IANA name, checked here with a did-you-mean) and `week_start` (a
    weekday: the schema's enum checked it)."""
    from . import business_time as bt

    zone = bt.DEFAULT_ZONE
    try:
        zone = bt.check_zone(document.get("time_zone", zone), document.loc_of("time_zone"))
    except GenesisError as exc:
        errors.extend([exc])
    return zone, str(document.get("week_start", bt.DEFAULT_WEEK_START))


def _type(value: str, where: Location, errors: ErrorCollector) -> str | None:
    canonical = types.normalize_type(value)
    if canonical is None:
        errors.add(f"unknown type '{value}'", where, types.unknown_type_hint(value))
    return canonical


def _datasource(doc: YamlMap, path: str, errors: ErrorCollector) -> DataSource | None:
    before = len(errors.errors)
    fields = {}
    for name, spec in doc["fields"].items():
        loc = doc["fields"].key_loc(name)
        ftype = _type(spec["type"], spec.loc_of("type"), errors)
        labels = spec.get("labels")
        fields[name] = Field(
            name, ftype or "varchar", spec.get("description", ""), spec.get("sql"),
            {str(k): str(v) for k, v in labels.items()} if labels else None,
            loc, spec.loc_of("sql") if "sql" in spec else None,
        )
    measures = {}
    for name, spec in (doc.get("measures") or {}).items():
        loc = doc["measures"].key_loc(name)
        if name in fields:
            errors.add(f"measure '{name}' has the same name as a field", loc)
        mtype = _type(spec["type"], spec.loc_of("type"), errors) if "type" in spec else None
        if "sql" in spec and "field" in spec:
            errors.add(f"measure '{name}' has both sql and field; keep one", loc)
        sql = spec.get("sql")
        sql_loc = spec.loc_of("sql") if "sql" in spec else None
        if "field" in spec:
            sql, sql_loc = spec["field"], spec.loc_of("field")
        agg = spec.get("agg")
        if agg is None and ("field" in spec or sql is None):  # a derived measure: `sql` over measures
            errors.add(f"measure '{name}' needs `agg` (or, for a measure derived from other measures, `sql` "
                       f"over them)", loc, "agg: sum, sql: budget   or   sql: total_budget / nullif(movie_count, 0)")
        elif agg is not None and sql is None and agg != "count":
            errors.add(f"measure '{name}' needs `sql` or `field` for agg {agg}", loc)
        measures[name] = Measure(name, agg, sql, mtype, spec.get("description", ""), loc, sql_loc)
    joins = {}
    for name, spec in (doc.get("joins") or {}).items():
        loc = doc["joins"].key_loc(name)
        if name in fields or name in measures:
            errors.add(f"join '{name}' has the same name as a field or measure", loc)
        on = tuple((str(k), str(v)) for k, v in spec["on"].items())
        join_type = spec.get("type", "left")
        required = spec.get("required", False)
        if required and spec["relationship"] == "one_to_many":
            errors.add(f"join '{name}': `required: true` promises one parent row per row, so it needs "
                       f"relationship many_to_one or one_to_one, not one_to_many", spec.loc_of("required"))
        joins[name] = Join(name, spec["datasource"], on, spec["relationship"], join_type,
                           spec.get("description", ""), loc, required)
    segments = _segments(doc, [fields, measures, joins], errors)
    latest = None
    if "latest" in doc:
        spec = doc["latest"]
        latest = Latest(spec["order_by"], spec.get("deleted"), doc.loc_of("latest"))
    pk = tuple(doc.get("primary_key") or ())
    if latest and not pk:
        errors.add("`latest` needs a primary_key: it keeps the newest row per key", doc.key_loc("latest"))
    if len(errors.errors) > before:
        return None
    return DataSource(doc["name"], doc["table"], fields, measures, joins, pk, latest,
                      doc.get("description", ""), path, doc.loc, doc.value_locs, segments)


def _segments(doc: YamlMap, taken: list, errors: ErrorCollector) -> dict[str, Segment]:
    """`segments:`: name -> a condition, written as a string or as `{sql, description}`."""
    segments = {}
    for name, spec in (doc.get("segments") or {}).items():
        loc = doc["segments"].key_loc(name)
        if any(name in names for names in taken):
            errors.add(f"segment '{name}' has the same name as a field, measure or join", loc)
        if isinstance(spec, str):
            segments[name] = Segment(name, spec, "", loc, doc["segments"].loc_of(name))
        else:
            segments[name] = Segment(name, spec["sql"], spec.get("description", ""), loc, spec.loc_of("sql"))
    return segments


def _input(doc: YamlMap, path: str, errors: ErrorCollector) -> Input | None:
    before = len(errors.errors)
    fields = []
    seen: dict[str, Location] = {}
    items: YamlList = doc["fields"]
    for index, item in enumerate(items):
        loc = items.loc_of(index)
        if isinstance(item, str):
            item_field = InputField(name=item.rsplit(".", 1)[-1], field=item, loc=loc, sql_loc=loc)
        elif "field" in item:
            reference = item["field"]
            item_field = InputField(
                name=item.get("label") or _grain_name(reference, item.get("grain")), field=reference,
                label=item.get("label"),
                agg=item.get("agg"), format=item.get("format"),
                description=item.get("description", ""), loc=loc, sql_loc=item.loc_of("field"),
                grain=item.get("grain"),
            )
        else:
            ctype = _type(item["type"], item.loc_of("type"), errors) if "type" in item else None
            item_field = InputField(
                name=item.get("label") or item["name"], sql=item["sql"], type=ctype,
                label=item.get("label"), format=item.get("format"),
                description=item.get("description", ""), loc=loc, sql_loc=item.loc_of("sql"),
            )
        if item_field.name in seen:
            errors.add(f"two output columns are named '{item_field.name}' (the other is at line "
                       f"{seen[item_field.name].line})", loc, "give one of them a `label`")
        seen[item_field.name] = loc
        fields.append(item_field)
    filters = tuple(_filter(text, doc["filters"].loc_of(i), errors) for i, text in enumerate(doc.get("filters") or []))
    parameters = {}
    for name, spec in (doc.get("parameters") or {}).items():
        ptype = _type(spec["type"], spec.loc_of("type"), errors)
        parameters[name] = Parameter(name, ptype or "varchar", spec.get("default"), "default" in spec,
                                     spec.get("description", ""), doc["parameters"].key_loc(name))
    sort = tuple(_sort_item(text, doc["sort"].loc_of(i), errors) for i, text in enumerate(doc.get("sort") or []))
    if len(errors.errors) > before:
        return None
    return Input(doc["name"], doc["from"], tuple(fields), filters, parameters, sort,
                 doc.get("limit"), doc.get("description", ""), path, doc.loc, doc.value_locs)


def _grain_name(reference: str, grain: str | None) -> str:
    """A grain column's default name: `shoot_start_week` for production.shoot_start by week."""
    name = reference.rsplit(".", 1)[-1]
    return f"{name}_{grain}" if grain else name


def _filter(item, loc: Location, errors: ErrorCollector) -> Filter:
    """A SQL text, or `{field, range}`: a relative date range (checked here, evaluated at compile)."""
    if isinstance(item, str):
        return Filter(item, loc)
    from .business_time import check_range

    range_loc = item.loc_of("range")
    try:
        check_range(item["range"], range_loc)
    except GenesisError as exc:
        errors.extend([exc])
    return Filter(str(item["field"]), item.loc_of("field"), str(item["range"]), range_loc)


# Words people write after a sort column that SQL does not know (`descending` would even
# parse, as a column alias, and sort ascending).
_NOT_DIRECTIONS = {"ascending", "descending", "decending", "asc.", "desc.", "des", "dsc", "up", "down",
                   "reverse", "reversed", "first", "last", "nulls"}


def _sort_item(text: str, loc: Location, errors: ErrorCollector) -> SortItem:
    words = str(text).strip().rsplit(None, 1)
    if len(words) == 2 and words[1].upper() in ("ASC", "DESC"):
        return SortItem(words[0].strip(), words[1].upper() == "DESC", loc)
    if len(words) == 2 and words[1].lower() in _NOT_DIRECTIONS:
        if "nulls" in str(text).lower():
            hint = "NULLS FIRST / LAST is not supported: nulls always sort last"
        else:
            hint = f"write '{words[0]} {'DESC' if words[1].lower().startswith(('d', 'rev')) else 'ASC'}'"
        errors.add(f"sort item '{text}': only ASC or DESC may follow the column, not '{words[1]}'", loc, hint)
    if not str(text).strip():
        errors.add("empty sort item", loc)
    return SortItem(str(text).strip(), False, loc)


def _fresh(checks_doc: YamlMap, errors: ErrorCollector):
    """`checks.fresh: {field, within}`; `within` is a duration such as 2h or 1d12h."""
    from ..run.durations import parse_duration
    from .model import Fresh

    spec = checks_doc.get("fresh")
    if spec is None:
        return None
    try:
        seconds = parse_duration(spec["within"])
    except GenesisError as exc:
        errors.add(exc.message, spec.loc_of("within"), exc.hint)
        return None
    return Fresh(spec["field"], seconds, str(spec["within"]), spec.loc_of("field"))


def _tracker(doc: YamlMap, path: str, errors: ErrorCollector) -> Tracker | None:
    checks_doc = doc.get("checks") or None
    checks = Checks(loc=doc.loc_of("checks"))
    if isinstance(checks_doc, YamlMap):
        checks = Checks(
            checks_doc.get("min_rows"), checks_doc.get("max_rows"),
            tuple(checks_doc.get("unique") or ()), tuple(checks_doc.get("not_null") or ()),
            doc.loc_of("checks"), dict(checks_doc.value_locs),
            {name: _item_locs(checks_doc.get(name)) for name in ("unique", "not_null")},
            _fresh(checks_doc, errors),
        )
    if checks.min_rows is not None and checks.max_rows is not None and checks.min_rows > checks.max_rows:
        errors.add(f"checks.min_rows ({checks.min_rows}) is larger than checks.max_rows ({checks.max_rows})",
                   checks.loc_of("max_rows"))
        return None
    return Tracker(
        name=doc["name"], input=doc["input"], destination=destination_of(doc["destination"], doc.loc_of("destination")),
        parameters=doc.get("parameters") or {}, schedule=doc.get("schedule"), owner=doc.get("owner"),
        key=tuple(doc.get("key") or ()), mode=doc.get("mode", "upsert"),
        on_removed=doc.get("on_removed", "delete"), checks=checks,
        timeout_seconds=doc.get("timeout"), description=doc.get("description", ""),
        path=path, loc=doc.loc, locs=doc.value_locs, key_locs=_item_locs(doc.get("key")),
        for_each=for_each_of(doc.get("for_each"), doc.loc_of("for_each")),
    )


def _item_locs(items) -> tuple[Location, ...]:
    return tuple(items.item_locs) if isinstance(items, YamlList) else ()
