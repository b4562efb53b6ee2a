"""One tracker, many destinations: `for_each` expands a tracker into one *part* per value.

```yaml
for_each: {parameter: country, values: [US, FR]}            # a literal list, or
for_each: {parameter: production_id, values_from: production.production_id,
           label_from: production.name, max_parts: 200}
destination: {type: google_sheets, spreadsheet_id: abc, worksheet: "{{ label }} ({{ production_id }})"}
```

A part is an ordinary Tracker named `tracker[value]` whose input parameter is set to the
value and whose destination name (`worksheet`, `table` or `path`) is rendered in the
sandboxed Jinja of genesis.project.load.templating with `{{ <parameter> }}`, `{{ label }}` and the label
under its reference's name (`production.name` -> `{{ production_name }}`). Parts are refreshed,
checked, written, reported and recorded like any tracker (`run_pool` runs them, `--jobs` in
parallel); this module only expands them and adds them to a copy of the project.

`values_from` values are the distinct non-null values of the field among the rows the input
reads: the input's own filters apply, except those that use the for_each parameter itself
(they are what the parts differ by), with the tracker's other parameter values. At most
`max_parts` values (default 200): more is a located error for that tracker, nothing written.

Names built from values are made safe: in a file path each value is one file-name component
(no `/`, `\\`, leading dots or control characters) and the rendered path must stay in the
project (destinations/paths.py); tab and table titles lose control characters and are cut
to 100 characters. Two parts that would write to the same place are an error.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import re
from collections.abc import Hashable, Mapping
from typing import Any

import jinja2
import sqlglot
from jinja2 import meta
from sqlglot import exp

from ..destinations.kinds import FileDestination, destination_of
from ..errors import GenesisError, Location, did_you_mean
from ..project import templating, types
from ..project.model import ForEach, Input, InputField, Project, Tracker

DEFAULT_MAX_PARTS = 200
MAX_PARTS_LIMIT = 10_000  # `max_parts` itself is bounded: work on user input stays bounded
NAME_FIELDS = {"google_sheets": "worksheet", "airtable": "table", "file": "path"}
MAX_TITLE_CHARS = 100  # a tab or table title
MAX_COMPONENT_CHARS = 100  # one value inside a file name or a part name
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_UNSAFE_IN_PATH = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]")


# ------------------------------------------------------------------------------ loading

def for_each_of(spec: Any, loc: Location) -> ForEach | None:
    """The ForEach of a tracker document's `for_each:` mapping (shape already checked)."""
    if spec is None:
        return None
    values = spec.get("values")
    locs = dict(getattr(spec, "value_locs", {}))
    if values is not None:
        item_locs = getattr(values, "item_locs", ())
        for index, item_loc in enumerate(item_locs):
            locs[f"values[{index}]"] = item_loc
    return ForEach(str(spec["parameter"]), tuple(values) if values is not None else None,
                   spec.get("values_from"), spec.get("label_from"),
                   int(spec.get("max_parts", DEFAULT_MAX_PARTS)), loc, locs)


# ------------------------------------------------------------------------------ names

def value_text(value: Any) -> str:
    """A value as it appears in names: dates ISO, booleans lowercase, numbers as written."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    return str(value)


def part_name(tracker: str, value: Any) -> str:
    """`tracker[value]`: how a part is named in reports, history and `genesis status`."""
    return f"{tracker}[{_safe_component(value_text(value))}]"


def _safe_component(text: str) -> str:
    """One file-name component: no separators, control characters or leading dots; capped."""
    cleaned = _UNSAFE_IN_PATH.sub("_", text).strip().lstrip(".")
    return cleaned[:MAX_COMPONENT_CHARS] or "_"


def _safe_title(text: str) -> str:
    return " ".join(_CONTROL.sub(" ", text).split())[:MAX_TITLE_CHARS]


def _label_alias(reference: str) -> str:
    return reference.replace(".", "_")


def template_names(for_each: ForEach) -> tuple[str, ...]:
    """The names a destination template may use."""
    names = [for_each.parameter]
    if for_each.label_from:
        names += ["label", _label_alias(for_each.label_from)]
    return tuple(dict.fromkeys(names))


def render_destination(project: Project, tracker: Tracker, value: Any, label: Any = None) -> dict:
    """The destination of one part: its name field rendered with the value (made safe)."""
    fe = tracker.for_each
    if fe is None:
        raise ValueError(f"tracker '{tracker.name}' has no for_each: it has no parts to render a destination for")
    destination = dict(tracker.destination)
    kind = str(destination.get("type"))
    field = NAME_FIELDS.get(kind)
    where = tracker.locs.get("destination", tracker.loc)
    if field is None:
        return destination
    is_path = kind == "file"
    safe = _safe_component if is_path else (lambda text: text)
    label_text = value_text(label if label is not None else value)
    context = {fe.parameter: safe(value_text(value))}
    if fe.label_from:
        context["label"] = context[_label_alias(fe.label_from)] = safe(label_text)
    try:
        rendered = templating.render(str(destination.get(field, "")), **context)
    except (jinja2.TemplateError, TypeError, ValueError) as exc:
        raise GenesisError(f"destination {field} '{destination.get(field)}': cannot render it: {exc}", where,
                           f"use {', '.join('{{ ' + n + ' }}' for n in template_names(fe))}") from None
    if is_path:
        from ..destinations.paths import file_path, output_root

        destination[field] = rendered
        file_path(output_root(project.root, project.config.output_root), destination, where)
        return destination
    title = _safe_title(rendered)
    if not title:
        raise GenesisError(f"destination {field} of '{part_name(tracker.name, value)}' renders empty", where)
    destination[field] = title
    return destination


def make_part(project: Project, tracker: Tracker, value: Any, label: Any = None) -> Tracker:
    """The part of `tracker` for one value: an ordinary tracker with that parameter value."""
    fe = tracker.for_each
    if fe is None:
        raise ValueError(f"tracker '{tracker.name}' has no for_each: it has no parts")
    return dataclasses.replace(
        tracker, name=part_name(tracker.name, value),
        parameters={**tracker.parameters, fe.parameter: value},
        # typed here as Tracker.__post_init__ would type it (the same location)
        destination=destination_of(render_destination(project, tracker, value, label),
                                   tracker.locs.get("destination")),
        for_each=None, part_of=tracker.name, part_value=value)


def place_of(tracker: Tracker) -> tuple:
    """Where a tracker writes, compared without case (tab and table titles are unique so)."""
    destination = tracker.destination
    if isinstance(destination, FileDestination):
        return (destination.kind, "", destination.path.casefold())
    return (destination.kind, destination.group, destination.name_in_group.casefold())


def describe_for_each(tracker: Tracker) -> str | None:
    """One line for the catalog: what a for_each tracker fans out over."""
    fe = tracker.for_each
    if fe is None:
        return None
    source = (f"the values of {fe.values_from}" if fe.values_from else
              "the values " + ", ".join(value_text(v) for v in fe.values or ()))
    label = f", labelled by {fe.label_from}" if fe.label_from else ""
    return (f"one part per value of parameter {fe.parameter}: {source}{label} (at most {fe.max_parts}); "
            f"parts are named {tracker.name}[VALUE]")


# ------------------------------------------------------------------------------ static checks

def for_each_problems(project: Project, tracker: Tracker) -> list[GenesisError]:
    """Located problems of a tracker's `for_each` (the validate rule)."""
    fe = tracker.for_each
    if fe is None:
        return []
    out: list[GenesisError] = []
    at = fe.locs.get
    inp = project.inputs.get(tracker.input)
    if inp is None:
        return out
    if fe.parameter not in inp.parameters:
        out.append(GenesisError(
            f"for_each parameter '{fe.parameter}' is not a parameter of input '{inp.name}'",
            at("parameter", fe.loc),
            did_you_mean(fe.parameter, inp.parameters) or (f"declared: {', '.join(inp.parameters)}"
                                                           if inp.parameters else
                                                           f"input '{inp.name}' declares no parameters")))
    if fe.parameter in tracker.parameters:
        out.append(GenesisError(f"parameter '{fe.parameter}' is set by both `parameters` and `for_each`",
                                tracker.locs.get("parameters", tracker.loc), "keep it in for_each only"))
    if (fe.values is None) == (fe.values_from is None):
        out.append(GenesisError("for_each needs exactly one of `values` (a list) and `values_from` (a field)",
                                fe.loc, "e.g. values: [US, FR] or values_from: production.country"))
    if fe.label_from and fe.values_from is None:
        out.append(GenesisError("for_each `label_from` needs `values_from`", at("label_from", fe.loc)))
    if not 1 <= fe.max_parts <= MAX_PARTS_LIMIT:
        out.append(GenesisError(f"for_each max_parts must be between 1 and {MAX_PARTS_LIMIT:,}, not {fe.max_parts}",
                                at("max_parts", fe.loc)))
    if fe.values is not None:
        out += _literal_problems(fe, inp)
    if fe.values_from is not None and fe.parameter in inp.parameters:
        try:
            values_query(project, tracker)
        except GenesisError as exc:
            out.extend(getattr(exc, "errors", None) or [exc])
    out += _destination_problems(project, tracker, fe)
    return out


def _literal_problems(fe: ForEach, inp: Input) -> list[GenesisError]:
    from ..compiler.expressions import coerce

    out = []
    if len(fe.values or ()) > fe.max_parts:
        out.append(GenesisError(f"for_each lists {len(fe.values or ()):,} values, more than max_parts ({fe.max_parts})",
                                fe.locs.get("values", fe.loc), "raise max_parts, or split the tracker"))
    seen: dict[str, int] = {}
    for index, value in enumerate(fe.values or ()):
        where = fe.locs.get(f"values[{index}]", fe.locs.get("values", fe.loc))
        if value is None or isinstance(value, (dict, list)):
            out.append(GenesisError(f"for_each value {value!r} is not a single value", where))
            continue
        if fe.parameter in inp.parameters:
            try:
                coerce(value, inp.parameters[fe.parameter], "for_each")
            except GenesisError as exc:
                out.append(GenesisError(exc.message, where))
        name = _safe_component(value_text(value))
        if name in seen:
            out.append(GenesisError(f"for_each value {value!r} is listed twice (or names the same part as "
                                    f"item {seen[name] + 1})", where))
        seen.setdefault(name, index)
    return out


def _destination_problems(project: Project, tracker: Tracker, fe: ForEach) -> list[GenesisError]:
    destination = tracker.destination
    kind = str(destination.get("type"))
    where = tracker.locs.get("destination", tracker.loc)
    field = NAME_FIELDS.get(kind)
    out = []
    for other in ("spreadsheet_id", "base_id"):
        if "{{" in str(destination.get(other, "")) or "{%" in str(destination.get(other, "")):
            out.append(GenesisError(f"destination {other} cannot use the for_each value: only `{field}` is "
                                    f"rendered per part", where))
    if field is None:
        return out
    allowed = template_names(fe)
    try:
        used = meta.find_undeclared_variables(templating.ENVIRONMENT.parse(str(destination.get(field, ""))))
    except jinja2.TemplateSyntaxError as exc:
        return out + [GenesisError(f"destination {field}: {exc.message}", where)]
    for name in sorted(used - set(allowed)):
        out.append(GenesisError(f"destination {field} uses '{{{{ {name} }}}}', which for_each does not define",
                                where, did_you_mean(name, allowed) or f"use {', '.join(allowed)}"))
    if not used & set(allowed):
        out.append(GenesisError(
            f"destination {field} '{destination.get(field)}' does not use the for_each value: every part "
            f"would write to the same place", where,
            f"e.g. {field}: \"{'out/{{ ' + fe.parameter + ' }}.csv' if kind == 'file' else '{{ ' + fe.parameter + ' }}'}\""))
    if not out:
        try:
            render_destination(project, tracker, sample_value(project, tracker))
        except GenesisError as exc:
            out.append(exc)
    return out


def sample_value(project: Project, tracker: Tracker) -> Any:
    """A value to compile and check a for_each tracker with before its values are known:
    the first literal value, else the parameter's default, else a placeholder of its type."""
    fe = tracker.for_each
    assert fe is not None
    if fe.values:
        return fe.values[0]
    param = project.inputs[tracker.input].parameters.get(fe.parameter)
    if param is None:
        return "sample"
    if param.has_default and param.default is not None and not isinstance(param.default, list):
        return param.default
    ptype = types.array_element(param.type) if types.is_array(param.type) else param.type
    if ptype in types.INTEGER_TYPES or types.is_decimal(ptype) or ptype in ("double", "real"):
        return 0
    if ptype == "boolean":
        return True
    if ptype == "date" or ptype.startswith("timestamp"):
        return "2000-01-01"
    return "sample"


def sample_params(project: Project, tracker_name: str) -> dict[str, Any]:
    """{parameter: sample value} for a for_each tracker (so that it compiles, e.g. in
    `validate` and `diff`); {} for any other tracker."""
    tracker = project.trackers.get(tracker_name)
    if tracker is None or tracker.for_each is None or tracker.input not in project.inputs:
        return {}
    if tracker.for_each.parameter not in project.inputs[tracker.input].parameters:
        return {}
    return {tracker.for_each.parameter: sample_value(project, tracker)}


# ------------------------------------------------------------------------------ values

def values_query(project: Project, tracker: Tracker, params: Mapping[str, Any] | None = None):
    """The CompiledQuery of a `values_from` tracker's values: value (and label), distinct,
    sorted, at most max_parts + 1 rows (one more tells that there are too many)."""
    from ..compiler import compile_input

    fe = tracker.for_each
    assert fe is not None and fe.values_from is not None
    inp = project.inputs[tracker.input]
    at = fe.locs.get
    fields = [InputField("value", field=fe.values_from, loc=at("values_from", fe.loc),
                         sql_loc=at("values_from", fe.loc))]
    if fe.label_from:
        fields.append(InputField("label", field=fe.label_from, loc=at("label_from", fe.loc),
                                 sql_loc=at("label_from", fe.loc)))
    filters = tuple(f for f in inp.filters if fe.parameter not in _variables(f.sql))
    parameters = {n: p for n, p in inp.parameters.items() if n != fe.parameter}
    name = f"{inp.name}.for_each"
    values_input = dataclasses.replace(inp, name=name, fields=tuple(fields), filters=filters,
                                       parameters=parameters, sort=(), limit=None)
    owner = dataclasses.replace(tracker, parameters={k: v for k, v in tracker.parameters.items()
                                                     if k != fe.parameter})
    scratch = dataclasses.replace(project, inputs={**project.inputs, name: values_input})
    given = {k: v for k, v in (params or {}).items() if k in parameters}
    rows = compile_input(scratch, name, given, owner)

    def build() -> exp.Select:
        """Distinct values (each with its smallest label), in order, one more than allowed."""
        return sqlglot.select('"value"', *(['MIN("label") AS "label"'] if fe.label_from else []), dialect="trino") \
            .from_(rows.tree().subquery("_genesis_rows", copy=False)).where('"value" IS NOT NULL') \
            .group_by('"value"').order_by('"value"').limit(fe.max_parts + 1)

    return dataclasses.replace(rows, build=build, _texts={}, _spare=[])


def _variables(sql: str) -> set[str]:
    try:
        return set(meta.find_undeclared_variables(templating.ENVIRONMENT.parse(sql)))
    except jinja2.TemplateSyntaxError:
        return set()


def part_values(project: Project, tracker: Tracker, engine=None, params: Mapping[str, Any] | None = None,
                timeout: float | None = None) -> list[tuple[Any, Any]]:
    """(value, label) of every part, in order; a located GenesisError when there are too
    many, or the values query fails."""
    from ..compiler.expressions import coerce

    fe = tracker.for_each
    assert fe is not None
    param = project.inputs[tracker.input].parameters[fe.parameter]
    if fe.values is not None:
        pairs = [(coerce(v, param, "for_each"), None) for v in fe.values]
    else:
        from ..api import execute

        compiled = values_query(project, tracker, params)
        rows = execute(compiled, engine, label=f"{tracker.name} for_each values", timeout=timeout).table.to_pylist()
        pairs = [(coerce(r["value"], param, "for_each"), r.get("label")) for r in rows if r["value"] is not None]
    if len(pairs) > fe.max_parts:
        raise GenesisError(f"for_each of tracker '{tracker.name}' has more than max_parts ({fe.max_parts}) values; "
                           f"nothing was written", fe.locs.get("max_parts", fe.loc),
                           "raise max_parts (at most 10,000), or filter the input")
    return pairs


def parts_of(project: Project, tracker: Tracker, pairs: list[tuple[Any, Any]]) -> list[Tracker]:
    """The parts for these values; an error when two parts share a name or a destination."""
    fe = tracker.for_each
    if fe is None:
        raise ValueError(f"tracker '{tracker.name}' has no for_each: it has no parts")
    parts: list[Tracker] = []
    names: dict[Hashable, Any] = {}  # part name -> the value that named it
    places: dict[Hashable, Any] = {}  # place_of(part) -> the value that writes there
    for value, label in pairs:
        part = make_part(project, tracker, value, label)
        for seen, key in ((names, part.name), (places, place_of(part))):
            if key in seen:
                raise GenesisError(
                    f"for_each values {value_text(seen[key])!r} and {value_text(value)!r} of tracker "
                    f"'{tracker.name}' would write to the same place ({_describe(part)})",
                    tracker.locs.get("destination", tracker.loc),
                    f"use {{{{ {fe.parameter} }}}} in the destination's name")
            seen[key] = value
        parts.append(part)
    return parts


def _describe(part: Tracker) -> str:
    destination = part.destination
    field = NAME_FIELDS.get(str(destination.get("type")), "")
    return f"{field} '{destination.get(field)}'"
